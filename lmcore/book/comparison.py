"""Chapter 6, the field on one protocol: every headline run's detections re-scored by the book's
protocol, checked against the records, and compared (intervals, paired differences, error
distributions, disagreement between methods, few-shot curves, protocol variants).

    faces = comparison.scoring_faces(chapter)               # the faces every run is scored on
    found = comparison.find_runs(chapter)                   # {BookRun: record or None}, nothing trained
    scores = comparison.detect_and_score(chapter, found, faces)
    print(comparison.check_against_records(scores, chapter.profile))   # raises RescoreMismatch
    display(comparison.leaderboard_table(scores, chapter.profile))

The runs are :data:`lmcore.experiments.BOOK_RUNS`; a table names a run by :func:`run_label`
(``"Zhang K=10"``), the mean shape by :data:`MEAN_SHAPE`. Every error is in % of the
inter-ocular distance unless a protocol variant changes the normaliser.
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from .. import zoo
from ..errors import LmbookError
from ..evaluation import (FAILURE_THRESHOLD, PROTOCOL_VARIANTS, Detections, cumulative_error_distribution,
                          failure_rate, kendall_tau, paired_difference, ranking, ranking_changes)
from ..evaluation.rescore import faces_key
from ..experiments import BOOK_RUNS, BookRun
from ..paths import RESULTS_DIR
from . import viz
from .campaign import accuracy_compute_figure, budget_table, field_curves
from .leaderboard import book_runs, committed_references, paper_numbers, record_row
from .references import cached_for_weights, has_weights, number_from_weights, reference_record
from .reporting import SMOKE_NOTE, separated
from .tables import collapse, explain_missing
from ..experiments import method_settings

SPLITS = ("test_mtfl", "test_aflw")
DIRECTIONS = ("forward", "backward")
POINTS = ("left eye", "right eye", "nose", "left mouth", "right mouth")
BOOK = PROTOCOL_VARIANTS["book"]
MEAN_SHAPE = "mean shape"
#: the few-shot curve's sizes (those below the regressor set's size, then all of it)
CURVE_SIZES = (1, 5, 10, 20, 100, 1000)
CURVE_REPEATS = 10


class RescoreMismatch(LmbookError):
    """A number re-scored from a run's detections or a reference's weights is not the one its
    record holds: the chapter would not be showing what the run measured."""


def run_label(run: BookRun) -> str:
    """A headline run's name in every table: ``"C3 K=30"``, or the label alone without a K."""
    return run.label if run.num_landmarks is None else f"{run.label} K={run.num_landmarks}"


# --------------------------------------------------------------------------- faces and runs


@dataclass
class Faces:
    """The faces every run is scored on: every ``every``-th face of regressor_train and of the
    test splits (``every`` > 1 in the smoke profile only, where the methods evaluate on those)."""

    every: int
    regressor_set: object  # lmcore.data.LandmarkSet
    test_sets: dict  # {split: LandmarkSet}

    def summary(self, profile: str) -> str:
        return (f"{profile} profile: {len(self.regressor_set)} regressor faces, "
                + ", ".join(f"{len(s)} {n} faces" for n, s in self.test_sets.items()))


def scoring_faces(chapter) -> Faces:
    """The faces of ``chapter``'s profile: the coarsest subsampling any headline run's own
    evaluation uses, so that every number can be checked against its record."""
    every = max(method_settings(run.method).budget(chapter.settings).eval_subsample for run in BOOK_RUNS)
    return Faces(every, chapter.data.split("regressor_train", every=every),
                 {name: chapter.data.split(name, every=every) for name in SPLITS})


def find_runs(chapter, references: dict | None = None) -> dict:
    """``{book run: record or None}``, nothing trained: the finished runs of a training profile
    (:func:`lmcore.book.leaderboard.book_runs`), or the committed references that carry weights."""
    if chapter.trains:
        return book_runs(chapter.profile)
    references = committed_references() if references is None else references
    return {run: references[run] if run in references and has_weights(references[run]) else None
            for run in BOOK_RUNS}


