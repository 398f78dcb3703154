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
# # 1. Factorized spatial embeddings (Thewlis, Bilen & Vedaldi 2017)
#
# *Unsupervised learning of object landmarks by factorized spatial embeddings*, ICCV 2017.
#
# A detector Φ maps an image to *K* landmarks. Nothing tells it what a landmark is; it is only
# asked to be **equivariant**: if an image is warped by *g*, its landmarks must move by *g*
# (Eq. 2-3). Pairs are synthesised from single images: `x = I∘g1`, `x' = x∘g2`, with random
# thin-plate-spline warps whose affine part draws a scale, a rotation and a translation (§4.1).
# Equivariance alone allows *K* copies of one landmark, so a **diversity** loss asks different
# landmarks to fire in different places.
#
# | term | equation | `lmcore` |
# |---|---|---|
# | landmark alignment, on soft-argmax points | Eq. 5 | `losses.fse.landmark_alignment_loss` |
# | probability-map alignment, linear-time decomposition | Eq. 6 | `losses.fse.probability_map_alignment_loss` |
# | diversity by mutual overlap (quadratic in *K*) | Eq. 7 | `losses.fse.diversity_loss_overlap` |
# | diversity by the max, after *m*×*m* sum pooling | Eq. 8 | `losses.fse.diversity_loss_max` |
# | objective `L'_align + γ L''_div(x) + γ L''_div(x')` + weight decay | Eq. 9 | `methods.fse.FSE` |
#
# The detector (§4.1, `models.fse_detector.FSEDetector`): six convolutions with 20, 48, 64, 80,
# 256 and *K* filters, batch norm and ReLU after each hidden one, one 2×2 max-pool after conv1, and
# a spatial softmax per landmark. No official code exists: this chapter is the first public
# implementation, and it says below where the paper left a choice open.

# %% tags=["parameters"]
profile = None  # "smoke" | "reference" | "cpu" | "paper"; None: $LMBOOK_PROFILE, else chosen by the hardware

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from lmcore.book import papers, reporting, viz
from lmcore.book.chapter import setup_chapter
from lmcore.geometry import WarpSpec, synthesize_pair
from lmcore.methods import get_method
from lmcore.training import load_references

chapter = setup_chapter(profile)
profile, test_mtfl, test_aflw, regressor_train = chapter.profile, chapter.test_mtfl, chapter.test_aflw, chapter.regressor_train
mean_shape = chapter.mean_shape

# %% [markdown]
# ## Settings, and where the paper is silent
#
# The paper fixes the architecture's widths, γ = 500, weight decay 5·10⁻⁴ and Adam at 10⁻⁴; it
# does not give kernel sizes, warp ranges, the pooling size *m*, the units of the coordinates in
# Eq. 6 or the training length. This implementation chooses:
#
# * kernel sizes 5, 5, 3, 3, 3, 1 (those of TCDCN, the network the paper adapts), no batch norm or
#   ReLU on the score layer (a ReLU before a softmax would flatten it);
# * **no padding** in the convolutions: the probability maps then cover the interior of the image
#   (each map pixel sits at the centre of its receptive field, `FSEDetector.map_grid`). With the
#   usual zero padding the detector found landmarks pinned to the frame's corners and edges, which
#   it can locate from the padding alone: under small warps they are almost equivariant, and they
#   say nothing about the face (seen while building this chapter: the forward error stayed at the
#   mean shape's);
# * coordinates of Eq. 5-6 in pixels of the probability map;
# * *m* = 4; the first warp with rotation ±20°, log₂-scale ±0.15, translation ±5%; the second,
#   the one the loss knows, twice as strong (a stronger second warp makes landmarks that ignore the
#   image cost more); both with a 5 × 5 TPS jitter.
#
# Both profiles show the detector the central 70% of the 80 px frame (MTFL-80's faces fill only its
# middle). That view was first picked by comparing 60, 70, 80 and 100 % crops on `test_mtfl`, which a
# test set must never decide; it has now been compared again on **`tune_val`** with the ways of
# letting the unpadded detector reach the whole face (next section), and it stayed best at this
# budget. The `cpu` profile changes what a 2-core machine needs changed: a 56 px input, conv5 with
# 128 filters, Adam at 10⁻³ decayed ×0.1 at 70% of a 1,000-step schedule (the three main runs and the
# ablations must fit the chapter's 10 minutes of the book's CPU budget), and γ = 10. γ and the
# learning rate were first chosen on `test_mtfl`, before the book had `tune_val`; they have since
# been compared again **on `tune_val`** (the next section's table: γ = 30 and Adam 2·10⁻³ both
# scored worse than γ = 10 at 10⁻³), so they stand. The `paper` profile keeps the paper's values.

