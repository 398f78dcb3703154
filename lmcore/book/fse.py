"""Chapter 1's tables and figures (Thewlis, Bilen & Vedaldi 2017, factorized spatial embeddings).

The chapter calls one ``show_*`` section per heading; each displays what the chapter shows, in
the same order, from the functions above it that build a table or a figure and return it (those
are the ones the tests check)::

    runs = fse.table1_runs(chapter)      # {K: record} of Table 1's runs
    fse.show_table1(chapter, runs)       # Table 1, beside the paper's numbers
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import display

from ..data import POINT_NAMES
from ..experiments import EXPERIMENTS, num_landmarks
from ..geometry import WarpSpec, synthesize_pair
from ..methods import get_method
from . import papers, reporting, viz
from ..experiments import method_settings

EXPERIMENT = EXPERIMENTS["01_fse"]
#: the K of the paper's Table 1; K = 10 and 30 are the headline runs (lmcore.experiments.fse), the
#: K = 50 run is trained and evaluated like them but is a row of this table only
TABLE1_K = (10, 30, 50)
#: the K of the paper's Table 4 (few-shot regression) and Fig. 6
FEW_SHOT_K = 30
#: the K of Figs. 4, 5 and 7, of the learning curves, the ablations and the training scrubber
FIGURE_K = 10
#: the K shown under warps (Fig. 3)
UNDER_WARPS_K = (10, 30)
SPLITS = ("test_mtfl", "test_aflw")
#: the frame px box every landmark of the earlier central-70 % setting lay in (the tuning section)
EARLIER_BOX = (25, 55)
#: the warp of Fig. 3: stronger than training's, to show equivariance beyond what was trained
STRONG_WARP = WarpSpec(rotation_deg=25, log2_scale=0.15, translation=0.04, tps_grid=5, tps_std=0.01)
#: the paper's full-MAFL regressor size in its Table 4 (shown beside our full regressor_train)
PAPER_FULL_N = 19000


# ------------------------------------------------------------------ how far a landmark reaches

def map_span(config: dict, frame_size: int = 80) -> tuple[float, float]:
    """The part of the ``frame_size`` px frame that an FSE detector's probability maps span,
    ``(low, high)`` in frame pixels (rounded to 0.1): the first and last map cell of its input's
    grid, mapped back through the centred ``view_crop``."""
    m = config["method"]
    grid = get_method("fse")(config).map_grid(m["view_size"])[0, :, 0]  # normalised [-1, 1] centres of the cells
    low, high = ((grid[[0, -1]] * m["view_crop"] + 1) * (frame_size / 2)).tolist()
    return round(low, 1), round(high, 1)


def map_spans(records: Sequence[dict]) -> dict[str, tuple[float, float]]:
    """``{setting label: map_span}`` of a tuning sweep's records, in their order."""
    return {r.get("tuning_label", r.get("run_name", "?")): map_span(r["config"]) for r in records}


