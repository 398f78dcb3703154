# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6. The field on one protocol
#
# Which method finds the best landmarks, by how much, at what cost, and does the answer survive
# the protocol details the papers disagree on? Every method of chapters 1-5 is scored here on the
# same faces, by the same regressor, with the same normaliser: the MTFL-80 protocol of chapter 0.
#
# This chapter **trains nothing**. It reads the runs the method chapters trained in this profile
# (found by content: a run trained by other code, data or settings is not used,
# `lmcore.training.find_run`), or in the `reference` profile the committed references that carry
# weights, detects landmarks once per run from its checkpoint or weights
# (`chapter.detections`: `lmcore.training.run_detections` or `lmcore.book.references.reference_detections`, both cached), and re-scores those detections:
# intervals over test faces, error distributions, few-shot curves and protocol variants are all
# fits on the same points (`lmcore.evaluation.Detections`). Every mean it shows is checked against
# the run's own record before it is shown.
#
# | what | `lmcore` |
# |---|---|
# | the headline runs of each chapter (method, run, overrides) | `leaderboard.BOOK_RUNS` |
# | 95 % bootstrap interval over test faces; paired differences | `evaluation.statistics.bootstrap_interval`, `paired_difference` |
# | cumulative error distribution, failure rate (> 10 % IOD) | `evaluation.statistics.cumulative_error_distribution`, `failure_rate` |
# | protocol variants, each one recorded option | `evaluation.PROTOCOL_VARIANTS` (`RegressionOptions`) |
# | rankings, Kendall's τ, the pairs a variant swaps | `evaluation.statistics.kendall_tau`, `ranking_changes` |
# | `results/leaderboard.csv` / `.json`, from the committed records | `python -m lmcore.book.leaderboard` |

# %% tags=["parameters"]
profile = None  # "smoke" | "reference" | "cpu" | "paper"; None: $LMBOOK_PROFILE, else chosen by the hardware

# %% tags=["hide-input"]
import inspect
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from lmcore import zoo
from lmcore.book import leaderboard, reporting, viz
from lmcore.book.chapter import setup_chapter
from lmcore.evaluation import (FAILURE_THRESHOLD, PROTOCOL_VARIANTS, Detections, RegressionOptions,
                               cumulative_error_distribution, failure_rate, kendall_tau, paired_difference, ranking,
                               ranking_changes)
from lmcore.evaluation import statistics
from lmcore.methods import get_method
from lmcore.paths import RESULTS_DIR
from lmcore.book.references import has_weights, number_from_weights, reference_record

started = time.perf_counter()
chapter = setup_chapter(profile)
profile = chapter.profile
SPLITS = ("test_mtfl", "test_aflw")
POINTS = ("left eye", "right eye", "nose", "left mouth", "right mouth")
# every method's own evaluation uses every n-th face in the smoke profile: score them all on those
SUBSAMPLE = max(get_method(run.method).budget(chapter.settings).eval_subsample for run in leaderboard.BOOK_RUNS)
regressor_set = chapter.data.split("regressor_train", every=SUBSAMPLE)
test_sets = {name: chapter.data.split(name, every=SUBSAMPLE) for name in SPLITS}
print(f"{profile} profile: {len(regressor_set)} regressor faces, "
      + ", ".join(f"{len(s)} {n} faces" for n, s in test_sets.items()))

# %% [markdown]
# ## The runs
#
# One row per headline run of a method chapter. A run is used when its chapter trained it in this
# profile with the code, data and settings it would be trained with today; otherwise the row says
# which chapter trains it. In the `reference` profile the runs are the committed references with
# weights (a reference without weights has numbers in its record but no landmarks to re-score).

# %% tags=["hide-input"]
references = leaderboard.committed_references()
if chapter.trains:
    found = leaderboard.book_runs(profile)
else:
    found = {run: references[run] if run in references and has_weights(references[run]) else None
             for run in leaderboard.BOOK_RUNS}


