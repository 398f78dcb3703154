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
# # 0. Data and protocol
#
# Every chapter of this book trains on the same faces and scores its landmarks with the same
# code. This chapter shows both: **MTFL-80**, the real faces with human labels that ship with
# the book, and the **evaluation protocol** that turns discovered landmarks into an error in
# percent of the inter-ocular distance (IOD). It ends with two yardsticks measured by that
# protocol: the *mean shape* (predict the same five points for every face) and a *supervised*
# detector trained on the labels.
#
# The `profile` parameter sets how long things train: `reference`, the default without a GPU,
# trains nothing and shows the committed reference runs and their weights; `smoke` (CI, meaningless
# numbers), `cpu` (the best a 2-core machine reaches in a bounded time) and `paper` (the default
# with a GPU) train.

# %% tags=["parameters"]
profile = None  # "smoke" | "reference" | "cpu" | "paper"; None: $LMBOOK_PROFILE, else chosen by the hardware

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from lmcore.book import protocol
from lmcore.book.chapter import setup_chapter
from lmcore.evaluation import RegressionOptions

chapter = setup_chapter(profile)
profile, data, test_mtfl, test_aflw = chapter.profile, chapter.data, chapter.test_mtfl, chapter.test_aflw

# %% [markdown]
# ## MTFL-80
#
# The Multi-Task Facial Landmark data set (Zhang, Luo, Loy & Tang, ECCV 2014), every image resized
# to 80 × 80 pixels: LFW faces and web faces for training, AFLW faces for a cross-domain test.
# Each face carries five points: left eye, right eye, nose, left and right mouth corner
# ("left" is image-left). The book reads it from `../shared/data/mtfl80`, or from
# `$LMBOOK_DATA_ROOT/mtfl80` (`python data_scripts/fetch_mtfl.py` builds that folder from the
# official archive where the network allows).

# %%
protocol.show_sizes(data)

# %% tags=["hide-input"]
pick = np.random.default_rng(0)
shown = {"test_mtfl": (test_mtfl, protocol.sample_faces(test_mtfl, rng=pick)),
         "test_aflw": (test_aflw, protocol.sample_faces(test_aflw, rng=pick))}
protocol.annotated_faces_figure(shown)
plt.show()

# %% [markdown]
# ### The splits, derived by one rule
#
# The splits are not read from lists: `lmcore.data.derive_splits` computes them from the two label
# files by the rule of the data set's README, and a unit test checks them against the shipped
# lists, name for name.
#
# 1. *clean rows* = training rows minus the `net_7876` rows whose mean y is below 25 px (their
#    labels are wrong, see below), sorted by path;
# 2. `test_mtfl` = clean rows at positions *i* with *i* mod 8 = 0 (the in-domain test, like MAFL's);
# 3. `regressor_train` = the other clean rows (for fitting the linear regressor, like MAFL-train);
# 4. `unsup_train` = all training rows minus `test_mtfl` (unsupervised training; labels unused);
# 5. `test_aflw` = the AFLW rows (cross-domain test);
# 6. for **choosing settings**, never the test sets: `tune_val` = the rows of `regressor_train` at
#    positions *i* with *i* mod 5 = 0, `tune_fit` = its other rows. A setting is chosen by fitting the
#    regressor on `tune_fit` and scoring on `tune_val`; only then are the test sets scored. Every
#    run records this `tune_val` error beside its test errors (`RunRecord.tune_error`), and the
#    chapters' tuning tables (`tools/tune_settings.py`) show it alone.

# %%
print("derived splits equal the shipped lists for:", ", ".join(protocol.check_shipped_splits(data)))

# %% [markdown]
# The known defect: 2,347 `net_7876` rows come from 160 × 216 originals whose rescaling went
# wrong, so their points sit far above the face. Their images are fine for unsupervised
# training; their labels are never used.

# %% tags=["hide-input"]
protocol.excluded_faces_figure(data)
plt.show()