# %% [markdown]
# The fidelity table: each design element in the paper and in this book's `paper` and `cpu`
# profiles. No code was released, so the `paper` profile follows the text and marks where the text
# is silent ("lmbook's choice"); a test checks every row that names a setting against the configs.

# %% tags=["hide-input"]
from lmcore.fidelity import fidelity_table
from lmcore.fidelity import fse as fse_fidelity

display(fidelity_table(fse_fidelity.TABLE))

# %%
config = get_method("fse").default_config(chapter.settings)  # the reference profile shows the cpu settings its references trained with
display(pd.DataFrame({"method": pd.Series(config["method"], dtype=object)}).T.T)
display(pd.DataFrame({"train": pd.Series(config["train"], dtype=object)}))

# %% [markdown]
# ## How far can a landmark reach? Settings chosen on `tune_val`
#
# Without padding, each cell of a probability map sits at the centre of its receptive field, so the
# maps cover only the interior of the detector's input: with the earlier 70 % view every landmark
# lay inside the frame's central [25, 55] px, while about half of `test_aflw`'s eye centres lie
# outside that box, and landmarks pinned to its edge carried most of the backward error. Three
# ways to let the detector reach the whole face were trained at the `cpu` budget beside the
# earlier setting, by `tools/tune_settings.py fse` (the sweep is `FSE.budgets["cpu"].variants["tuning"]`),
# and **compared on `tune_val` only** (the regressor fitted on `tune_fit`, chapter 0): the test sets
# chose nothing. The records are committed under `results/tuning/fse/`; the table gives, for each
# setting, the part of the 80 px frame its maps span. (The sweeps ran as two processes of one thread
# each sharing the two cores, so their training minutes are longer than a run's alone.)
#
# What the sweep says: at 1,000 steps **every wider reach scored worse on `tune_val`** than the
# central 70 % view, so the profile keeps it. The whole frame at 56 px shrinks the face to 0.7× and
# gives each landmark fewer pixels; at 80 px the face keeps its scale, but the step costs twice as
# much and the run learnt more slowly; reflect padding on the 70 % view spans [12, 68] px with maps of
# 28 × 28 cells instead of 16 × 16 (also about twice the step), yet it too learnt more slowly (whether reflection, like zeros, lets the network find the frame's edges
# was not measured; the earlier lesson about zero padding stands). Whether a reach-wide detector
# overtakes the central view with a longer schedule is not measured here (a GPU's `paper` profile
# would say); the central view's cost is the test_aflw faces whose points lie outside its box
# (printed below).

# %% tags=["hide-input"]
tuning = reporting.tuning_records("fse")
if tuning:
    table = reporting.tuning_table(tuning)
    spans = {}
    for record in tuning:
        m = record["config"]["method"]
        grid = get_method("fse")(record["config"]).map_grid(m["view_size"])[0, :, 0]
        low, high = ((grid[[0, -1]] * m["view_crop"] + 1) * 40).tolist()
        spans[record.get("tuning_label", record.run_name)] = (round(low, 1), round(high, 1))
    table.insert(1, "maps span (frame px)", [spans[label] for label in table.index])
    display(table)
    # a test_aflw face with a labelled point outside the earlier central box
    outside = ((test_aflw.points < 25) | (test_aflw.points > 55)).flatten(1).any(1)
    face = int(outside.nonzero()[0, 0]) if outside.any() else 0
    print(f"{float(outside.float().mean()) * 100:.0f} % of test_aflw faces have a labelled point outside [25, 55] px")
    fig, ax = plt.subplots(figsize=(3.2, 3.2))
    viz.show_landmarks(ax, test_aflw.images[face].float() / 255, test_aflw.points[face])
    for (label, (low, high)), colour in zip(spans.items(), plt.cm.tab10.colors):
        ax.add_patch(plt.Rectangle((low, low), high - low, high - low, fill=False, color=colour, lw=1.2, label=label))
    ax.legend(fontsize=5, loc="lower center", bbox_to_anchor=(0.5, -0.45))
    ax.set_title(f"where each setting's maps reach (test_aflw face {face})", fontsize=8)
    plt.show()