def name_of(run):
    return run.label if run.num_landmarks is None else f"{run.label} K={run.num_landmarks}"


display(pd.DataFrame([{
    "run": name_of(run), "record": run.key,
    f"in this {profile} build": "yes" if record is not None else (
        f"no: run book/{run.chapter}.py ({profile})" if chapter.trains else
        "no: the reference has no weights" if run in references else "no: no committed reference"),
    "committed reference": "results/" + run.key + ".json" if run in references else "-",
} for run, record in found.items()]).set_index("run"))
runs = {run: record for run, record in found.items() if record is not None}

# %% [markdown]
# ## Detections, and the check that they give the recorded numbers
#
# Each run's landmarks on the regressor set and on both test sets, from its final checkpoint. The
# book's protocol re-fitted on them must give exactly the forward and backward errors its record
# holds (the detectors are deterministic); a difference would mean the chapter is not showing what
# the run measured, and stops the chapter.

# %% tags=["hide-input"]
detections = {name_of(run): chapter.detections(record, regressor_set, test_sets) for run, record in runs.items()}
records = {name_of(run): record for run, record in runs.items()}
book_runs = {name_of(run): run for run in runs}
detections["mean shape"] = Detections.mean_shape(regressor_set, test_sets)
BOOK = PROTOCOL_VARIANTS["book"]
scored = {name: {(direction, split): d.error(split, direction, BOOK, per_image=True)
                 for split in SPLITS for direction in ("forward", "backward")
                 if d.kind == "regressed" or direction == "forward"}
          for name, d in detections.items()}
checks = []
for name, record in records.items():
    same_protocol = (record.get("evaluation") or {}).get("options") == BOOK.as_dict() or records[name]["method"] == "supervised"
    for (direction, split), result in scored[name].items():
        # a reference's fp16 weights give the numbers measured from them when they were written
        recorded = (number_from_weights(record, direction, split) if record.is_reference
                    else record.get("metrics", {}).get(direction, {}).get(split, {}).get("mean"))
        if recorded is None or not same_protocol:
            continue
        checks.append({"run": name, "error": f"{direction} {split}", "recorded": recorded, "re-scored": result["mean"]})
if checks:
    check = pd.DataFrame(checks)
    worst = float((check["recorded"] - check["re-scored"]).abs().max())
    assert worst < 1e-4, f"re-scored errors differ from the records by up to {worst:.2g} % of IOD:\n{check}"
    print(f"{len(checks)} recorded errors re-scored from the detections; largest difference {worst:.1e} % of IOD")
else:
    print(f"no run of this {profile} build to check: the method chapters have not run in this profile")

# %% [markdown]
# ## One leaderboard
#
# Forward error (discovered → 5 annotated points, the field's headline number), backward error
# (annotated → discovered: does every landmark follow the face?) and consistency error (do the
# landmarks move with a random similarity of the image?), in % of the inter-ocular distance, with
# the 95 % bootstrap interval of the forward and backward errors over the test faces. The
# provenance columns say where each row comes from. The papers' columns are **the papers' numbers on MAFL / AFLW**,
# trained on CelebA's ~160-200k faces; ours train on 9,043 MTFL-80 faces and test on MTFL-80's
# splits, so the two are side by side, not comparable.

# %% tags=["hide-input"]
def interval(result):
    low, high = result["ci95"]
    return f"{result['mean']:.2f} [{low:.2f}, {high:.2f}]"


rows = []
for name, results in scored.items():
    record = records.get(name)
    run = book_runs.get(name)
    row = {"method": name}
    for split in SPLITS:
        row[f"forward {split} [95% CI]"] = interval(results[("forward", split)])
    for split in SPLITS:
        backward = results.get(("backward", split))
        row[f"backward {split} [95% CI]"] = interval(backward) if backward else None
    for split in SPLITS:
        value = None if record is None else record.get("metrics", {}).get("consistency", {}).get(split, {}).get("mean")
        row[f"consistency {split}"] = None if value is None else round(value, 2)
    mafl, aflw, _ = run.paper() if run else (None, None, "")
    row.update({"paper: MAFL": mafl, "paper: AFLW": aflw})
    if record is not None:
        provenance = leaderboard.record_row(run, record, source=run.key)
        row.update({k: provenance[k] for k in ("profile", "steps", "training min", "device", "git commit")})
    else:
        row.update({"profile": "-", "steps": 0, "training min": 0.0, "device": "-", "git commit": "-"})
    rows.append(row)
