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
# # 7. Appendix: what training costs, and training on several GPUs
#
# How long does each method's training step take, where does the time go, and how long would
# the `paper` profile take? This page measures it on the machine that builds the book, with
# `python -m lmcore.bench` (the same code as the command line), and shows the records measured
# elsewhere (committed under `results/bench/`). Each record says what ran it: device, commit,
# date, wall time. Absolute times move with the machine; **compare ratios within one record**.
#
# | what | `lmcore` |
# |---|---|
# | one real training step (forward, backward, Adam) of a run's config, timed and cut into sections | `training.bench.step_cost`, `profiling.measure_sections`, `profiling.modules_as_sections` |
# | every method at its `cpu` and `paper` settings, ratios, projection of the paper profile | `python -m lmcore.bench` (`bench.run_bench`, `bench.projection`) |
# | the step under an earlier commit's code and under today's, in turn, in one run | `python -m lmcore.bench --against COMMIT` (`bench.compare_with_commit`, `training.step_worker`) |
# | freed activations kept for the next step instead of unmapped | `lmcore.allocator` |
# | bf16 autocast, channels-last, `torch.compile` | `train.precision`, `train.channels_last`, `train.compile` |
# | DDP: each process its share of the global batch, and of its random warps | `training.loop.draw_batch`, `geometry.batch_shard` |

# %% tags=["parameters"]
profile = None  # "smoke" | "reference" | "cpu" | "paper"; None: $LMBOOK_PROFILE, else chosen by the hardware

# %% tags=["hide-input"]
import inspect
import time

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from lmcore import bench
from lmcore.book import speed
from lmcore.book.viz import show_code
from lmcore.book.chapter import setup_chapter
from lmcore.geometry import draws
from lmcore.profiles import select_device

started = time.perf_counter()
chapter = setup_chapter(profile)
profile = chapter.profile
device = select_device()

# %% [markdown]
# ## This machine
#
# In the `smoke` profile a few methods are timed at their smoke settings, to prove the code
# path (the numbers mean nothing). In the `cpu` and `paper` profiles every method is timed at its
# `cpu` and `paper` settings, with the GPU options, once per code version and machine (the
# record is kept beside the runs and reused by later builds). The `reference` profile times
# nothing and shows the committed CPU record instead.

# %% tags=["hide-input"]
record, source = speed.appendix_record(chapter.trains, profile, device)
display(Markdown(source))
display(Markdown(f"**Training steps on this machine ({profile} profile of the book)**"))
display(speed.step_table(record))

# %% [markdown]
# ## Where a step's time goes
#
# Further steps are cut into the parts of a training iteration: drawing the batch (`data`), the warps
# and pair synthesis of `lmcore.geometry` (decorated `@timed("warps")`), every call of a network
# inside the method (`networks`: module hooks, `profiling.modules_as_sections`), the perceptual
# loss with its VGG16 (`perceptual`), the loss terms and the rest of the forward pass (soft-argmax,
# rendering, the terms), the backward pass, and the optimiser (zeroing, clipping, Adam). Shares of
# the whole iteration; the step times above leave the batch out.

# %% tags=["hide-input"]
committed = bench.load_bench_records()
cut = speed.parts_record(record, committed)
if cut is not record:
    display(Markdown(f"From `{cut['path']}` ({cut['device']['name']}, commit {cut['commit'][:7]}), the newest committed "
                     "record whose steps are cut into these parts."))
shares = speed.share_table(cut)
speed.share_figure(shares, cut["device"]["name"])
plt.show()
display(shares.style.format({part: "{:.0%}" for part in speed.share_parts(shares)}).hide(axis="index"))

# %% [markdown]
# ## Faster than before, measured in one run
#
# `python -m lmcore.bench --against COMMIT` times each method's `cpu` step under the code of an
# earlier commit and under today's, in two worker processes asked in turn (the order reversed every
# other round), so that the two sides share the machine and its load: never figures of different
# days. With `--also precision=bf16` it also times today's step in bfloat16 autocast. The committed
# CPU record holds it:
#
# * **Bit-identical**: `lmcore.allocator` keeps the memory a step frees for the next step instead of
#   handing it back to the system (5,000-13,000 page faults a step before). It changes no weight, and
#   the table shows what it is worth on this machine: within the rounds' spread, not the 1.5x the
#   project aims at.
# * **A setting**: `train.precision = "bf16"` (autocast of the convolutions and matrix products to
#   bfloat16) changes the rounding, and on this CPU, which has no native bfloat16, it is slower (the
#   options rows of the step table). The profiles keep float32.

# %% tags=["hide-input"]
committed_cpu = speed.against_record(committed)
if committed_cpu is not None:
    display(Markdown(speed.against_summary(committed_cpu)))
    display(speed.against_table(committed_cpu))
else:
    display(Markdown("The committed CPU record holds no comparison with an earlier commit yet."))

# %% [markdown]
# ## The Sanchez step against the authors' released step
#
# The released code of Sanchez & Tzimiropoulos (their `model.forward` and two Adam updates: the FAN
# with its 3x3 convolutions projected, the generator, VGG16's four activations and the pixel error)
# and lmbook's `paper` Sanchez step, at 128 px, batch 8 and the same threads, in one process, rounds
# alternating. Their code is not in lmbook: the record says how it was run.