# %% [markdown]
# ## The evaluation protocol
#
# Discovered landmarks are scored by how well they *predict* the annotated ones:
#
# * **forward error** (all papers): a linear map from the *K* discovered points (2*K* numbers) to the
#   5 annotated points is fitted on `regressor_train` and applied to a test split; the error is the
#   mean point-to-point distance divided by the test face's IOD (eye centres), in percent;
# * **backward error** (Sanchez & Tzimiropoulos 2019): the reverse map, annotated → discovered. A
#   detector with a few unstable points looks good forward and bad backward;
# * **consistency error** (Sanchez 2019): per landmark, `|detect(A(x)) − A(detect(x))|` under random
#   similarity transforms *A*, in % of IOD, reported per landmark (sorted) and averaged.
#
# The papers disagree on details that move the number: whether the regressor fits an intercept
# (Sanchez & Tzimiropoulos do; Thewlis et al., Zhang et al. and Jakab et al. do not), whether and
# how it is regularised (Sanchez's ridge λ = 10⁻⁴ × the largest entry of XᵀX), which faces fit it
# (Jakab et al. fit on the first 90 % of their regressor list), how many labelled faces it sees
# (the few-shot curves), and what divides the error (the eye centres, or a face box). So each is an
# explicit option of `RegressionOptions`, recorded beside every result:

# %%
display(pd.DataFrame({"default": RegressionOptions().as_dict()}))

# %% [markdown]
# `intercept`: fit a bias (Sanchez) or not (Thewlis, Zhang, IMM and later work); `ridge`: its strength
# relative to the regressor's Gram matrix, or `"tuned"`; `train_size` and `repeats`: the few-shot curves
# draw *R* random subsets of *n* labelled images; `normaliser`: the eye centres for MTFL, MAFL and AFLW.
#
# **The book's protocol fits without an intercept**, as most of the field does. With an intercept a
# regressor fitted on *one* labelled face predicts that face's shape for every test face whatever the
# detector found, so the *n* = 1 point of every method's few-shot curve would be the same number.
# Without one, the fit scales the labelled shape by how the detections of a test face compare with
# those of the labelled face, which depends on the detector. Where *n* nears the number of regression
# parameters (2*K* per output), plain least squares is ill-posed and its error explodes (a K = 10
# detector at *n* = 20 scored worse than the mean shape); so the ridge strength is **chosen on
# `tune_val`** for each *n*, from a fixed grid, by fitting on size-*n* subsets of `tune_fit`, and the
# chosen value is recorded with every number. The intercept remains a recorded option
# (`RegressionOptions(intercept=True)`), as do Sanchez's ridge, IMM's regressor subset and a
# face-box normaliser.
#
# ## Baseline 1: the mean shape
#
# Predicting the mean of `regressor_train`'s points for every test face, computed by the same
# regression code (a fit with no input points). Anything that learns must beat it by a wide margin.

# %%
display(protocol.mean_shape_table(chapter.regressor_train, {"test_mtfl": test_mtfl, "test_aflw": test_aflw}))

# %% [markdown]
# ## Baseline 2: a supervised detector
#
# The yardstick from the other side: the detector architecture of Thewlis et al. (chapter 1) with
# five output maps, trained *with* the labels of `regressor_train` (with random similarity
# augmentation) to put its soft-argmax points on the annotated ones. Its error is the direct
# prediction error (no regressor). It is trained now, in this profile; the committed reference
# run below is the longest one available, with its provenance (in the `reference` profile it is
# the only one).

# %%
supervised = protocol.show_supervised(chapter)  # this execution's run beside the committed references

# %% [markdown]
# Beside them, supervised detectors as the papers quote them. **These are the papers' numbers, on
# MAFL and AFLW, not ours**: those detectors were trained on tens of thousands of CelebA/AFLW faces
# at higher resolution; ours sees 6,696 faces at 80 px.

# %%
protocol.show_quoted_supervised()

# %% tags=["hide-input"]
model = protocol.show_supervised_on_faces(chapter, supervised)

# %% [markdown]
# ## Browse the faces
#
# The slider runs through test faces of both splits with their annotated points (dots) and the
# supervised detector's predictions (crosses). The images are rendered once, and the slider is linked
# to them in the browser, so the widget also works in the static book.

# %% tags=["hide-input"]
protocol.face_browser(shown, model, profile)