else:
    print("no committed tuning records under results/tuning/fse/ (tools/tune_settings.py fse --publish)")

# %% tags=["hide-input"]
pair_specs = (WarpSpec(**config["method"]["first_warp"]), WarpSpec(**config["method"]["second_warp"]))
sample = test_mtfl.images[:6].float() / 255
pair = synthesize_pair(sample, *pair_specs, generator=torch.Generator().manual_seed(1))
fig, axes = plt.subplots(3, 6, figsize=(10, 5.2))
for i in range(6):
    viz.show_landmarks(axes[0, i], sample[i], title="I" if i == 0 else None)
    viz.show_landmarks(axes[1, i], pair.first[i], title="x = I∘g1" if i == 0 else None)
    viz.show_landmarks(axes[2, i], pair.second[i], title="x' = x∘g2" if i == 0 else None)
fig.suptitle("Synthesised pairs (full frame; the detector sees the central crop)", fontsize=9)
plt.show()

# %% [markdown]
# ## Training K = 10, 30 and 50 landmarks
#
# One run per *K*, each evaluated by the book's protocol (chapter 0). The few-shot regressions of
# Table 4 are part of each run's evaluation (10 random subsets per size). In the `reference`
# profile the runs are the committed references below (only K = 10 carries weights, so only its
# few-shot curve is measured, from them).

# %%
K_VALUES = [10, 30, 50]
FEW_SHOT = {"sizes": [1, 5, 10, 20, 100, 1000, None], "repeats": 10}
runs = {k: chapter.run("fse", f"k{k}", overrides={"method": {"num_landmarks": k}}, few_shot=FEW_SHOT)
        for k in K_VALUES}
runs = {k: r for k, r in runs.items() if r is not None}  # the reference profile: those with a committed reference
models = {k: chapter.model(r) for k, r in runs.items() if chapter.has_model(r)}


def few_shot_of(record, split: str) -> list[dict]:
    """The run's few-shot curve on ``split``, or [] where it has none (a reference without weights)."""
    return record.get("metrics", {}).get("few_shot", {}).get(split, [])


if runs:
    display(reporting.provenance_table(list(runs.values())))
chapter.compare_with_references(runs.values())  # a training build: its runs beside the committed references
if len(runs) < len(K_VALUES):
    chapter.missing(f"The runs of K = {', '.join(str(k) for k in K_VALUES if k not in runs)}")

# %% [markdown]
# ## Table 1: forward error for K = 10, 30, 50
#
# The paper regresses its landmarks onto MAFL's five points with a regressor trained either on
# CelebA (~160k labelled faces) or on MAFL-train (19k). Our analogue: the regressor fitted on all
# of `regressor_train` (6,696 faces) or on a 1,000-face subset (mean over 10 random subsets).
# **The paper's columns are the paper's numbers, on MAFL**, not ours.

# %%
rows = []
for k, record in runs.items():
    few = {split: {c["n"]: c for c in few_shot_of(record, split)} for split in ("test_mtfl", "test_aflw")}
    paper_mafl, paper_celeba = papers.FSE_TABLE1["rows"][k]
    rows.append({
        "K": k, "profile": record.profile,
        "test_mtfl, all": round(record.forward("test_mtfl"), 2),
        "test_mtfl, n=1000": round(few["test_mtfl"][1000]["mean"], 2) if 1000 in few["test_mtfl"] else None,
        "test_aflw, all": round(record.forward("test_aflw"), 2),
        "test_aflw, n=1000": round(few["test_aflw"][1000]["mean"], 2) if 1000 in few["test_aflw"] else None,
        "paper: MAFL, regressor on CelebA": paper_celeba,
        "paper: MAFL, regressor on MAFL": paper_mafl,
    })
if rows:
    display(reporting.separated(pd.DataFrame(rows).set_index("K"), profile,
                                paper_columns=["paper: MAFL, regressor on CelebA", "paper: MAFL, regressor on MAFL"]))
    if any(not few_shot_of(r, "test_mtfl") for r in runs.values()):
        print("n=1000: measured only for the runs with a few-shot curve (a reference's is measured from its weights)")
else:
    chapter.missing("Table 1, the forward errors")
print("mean-shape baseline on test_mtfl:", round(mean_shape, 2), "% IOD;", papers.FSE_TABLE1["source"])

