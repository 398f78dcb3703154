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
# Tzimiropoulos's "Scratch" model is an implementation of it. Its numbers here are those the
# two papers that build on it quote, and its settings those of its released code.
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
from lmcore.book import jakab
from lmcore.book.chapter import setup_chapter

chapter = setup_chapter(profile)

# %% [markdown]
# ## In short
#
# * **The paper's claims:** rendering one view of a face from another's appearance through a tight
#   Gaussian bottleneck at *K* points teaches the pose encoder landmarks that predict annotated points
#   (MAFL and AFLW), and a perceptual loss does better than a pixel loss.
# * **What the book finds:** the forward errors of its K = 10 and 30 runs below, beside the mean shape
#   and the book's bar, and the landmarks of its K = 10 run; the papers' numbers are further down.

# %% tags=["hide-input"]
chapter.show_headline("03_jakab");

# %% [markdown]
# **The paper's central claims, judged.** Each claim on the book's longest-trained runs (grown by the
# convergence campaign where it has grown them): the paired difference of their per-face errors,
# its 95 % interval resampled over seeds and faces, and how far their training went.

# %% tags=["hide-input"]
chapter.show_claims("03_jakab")
chapter.show_lineages("jakab")

# %% [markdown]
# The bottleneck and the objective, as `lmcore` writes them: the pose reaches the generator only as
# Gaussian maps drawn at the K points, and a training step renders the target view from the
# source view's appearance and compares them through VGG16 features.

# %% tags=["hide-input"]
from lmcore.book.viz import code_excerpt, show_code
from lmcore.methods.jakab import Jakab
from lmcore.models.conditional_generator import ConditionalGenerator

show_code(code_excerpt(ConditionalGenerator.forward), code_excerpt(Jakab.forward))

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
# * **Found by a second reading.** The code reads the landmarks and draws the maps on its own grid,
#   `linspace(−1, 1)` with the outer pixel centres at ±1, where lmcore's pixel centres drew maps 6.7 %
#   wider; its batch norm keeps TensorFlow's defaults (decay 0.99, eps 10⁻³). The `paper` profile now
#   takes both. Its TensorFlow 1.10 resizes align top-left (the decoder's upsampling, the loss mask at
#   each layer) and its weight decay is a term of the loss, clipped with the gradient: the table names
#   these departures.
#
# The table lists every element, with the file and line of the code; a test checks each row that
# names a setting against the configs.

# %% tags=["hide-input"]
chapter.show_fidelity("jakab")

# %% [markdown]
# The `cpu` profile trains at 32 px in batches of 32, with narrower networks and the perceptual
# loss on the first two VGG16 blocks only (the deeper blocks cost most of a CPU step); its bottleneck,
# loss, warps and optimisation were chosen on `tune_val` (next section).

# %%
chapter.show_settings("jakab");  # ";": the tables, not the configs they return

# %% [markdown]
# ## How the `cpu` settings were chosen: `tune_val`
#
# On two cores the generator learns slowly, so the question is which recipe learns most per CPU
# second. An earlier sweep chose a 32 px view in batches of 32 over 48 px in batches of 16 (equal
# cost per step) and kept Adam 10⁻³. Once the released code had been read line by line, its settings were
# compared with the book's earlier ones, and with the code's settings with one part (bottleneck,
# perceptual loss, warps, optimisation and output) put back to the earlier one, each trained for the
# `cpu` budget (1,000 steps) by `tools/tune_settings.py jakab` (the sweep is
# `lmcore.experiments.jakab.TUNING`) and **compared on `tune_val` only** (regressor fitted on
# `tune_fit`; chapter 0); the test sets chose nothing. The profile takes the setting with the lowest
# `tune_val` error; the verdict is printed under the table from the records. Two runs of one config
# differ here by up to about a point (chapter 3's earlier sweep measured it), so a smaller
# difference says little.

# %% tags=["hide-input"]
tuning = chapter.show_tuning("jakab")
jakab.show_tuning_verdict(tuning)

# %% [markdown]
# ## K = 10 and K = 30: forward, backward and consistency errors
#
# In the `reference` profile these are the committed references of K = 10 and K = 30 (below), with
# their weights; their few-shot curves are measured from the weights.

# %%
runs = jakab.headline(chapter)  # {K: record}; the reference profile: those with a committed reference
models = jakab.load_models(chapter, runs)
jakab.show_runs(chapter, runs, models)  # a training build: its runs beside the committed references too

# %% [markdown]
# Beside them, **the papers' numbers** (MAFL and AFLW; CelebA training at 128 px): Jakab et al.'s
# forward errors, and Sanchez & Tzimiropoulos's re-implementation of it ("Scratch", K = 10), the
# only source of backward and consistency errors for this method.

# %%
jakab.show_papers(chapter.mean_shape)

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
# `k10` (3,000 steps), its K = 30 counterpart (2,000) and `k10-long` (10,000 steps; C3's longest
# reference starts from it) were trained from this chapter's `cpu` settings (32 px views, batches of
# 32, Adam 1e-3, the learning rate divided by ten at 70 % of the schedule) and scored with the book's
# current protocol (no intercept, ridge chosen on `tune_val`); `k10-2h` (32,000 steps in two hours)
# is an older run of the earlier 48 px settings in batches of 16, scored with the earlier protocol
# (an intercept and plain least squares): the `regressor` column says which.

# %%
references = chapter.show_references("jakab")
jakab.show_reference_curves(chapter, references)  # with the shortfall from the target, if any

# %% [markdown]
# ## Few-shot regression

# %%
jakab.show_few_shot(chapter, runs)

# %% [markdown]
# ## Reconstructions and disentanglement
#
# Left: target faces with their landmarks and the generator's rendering of them from a warped copy
# (reconstruction). Right: the appearance of face A rendered with the landmarks of face B, for a
# grid of pairs: rows keep the appearance, columns keep the pose.

# %% tags=["hide-input"]
model = models.get(jakab.MAIN_K)  # the K = 10 model, which the figures below show
jakab.show_reconstructions(chapter, model)

# %% [markdown]
# ## Ablation: perceptual loss against a plain pixel loss (K = 10)
#
# The same model trained with mean squared pixel error instead of the VGG16 loss, with the same
# budget as a perceptual run in this table (shorter than the main runs in the `cpu` profile).

# %%
ablation = jakab.ablation(chapter, runs.get(jakab.MAIN_K))  # at the budget's ablation length
jakab.show_ablation(chapter, ablation)

# %% [markdown]
# ## Swap two faces
#
# Pick an appearance face (A) and a pose face (B): the image is A rendered with B's landmarks. All
# pairs are rendered once and the sliders are linked to them in the browser, so the widget also
# works in the static book.

# %% tags=["hide-input"]
jakab.show_face_swap(chapter, model)

# %% [markdown]
# ## Watch the landmarks move during training (K = 10)
#
# The landmarks the K = 10 run found on six test faces at each recorded evaluation (a committed
# reference's record keeps them too).

# %% tags=["hide-input"]
chapter.show_training_snapshots(runs.get(jakab.MAIN_K), jakab.MAIN_K)