def _why_missing(run: BookRun, chapter, references: dict) -> str:
    if chapter.trains:
        return f"no: run book/{run.chapter}.py ({chapter.profile})"
    return "no: the reference has no weights" if run in references else "no: no committed reference"


def runs_table(found: dict, chapter, references: dict | None = None) -> pd.DataFrame:
    """One row per headline run: its record, whether this build has it (else why not) and its
    committed reference."""
    references = committed_references() if references is None else references
    return pd.DataFrame([{
        "run": run_label(run), "record": run.key,
        f"in this {chapter.profile} build": "yes" if record is not None else _why_missing(run, chapter, references),
        "committed reference": "results/" + run.key + ".json" if run in references else "-",
    } for run, record in found.items()]).set_index("run")


# --------------------------------------------------------------------------- scores


@dataclass
class Scores:
    """Each scored detector by its label: the headline runs (``runs``, ``records``), then the mean
    shape (in ``detections`` and ``results`` only). ``results[label][(direction, split)]`` is the
    book protocol's result with the per-face errors (``"per_image"``, ``N``), the predicted points
    (``"predicted"``, ``N x 5 x 2``) and the errors per annotated point (``"per_point"``, ``5``)."""

    runs: dict
    records: dict
    detections: dict
    results: dict

    @classmethod
    def of(cls, runs: dict, records: dict, detections: dict) -> "Scores":
        """Score every detector of ``detections`` (forward and, where it has one, backward error)."""
        results = {name: {(direction, split): d.error(split, direction, BOOK, per_image=True)
                          for split in SPLITS for direction in DIRECTIONS
                          if d.kind == "regressed" or direction == "forward"}
                   for name, d in detections.items()}
        return cls(runs, records, detections, results)

    def per_face(self, name: str, split: str, direction: str = "forward") -> np.ndarray:
        """``N`` per-face errors of ``name`` on ``split``."""
        return self.results[name][(direction, split)]["per_image"]

    def mean(self, name: str, split: str) -> float:
        return self.results[name][("forward", split)]["mean"]

    def order(self, split: str) -> list[str]:
        """The labels by forward error on ``split``, lowest first."""
        return sorted(self.results, key=lambda name: self.mean(name, split))

    def colours(self) -> dict:
        """One colour per detector, the same in every figure."""
        return {name: plt.cm.tab20(i % 20) for i, name in enumerate(self.results)}


def detect_and_score(chapter, found: dict, faces: Faces) -> Scores:
    """Detect the landmarks of every found run once (:meth:`~lmcore.book.chapter.Chapter.detections`,
    cached) on ``faces``, add the mean shape, and score them all by the book's protocol."""
    runs = {run_label(run): run for run, record in found.items() if record is not None}
    records = {name: found[run] for name, run in runs.items()}
    detections = {name: chapter.detections(record, faces.regressor_set, faces.test_sets)
                  for name, record in records.items()}
    detections[MEAN_SHAPE] = Detections.mean_shape(faces.regressor_set, faces.test_sets)
    return Scores.of(runs, records, detections)


def _metric(record, metric: str, split: str) -> float | None:
    return record.get("metrics", {}).get(metric, {}).get(split, {}).get("mean")


def recorded_and_rescored(scores: Scores) -> pd.DataFrame:
    """Each error a record holds beside the same error re-scored from its detections (columns
    run, error, recorded, re-scored): records scored by another protocol are left out, and a
    reference's fp16 weights are held to the number measured from them when they were written."""
    rows = []
    for name, record in scores.records.items():
        same_protocol = ((record.get("evaluation") or {}).get("options") == BOOK.as_dict()
                         or record["method"] == "supervised")
        for (direction, split), result in scores.results[name].items():
            recorded = (number_from_weights(record, direction, split) if record.is_reference
                        else _metric(record, direction, split))
            if recorded is None or not same_protocol:
                continue
            rows.append({"run": name, "error": f"{direction} {split}", "recorded": recorded,
                         "re-scored": result["mean"]})
    return pd.DataFrame(rows, columns=["run", "error", "recorded", "re-scored"])


