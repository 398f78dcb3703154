"""Chapter 2's tables, figures and verdicts (Zhang et al. 2018): the tuning sweep's verdict per K,
Table 1a/1b (K = 10 and K = 30), the references beside chapter 1's, Table 1c (one loss removed at
a time), Table 5 (grid against landmark TPS control points), the discovered landmarks, the
detection maps, decoding with moved landmarks (Fig. 10 / App. A) and MNIST (App. B).

The chapter's runs are ``{K: record}`` (:func:`headline_runs_by_k`); every table keeps this
build's numbers apart from the paper's (:func:`lmcore.book.reporting.separated`).
"""
from __future__ import annotations

from typing import Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from ..data.registry_sets import load_mnist
from ..experiments import EXPERIMENTS
from ..geometry.coords import normalized_to_pixels
from ..paths import RESULTS_DIR
from ..training import load_references
from . import papers, reporting, viz
from ..experiments import method_settings

#: the chapter's headline runs and few-shot sizes (:mod:`lmcore.experiments.zhang`)
EXPERIMENT = EXPERIMENTS["02_zhang"]

#: Table 1c: each loss term removed in turn (its weight set to 0), by the row's name
ABLATIONS = {
    "full L": {},
    "w/o L_recon": {"method": {"lambda_recon": 0.0}},
    "w/o L_conc": {"method": {"lambda_conc": 0.0}},
    "w/o L_sep": {"method": {"lambda_sep": 0.0}},
    "w/o L_eqv": {"method": {"lambda_eqv": 0.0}},
}
#: each ablation row's name in :data:`lmcore.book.papers.ZHANG_TABLE1` ``["ablation"]``
PAPER_ABLATION = {"full L": "full", "w/o L_recon": "w/o recon", "w/o L_conc": "w/o conc", "w/o L_sep": "w/o sep",
                  "w/o L_eqv": "w/o eqv"}

#: the tuning sweep's released configuration at K = 10, and the label of the same with one part
#: (``warps`` or ``decoder``) put back to the book's earlier one (``lmcore.experiments.zhang.BUDGETS["cpu"]``)
CODE_BALANCE_LABEL = "K = 10, the code's balance"
EARLIER_PART_LABEL = "K = 10, the code's balance, earlier {part}"


def headline_runs_by_k(chapter) -> dict:
    """``{K: record}`` of the chapter's headline runs (:meth:`Chapter.headline_runs`), in the
    experiment's order; a run this profile has no record of is left out."""
    records = chapter.headline_runs(EXPERIMENT.chapter)
    return {run.num_landmarks: records[run.name] for run in EXPERIMENT.runs if run.name in records}


# ---------------------------------------------------------------------------------- verdicts

def more_landmarks_verdict(error_10: float, error_30: float) -> str:
    """``K = 30 is not worse than K = 10`` (the paper's order: K = 30 better) or ``... worse than ...``
    from the two runs' tune_val errors."""
    return f"K = 30 is {'not worse than' if error_30 <= error_10 else 'worse than'} K = 10"


def tuning_verdicts(records: Sequence) -> list[str]:
    """The tuning section's conclusions from its records (``tuning_label`` and tune_val error
    each): for each K (ascending), the setting with the lowest tune_val error; then what each part
    of the released configuration (its warps, its decoder) costs at K = 10, in points of tune_val
    error against the configuration with that part put back to the earlier one. Empty without
    records."""
    scored = {r["tuning_label"]: r.tune_error() for r in records}
    ks = {r["tuning_label"]: r.num_landmarks for r in records}
    lines = []
    for k in sorted(set(ks.values())):
        of_k = {label: error for label, error in scored.items() if ks[label] == k}
        best = min(of_k, key=of_k.get)
        lines.append(f"K = {k}: lowest tune_val error: '{reporting.reader_label(best)}' ({of_k[best]:.2f} %)")
    code = scored.get(CODE_BALANCE_LABEL)
    for part in ("warps", "decoder"):
        other = scored.get(EARLIER_PART_LABEL.format(part=part))
        if code is not None and other is not None:
            lines.append(f"K = 10, the code's {part} cost {code - other:+.2f} points of tune_val error "
                         f"against the earlier ones")
    return lines


