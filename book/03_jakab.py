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
# # 3. Landmarks through conditional image generation (Jakab et al. 2018)
#
# *Unsupervised learning of object landmarks through conditional image generation*, Jakab, Gupta,
# Bilen & Vedaldi, NeurIPS 2018, known as IMM. It is the baseline of two later chapters: C3
# pre-trains on it and compares against it ("Cond." in C3's Table 1), and Sanchez &
# Tzimiropoulos's "Scratch" model is an implementation of it. The paper is not among
# `../shared/papers/`; its facts come from `../shared/notes/protocols.md` and the two papers that
# build on it.
#
# Two views of one face differ by a warp: a **target** `x'` (mildly warped) and a **source** `x`
# (warped more). A generator must render `x'` from the *appearance* of `x` and the *landmarks* of
# `x'`. The landmarks reach the generator only as Gaussian maps drawn at *K* points (a tight
# bottleneck), so the pose encoder can pass the target's geometry only by putting its points where
# the geometry is. The loss compares images through ImageNet VGG16 features (a perceptual loss).
#
# | part | `lmcore` (shared with the Sanchez and C3 chapters) |
# |---|---|
# | pose encoder → K score maps → coordinates from the marginals | `models.conditional_generator.PoseEncoder` |
# | Gaussian maps at several scales (the bottleneck) | `models.conditional_generator.GaussianRenderer` |
# | appearance encoder and image generator | `ConvEncoder`, `ImageGenerator` |
# | perceptual loss, per-layer normalised, ImageNet VGG16 | `losses.perceptual.PerceptualLoss` |

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
from lmcore.geometry.coords import normalized_to_pixels
from lmcore.methods import get_method
from lmcore.training import load_references

chapter = setup_chapter(profile)
profile, test_mtfl, test_aflw, regressor_train = chapter.profile, chapter.test_mtfl, chapter.test_aflw, chapter.regressor_train
mean_shape = chapter.mean_shape

# %% [markdown]
# ## Settings: the paper, its released code, and this implementation
#
# The authors released their code (TensorFlow, `tomasjakab/imm`), and the code is what produced
# the published numbers, so this chapter's `paper` profile is the released CelebA configuration
# (`celeba-10pts.yaml` with the data set's defaults, which set the warps). Read against the code,
# the book's earlier implementation departed from it in ways that loosen the bottleneck and weaken
# the warps, and presented some of them as the paper's:
#
# * **The bottleneck.** The code draws `exp(−d²/std²)` with std 0.1 (a Gaussian of σ 0.071, half the
#   mass of `exp(−d²/2std²)`), and its decoder reads the pose maps **only at 16 × 16**; the maps
#   drawn at 32, 64 and 128 px are never used. The earlier chapter said the maps were "drawn at every
#   decoder scale" as the paper's; that was this implementation's, a looser bottleneck.
# * **The perceptual loss** of the code runs a VGG16 trained for colourisation (Larsson et al.) on a
#   grayscale image, on the input and conv1_2 … conv5_2, with **squared** errors, each divided by a
#   running average that starts from fixed values (100, 1.6, 2.3, 1.8, 2.8, 100), the sum ×1000, and
#   masked by a smooth border mask carried by the target's warp. The colourisation weights cannot be
#   fetched here: ImageNet VGG16 stands in; everything else follows the code.
# * **The warps** draw the spline's kernel weights directly (10 × 10, unconstrained), translate the
#   target by N(0, 0.1) without rotating or scaling it, and warp the source **from the target**. The
#   earlier chapter's reason for its own 5 × 5 jitter ("the code's 10 × 10 folds 80 px faces") was not
#   what the code does: its target warps never fold, its source warps fold near the border in about
#   one draw in eight.
# * **Optimisation:** Adam 10⁻³ decayed ×0.95 per 100k steps (the earlier profile: ×0.1 at 70k),
#   each gradient tensor clipped at norm 1 (the earlier: one global norm), weight decay 10⁻⁵ on the
#   convolution kernels, batches of 50.
#
# The table lists every element, with the file and line of the code; a test checks each row that
# names a setting against the configs.