def check_against_records(scores: Scores, profile: str, tolerance: float = zoo.VERIFY_TOLERANCE) -> str:
    """The line that says the re-scored errors are the recorded ones; raises
    :class:`RescoreMismatch` (with the table) where one differs by ``tolerance`` or more."""
    check = recorded_and_rescored(scores)
    if check.empty:
        return f"no run of this {profile} build to check: the method chapters have not run in this profile"
    worst = float((check["recorded"] - check["re-scored"]).abs().max())
    if not worst < tolerance:
        raise RescoreMismatch(f"re-scored errors differ from the records by up to {worst:.2g} % of IOD:\n{check}")
    return f"{len(check)} recorded errors re-scored from the detections; largest difference {worst:.1e} % of IOD"


# --------------------------------------------------------------------------- tables


def _interval(result: dict) -> str:
    low, high = result["ci95"]
    return f"{result['mean']:.2f} [{low:.2f}, {high:.2f}]"


def leaderboard_rows(scores: Scores) -> pd.DataFrame:
    """One row per detector, lowest forward error on test_mtfl first: forward and backward errors
    with their 95 % intervals, the record's consistency errors, the paper's numbers and the
    record's provenance."""
    rows = []
    for name, results in scores.results.items():
        record, run = scores.records.get(name), scores.runs.get(name)
        row = {"method": name}
        for split in SPLITS:
            row[f"forward {split} [95% CI]"] = _interval(results[("forward", split)])
        for split in SPLITS:
            backward = results.get(("backward", split))
            row[f"backward {split} [95% CI]"] = _interval(backward) if backward else None
        for split in SPLITS:
            value = None if record is None else _metric(record, "consistency", split)
            row[f"consistency {split}"] = None if value is None else round(value, 2)
        mafl, aflw, _ = paper_numbers(run.method, run.num_landmarks, run.name) if run else (None, None, "")
        row.update({"paper: MAFL": mafl, "paper: AFLW": aflw})
        if record is not None:
            provenance = record_row(run, record, source=run.key)
            row.update({k: provenance[k] for k in ("profile", "steps", "training min", "device", "git commit")})
        else:
            row.update({"profile": "-", "steps": 0, "training min": 0.0, "device": "-", "git commit": "-"})
        rows.append(row)
    board = pd.DataFrame(rows).set_index("method")
    return board.loc[scores.order("test_mtfl")]


def leaderboard_table(scores: Scores, profile: str):
    """:func:`leaderboard_rows` as the chapter shows it: the papers' columns shaded, smoke numbers
    marked (:func:`lmcore.book.reporting.separated`)."""
    board = leaderboard_rows(scores)
    return separated(board, profile, paper_columns=["paper: MAFL", "paper: AFLW"],
                     result_columns=[c for c in board.columns if c.startswith(("forward", "backward", "consistency"))])


#: the leaderboard's provenance columns, shown in a collapsed table under its numbers
PROVENANCE_COLUMNS = ("profile", "steps", "training min", "device", "git commit")


def show_leaderboard(scores: Scores, profile: str) -> None:
    """The leaderboard's numbers (:func:`leaderboard_table`) within the text column, then where
    each row comes from in a collapsed table (its columns shared by every row said once)."""
    board = leaderboard_rows(scores)
    numbers = board.drop(columns=list(PROVENANCE_COLUMNS))
    display(separated(numbers.assign(profile=board["profile"]), profile, paper_columns=["paper: MAFL", "paper: AFLW"],
                      result_columns=[c for c in numbers.columns if c.startswith(("forward", "backward", "consistency"))]
                      ).hide(["profile"], axis="columns"))
    display(collapse(board[list(PROVENANCE_COLUMNS)], "Where each row comes from: profile, steps, device, commit"))


def paired_differences(scores: Scores) -> pd.DataFrame | None:
    """Each detector against the best on each test split (forward error, paired bootstrap over the
    same faces), indexed by split and detector; "real?" says whether the interval excludes 0.
    None with fewer than two detectors."""
    pairs = []
    for split in SPLITS:
        order = scores.order(split)
        for other in order[1:]:
            d = paired_difference(scores.per_face(other, split), scores.per_face(order[0], split))
            pairs.append({"split": split, "best": order[0], "against": other,
                          "difference (points of IOD)": round(d["difference"], 2),
                          "95% CI": f"[{d['low']:.2f}, {d['high']:.2f}]",
                          "real?": "yes" if d["certain"] else "no: the interval holds 0"})
    return pd.DataFrame(pairs).set_index(["split", "against"]) if pairs else None