def k_verdict(runs: dict, profile: str) -> str:
    """Table 1's verdict on the split settings are chosen by: whether this build's K = 30 run is
    not worse than its K = 10 run on tune_val (the paper has K = 30 better); the smoke note in the
    smoke profile (:func:`lmcore.book.reporting.verdict`)."""
    tune10, tune30 = runs[10].tune_error(), runs[30].tune_error()
    return reporting.verdict(profile, f"tune_val: K = 10 {tune10:.2f} %, K = 30 {tune30:.2f} % -> "
                                      f"{more_landmarks_verdict(tune10, tune30)} [{profile}]")


def reference_k_verdict(references: Sequence) -> str | None:
    """The same verdict for the committed K = 10 and K = 30 references of this chapter's headline
    runs, with their lengths; None where either is missing or has no tune_val error."""
    names = {run.name for run in EXPERIMENT.runs}
    by_k = {r.num_landmarks: r for r in references if r.method == "zhang" and r.run_name in names}
    if not {10, 30} <= set(by_k) or by_k[10].tune_error() is None or by_k[30].tune_error() is None:
        return None
    t10, t30 = by_k[10].tune_error(), by_k[30].tune_error()
    return (f"references ({by_k[10].steps} / {by_k[30].steps} steps), tune_val: K = 10 {t10:.2f} %, "
            f"K = 30 {t30:.2f} % -> {more_landmarks_verdict(t10, t30)}")


# ---------------------------------------------------------------------------------- tables

def table1(runs: dict, profile: str):
    """Table 1a/1b: each K's forward error (% of IOD) on test_mtfl and test_aflw beside the paper's
    on MAFL and AFLW (shaded: the paper's numbers, from CelebA training); a styled table."""
    rows = []
    for k, record in runs.items():
        rows.append({"K": k, "profile": record.profile,
                     "test_mtfl (%)": round(record.forward("test_mtfl"), 2),
                     "test_aflw (%)": round(record.forward("test_aflw"), 2),
                     "paper: MAFL": papers.ZHANG_TABLE1["rows"][k]["MAFL"],
                     "paper: AFLW": papers.ZHANG_TABLE1["rows"][k]["AFLW"]})
    return reporting.separated(pd.DataFrame(rows).set_index("K"), profile, paper_columns=["paper: MAFL", "paper: AFLW"])


def mean_shape_line(mean_shape: float) -> str:
    """The yardstick printed under Table 1: the mean shape's error on test_mtfl, and the paper's source."""
    return f"mean-shape baseline on test_mtfl: {round(mean_shape, 2)} % IOD; {papers.ZHANG_TABLE1['source']}"


def table1c(ablation_runs: dict, profile: str):
    """Table 1c: the protocol's errors of each ablation run (``{row name: record}``, rows of
    :data:`ABLATIONS`) beside the paper's MAFL error of the same row (shaded); a styled table."""
    table = reporting.protocol_table(list(ablation_runs.values()),
                                     label=lambda r: next(n for n, x in ablation_runs.items() if x is r))
    table[("paper: MAFL", "")] = [papers.ZHANG_TABLE1["ablation"][PAPER_ABLATION[n]] for n in table.index]
    return reporting.separated(table, profile, paper_columns=[("paper: MAFL", "")])


def tps_ratio_variants(settings: str) -> dict:
    """Table 5's runs in the settings profile ``settings``: ``{grid:landmark ratio: overrides}``
    setting the share of steps whose warp is anchored on the landmarks (the budget's
    ``tps_ratios``)."""
    ratios = method_settings("zhang").budget(settings).variants["tps_ratios"]
    return {name: {"method": {"landmark_control_fraction": f}} for name, f in ratios.items()}


def table5(ratio_runs: dict, profile: str):
    """Table 5: forward error (% of IOD) of each TPS control-point ratio's run (``{ratio: record}``)
    beside the paper's (shaded); a styled table."""
    table = pd.DataFrame({name: {"profile": r.profile,
                                 "test_mtfl (%)": round(r.forward("test_mtfl"), 2),
                                 "test_aflw (%)": round(r.forward("test_aflw"), 2),
                                 "paper: CelebA-regressor MAFL": papers.ZHANG_TABLE1["tps_ratio"][name]}
                          for name, r in ratio_runs.items()}).T
    table.index.name = "grid:landmark"
    return reporting.separated(table, profile, paper_columns=["paper: CelebA-regressor MAFL"])