# %% tags=["hide-input"]
from lmcore.fidelity import fidelity_table
from lmcore.fidelity import jakab as jakab_fidelity

print(f"released code: {jakab_fidelity.TABLE.repository} at commit {jakab_fidelity.TABLE.commit}")
display(fidelity_table(jakab_fidelity.TABLE))

# %% [markdown]
# The `cpu` profile trains at 32 px in batches of 32, with narrower networks and the perceptual
# loss on the first two VGG16 blocks only (the deeper blocks cost most of a CPU step); its bottleneck,
# loss, warps and optimisation were chosen on `tune_val` (next section).

# %%
config = get_method("jakab").default_config(chapter.settings)  # the reference profile shows the cpu settings its references trained with
display(pd.DataFrame({"method": pd.Series(config["method"], dtype=object)}))
display(pd.DataFrame({"train": pd.Series(config["train"], dtype=object)}))

# %% [markdown]
# ## How the `cpu` settings were chosen: `tune_val`
#
# On two cores the generator learns slowly, so the question is which recipe learns most per CPU
# second. An earlier sweep chose a 32 px view in batches of 32 over 48 px in batches of 16 (equal
# cost per step) and kept Adam 10⁻³. After the audit of the released code, the code's settings were
# compared with the book's earlier ones, and with the code's settings with one part (bottleneck,
# perceptual loss, warps, optimisation and output) put back to the earlier one, each trained for the
# `cpu` budget (1,000 steps) by `tools/tune_settings.py jakab` (the sweep is
# `Jakab.budgets["cpu"].variants["tuning"]`) and **compared on `tune_val` only** (regressor fitted on
# `tune_fit`; chapter 0); the test sets chose nothing. The profile takes the setting with the lowest
# `tune_val` error; the verdict is printed under the table from the records. Two runs of one config
# differ here by up to about a point (chapter 3's earlier sweep measured it), so a smaller
# difference says little.

# %% tags=["hide-input"]
tuning = reporting.tuning_records("jakab")
if tuning:
    display(reporting.tuning_table(tuning))
    scored = {r["tuning_label"]: r.tune_error() for r in tuning}
    best = min(scored, key=scored.get)
    print(f"lowest tune_val error: '{best}' ({scored[best]:.2f} %)")
    if "before the audit" in scored and best != "before the audit":
        print(f"its margin over the earlier settings: {scored['before the audit'] - scored[best]:.2f} points "
              "(two runs of one config have differed by about a point here)")
else:
    print("no committed tuning records under results/tuning/jakab/ (tools/tune_settings.py jakab --publish)")

# %% [markdown]
# ## K = 10 and K = 30: forward, backward and consistency errors
#
# In the `reference` profile these are the committed references `k10` and `k30` (below), with
# their weights; their few-shot curves are measured from the weights.

# %%
K_VALUES = (10, 30)
FEW_SHOT = {"sizes": [1, 5, 10, 100, 500, 1000, None], "repeats": 10}
runs = {k: chapter.run("jakab", f"k{k}", overrides={"method": {"num_landmarks": k}}, few_shot=FEW_SHOT)
        for k in K_VALUES}
runs = {k: r for k, r in runs.items() if r is not None}  # the reference profile: those with a committed reference
models = {k: chapter.model(r) for k, r in runs.items() if chapter.has_model(r)}
if models:
    print("VGG16 weights:", next(iter(models.values())).criterion.source)
if runs:
    display(reporting.provenance_table(list(runs.values())))
    display(reporting.protocol_table(list(runs.values()), label=lambda r: f"K = {r.num_landmarks}"))
chapter.compare_with_references(runs.values())  # a training build: its runs beside the committed references
if len(runs) < len(K_VALUES):
    chapter.missing(f"The runs of K = {', '.join(str(k) for k in K_VALUES if k not in runs)}")

# %% [markdown]
# Beside them, **the papers' numbers** (MAFL and AFLW; CelebA training at 128 px): Jakab et al.'s
# forward errors, and Sanchez & Tzimiropoulos's re-implementation of it ("Scratch", K = 10), the
# only source of backward and consistency errors for this method.