def show_paired_differences(scores: Scores, profile: str) -> None:
    """Display :func:`paired_differences`, without a verdict in the smoke profile."""
    pairs = paired_differences(scores)
    if pairs is None:
        print("fewer than two methods scored in this build: nothing to compare")
        return
    if profile == "smoke":  # the method is shown; a verdict on numbers that mean nothing is not
        pairs = pairs.drop(columns="real?")
        print(SMOKE_NOTE)
    display(separated(pairs, profile))


def failure_rates(scores: Scores) -> pd.DataFrame:
    """The % of faces whose forward error exceeds :data:`~lmcore.evaluation.FAILURE_THRESHOLD`."""
    rows = [{"method": name, **{f"failure rate {split} (%)": round(100 * failure_rate(scores.per_face(name, split)), 1)
                                for split in SPLITS}} for name in scores.results]
    return pd.DataFrame(rows).set_index("method")


def per_landmark_errors(scores: Scores, split: str = "test_aflw") -> pd.DataFrame:
    """The forward error of each annotated point (columns :data:`POINTS`), one row per detector."""
    return pd.DataFrame({name: {p: round(v, 2) for p, v in zip(POINTS, results[("forward", split)]["per_point"])}
                         for name, results in scores.results.items()}).T


# --------------------------------------------------------------------------- figures


def error_distributions(scores: Scores, profile: str):
    """The cumulative distribution of the per-face forward error, one panel per test split, with
    the failure threshold."""
    thresholds = np.linspace(0, 30, 121)
    colour = scores.colours()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, split in zip(axes, SPLITS):
        for name in scores.order(split):
            style = "--" if name == MEAN_SHAPE else "-"
            ax.plot(thresholds, cumulative_error_distribution(scores.per_face(name, split), thresholds), style,
                    label=name, color=colour[name])
        ax.axvline(FAILURE_THRESHOLD, color="grey", lw=0.8)
        ax.set(title=f"{split} [{profile}]", xlabel="forward error, % of IOD", xlim=(0, 30))
    axes[0].set_ylabel("fraction of faces")
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    plt.tight_layout()
    return fig