# %% [markdown]
# ### Committed reference runs
#
# The longest runs available, committed under `results/fse/` as records, with where and how long
# they trained. Their learning curves follow (with this execution's K = 10 run; in the `reference`
# profile the runs above are these references).
#
# K = 10, 30 and 50 were trained from this chapter's `cpu` settings for 3,000 steps (three times the
# chapter's, the learning-rate drop moved with them) and scored with the book's current protocol (no
# intercept, ridge chosen on `tune_val`); the provenance table's `regressor` column says so for each
# row. The command that trains each again, generated from its record, is in the appendix
# ([Reproducing each reference](using_references)).

# %%
references = load_references("fse")
if references:
    display(reporting.protocol_table(references))
    display(reporting.provenance_table(references))
    this_execution = [runs[10]] if chapter.trains and 10 in runs else []  # in the reference profile it is k10 above
    viz.learning_curves(references + this_execution, label=lambda r: r.run_name + ("" if r.is_reference else " (this execution)"),
                        reference_line=mean_shape)
    plt.show()
else:
    print("no committed reference runs under results/fse/")

# %% [markdown]
# ## Table 4: few-shot regression (K = 30)
#
# The regressor is fitted on *n* labelled faces (10 random draws per *n*; mean ± std) and tested on
# `test_mtfl`. The paper's column is **the paper's** (MAFL, regressor on n MAFL faces). Like the paper's,
# our regressor has no intercept, so even *n* = 1 depends on the detector; its ridge strength is chosen
# for each *n* on `tune_val` (chapter 0), which keeps the sizes near the number of regression
# parameters from blowing up.

# %%
paper4 = papers.FSE_TABLE4["rows"]
curve = few_shot_of(runs[30], "test_mtfl") if 30 in runs else []
if curve:
    table4 = pd.DataFrame([{"n": c["n"], "mean": round(c["mean"], 2), "std": round(c["std"], 2)} for c in curve]).set_index("n")
    table4["paper (MAFL)"] = [paper4.get(n, paper4[19000] if n == len(regressor_train) else None) for n in table4.index]
    display(reporting.separated(table4, profile, paper_columns=["paper (MAFL)"]))
    viz.few_shot_plot({f"K = 30, test_mtfl [{profile}]": curve,
                       f"K = 30, test_aflw [{profile}]": few_shot_of(runs[30], "test_aflw")},
                      paper={n: v for n, v in paper4.items() if n != 19000}, paper_label="paper, MAFL (K = 30)")
    plt.show()
else:
    chapter.missing("Table 4, the few-shot curve of K = 30 (measured from a model's weights)")
    curves = {f"K = {k}, {split} [{profile}]": few_shot_of(r, split)
              for k, r in runs.items() for split in ("test_mtfl", "test_aflw") if few_shot_of(r, split)}
    if curves:  # what can be shown: the curves of the runs whose weights are here
        viz.few_shot_plot(curves, paper={n: v for n, v in paper4.items() if n != 19000},
                          paper_label="paper, MAFL (K = 30)")
        plt.show()

# %% [markdown]
# ## Figures 3-6: landmarks under warps and across faces
#
# Top: one face and random warps of it, with the landmarks detected on each (they should stay on
# the same parts of the face). Bottom: different faces (the same colour is the same landmark).

# %% tags=["hide-input"]
strong = WarpSpec(rotation_deg=25, log2_scale=0.15, translation=0.04, tps_grid=5, tps_std=0.01)
for k in (10, 30):
    if k in models:
        viz.landmarks_under_warps(models[k].detect, test_mtfl.images[3], strong, count=6,
                                  title=f"K = {k}: one face under synthetic warps [{profile}]")
        plt.show()
    else:
        chapter.missing(f"Figure 3, K = {k} under warps (a model)")
if 10 in models:
    viz.landmarks_on_instances(models[10].detect, test_mtfl.images[:16], title=f"K = 10 on test_mtfl faces [{profile}]")
    plt.show()
    viz.landmarks_on_instances(models[10].detect, test_aflw.images[:8], title=f"K = 10 on test_aflw faces [{profile}]")
    plt.show()
else:
    chapter.missing("Figures 4-5, K = 10 across faces (a model)")

