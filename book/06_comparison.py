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
# | the headline runs of each chapter (method, run, overrides) | `experiments.BOOK_RUNS` |
# | 95 % bootstrap interval over test faces; paired differences | `evaluation.statistics.bootstrap_interval`, `paired_difference` |
# | cumulative error distribution, failure rate (> 10 % IOD) | `evaluation.statistics.cumulative_error_distribution`, `failure_rate` |
# | protocol variants, each one recorded option | `evaluation.PROTOCOL_VARIANTS` (`RegressionOptions`) |
# | rankings, Kendall's τ, the pairs a variant swaps | `evaluation.statistics.kendall_tau`, `ranking_changes` |
# | `results/leaderboard.csv` / `.json`, from the committed records | `python -m lmcore.book.leaderboard` |
# | this chapter's tables, figures and checks | `lmcore.book.comparison` |

# %% tags=["parameters"]
profile = None  # "smoke" | "reference" | "cpu" | "paper"; None: $LMBOOK_PROFILE, else chosen by the hardware

# %% tags=["hide-input"]
import inspect
import time

import matplotlib.pyplot as plt
from IPython.display import display

from lmcore.book import comparison, viz
from lmcore.book.chapter import setup_chapter
from lmcore.evaluation import statistics

started = time.perf_counter()
chapter = setup_chapter(profile)
profile = chapter.profile
faces = comparison.scoring_faces(chapter)  # every n-th face where the methods' own evaluation uses those (smoke)
print(faces.summary(profile))

# %% [markdown]
# ## One leaderboard
#
# Every method's headline runs, scored again from their detections (the next two sections say
# which runs and check every mean against the run's record). Forward error (discovered → 5 annotated points, the field's headline number), backward error
# (annotated → discovered: does every landmark follow the face?) and consistency error (do the
# landmarks move with a random similarity of the image?), in % of the inter-ocular distance, with
# the 95 % bootstrap interval of the forward and backward errors over the test faces. The
# provenance columns say where each row comes from. The papers' columns are **the papers' numbers on MAFL / AFLW**,
# trained on CelebA's ~160-200k faces; ours train on 9,043 MTFL-80 faces and test on MTFL-80's
# splits, so the two are side by side, not comparable.

# %% tags=["hide-input"]
found = comparison.find_runs(chapter)
scores = comparison.detect_and_score(chapter, found, faces)  # each run detected once (cached)
checked = comparison.check_against_records(scores, profile)  # stops the chapter where a mean differs
comparison.show_leaderboard(scores, profile)  # the provenance columns collapsed under it

# %% [markdown]
# The interval is a percentile bootstrap of the mean over test faces (1,000 resamples, a fixed
# seed); it says how much the mean would move on another draw of faces like these, not how much
# it would move if the run were trained again with another seed, which is a second and often larger
# source of spread that this book has not measured for every method:

# %%
viz.show_code(inspect.getsource(statistics.bootstrap_interval))

# %% [markdown]
# ## Accuracy against compute: which method for my budget
#
# Every method's tune_val error against the compute it took: each lineage of the convergence
# campaign from its headline run on, its training steps priced by the benchmark's cost of one `cpu`
# step (`results/bench/cpu.json`, two cores busy), in core-hours. The table answers "which method
# for my budget": the lowest tune_val error each reached within 10 minutes, 1 hour and 8 hours of
# compute. No paper or public project has this figure: each reports one point at its own budget.

# %% tags=["hide-input"]
comparison.show_accuracy_against_compute(chapter)

# %% [markdown]
# ## The runs
#
# One row per headline run of a method chapter. A run is used when its chapter trained it in this
# profile with the code, data and settings it would be trained with today; otherwise the row says
# which chapter trains it. In the `reference` profile the runs are the committed references with
# weights (a reference without weights has numbers in its record but no landmarks to re-score).

# %% tags=["hide-input"]
display(comparison.runs_table(found, chapter))

# %% [markdown]
# ## Detections, and the check that they give the recorded numbers
#
# Each run's landmarks on the regressor set and on both test sets, from its final checkpoint. The
# book's protocol re-fitted on them must give exactly the forward and backward errors its record
# holds (the detectors are deterministic); a difference would mean the chapter is not showing what
# the run measured, and stops the chapter.

# %% tags=["hide-input"]
print(checked)