def disagreement(predicted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-face spread of several methods' predicted points: the mean distance of each method's
    points to the average of all methods' points, in % of the face's inter-ocular distance.

    Shape: ``predicted`` ``M x N x P x 2`` (M methods, N faces, P points, the two eyes first in
    ``labels``, ``N x P x 2``) -> ``N``.
    """
    iod = np.linalg.norm(labels[:, 0] - labels[:, 1], axis=-1)
    return 100 * np.linalg.norm(predicted - predicted.mean(0), axis=-1).mean((0, 2)) / iod


def show_disagreement(scores: Scores, faces: Faces, profile: str, split: str = "test_aflw", count: int = 4) -> None:
    """The ``count`` faces of ``split`` where the runs' regressed points disagree most
    (:func:`disagreement`), each run's points (crosses) beside the labels (dots), and the median."""
    compared = [n for n in scores.results if n != MEAN_SHAPE]
    if len(compared) < 2:
        print("fewer than two runs in this build: nothing to compare")
        return
    labels = faces.test_sets[split].points.numpy()
    predicted = np.stack([scores.results[n][("forward", split)]["predicted"] for n in compared])
    spread = disagreement(predicted, labels)
    worst = np.argsort(-spread)[:count]
    fig, axes = plt.subplots(len(worst), len(compared), figsize=(1.6 * len(compared), 1.75 * len(worst)), squeeze=False)
    for row, face in enumerate(worst):
        for col, name in enumerate(compared):
            ax = axes[row, col]
            viz.show_landmarks(ax, faces.test_sets[split].images[face], labels[face], size=10,
                               title=name if row == 0 else None)
            ax.scatter(predicted[col, face, :, 0], predicted[col, face, :, 1], c=viz.landmark_colours(5), marker="x",
                       s=24)
        axes[row, 0].set_ylabel(f"spread {spread[face]:.0f} %", fontsize=7)
    for ax in axes[0]:
        ax.title.set_fontsize(6)
    fig.suptitle(f"{split}: the {len(worst)} faces of largest disagreement [{profile}]", fontsize=9)
    plt.tight_layout()
    plt.show()
    print(f"median spread over {split}: {np.median(spread):.1f} % of IOD; the faces above: "
          + ", ".join(f"{spread[f]:.1f}" for f in worst))


def _curve(record, detections, faces: Faces, split: str, sizes: list) -> list:
    """The few-shot curve of one detector on ``split``; a committed reference's is cached by its
    weights' digest (:func:`lmcore.book.references.cached_for_weights`)."""
    def compute():
        return detections.curve(split, sizes, repeats=CURVE_REPEATS, options=BOOK)

    if record is None or not has_weights(record):
        return compute()
    request = {"kind": "comparison-curve", "split": split, "sizes": sizes, "repeats": CURVE_REPEATS,
               "options": BOOK.as_dict(), "regressor": faces_key(faces.regressor_set),
               "test": faces_key(faces.test_sets[split])}
    return cached_for_weights(record, request, compute)


def few_shot_figure(scores: Scores, faces: Faces, profile: str):
    """Forward error against the number of labelled faces the regressor sees (:data:`CURVE_SIZES`
    below the regressor set's size, then all; :data:`CURVE_REPEATS` draws each, band: ± one
    standard deviation), one panel per test split, the mean shape dashed. Returns the figure and
    ``{(label, split): curve}``."""
    sizes = [n for n in CURVE_SIZES if n < len(faces.regressor_set)] + [None]
    colour = scores.colours()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=False)
    curves = {}
    for ax, split in zip(axes, SPLITS):
        for name, d in scores.detections.items():
            if d.kind != "regressed":
                continue
            curve = curves[(name, split)] = _curve(scores.records.get(name), d, faces, split, sizes)
            n, mean, std = (np.array([c[key] for c in curve]) for key in ("n", "mean", "std"))
            ax.plot(n, mean, "o-", ms=3, label=name, color=colour[name])
            ax.fill_between(n, mean - std, mean + std, color=colour[name], alpha=0.15)
        ax.axhline(scores.mean(MEAN_SHAPE, split), color="grey", ls="--", lw=0.8, label=MEAN_SHAPE)
        ax.set(xscale="log", title=f"{split} [{profile}]", xlabel="labelled faces n", ylabel="forward error, % of IOD")
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    plt.tight_layout()
    return fig, curves


# --------------------------------------------------------------------------- protocol variants


def variant_scores(scores: Scores) -> dict:
    """``{split: {variant: {label: forward error}}}`` of every detector under each of
    :data:`~lmcore.evaluation.PROTOCOL_VARIANTS`."""
    table = {split: {variant: {} for variant in PROTOCOL_VARIANTS} for split in SPLITS}
    for name, d in scores.detections.items():
        for variant, options in PROTOCOL_VARIANTS.items():
            for split in SPLITS:
                table[split][variant][name] = d.error(split, "forward", options)["mean"]
    return table


def show_variants(scores: Scores) -> dict:
    """Print each variant's options, display one table per test split (a column per variant, the
    book protocol's ranking down the rows); return :func:`variant_scores`."""
    print("\n".join(f"{name}: {options}" for name, options in PROTOCOL_VARIANTS.items()))
    found = variant_scores(scores)
    for split in SPLITS:
        table = pd.DataFrame(found[split]).round(2)
        display(Markdown(f"**{split}**: forward error (%; the box normaliser's are % of the 5-point box diagonal)"))
        display(table.loc[ranking(found[split]["book"])])
    return found