board = pd.DataFrame(rows).set_index("method")
board = board.loc[sorted(board.index, key=lambda n: scored[n][("forward", "test_mtfl")]["mean"])]
display(reporting.separated(board, profile, paper_columns=["paper: MAFL", "paper: AFLW"],
                            result_columns=[c for c in board.columns if c.startswith(("forward", "backward", "consistency"))]))

# %% [markdown]
# The interval is a percentile bootstrap of the mean over test faces (1,000 resamples, a fixed
# seed); it says how much the mean would move on another draw of faces like these, not how much
# it would move if the run were trained again with another seed, which is a second and often larger
# source of spread that this book has not measured for every method:

# %%
print(inspect.getsource(statistics.bootstrap_interval))

# %% [markdown]
# ### Which differences are real
#
# Two methods tested on the same faces share the faces' difficulty, so their difference is
# measured far better than their two intervals suggest: the **paired** bootstrap resamples the faces
# together. Below, each method against the best on each test split (forward error).

# %% tags=["hide-input"]
def per_face(name, split, direction="forward"):
    return scored[name][(direction, split)]["per_image"]


pairs = []
for split in SPLITS:
    order = sorted(scored, key=lambda n: scored[n][("forward", split)]["mean"])
    best = order[0]
    for other in order[1:]:
        d = paired_difference(per_face(other, split), per_face(best, split))
        pairs.append({"split": split, "best": best, "against": other,
                      "difference (points of IOD)": round(d["difference"], 2),
                      "95% CI": f"[{d['low']:.2f}, {d['high']:.2f}]",
                      "real?": "yes" if d["certain"] else "no: the interval holds 0"})
if not pairs:
    print("fewer than two methods scored in this build: nothing to compare")
else:
    pairs = pd.DataFrame(pairs).set_index(["split", "against"])
    if profile == "smoke":  # the method is shown; a verdict on numbers that mean nothing is not
        pairs = pairs.drop(columns="real?")
        print(reporting.SMOKE_NOTE)
    display(reporting.separated(pairs, profile))

# %% [markdown]
# ## Beyond the mean
#
# A mean hides whether a method is a little wrong everywhere or badly wrong on a few faces. The
# cumulative error distribution (the face-alignment convention) gives, for each error, the fraction
# of faces below it; the failure rate is the fraction of faces whose mean error exceeds 10 % of the
# IOD.

# %% tags=["hide-input"]
thresholds = np.linspace(0, 30, 121)
colour = {name: plt.cm.tab20(i % 20) for i, name in enumerate(scored)}  # one colour per method in every figure
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, split in zip(axes, SPLITS):
    for name in sorted(scored, key=lambda n: scored[n][("forward", split)]["mean"]):
        style = "--" if name == "mean shape" else "-"
        ax.plot(thresholds, cumulative_error_distribution(per_face(name, split), thresholds), style, label=name,
                color=colour[name])
    ax.axvline(FAILURE_THRESHOLD, color="grey", lw=0.8)
    ax.set(title=f"{split} [{profile}]", xlabel="forward error, % of IOD", xlim=(0, 30))
axes[0].set_ylabel("fraction of faces")
axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
plt.tight_layout()
plt.show()

display(pd.DataFrame([{"method": name, **{f"failure rate {split} (%)": round(100 * failure_rate(per_face(name, split)), 1)
                                          for split in SPLITS}} for name in scored]).set_index("method"))