# %% [markdown]
# ## Which differences are real
#
# Two methods tested on the same faces share the faces' difficulty, so their difference is
# measured far better than their two intervals suggest: the **paired** bootstrap resamples the faces
# together. Below, each method against the best on each test split (forward error).

# %% tags=["hide-input"]
comparison.show_paired_differences(scores, profile)

# %% [markdown]
# ## Beyond the mean
#
# A mean hides whether a method is a little wrong everywhere or badly wrong on a few faces. The
# cumulative error distribution (the face-alignment convention) gives, for each error, the fraction
# of faces below it; the failure rate is the fraction of faces whose mean error exceeds 10 % of the
# IOD.

# %% tags=["hide-input"]
comparison.error_distributions(scores, profile)
plt.show()
display(comparison.failure_rates(scores))

# %% [markdown]
# ### Per landmark
#
# The forward error of each annotated point (test_aflw, where the methods differ most): the nose
# and the mouth corners move with expression and pose, the eyes less.

# %% tags=["hide-input"]
display(comparison.per_landmark_errors(scores, "test_aflw"))

# %% [markdown]
# ### Where the methods disagree most
#
# For each test face, the spread of the methods' regressed 5 points: the mean distance of each
# method's points to the average of all methods' points, in % of the IOD. The faces with the largest
# spread, each method's regressed points (crosses) beside the labels (dots):

# %% tags=["hide-input"]
comparison.show_disagreement(scores, faces, profile, "test_aflw")

# %% [markdown]
# ## Few-shot: error against the number of labelled faces
#
# Every method's forward error when the regressor sees only *n* labelled faces (10 random draws per
# *n*, the band is ± one standard deviation over the draws; the ridge is tuned on tune_fit /
# tune_val for each *n*).

# %% tags=["hide-input"]
comparison.few_shot_figure(scores, faces, profile)
plt.show()

# %% [markdown]
# ## Protocol variants: does the ranking survive?
#
# The papers score landmarks with protocols that differ in details (chapter 0 lists them).
# Each variant below changes one detail of the book's protocol and re-scores the same detections of
# every method: an intercept in the regressor; no ridge; Sanchez's ridge (an intercept and
# λ = 10⁻⁴ × the largest entry of the centred XᵀX); IMM's regressor set (the first 90 % of the
# regressor list); a regressor fitted on 100 labelled faces; and errors divided by the diagonal of
# the 5 annotated points' box instead of the IOD. The supervised detector predicts the points
# directly: only the normaliser applies to it.

# %% tags=["hide-input"]
variants = comparison.show_variants(scores)

# %% [markdown]
# How each variant moves the ranking: Kendall's τ between the variant's ranking and the book's (1:
# the same order), and the pairs of methods it swaps.

# %% tags=["hide-input"]
comparison.show_ranking_changes(variants, profile)

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
comparison.show_reference_check(chapter, scores, faces)

# %% [markdown]
# ## A landmark browser
#
# One test face at a time: each method's discovered landmarks (coloured dots, its own *K*), the 5
# points its regressor predicts from them (white crosses) and the labels (white dots). The frames
# are rendered once and the slider is linked in the browser, so the widget works in Jupyter Lab
# and in the static book.

# %% tags=["hide-input"]
comparison.show_landmark_browser(scores, faces, "test_mtfl")

# %% [markdown]
# ## The committed leaderboard
#
# `results/leaderboard.csv` (and `.json`) is written by `python -m lmcore.book.leaderboard` from the
# committed reference records (`results/<method>/<run>.json`, the longest runs made for this book
# so far, of any profile), regenerated by `make book` and checked against the records by
# `make test`. Its rows carry the record they come from; older references were scored with an
# intercept and no ridge (the "regressor" column) and carry no interval.

# %% tags=["hide-input"]
comparison.show_committed_leaderboard(profile)

# %% [markdown]
# ## What this chapter does not do yet
#
# * Spread over training seeds: the intervals are over test faces; a second training run of each
#   method would measure the other source of spread.
# * The papers' own data (CelebA for training, MAFL and AFLW for testing) where a user has fetched
#   them (`data_scripts/`): the leaderboard is on MTFL-80.

# %% tags=["hide-input"]
print(f"chapter 6 ran in {time.perf_counter() - started:.0f} s ({profile} profile)")