def ranking_changes_table(found: dict) -> pd.DataFrame:
    """How each variant of ``found`` (:func:`variant_scores`) moves the book protocol's ranking:
    Kendall's τ (1: the same order; NaN with fewer than two detectors), its first place and the
    pairs it swaps, indexed by split and variant."""
    changes = []
    for split in SPLITS:
        book_scores = found[split]["book"]
        for variant, scores in found[split].items():
            if variant == "book":
                continue
            swapped = ranking_changes(book_scores, scores)
            tau = kendall_tau(book_scores, scores) if len(book_scores) >= 2 else float("nan")
            changes.append({"split": split, "variant": variant, "Kendall tau": round(tau, 3),
                            "first place": ranking(scores)[0],
                            "pairs swapped": "; ".join(f"{b} now ahead of {a}" for a, b in swapped) or "none"})
    return pd.DataFrame(changes).set_index(["split", "variant"])


def ranking_verdicts(changes: pd.DataFrame) -> str:
    """One line per variant that changes a ranking (markdown), or the line that none does."""
    plain = [f"* On {split}, **{variant}** changes the ranking: {row['pairs swapped']} (τ = {row['Kendall tau']})."
             for (split, variant), row in changes.iterrows() if row["pairs swapped"] != "none"]
    return "\n".join(plain) if plain else "No variant changes the ranking of these runs on either test split."


def show_ranking_changes(found: dict, profile: str) -> None:
    """Display :func:`ranking_changes_table` and :func:`ranking_verdicts`; in the smoke profile,
    whose rankings are noise, only each variant's first place, marked *smoke*."""
    changes = ranking_changes_table(found)
    if profile == "smoke":  # rankings of smoke runs are noise: show what is computed, not what it says
        print(SMOKE_NOTE)
        display(changes[["first place"]].assign(**{"first place": lambda f: f["first place"] + " (smoke)"}))
        return
    display(changes)
    display(Markdown(ranking_verdicts(changes)))


# --------------------------------------------------------------------------- references and browser


def verify_reference(model_name: str, chapter, scores: Scores, faces: Faces) -> dict:
    """The row of :func:`lmcore.zoo.verify` (forward error on every face of test_mtfl, the
    regressor fitted on all of regressor_train) from the reference's detections: those scored
    above where they cover every face, else the cached ones of the chapters before (or one pass)."""
    record = reference_record(*model_name.split("/"))
    name = next((n for n, r in scores.records.items() if r.is_reference and r.run_name == record.run_name
                 and r.method == record.method), None)
    if name is not None and faces.every == 1:
        error = scores.mean(name, "test_mtfl")
    else:
        error = chapter.detections(record, chapter.regressor_train, {"test_mtfl": chapter.test_mtfl}).error(
            "test_mtfl", "forward", BOOK)["mean"]
    stored = number_from_weights(record, "forward", "test_mtfl")
    return {"model": model_name, "dtype": record["weights_dtype"], "score": "forward test_mtfl (% IOD)",
            "from the weights": error, "when written": stored, "record": record.forward("test_mtfl"),
            "difference": abs(error - stored)}


def check_verified(verified: pd.DataFrame) -> str:
    """The line that says every reference's weights give its number: raises
    :class:`RescoreMismatch` where the weights no longer give the number measured from them when
    written (:data:`lmcore.zoo.VERIFY_TOLERANCE`), or that one is not the record's
    (:data:`lmcore.zoo.FP16_TOLERANCE`)."""
    worst = verified["difference"].max()
    if not worst <= zoo.VERIFY_TOLERANCE:
        raise RescoreMismatch(f"a reference's weights no longer give its number (difference {worst:.2e})")
    off = verified[~((verified["when written"] - verified["record"]).abs() < zoo.FP16_TOLERANCE)]
    if len(off):
        raise RescoreMismatch("the number measured from the weights when they were written is not the record's: "
                              + ", ".join(off["model"]))
    return f"{len(verified)} reference(s) re-detected from their weights; largest difference {worst:.1e} % of IOD"


def show_reference_check(chapter, scores: Scores, faces: Faces) -> None:
    """Every committed reference with weights (:func:`lmcore.zoo.available`) re-detected and
    scored: the table, then :func:`check_verified`'s line."""
    verified = pd.DataFrame([verify_reference(name, chapter, scores, faces) for name in zoo.available()])
    if not len(verified):
        print("no committed reference carries weights yet")
        return
    display(verified.set_index("model").round(6))
    print(check_verified(verified))