def reach_table(records: Sequence[dict], spans: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """The tuning sweep's table (:func:`~lmcore.book.reporting.tuning_table`, best first) with the
    frame span of each setting's maps as its second column."""
    table = reporting.tuning_table(records)
    table.insert(1, "maps span (frame px)", [spans[label] for label in table.index])
    return table


def outside_box(points: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Which faces (``points``: ``N x P x 2`` frame px) have a point outside the square
    ``[low, high]``; a bool tensor ``N``."""
    return ((points < low) | (points > high)).flatten(1).any(1)


def reach_figure(faces, spans: dict[str, tuple[float, float]], box: tuple[float, float] = EARLIER_BOX):
    """The first face of ``faces`` (a LandmarkSet) with a labelled point outside ``box`` (else the
    first face), with each setting's map span drawn as a square; returns the figure."""
    outside = outside_box(faces.points, *box)
    face = int(outside.nonzero()[0, 0]) if outside.any() else 0
    fig, ax = plt.subplots(figsize=(3.2, 3.2))
    viz.show_landmarks(ax, faces.images[face].float() / 255, faces.points[face])
    for (label, (low, high)), colour in zip(spans.items(), plt.cm.tab10.colors):
        ax.add_patch(plt.Rectangle((low, low), high - low, high - low, fill=False, color=colour, lw=1.2, label=label))
    ax.legend(fontsize=5, loc="lower center", bbox_to_anchor=(0.5, -0.45))
    ax.set_title(f"where each setting's maps reach (test_aflw face {face})", fontsize=8)
    return fig


def show_reach(chapter) -> None:
    """The tuning section: the sweep with each setting's map span, the share of test_aflw faces
    with a point outside the earlier box, and the figure (or how to make a sweep)."""
    records = reporting.tuning_records("fse")
    if not records:
        print("no committed tuning records under results/tuning/fse/ (tools/tune_settings.py fse --publish)")
        return
    spans = map_spans(records)
    display(reach_table(records, spans))
    outside = outside_box(chapter.test_aflw.points, *EARLIER_BOX)
    print(f"{float(outside.float().mean()) * 100:.0f} % of test_aflw faces have a labelled point outside "
          f"[{EARLIER_BOX[0]}, {EARLIER_BOX[1]}] px")
    reach_figure(chapter.test_aflw, spans)
    plt.show()


def pair_figure(config: dict, images: torch.Tensor, seed: int = 1):
    """Synthesised pairs (§4.1) of ``images`` (uint8 ``N x 3 x H x W``) with the warps of
    ``config``: rows I, x = I∘g1 and x' = x∘g2; returns the figure."""
    specs = (WarpSpec(**config["method"]["first_warp"]), WarpSpec(**config["method"]["second_warp"]))
    sample = images.float() / 255
    pair = synthesize_pair(sample, *specs, generator=torch.Generator().manual_seed(seed))
    n = len(sample)
    fig, axes = plt.subplots(3, n, figsize=(10, 5.2))
    for i in range(n):
        viz.show_landmarks(axes[0, i], sample[i], title="I" if i == 0 else None)
        viz.show_landmarks(axes[1, i], pair.first[i], title="x = I∘g1" if i == 0 else None)
        viz.show_landmarks(axes[2, i], pair.second[i], title="x' = x∘g2" if i == 0 else None)
    fig.suptitle("Synthesised pairs (full frame; the detector sees the central crop)", fontsize=9)
    return fig


# ------------------------------------------------------------------ the runs and Table 1

def table1_runs(chapter) -> dict:
    """``{K: record}`` of Table 1's runs in K order: the chapter's headline runs
    (:meth:`~lmcore.book.chapter.Chapter.headline_runs`), then each other K of :data:`TABLE1_K` as
    run ``k<K>`` at the experiment's few-shot sizes; a run the profile has no record of is left out."""
    headline = chapter.headline_runs(EXPERIMENT.chapter)
    runs = {run.num_landmarks: headline.get(run.name) for run in EXPERIMENT.runs}
    for k in TABLE1_K:
        if k not in runs:
            runs[k] = chapter.run("fse", f"k{k}", overrides=num_landmarks(k), few_shot=EXPERIMENT.few_shot)
    return {k: runs[k] for k in sorted(runs) if runs[k] is not None}


def show_runs(chapter, runs: dict) -> None:
    """Where Table 1's runs come from, a training build's runs beside the committed references,
    and which K has no run."""
    if runs:
        display(reporting.provenance_table(list(runs.values())))
    chapter.compare_with_references(runs.values())
    if len(runs) < len(TABLE1_K):
        chapter.missing(f"The runs of K = {', '.join(str(k) for k in TABLE1_K if k not in runs)}")


def few_shot_of(record, split: str) -> list[dict]:
    """The run's few-shot curve on ``split``, or [] where it has none (a reference without weights)."""
    return record.get("metrics", {}).get("few_shot", {}).get(split, [])


TABLE1_PAPER_COLUMNS = ["paper: MAFL, regressor on CelebA", "paper: MAFL, regressor on MAFL"]


def table1(runs: dict) -> pd.DataFrame:
    """Table 1, one row per K: the forward error on each test split with the regressor fitted on
    all of regressor_train and (mean over the few-shot draws) on 1,000 faces, None where the run
    has no few-shot curve; then the paper's two MAFL columns (:data:`lmcore.book.papers.FSE_TABLE1`)."""
    rows = []
    for k, record in runs.items():
        paper_mafl, paper_celeba = papers.FSE_TABLE1["rows"][k]
        row = {"K": k, "profile": record.profile}
        for split in SPLITS:
            thousand = {c["n"]: c for c in few_shot_of(record, split)}.get(1000)
            row[f"{split}, all"] = round(record.forward(split), 2)
            row[f"{split}, n=1000"] = None if thousand is None else round(thousand["mean"], 2)
        rows.append({**row, TABLE1_PAPER_COLUMNS[0]: paper_celeba, TABLE1_PAPER_COLUMNS[1]: paper_mafl})
    return pd.DataFrame(rows).set_index("K")


def show_table1(chapter, runs: dict) -> None:
    """Table 1 beside the paper's columns (or why it is missing), and the mean-shape yardstick."""
    if runs:
        display(reporting.separated(table1(runs), chapter.profile, paper_columns=TABLE1_PAPER_COLUMNS))
        if any(not few_shot_of(r, "test_mtfl") for r in runs.values()):
            print("n=1000: measured only for the runs with a few-shot curve "
                  "(a reference's is measured from its weights)")
    else:
        chapter.missing("Table 1, the forward errors")
    print("mean-shape baseline on test_mtfl:", round(chapter.mean_shape, 2), "% IOD;", papers.FSE_TABLE1["source"])


def show_learning_curves(chapter, references: list, runs: dict) -> None:
    """The committed references' learning curves, with this execution's K = :data:`FIGURE_K` run
    in a training build (in the reference profile that run is one of the references)."""
    if not references:
        return
    this_execution = [runs[FIGURE_K]] if chapter.trains and FIGURE_K in runs else []
    viz.learning_curves(references + this_execution,
                        label=lambda r: r.run_name + ("" if r.is_reference else " (this execution)"),
                        reference_line=chapter.mean_shape)
    plt.show()


# ------------------------------------------------------------------ Table 4: few-shot regression

def paper_few_shot_curve() -> dict:
    """The paper's Table 4 as ``{n: error}`` at its few-shot sizes (the full-MAFL row left out)."""
    return {n: v for n, v in papers.FSE_TABLE4["rows"].items() if n != PAPER_FULL_N}


def table4(curve: list[dict], full_size: int) -> pd.DataFrame:
    """Table 4: a few-shot curve's mean and std per n (rounded to 2 digits) beside the paper's
    value at the same n; our full regressor set (``full_size`` faces) stands beside the paper's full
    MAFL-train."""
    paper = papers.FSE_TABLE4["rows"]
    rows = [{"n": c["n"], "mean": round(c["mean"], 2), "std": round(c["std"], 2)} for c in curve]
    table = pd.DataFrame(rows).set_index("n")
    table["paper (MAFL)"] = [paper.get(n, paper[PAPER_FULL_N] if n == full_size else None) for n in table.index]
    return table


def show_table4(chapter, runs: dict) -> None:
    """Table 4 and its curve for K = :data:`FEW_SHOT_K`; without that curve, the curves of the runs
    that have one."""
    record = runs.get(FEW_SHOT_K)
    curve = few_shot_of(record, "test_mtfl") if record is not None else []
    if curve:
        display(reporting.separated(table4(curve, len(chapter.regressor_train)), chapter.profile,
                                    paper_columns=["paper (MAFL)"]))
        curves = {f"K = {FEW_SHOT_K}, {split} [{chapter.profile}]": few_shot_of(record, split) for split in SPLITS}
    else:
        chapter.missing(f"Table 4, the few-shot curve of K = {FEW_SHOT_K} (measured from a model's weights)")
        curves = {f"K = {k}, {split} [{chapter.profile}]": few_shot_of(r, split)
                  for k, r in runs.items() for split in SPLITS if few_shot_of(r, split)}
    if curves:  # without K = 30's: what can be shown, the curves of the runs whose weights are here
        viz.few_shot_plot(curves, paper=paper_few_shot_curve(), paper_label=f"paper, MAFL (K = {FEW_SHOT_K})")
        plt.show()


# ------------------------------------------------------------------ Figures 3-7

def show_under_warps(chapter, models: dict) -> None:
    """Fig. 3: one test_mtfl face under strong random warps, with each K's landmarks."""
    for k in UNDER_WARPS_K:
        if k in models:
            viz.landmarks_under_warps(models[k].detect, chapter.test_mtfl.images[3], STRONG_WARP, count=6,
                                      title=f"K = {k}: one face under synthetic warps [{chapter.profile}]")
            plt.show()
        else:
            chapter.missing(f"Figure 3, K = {k} under warps (a model)")


def show_across_faces(chapter, models: dict) -> None:
    """Figs. 4-5: K = :data:`FIGURE_K`'s landmarks on test_mtfl and test_aflw faces."""
    if FIGURE_K not in models:
        chapter.missing(f"Figures 4-5, K = {FIGURE_K} across faces (a model)")
        return
    for name, faces, count in (("test_mtfl", chapter.test_mtfl, 16), ("test_aflw", chapter.test_aflw, 8)):
        viz.landmarks_on_instances(models[FIGURE_K].detect, faces.images[:count],
                                   title=f"K = {FIGURE_K} on {name} faces [{chapter.profile}]")
        plt.show()


def show_regression_on_faces(chapter, runs: dict, models: dict, count: int = 8) -> None:
    """Fig. 6: the five points regressed from K = :data:`FEW_SHOT_K`'s landmarks on ``count``
    test_mtfl faces."""
    if FEW_SHOT_K not in models:
        chapter.missing(f"Figure 6, the five points regressed from K = {FEW_SHOT_K} (a model)")
        return
    test = chapter.test_mtfl
    found = chapter.detections(runs[FEW_SHOT_K], chapter.regressor_train, {"test_mtfl": test})  # cached per run
    viz.regression_on_faces(found.regressor_points, chapter.regressor_train.points,
                            found.test_points["test_mtfl"][:count], test.points[:count], test.images[:count],
                            title=f"Fig. 6: the five points regressed from {FEW_SHOT_K} discovered ones (crosses) "
                                  f"[{chapter.profile}]; white: annotation")
    plt.show()


def contribution_table(contributions) -> pd.DataFrame:
    """Fig. 7's weights (``K x 5``: each discovered landmark's share of each annotated point's
    regressor column) as a table, rounded to 2 digits."""
    return pd.DataFrame(contributions.round(2), index=[f"landmark {i}" for i in range(len(contributions))],
                        columns=list(POINT_NAMES))


def show_regressor_graph(chapter, runs: dict, models: dict, face: int = 5) -> None:
    """Fig. 7: what the regressor of K = :data:`FIGURE_K` uses for each annotated point, on one
    test_mtfl face, then the contributions as a table."""
    if FIGURE_K not in models:
        chapter.missing(f"Figure 7, what the regressor uses (the K = {FIGURE_K} model)")
        return
    test = chapter.test_mtfl
    found = chapter.detections(runs[FIGURE_K], chapter.regressor_train, {"test_mtfl": test})  # cached per run
    _, contributions = viz.regressor_graph(found.regressor_points, chapter.regressor_train.points, test.images[face],
                                           found.test_points["test_mtfl"][face], test.points[face],
                                           title=f"K = {FIGURE_K} [{chapter.profile}]")
    plt.show()
    display(contribution_table(contributions))


# ------------------------------------------------------------------ ablations, protocol, training

#: the ablations of the paper's §4 (K = 10): label -> the overrides of the variant
ABLATIONS = {
    "Eq. 6 + pooled Eq. 8, m = 4 (default)": {},
    "Eq. 5 instead of Eq. 6": {"method": {"alignment": "landmark"}},
    "no diversity loss": {"method": {"diversity": "none"}},
    "pooling m = 1 (Eq. 8 itself)": {"method": {"pool": 1}},
    "pooling m = 2": {"method": {"pool": 2}},
}


def ablation_runs(chapter, variants: dict[str, dict], runs: dict) -> dict:
    """``{label: record}`` of the ablations (``variants``: label -> overrides), each at the
    budget's ablation length (``method_settings("fse").ablation_config``); a variant equal to the main K =
    :data:`FIGURE_K` run is that run."""
    return chapter.variants("fse", variants, base=method_settings("fse").ablation_config(chapter.settings),
                            prefix="ablation", reuse=[runs[FIGURE_K]] if FIGURE_K in runs else [])


def show_ablations(chapter, ablations: dict) -> None:
    """The ablations' (``{label: record}``) errors on the protocol, labelled by variant, and their
    lengths."""
    if not ablations:
        chapter.missing("The ablations")
        return
    display(reporting.protocol_table(list(ablations.values()),
                                     label=lambda r: next(n for n, rec in ablations.items() if rec is r)))
    print("ablation runs:", {n: r.steps for n, r in ablations.items()}, "steps")


def consistency_figure(runs: dict, profile: str, split: str = "test_mtfl"):
    """Each run's consistency error per landmark on ``split``, sorted (one line per K); returns
    the figure."""
    fig, ax = plt.subplots(figsize=(6, 3))
    for k, record in runs.items():
        ax.plot(record.metric("consistency", split)["sorted"], marker="o", ms=2, label=f"K = {k}")
    ax.set_xlabel("landmark (sorted)")
    ax.set_ylabel("consistency error (% IOD)")
    ax.set_title(f"Consistency per landmark on {split} [{profile}]", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def show_protocol(chapter, runs: dict) -> None:
    """Forward, backward and consistency errors of Table 1's runs, then the consistency per landmark."""
    if not runs:
        chapter.missing("The backward and consistency errors")
        return
    display(reporting.protocol_table(list(runs.values()), label=lambda r: f"K = {r.num_landmarks}"))
    consistency_figure(runs, chapter.profile)
    plt.show()