# %%
quoted = pd.DataFrame({f"K = {k}": {"forward MAFL": v["MAFL"], "forward AFLW": v["AFLW"]}
                       for k, v in papers.JAKAB["rows"].items()})
scratch = papers.JAKAB["sanchez_scratch"]
quoted["Sanchez 'Scratch', K = 10"] = {"forward MAFL": scratch["forward"]["MAFL"], "forward AFLW": scratch["forward"]["AFLW"]}
for metric in ("backward", "consistency"):
    for split in ("MAFL", "AFLW"):
        quoted.loc[f"{metric} {split}", "Sanchez 'Scratch', K = 10"] = scratch[metric][split]
display(quoted)
print("sources:", papers.JAKAB["source"], "|", papers.JAKAB["sanchez_scratch_source"])
print("mean-shape baseline on test_mtfl:", round(mean_shape, 2), "% IOD")

# %% [markdown]
# ### Committed reference runs
#
# Records under `results/jakab/` from the longest runs made for this book so far (their profile,
# steps, device and commit are in the tables). The dotted line is the target this book set for a
# K = 10 reference, half the mean shape's error; the printout below says by how much each record
# meets or misses it. On two CPU cores the generator learns slowly: the chapter's own 1,000-step runs in `cpu`
# (the chapter has 11 minutes of the book's CPU budget) stay well above the target, and the longer
# runs made outside the book (the commands are in the README) show how the error keeps falling with
# training time.
#
# `k10` (3,000 steps), `k30` (2,000) and `k10-long` (10,000 steps; C3's longest
# reference starts from it) were trained from this chapter's `cpu` settings (32 px views, batches of
# 32, Adam 1e-3, the learning rate divided by ten at 70 % of the schedule) and scored with the book's
# current protocol (no intercept, ridge chosen on `tune_val`); `k10-2h` (32,000 steps in two hours)
# is an older run of the earlier 48 px settings in batches of 16, scored with the earlier protocol
# (an intercept and plain least squares): the `regressor` column says which.

# %%
references = load_references("jakab")
if references:
    display(reporting.protocol_table(references))
    display(reporting.provenance_table(references))
    ax = viz.learning_curves(references, reference_line=mean_shape)
    ax.axhline(mean_shape / 2, color="C3", ls=":", lw=1, label="target: half the mean shape")
    ax.legend(fontsize=7)
    plt.show()
    print("\n".join(reporting.target_verdicts(references, chapter.target)))  # the shortfall, if any
else:
    print("no committed reference runs under results/jakab/")

# %% [markdown]
# ## Few-shot regression

# %%
curves = {f"K = {k}, {split} [{profile}]": r["metrics"]["few_shot"][split]
          for k, r in runs.items() if "few_shot" in r["metrics"] for split in ("test_mtfl", "test_aflw")}
if curves:
    viz.few_shot_plot(curves)
    plt.show()
if len(curves) < 2 * len(K_VALUES):
    chapter.missing("The few-shot curves of K = " + ", ".join(
        str(k) for k in K_VALUES if k not in runs or "few_shot" not in runs[k]["metrics"]) + " (measured from a model's weights)")

# %% [markdown]
# ## Reconstructions and disentanglement
#
# Left: target faces with their landmarks and the generator's rendering of them from a warped copy
# (reconstruction). Right: the appearance of face A rendered with the landmarks of face B, for a
# grid of pairs: rows keep the appearance, columns keep the pose.