# %% [markdown]
# ### Per landmark
#
# The forward error of each annotated point (test_aflw, where the methods differ most): the nose
# and the mouth corners move with expression and pose, the eyes less.

# %% tags=["hide-input"]
display(pd.DataFrame({name: {p: round(v, 2) for p, v in zip(POINTS, results[("forward", "test_aflw")]["per_point"])}
                      for name, results in scored.items()}).T)

# %% [markdown]
# ### Where the methods disagree most
#
# For each test face, the spread of the methods' regressed 5 points: the mean distance of each
# method's points to the average of all methods' points, in % of the IOD. The faces with the largest
# spread, each method's regressed points (crosses) beside the labels (dots):

# %% tags=["hide-input"]
compared = [n for n in scored if n != "mean shape"]
if len(compared) >= 2:
    split = "test_aflw"
    labels = test_sets[split].points.numpy()
    predicted = np.stack([scored[n][("forward", split)]["predicted"] for n in compared])  # M x N x 5 x 2
    iod = np.linalg.norm(labels[:, 0] - labels[:, 1], axis=-1)
    spread = 100 * np.linalg.norm(predicted - predicted.mean(0), axis=-1).mean((0, 2)) / iod
    faces = np.argsort(-spread)[:4]
    fig, axes = plt.subplots(len(faces), len(compared), figsize=(1.6 * len(compared), 1.75 * len(faces)), squeeze=False)
    for row, face in enumerate(faces):
        for col, name in enumerate(compared):
            ax = axes[row, col]
            viz.show_landmarks(ax, test_sets[split].images[face], labels[face], size=10,
                               title=name if row == 0 else None)
            ax.scatter(predicted[col, face, :, 0], predicted[col, face, :, 1], c=viz.landmark_colours(5), marker="x", s=24)
        axes[row, 0].set_ylabel(f"spread {spread[face]:.0f} %", fontsize=7)
    for ax in axes[0]:
        ax.title.set_fontsize(6)
    fig.suptitle(f"{split}: the {len(faces)} faces of largest disagreement [{profile}]", fontsize=9)
    plt.tight_layout()
    plt.show()
    print(f"median spread over {split}: {np.median(spread):.1f} % of IOD; the faces above: "
          + ", ".join(f"{spread[f]:.1f}" for f in faces))
else:
    print("fewer than two runs in this build: nothing to compare")

# %% [markdown]
# ## Few-shot: error against the number of labelled faces
#
# Every method's forward error when the regressor sees only *n* labelled faces (10 random draws per
# *n*, the band is ± one standard deviation over the draws; the ridge is tuned on tune_fit /
# tune_val for each *n*).

# %% tags=["hide-input"]
sizes = [n for n in (1, 5, 10, 20, 100, 1000) if n < len(regressor_set)] + [None]
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=False)
curves = {}
for ax, split in zip(axes, SPLITS):
    for name, d in detections.items():
        if d.kind != "regressed":
            continue
        curve = d.curve(split, sizes, repeats=10, options=BOOK)
        curves[(name, split)] = curve
        n = np.array([c["n"] for c in curve])
        mean = np.array([c["mean"] for c in curve])
        std = np.array([c["std"] for c in curve])
        ax.plot(n, mean, "o-", ms=3, label=name, color=colour[name])
        ax.fill_between(n, mean - std, mean + std, color=colour[name], alpha=0.15)
    ax.axhline(scored["mean shape"][("forward", split)]["mean"], color="grey", ls="--", lw=0.8, label="mean shape")
    ax.set(xscale="log", title=f"{split} [{profile}]", xlabel="labelled faces n", ylabel="forward error, % of IOD")
axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Protocol variants: does the ranking survive?
#
# The papers score landmarks with protocols that differ in details (`../shared/notes/protocols.md`).
# Each variant below changes one detail of the book's protocol and re-scores the same detections of
# every method: an intercept in the regressor; no ridge; Sanchez's ridge (an intercept and
# λ = 10⁻⁴ × the largest entry of the centred XᵀX); IMM's regressor set (the first 90 % of the
# regressor list); a regressor fitted on 100 labelled faces; and errors divided by the diagonal of
# the 5 annotated points' box instead of the IOD. The supervised detector predicts the points
# directly: only the normaliser applies to it.