# %% tags=["hide-input"]
authors = speed.read_authors_record()
if authors is None:
    display(Markdown(f"Not measured yet (`{speed.AUTHORS_RECORD.relative_to(speed.RESULTS_DIR.parent)}`)."))
else:
    display(Markdown(f"{authors['device']['name']}, {authors['settings']['threads']} threads, {authors['rounds']} rounds, "
                     f"load average {authors['load']['start'][0]} -> {authors['load']['end'][0]}; "
                     f"`{authors['command']}`"))
    display(speed.authors_table(authors))

# %% [markdown]
# ## How long `make test` takes, idle and beside another job
#
# `make test` runs pytest in single-thread worker processes (pytest-xdist) and the smoke chapters
# side by side in single-thread kernels (`tools/parallel_chapters.py`), a chapter after the chapters
# whose runs it reads. Its build records give the time idle and beside one competing two-thread
# training run, with the load average when each began and ended.

# %% tags=["hide-input"]
display(speed.build_times_table())

# %% [markdown]
# ## Ratios measured in one run
#
# Each method's step against FSE's at the same settings; Sanchez's projected convolutions
# against the same FAN trained plainly; the 4D correlation of C3's flow module at two feature
# sides (its cost grows with the fourth power of the side); and, where measured, each option
# (the other precision, the other memory layout, `torch.compile`) against the profile's own
# settings: the `cpu` profiles of FSE, Jakab (and so Sanchez and C3), the supervised baseline and
# the pose core train channels-last because this ratio said so on the 2-core machine; Zhang's does not.

# %% tags=["hide-input"]
display(pd.DataFrame(record["ratios"]).rename(columns={"profile": "settings"}))
if record["correlation"]:
    display(pd.DataFrame(record["correlation"]))

# %% [markdown]
# ## How long the paper profile would take
#
# Each chapter's headline runs (the runs of `lmcore.book.leaderboard.BOOK_RUNS` and their parents,
# each counted once) at their steps in the `cpu` and the `paper` profile, times the step time
# measured above at those settings. Ablations,
# few-shot fits and evaluations come on top. Measured on a CPU, this says why the paper profile
# needs a GPU; measured on a GPU (a record from `python -m lmcore.bench` there), it says how far
# one GPU is from the goal of every paper-profile table within an hour.

# %% tags=["hide-input"]

if record["projection"]:
    display(Markdown(f"Measured on {record['device']['name']}:"))
    display(speed.projection_table(record))
else:
    print("this profile's bench times neither the cpu nor the paper settings (smoke: the code path only)")

# %% [markdown]
# ## Records measured elsewhere
#
# The committed bench records (`results/bench/`, written by `python -m lmcore.bench`). A GPU
# record, when there is one, gives the paper profile's real step times.

# %% tags=["hide-input"]
provenance = speed.provenance_table(committed)
display(provenance if len(provenance) else Markdown("No committed bench record."))
for r in committed:
    display(Markdown(f"**{r['path']}** ({r['device']['name']})"))
    display(speed.step_table(r))
    if r["projection"]:
        display(speed.projection_table(r))
if not any(r["device"]["type"] == "cuda" for r in committed):
    display(Markdown("No GPU record yet: no GPU has been available to this project, so the paper profile's step "
                     "times on a GPU are not measured. `python -m lmcore.bench --options --compile` on a GPU "
                     "writes `results/bench/cuda.json`."))

# %% [markdown]
# ## Several GPUs: `torchrun` and DDP
#
# ```
# torchrun --nproc_per_node 4 -m lmcore.train zhang --profile paper
# ```
#
# runs the same training loop in 4 processes under PyTorch's `DistributedDataParallel`. What
# makes it the *same run* as one process:
#
# * `train.batch_size` is the **global** batch: each process trains on `batch_size / processes`
#   images (a batch that does not divide is refused), and the learning rate is unchanged, since
#   DDP averages the gradients of equal shares, which is the gradient of the global batch.
# * Every process draws the whole global batch from the same seed and keeps its rows, for the
#   images and for every random warp (below), so process *r* trains on exactly rows
#   *[r b, (r+1) b)* of what one process would.
# * BatchNorm becomes SyncBatchNorm on GPUs (its statistics are the global batch's). On the CPU
#   (gloo) SyncBatchNorm is not available, and BatchNorm statistics stay per process: the loop
#   says so when it starts.
# * Only process 0 evaluates, checkpoints and writes the record; a checkpoint resumes every
#   process, since their generators are in the same state.
#
# `tests/test_ddp.py` trains a small model (Zhang's, its BatchNorm removed) for 6 steps in one
# process and under `torchrun --nproc_per_node 2` on the CPU, uninterrupted and stopped and
# resumed: the learning curves agree to 1e-4 and every weight tensor to 2 % of how far training
# moved it (measured: 1 %; Adam's first steps amplify the rounding of near-zero gradients; the
# same model trained on half the batch differs by 145 %).
#
# The per-example draws that make the warps shardable:

# %% tags=["hide-input"]
show_code(inspect.getsource(draws._draw))
print(f"appendix executed in {time.perf_counter() - started:.1f} s ({profile} profile)")