# %% tags=["hide-input"]
if 30 in models:
    detections30 = chapter.detections(runs[30], regressor_train, {"test_mtfl": test_mtfl})  # cached: one pass per run
    viz.regression_on_faces(detections30.regressor_points, regressor_train.points,
                            detections30.test_points["test_mtfl"][:8], test_mtfl.points[:8],
                            test_mtfl.images[:8],
                            title=f"Fig. 6: the five points regressed from 30 discovered ones (crosses) [{profile}]; "
                                  "white: annotation")
    plt.show()
else:
    chapter.missing("Figure 6, the five points regressed from K = 30 (a model)")

# %% [markdown]
# ## Figure 7: what the regressor uses
#
# For each annotated point (green), the absolute coefficients of its regressor column, summed per
# discovered landmark and ℓ1-normalised; arrows show contributions above 0.2, their width the
# contribution (K = 10). The paper observes contributions proportional to proximity.

# %% tags=["hide-input"]
if 10 in models:
    detections10 = chapter.detections(runs[10], regressor_train, {"test_mtfl": test_mtfl})  # cached: one pass per run
    face = 5
    fig, contributions = viz.regressor_graph(detections10.regressor_points, regressor_train.points, test_mtfl.images[face],
                                             detections10.test_points["test_mtfl"][face], test_mtfl.points[face],
                                             title=f"K = 10 [{profile}]")
    plt.show()
    display(pd.DataFrame(contributions.round(2), index=[f"landmark {i}" for i in range(len(contributions))],
                         columns=["left eye", "right eye", "nose", "left mouth", "right mouth"]))
else:
    chapter.missing("Figure 7, what the regressor uses (the K = 10 model)")

# %% [markdown]
# ## Ablations (K = 10)
#
# The paper argues for the probability-map loss (Eq. 6) over the point loss (Eq. 5), for the
# diversity loss, and for pooling before it. Each variant is trained with the same budget as the
# others in this table (in the `cpu` profile a shorter one than the main runs, so compare the rows
# with each other rather than with the main runs).

# %%
# the budget's ablation length (`FSE.budgets`); a shorter schedule keeps the learning-rate decay at
# the same fraction of it, and a variant equal to the main K = 10 run is that run
ABLATIONS = {
    "Eq. 6 + pooled Eq. 8, m = 4 (default)": {},
    "Eq. 5 instead of Eq. 6": {"method": {"alignment": "landmark"}},
    "no diversity loss": {"method": {"diversity": "none"}},
    "pooling m = 1 (Eq. 8 itself)": {"method": {"pool": 1}},
    "pooling m = 2": {"method": {"pool": 2}},
}
ablation_runs = chapter.variants("fse", ABLATIONS, base=get_method("fse").ablation_config(chapter.settings),
                                 prefix="ablation", reuse=[r for r in (runs.get(10),) if r is not None])
if ablation_runs:
    display(reporting.protocol_table(list(ablation_runs.values()), label=lambda r: next(
        n for n, rec in ablation_runs.items() if rec is r)))
    print("ablation runs:", {n: r.steps for n, r in ablation_runs.items()}, "steps")
else:
    chapter.missing("The ablations")

# %% [markdown]
# ## Backward and consistency errors
#
# The protocol of Sanchez & Tzimiropoulos 2019 (chapter 0) for the three main runs: the backward
# error exposes unstable landmarks that the forward regression can ignore, and the consistency
# error measures how far each landmark strays under a random similarity (sorted per landmark).

# %%
if runs:
    display(reporting.protocol_table(list(runs.values()), label=lambda r: f"K = {r.num_landmarks}"))
    fig, ax = plt.subplots(figsize=(6, 3))
    for k, record in runs.items():
        ax.plot(record.metric("consistency", "test_mtfl")["sorted"], marker="o", ms=2, label=f"K = {k}")
    ax.set_xlabel("landmark (sorted)")
    ax.set_ylabel("consistency error (% IOD)")
    ax.set_title(f"Consistency per landmark on test_mtfl [{profile}]", fontsize=9)
    ax.legend(fontsize=7)
    plt.show()
else:
    chapter.missing("The backward and consistency errors")

# %% [markdown]
# ## Watch the landmarks move during training
#
# The slider runs through the evaluations recorded during the K = 10 run: the landmarks it found
# on six test faces at each step, with the forward error at that point (a committed reference's
# record keeps them too).

# %% tags=["hide-input"]
if 10 in runs and runs[10].snapshots():
    display(viz.checkpoint_scrubber(runs[10], test_mtfl.images[:6]))
else:
    chapter.missing("The landmarks through training (the K = 10 run's snapshots)")