# %% tags=["hide-input"]
print("\n".join(f"{name}: {options}" for name, options in PROTOCOL_VARIANTS.items()))

variant_scores = {split: {variant: {} for variant in PROTOCOL_VARIANTS} for split in SPLITS}
for name, d in detections.items():
    for variant, options in PROTOCOL_VARIANTS.items():
        for split in SPLITS:
            variant_scores[split][variant][name] = d.error(split, "forward", options)["mean"]
for split in SPLITS:
    table = pd.DataFrame(variant_scores[split]).round(2)
    table = table.loc[ranking(variant_scores[split]["book"])]
    display(Markdown(f"**{split}**: forward error (%; the box normaliser's are % of the 5-point box diagonal)"))
    display(table)

# %% [markdown]
# How each variant moves the ranking: Kendall's τ between the variant's ranking and the book's (1:
# the same order), and the pairs of methods it swaps.

# %% tags=["hide-input"]
changes = []
for split in SPLITS:
    book_scores = variant_scores[split]["book"]
    for variant in PROTOCOL_VARIANTS:
        if variant == "book":
            continue
        scores = variant_scores[split][variant]
        swapped = ranking_changes(book_scores, scores)
        tau = kendall_tau(book_scores, scores) if len(book_scores) >= 2 else float("nan")
        changes.append({"split": split, "variant": variant, "Kendall tau": round(tau, 3),
                        "first place": ranking(scores)[0],
                        "pairs swapped": "; ".join(f"{b} now ahead of {a}" for a, b in swapped) or "none"})
changes = pd.DataFrame(changes).set_index(["split", "variant"])
if profile == "smoke":  # rankings of smoke runs are noise: show what is computed, not what it says
    print(reporting.SMOKE_NOTE)
    display(changes[["first place"]].assign(**{"first place": lambda f: f["first place"] + " (smoke)"}))
else:
    display(changes)
    plain = [f"* On {split}, **{variant}** changes the ranking: {row['pairs swapped']} (τ = {row['Kendall tau']})."
             for (split, variant), row in changes.iterrows() if row["pairs swapped"] != "none"]
    display(Markdown("\n".join(plain) if plain else "No variant changes the ranking of these runs on either test split."))

# %% [markdown]
# ## The references, re-detected from their weights
#
# The committed references that carry weights (the model zoo, `results/<method>/<run>.safetensors`;
# `python -m lmcore.detect --list`) are detected again here on `regressor_train` and `test_mtfl`
# and scored by the protocol. The forward error must come back as it was measured from the stored
# weights when they were written, and that one must lie within 0.01 of the record's (the weights are
# stored in fp16 where that moved it by less), so a hand-edited number or a swapped file cannot
# pass unnoticed.

# %% tags=["hide-input"]
def verify_reference(model_name):
    """The row of zoo.verify (forward error on every face of test_mtfl, the regressor fitted on all
    of regressor_train), from the reference's detections: those this chapter scored above where
    they cover every face, else the cached ones of the chapters before (or one pass here)."""
    record = reference_record(*model_name.split("/"))
    name = next((n for n, r in records.items() if r.is_reference and r.run_name == record.run_name
                 and r.method == record.method), None)
    if name is not None and SUBSAMPLE == 1:
        error = scored[name][("forward", "test_mtfl")]["mean"]
    else:
        error = chapter.detections(record, chapter.regressor_train, {"test_mtfl": chapter.test_mtfl}).error(
            "test_mtfl", "forward", BOOK)["mean"]
    stored = number_from_weights(record, "forward", "test_mtfl")
    return {"model": model_name, "dtype": record["weights_dtype"], "score": "forward test_mtfl (% IOD)",
            "from the weights": error, "when written": stored, "record": record.forward("test_mtfl"),
            "difference": abs(error - stored)}