def few_shot_curves(runs: dict, profile: str) -> dict:
    """Fig. 38's curves: ``{label: few-shot curve on test_mtfl}`` of each K's run."""
    return {f"K = {k}, test_mtfl [{profile}]": r.few_shot("test_mtfl") for k, r in runs.items()}


# ---------------------------------------------------------------------------------- references

def references_beside_fse(root=RESULTS_DIR) -> list:
    """The committed references of Zhang et al., then chapter 1's (Thewlis et al.) of the same run
    names as this chapter's headline runs (the same K): the two papers side by side."""
    names = {run.name for run in EXPERIMENT.runs}
    return load_references("zhang", root) + [r for r in load_references("fse", root) if r.run_name in names]


def method_and_run(record) -> str:
    """A row label naming the paper's method and the run (``zhang k10``)."""
    return f"{record['method']} {record['run_name']}"


def show_references_beside_fse(chapter) -> list:
    """Display the committed references beside chapter 1's (:func:`references_beside_fse`): their
    protocol errors, their provenance and their learning curves (the mean shape's error as a line),
    then print :func:`reference_k_verdict`; or say there are none. Returns the records."""
    references = references_beside_fse()
    if not any(r.method == "zhang" for r in references):
        print("no committed reference runs under results/zhang/")
        return references
    display(reporting.protocol_table(references, label=method_and_run))
    display(reporting.provenance_table(references, label=method_and_run))
    viz.learning_curves(references, label=method_and_run, reference_line=chapter.mean_shape)
    plt.show()
    verdict = reference_k_verdict(references)
    if verdict is not None:
        print(verdict)
    return references


# ---------------------------------------------------------------------------------- figures

def landmark_figures(models: dict, test_mtfl, test_aflw, profile: str) -> list:
    """Figs. 2 and 4: each K's landmarks on the first 16 test_mtfl faces, then the smallest K's on
    the first 8 test_aflw faces (``models``: ``{K: trained method}``); returns the figures."""
    figures = [viz.landmarks_on_instances(model.detect, test_mtfl.images[:16],
                                          title=f"K = {k} on test_mtfl [{profile}]") for k, model in models.items()]
    k = min(models)
    figures.append(viz.landmarks_on_instances(models[k].detect, test_aflw.images[:8],
                                              title=f"K = {k} on test_aflw [{profile}]"))
    return figures