def browser_frame(scores: Scores, faces: Faces, shown: list[str], split: str, face: int) -> bytes:
    """One face as a PNG: each of ``shown``'s discovered landmarks, the 5 points its regressor
    predicts from them (white crosses) and the labels (white dots)."""
    labels = faces.test_sets[split].points.numpy()
    fig, axes = plt.subplots(1, len(shown), figsize=(1.9 * len(shown), 2.2), squeeze=False)
    for ax, name in zip(axes[0], shown):
        found_points = scores.detections[name].test_points[split][face].numpy()
        viz.show_landmarks(ax, faces.test_sets[split].images[face], found_points, size=12, title=name)
        ax.title.set_fontsize(7)
        regressed = scores.results[name][("forward", split)]["predicted"][face]
        ax.scatter(regressed[:, 0], regressed[:, 1], c="white", marker="x", s=22, linewidths=1.2)
        ax.scatter(labels[face, :, 0], labels[face, :, 1], facecolors="none", edgecolors="white", s=22)
    return viz.figure_png(fig, dpi=70)


def show_landmark_browser(scores: Scores, faces: Faces, split: str = "test_mtfl", count: int = 12) -> None:
    """A slider through the first ``count`` faces of ``split`` (:func:`browser_frame`) for the
    K = 10 runs and the supervised detector, each frame captioned with their forward errors."""
    shown = [n for n in scores.results if n != MEAN_SHAPE and scores.runs[n].num_landmarks in (10, None)]
    if not shown:
        print("no K = 10 run in this build to browse")
        return
    pngs, captions = [], []
    for face in range(min(count, len(faces.test_sets[split]))):
        pngs.append(browser_frame(scores, faces, shown, split, face))
        errors = ", ".join(f"{n}: {scores.per_face(n, split)[face]:.1f}" for n in shown)
        captions.append(f"{split} face {face * faces.every}: forward error (% of IOD) {errors}")
    display(viz.slider_stack(pngs, captions, description="face", width="760px"))


def show_committed_leaderboard(profile: str, root=RESULTS_DIR) -> None:
    """:func:`committed_leaderboard`'s numbers, then its provenance columns in a collapsed table."""
    styled = committed_leaderboard(profile, root)
    explain_missing(styled.data, "the mean shape and the supervised detector have no K, and a paper quotes no number "
                                 "for a method it did not run")
    kept = ["steps", "training min", "git commit", "regressor", "record"]
    display(styled.hide(kept, axis="columns"))
    display(collapse(styled.data[kept].copy(), "Where each row comes from: steps, time, commit, regressor, record"))


def committed_leaderboard(profile: str, root=RESULTS_DIR):
    """``results/leaderboard.csv`` as the chapter shows it, one row per method and K."""
    committed = pd.read_csv(root / "leaderboard.csv")
    committed["K"] = committed["K"].astype("Int64")  # the mean shape and the supervised detector have none
    return separated(
        committed[["method", "K", "profile", "forward test_mtfl", "forward test_aflw", "backward test_mtfl",
                   "backward test_aflw", "consistency test_mtfl", "paper MAFL", "paper AFLW", "steps",
                   "training min", "git commit", "regressor", "record"]].set_index(["method", "K"]),
        profile, paper_columns=["paper MAFL", "paper AFLW"])


def show_accuracy_against_compute(chapter) -> None:
    """Chapter 6's figure of every lineage's tune_val error against core-hours and the "which method
    for my budget" table (:mod:`lmcore.book.campaign`), from the committed records and the bench."""
    curves = field_curves()
    accuracy_compute_figure(curves)
    plt.show()
    display(budget_table(curves))
    display(Markdown("Each curve starts at its headline run's own tune_val error (scored by the full protocol, a "
                     "ridge chosen on tune_fit) and goes on with the learning-curve evaluations of its continuations "
                     "(least squares on 2,000 tune_fit faces), so its first step mixes two scorings of the same kind. "
                     "A lineage still falling at the end of its curve is priced where it is, not where it would stop."))