verified = pd.DataFrame([verify_reference(name) for name in zoo.available()])
if len(verified):
    display(verified.set_index("model").round(6))
    worst = verified["difference"].max()
    assert worst <= zoo.VERIFY_TOLERANCE, f"a reference's weights no longer give its number (difference {worst:.2e})"
    assert ((verified["when written"] - verified["record"]).abs() < zoo.FP16_TOLERANCE).all()
    print(f"{len(verified)} reference(s) re-detected from their weights; largest difference {worst:.1e} % of IOD")
else:
    print("no committed reference carries weights yet")

# %% [markdown]
# ## A landmark browser
#
# One test face at a time: each method's discovered landmarks (coloured dots, its own *K*), the 5
# points its regressor predicts from them (white crosses) and the labels (white dots). The frames
# are rendered once and the slider is linked in the browser, so the widget works in Jupyter Lab
# and in the static book.

# %% tags=["hide-input"]
shown = [n for n in scored if n != "mean shape" and book_runs[n].num_landmarks in (10, None)]
split = "test_mtfl"
pngs, captions = [], []
if shown:
    labels = test_sets[split].points.numpy()
    for face in range(min(12, len(labels))):
        fig, axes = plt.subplots(1, len(shown), figsize=(1.9 * len(shown), 2.2), squeeze=False)
        for ax, name in zip(axes[0], shown):
            found_points = detections[name].test_points[split][face].numpy()
            viz.show_landmarks(ax, test_sets[split].images[face], found_points, size=12, title=name)
            ax.title.set_fontsize(7)
            regressed = scored[name][("forward", split)]["predicted"][face]
            ax.scatter(regressed[:, 0], regressed[:, 1], c="white", marker="x", s=22, linewidths=1.2)
            ax.scatter(labels[face, :, 0], labels[face, :, 1], facecolors="none", edgecolors="white", s=22)
        pngs.append(viz.figure_png(fig, dpi=70))
        errors = ", ".join(f"{n}: {scored[n][('forward', split)]['per_image'][face]:.1f}" for n in shown)
        captions.append(f"{split} face {face * SUBSAMPLE}: forward error (% of IOD) {errors}")
    display(viz.slider_stack(pngs, captions, description="face", width="760px"))
else:
    print("no K = 10 run in this build to browse")

# %% [markdown]
# ## The committed leaderboard
#
# `results/leaderboard.csv` (and `.json`) is written by `python -m lmcore.book.leaderboard` from the
# committed reference records (`results/<method>/<run>.json`, the longest runs made for this book
# so far, of any profile), regenerated by `make book` and checked against the records by
# `make test`. Its rows carry the record they come from; older references were scored with an
# intercept and no ridge (the "regressor" column) and carry no interval.

# %% tags=["hide-input"]
committed = pd.read_csv(RESULTS_DIR / "leaderboard.csv")
committed["K"] = committed["K"].astype("Int64")  # the mean shape and the supervised detector have none
display(reporting.separated(
    committed[["method", "K", "profile", "forward test_mtfl", "forward test_aflw", "backward test_mtfl",
               "backward test_aflw", "consistency test_mtfl", "paper MAFL", "paper AFLW", "steps",
               "training min", "git commit", "regressor", "record"]].set_index(["method", "K"]),
    profile, paper_columns=["paper MAFL", "paper AFLW"]))

# %% [markdown]
# ## What this chapter does not do yet
#
# * Spread over training seeds: the intervals are over test faces; a second training run of each
#   method would measure the other source of spread.
# * The papers' own data (CelebA for training, MAFL and AFLW for testing) where a user has fetched
#   them (`data_scripts/`): the leaderboard is on MTFL-80.

# %%
print(f"chapter 6 ran in {time.perf_counter() - started:.0f} s ({profile} profile)")