# %% tags=["hide-input"]
model = models.get(10)
if model is not None:
    faces = test_mtfl.images[:6].float() / 255
    recon = model.swap(faces, faces)
    size = recon["pose_view"].shape[-1]
    fig, axes = plt.subplots(2, 6, figsize=(11, 4))
    for i in range(6):
        viz.show_landmarks(axes[0, i], recon["pose_view"][i].cpu(), normalized_to_pixels(recon["points"][i].cpu(), size),
                           size=10, title="target" if i == 0 else None)
        viz.show_landmarks(axes[1, i], recon["generated"][i].cpu(), title="rendered" if i == 0 else None)
    fig.suptitle(f"Reconstruction, K = 10 [{profile}]", fontsize=9)
    plt.show()

    grid = test_mtfl.images[10:15].float() / 255
    n = len(grid)
    fig, axes = plt.subplots(n + 1, n + 1, figsize=(1.8 * (n + 1), 1.8 * (n + 1)))
    axes[0, 0].axis("off")
    for j in range(n):
        out = model.swap(grid[j:j + 1], grid[j:j + 1])
        viz.show_landmarks(axes[0, j + 1], out["pose_view"][0].cpu(), normalized_to_pixels(out["points"][0].cpu(), size),
                           size=8, title="pose B" if j == 0 else None)
    for i in range(n):
        viz.show_landmarks(axes[i + 1, 0], model.to_view(grid[i:i + 1])[0].cpu(), title="appearance A" if i == 0 else None)
        swapped = model.swap(grid[i:i + 1].expand(n, -1, -1, -1), grid)["generated"].cpu()
        for j in range(n):
            viz.show_landmarks(axes[i + 1, j + 1], swapped[j])
    fig.suptitle(f"Appearance of A with the landmarks of B, K = 10 [{profile}]", fontsize=9)
    plt.show()
else:
    chapter.missing("Reconstructions and disentanglement (the K = 10 model)")

# %% [markdown]
# ## Ablation: perceptual loss against a plain pixel loss (K = 10)
#
# The same model trained with mean squared pixel error instead of the VGG16 loss, with the same
# budget as a perceptual run in this table (shorter than the main runs in the `cpu` profile).

# %%
# the budget's ablation length (`Jakab.budgets`), the learning-rate decay at the same fraction of
# it; a variant equal to the main K = 10 run is that run
ablation = chapter.variants("jakab", {"perceptual (VGG16)": {}, "pixel (MSE)": {"method": {"loss": "pixel"}}},
                            base=get_method("jakab").ablation_config(chapter.settings, config), prefix="ablation",
                            reuse=[r for r in (runs.get(10),) if r is not None])
if ablation:
    display(reporting.protocol_table(list(ablation.values()), label=lambda r: next(n for n, x in ablation.items() if x is r)))
else:
    chapter.missing("The ablation, perceptual against pixel loss")

# %% [markdown]
# ## Swap two faces
#
# Pick an appearance face (A) and a pose face (B): the image is A rendered with B's landmarks. All
# pairs are rendered once and the sliders are linked to them in the browser, so the widget also
# works in the static book.

# %% tags=["hide-input"]
pool = test_mtfl.images[20:26].float() / 255
pngs = []
for i in range(len(pool)) if model is not None else []:
    row = []
    swapped = model.swap(pool[i:i + 1].expand(len(pool), -1, -1, -1), pool)
    for j in range(len(pool)):
        fig, axes = plt.subplots(1, 3, figsize=(6, 2.2))
        viz.show_landmarks(axes[0], swapped["appearance_view"][j].cpu(), title="appearance A")
        viz.show_landmarks(axes[1], swapped["pose_view"][j].cpu(),
                           normalized_to_pixels(swapped["points"][j].cpu(), size), size=12, title="pose B")
        viz.show_landmarks(axes[2], swapped["generated"][j].cpu(), title="A with B's landmarks")
        row.append(viz.figure_png(fig, dpi=70))
    pngs.append(row)
names = [f"test_mtfl face {20 + i}" for i in range(len(pool))]
if pngs:
    display(viz.pair_stack(pngs, names, names, row_description="A", col_description="B"))
else:
    chapter.missing("The face-swap widget (the K = 10 model)")

# %% [markdown]
# ## Watch the landmarks move during training (K = 10)
#
# The landmarks the K = 10 run found on six test faces at each recorded evaluation (a committed
# reference's record keeps them too).

# %% tags=["hide-input"]
if 10 in runs and runs[10].snapshots():
    display(viz.checkpoint_scrubber(runs[10], test_mtfl.images[:6]))
else:
    chapter.missing("The landmarks through training (the K = 10 run's snapshots)")