def shown_checkpoints(steps: Sequence[int], rows: int = 4) -> list:
    """The kept checkpoints' steps Fig. 39 shows: at most ``rows`` of them, evenly spaced from the
    first, then the final weights (None); nothing without kept checkpoints."""
    return list(steps)[:: max(1, len(steps) // rows)][:rows] + ([None] if steps else [])


def _detection_maps(model, face: torch.Tensor) -> torch.Tensor:
    """``K + 1 x h x w`` detection maps of one face (``1 x C x H x W`` in [0, 1]), landmarks then background."""
    with torch.no_grad():
        return model.model.detection_maps(model.to_view(face))[0]


def detection_maps_figure(chapter, record, model, face: torch.Tensor):
    """Fig. 39: the detection maps of ``face`` (``1 x C x H x W`` in [0, 1]), one row per shown
    checkpoint of ``record`` (:func:`shown_checkpoints`), or a single row of the final ``model``
    where the run kept no checkpoints (a committed reference keeps its final weights only)."""
    k, profile = record.num_landmarks, chapter.profile
    shown = shown_checkpoints([s for s, _ in record.kept_checkpoints()])
    if not shown:
        fig, axes = plt.subplots(1, k + 1, figsize=(14, 1.5))
        for ax, channel in zip(axes, _detection_maps(model, face)):
            ax.imshow(channel, cmap="magma")
            ax.axis("off")
        fig.suptitle(f"Detection maps D of one face at the end of training ({k} landmarks, then background; the "
                     f"reference keeps no earlier checkpoints) [{profile}]", fontsize=9)
        return fig
    fig, axes = plt.subplots(len(shown), k + 1, figsize=(14, 1.4 * len(shown)))
    for row, step in enumerate(shown):
        maps = _detection_maps(chapter.model(record, step=step), face)
        for col in range(k + 1):
            axes[row, col].imshow(maps[col], cmap="magma")
            axes[row, col].axis("off")
        axes[row, 0].set_title(f"step {step if step is not None else record['steps']}", fontsize=7, loc="left")
    fig.suptitle(f"Detection maps D of one face through training ({k} landmarks, then background) [{profile}]",
                 fontsize=9)
    return fig


def manipulation_tool(model, source: torch.Tensor, profile: str):
    """Fig. 10 / App. A, live: sliders that move one landmark of ``source`` (``1 x C x H x W`` in
    [0, 1]) by an offset (view coordinates) and decode it with its own descriptors; the input with
    its landmarks beside the decoding. Returns the widget (it draws once before any slider moves)."""
    encoded = model.reconstruct(source)
    base_points = encoded["points"].cpu()
    output = widgets.Output()

    def show_manipulation(landmark=0, dx=0.0, dy=0.0):
        moved = base_points.clone()
        moved[0, landmark] += torch.tensor([dx, dy])
        image = model.reconstruct(source, points=moved)["reconstruction"][0].cpu()
        size = image.shape[-1]
        with output:
            output.clear_output(wait=True)
            fig, axes = plt.subplots(1, 2, figsize=(5, 2.6))
            viz.show_landmarks(axes[0], encoded["view"][0].cpu(), normalized_to_pixels(base_points[0], size), size=18,
                               title="input (view) and landmarks")
            viz.show_landmarks(axes[1], image, normalized_to_pixels(moved[0], size), size=18,
                               title=f"landmark {landmark} moved by ({dx:+.2f}, {dy:+.2f})")
            plt.show()

    controls = widgets.interactive(show_manipulation,
                                   landmark=widgets.IntSlider(0, 0, model.num_landmarks - 1, description="landmark"),
                                   dx=widgets.FloatSlider(0.0, min=-0.3, max=0.3, step=0.05, description="dx"),
                                   dy=widgets.FloatSlider(0.0, min=-0.3, max=0.3, step=0.05, description="dy"))
    show_manipulation()
    return widgets.VBox([widgets.HTML(f"<b>Manipulation tool</b> ({profile} profile; live in Jupyter Lab)"), controls,
                         output])


def interpolated_points(start: torch.Tensor, end: torch.Tensor, alphas: Sequence[float]) -> list:
    """``(1 - a) * start + a * end`` for each ``a`` of ``alphas`` (landmarks ``B x K x 2``): the
    shapes a morphing strip decodes."""
    return [(1 - a) * start + a * end for a in alphas]


def moved_landmarks_strip(model, face_a: torch.Tensor, face_b: torch.Tensor, profile: str,
                          alphas: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0)):
    """Fig. 10's static strip: face A decoded with its own descriptors at landmarks moved from its
    own towards face B's (a fraction ``alphas`` of the way), between the two faces' views with
    their landmarks (faces ``1 x C x H x W`` in [0, 1]); returns the figure."""
    a, b = model.reconstruct(face_a), model.reconstruct(face_b)
    points_a, points_b = a["points"].cpu(), b["points"].cpu()
    size = a["view"].shape[-1]
    fig, axes = plt.subplots(1, len(alphas) + 2, figsize=(2 * (len(alphas) + 2), 2.3))
    viz.show_landmarks(axes[0], a["view"][0].cpu(), normalized_to_pixels(points_a[0], size), title="face A")
    for ax, alpha, points in zip(axes[1:], alphas, interpolated_points(points_a, points_b, alphas)):
        image = model.reconstruct(face_a, points=points)["reconstruction"][0].cpu()
        viz.show_landmarks(ax, image, normalized_to_pixels(points[0], size), size=10,
                           title=f"A's descriptors, {alpha:.2f} of B's shape")
    viz.show_landmarks(axes[-1], b["view"][0].cpu(), normalized_to_pixels(points_b[0], size), title="face B")
    fig.suptitle(f"Decoding with moved landmarks (K = {model.num_landmarks}) [{profile}]", fontsize=9)
    fig.tight_layout(pad=0.2)
    return fig


def padded_mnist() -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST as App. B trains on it: ``(images N x 1 x 56 x 56 float in [0, 1], labels N)``, each
    28 px digit padded by 14 px of background."""
    digits, labels = load_mnist()
    return torch.nn.functional.pad(digits[:, None], (14, 14, 14, 14)).float() / 255, labels


def mnist_figures(model, profile: str, pairs: Sequence[tuple[int, int]] = ((2, 9), (1, 7), (3, 8))) -> list:
    """App. B: Fig. 19, the landmarks of one model on two examples of each digit (one colour per
    landmark), and Fig. 20, the first example of each digit pair morphed into the other's by
    interpolating the landmarks and decoding; returns the two figures."""
    padded, labels = padded_mnist()
    examples = torch.cat([padded[labels == d][:2] for d in range(10)])
    with torch.no_grad():
        points = model.detect(examples).cpu()
    fig19, axes = plt.subplots(2, 10, figsize=(14, 3))
    colours = viz.landmark_colours(model.num_landmarks)
    for i, ax in enumerate(axes.T.flat):
        viz.show_landmarks(ax, examples[i], normalized_to_pixels(points[i], padded.shape[-1]), colours=colours, size=14)
    fig19.suptitle(f"Fig. 19: {model.num_landmarks} landmarks on all ten digits, one model [{profile}]", fontsize=9)

    alphas = np.linspace(0, 1, 7)
    fig20, axes = plt.subplots(len(pairs), len(alphas), figsize=(1.6 * len(alphas), 1.7 * len(pairs)))
    for row, (a, b) in enumerate(pairs):
        start, end = padded[labels == a][:1], padded[labels == b][:1]
        p0, p1 = model.reconstruct(start)["points"].cpu(), model.reconstruct(end)["points"].cpu()
        for col, points in enumerate(interpolated_points(p0, p1, alphas)):
            image = model.reconstruct(start, points=points)["reconstruction"][0].cpu()
            viz.show_landmarks(axes[row, col], image, normalized_to_pixels(points[0], image.shape[-1]),
                               colours=colours, size=8)
    fig20.suptitle(f"Fig. 20: morphing {list(pairs)} by interpolating landmarks [{profile}]", fontsize=9)
    return [fig19, fig20]


# ---------------------------------------------------------------------------------- the chapter's sections
def ablation_runs(chapter, config: dict, runs: dict) -> tuple[dict, dict]:
    """``(base config, {label: record})`` of Table 1c's ablations (:data:`ABLATIONS`) at the budget's
    ablation length, batch and (no) learning curve: a shorter schedule keeps the learning-rate decay,
    the growth of lambda_recon and the switch to landmark-anchored warps at the same fractions of it;
    a variant equal to the main K = 10 run is that run."""
    base = method_settings("zhang").ablation_config(chapter.settings, config)
    return base, chapter.variants("zhang", ABLATIONS, base=base, prefix="ablation",
                                  reuse=[runs[10]] if 10 in runs else [])


def show_table1c(chapter, ablation_runs: dict) -> None:
    """Table 1c (:func:`table1c`), or a stand-in."""
    if ablation_runs:
        display(table1c(ablation_runs, chapter.profile))
    else:
        chapter.missing("Table 1c, the ablations")


def ratio_runs(chapter, base: dict, ablation_runs: dict) -> dict:
    """``{label: record}`` of Table 5's TPS control-point ratios (:func:`tps_ratio_variants`), with
    the ablations' budget (the profile's own ratio is the ablations' "full L" run)."""
    return chapter.variants("zhang", tps_ratio_variants(chapter.settings), base=base, prefix="tps",
                            reuse=list(ablation_runs.values()))


def show_table5(chapter, ratio_runs: dict) -> None:
    """Table 5 (:func:`table5`), or a stand-in."""
    if ratio_runs:
        display(table5(ratio_runs, chapter.profile))
    else:
        chapter.missing("Table 5, the TPS control-point ratios")


def mnist_run(chapter):
    """Appendix B's run: seven landmarks on MNIST without descriptors, at the profile's length
    (the budget's ``mnist`` variant); its provenance, or a stand-in; returns the record (or None)."""
    record = chapter.run("zhang", "mnist-k7", overrides=method_settings("zhang").variant_config(chapter.settings, "mnist"))
    if chapter.has_model(record):
        display(reporting.provenance_table([record]))
    else:
        chapter.missing("Appendix B, MNIST")
    return record


def show_mnist(chapter, record) -> None:
    """Appendix B's figures from ``record``'s model (nothing without one: :func:`mnist_run` said why)."""
    if chapter.has_model(record):
        mnist_figures(chapter.model(record), chapter.profile)
        plt.show()


def show_protocol(runs: dict) -> None:
    """Backward and consistency errors beside the forward ones, one row per K."""
    display(reporting.protocol_table(list(runs.values()), label=lambda r: f"K = {r.num_landmarks}"))
