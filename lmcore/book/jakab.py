"""Chapter 3's sections (Jakab et al. 2018, landmarks through conditional image generation).

The chapter (``book/03_jakab.py``) keeps its narrative and calls these: its headline runs keyed by
K, the papers' numbers, the committed references against the book's target, the few-shot curves,
the reconstruction and face-swap figures, the perceptual-against-pixel ablation, and the verdicts
printed under them. A ``show_*`` function displays its section (or says, through
:meth:`~lmcore.book.chapter.Chapter.missing`, why there is nothing to show); the tables, figures
and verdicts it shows are built by the functions beside it.

    from lmcore.book import jakab
    runs = jakab.headline(chapter)              # {K: record}
    models = jakab.load_models(chapter, runs)   # {K: model} of those with weights
    jakab.show_reconstructions(chapter, models.get(jakab.MAIN_K))
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import display

from ..experiments.jakab import EXPERIMENT
from ..geometry.coords import normalized_to_pixels
from . import papers, reporting, viz
from ..experiments import method_settings

#: the landmark counts of the chapter's headline runs, in the order its tables show them
K_VALUES: tuple[int, ...] = tuple(run.num_landmarks for run in EXPERIMENT.runs)
#: K of the run that the figures, the ablation and the training scrubber show: the first headline run's
MAIN_K: int = K_VALUES[0]
#: the ablation's variants, over the budget's ablation config: the loss the generator learns from
ABLATION = {"perceptual (VGG16)": {}, "pixel (MSE)": {"method": {"loss": "pixel"}}}
#: the tuning sweep's row of the book's settings before the audit of the released code
#: (:data:`lmcore.experiments.jakab.TUNING`)
BEFORE_AUDIT = "before the audit"
#: test_mtfl faces of each figure: reconstructed, the appearance-by-pose grid, the face-swap widget's
RECONSTRUCTED, GRID, SWAP_POOL = range(0, 6), range(10, 15), range(20, 26)
SPLITS = ("test_mtfl", "test_aflw")


# --------------------------------------------------------------------------- runs and settings

def tuning_verdict(records: Sequence) -> list[str]:
    """The lines printed under the tuning table: the setting with the lowest tune_val error and,
    where that is not the settings before the audit, its margin over them; empty without records.

    ``records``: the sweep's :class:`~lmcore.training.run_record.RunRecord` s (``tuning_label``,
    :meth:`~lmcore.training.run_record.RunRecord.tune_error`)."""
    scored = {r["tuning_label"]: r.tune_error() for r in records}
    if not scored:
        return []
    best = min(scored, key=scored.get)
    lines = [f"lowest tune_val error: '{reporting.reader_label(best)}' ({scored[best]:.2f} %)"]
    if BEFORE_AUDIT in scored and best != BEFORE_AUDIT:
        lines.append(f"its margin over the earlier settings: {scored[BEFORE_AUDIT] - scored[best]:.2f} points "
                     "(two runs of one config have differed by about a point here)")
    return lines


def show_tuning_verdict(records: Sequence) -> None:
    """Print :func:`tuning_verdict` (nothing without records)."""
    for line in tuning_verdict(records):
        print(line)


def headline(chapter) -> dict:
    """``{K: record}`` of the chapter's headline runs (:data:`lmcore.experiments.jakab.EXPERIMENT`,
    :meth:`~lmcore.book.chapter.Chapter.headline_runs`), in the experiment's order; a run this
    profile has no record of is left out."""
    records = chapter.headline_runs(EXPERIMENT.chapter)
    return {run.num_landmarks: records[run.name] for run in EXPERIMENT.runs if run.name in records}


def load_models(chapter, runs: dict) -> dict:
    """``{K: model}`` of the runs of ``runs`` (``{K: record}``) whose weights can be loaded."""
    return {k: chapter.model(r) for k, r in runs.items() if chapter.has_model(r)}


def missing_runs(runs: dict, few_shot: bool = False) -> list[int]:
    """The K values of the headline runs absent from ``runs`` (``{K: record}``), or with
    ``few_shot`` also those whose record carries no few-shot curve."""
    return [k for k in K_VALUES if k not in runs or (few_shot and "few_shot" not in runs[k]["metrics"])]


def show_runs(chapter, runs: dict, models: dict) -> None:
    """The headline runs' section: the perceptual loss's VGG16 weights, the runs' provenance and
    errors on the protocol, this build's runs beside the committed references (training
    profiles), and which runs are missing."""
    if models:
        print("VGG16 weights:", next(iter(models.values())).criterion.source)
    if runs:
        display(reporting.provenance_table(list(runs.values())))
        display(reporting.protocol_table(list(runs.values()), label=lambda r: f"K = {r.num_landmarks}"))
    chapter.compare_with_references(runs.values())
    absent = missing_runs(runs)
    if absent:
        chapter.missing(f"The runs of K = {', '.join(str(k) for k in absent)}")


# --------------------------------------------------------------------------- the papers' numbers

def papers_table() -> pd.DataFrame:
    """The papers' errors (% IOD, MAFL and AFLW): Jakab et al.'s forward errors per K, and Sanchez
    & Tzimiropoulos's re-implementation ("Scratch", K = 10), the only source of backward and
    consistency errors for this method (:data:`lmcore.book.papers.JAKAB`). Shape: rows ``forward
    MAFL``, ``forward AFLW``, then backward and consistency; one column per K, then Scratch's."""
    quoted = pd.DataFrame({f"K = {k}": {"forward MAFL": v["MAFL"], "forward AFLW": v["AFLW"]}
                           for k, v in papers.JAKAB["rows"].items()})
    scratch = papers.JAKAB["sanchez_scratch"]
    column = "Sanchez 'Scratch', K = 10"
    quoted[column] = {"forward MAFL": scratch["forward"]["MAFL"], "forward AFLW": scratch["forward"]["AFLW"]}
    for metric in ("backward", "consistency"):
        for split in ("MAFL", "AFLW"):
            quoted.loc[f"{metric} {split}", column] = scratch[metric][split]
    return quoted


def show_papers(mean_shape: float) -> None:
    """Display :func:`papers_table`, its sources and the mean shape's error beside them."""
    display(papers_table())
    print("sources:", papers.JAKAB["source"], "|", papers.JAKAB["sanchez_scratch_source"])
    print("mean-shape baseline on test_mtfl:", round(mean_shape, 2), "% IOD")


# --------------------------------------------------------------------------- curves

def reference_curves(references: Sequence, mean_shape: float, target: float):
    """The committed references' learning curves (:func:`lmcore.book.viz.learning_curves`) with the
    mean shape's error (dashed) and the book's ``target`` (dotted); returns the axes."""
    ax = viz.learning_curves(references, reference_line=mean_shape)
    ax.axhline(target, color="C3", ls=":", lw=1, label="target: half the mean shape")
    ax.legend(fontsize=7)
    return ax


def show_reference_curves(chapter, references: Sequence) -> None:
    """Show :func:`reference_curves` and print by how much each reference meets or misses the
    target (:func:`lmcore.book.reporting.target_verdicts`); nothing without references."""
    if not references:
        return
    reference_curves(references, chapter.mean_shape, chapter.target)
    plt.show()
    print("\n".join(reporting.target_verdicts(references, chapter.target)))


def few_shot_curves(runs: dict, profile: str) -> dict:
    """``{label: few-shot curve}`` of the runs of ``runs`` (``{K: record}``) that carry one, per
    test split, labelled ``K = <k>, <split> [<profile>]``."""
    return {f"K = {k}, {split} [{profile}]": r["metrics"]["few_shot"][split]
            for k, r in runs.items() if "few_shot" in r["metrics"] for split in SPLITS}


def show_few_shot(chapter, runs: dict) -> None:
    """Plot :func:`few_shot_curves`, and say which K have none."""
    curves = few_shot_curves(runs, chapter.profile)
    if curves:
        viz.few_shot_plot(curves)
        plt.show()
    absent = missing_runs(runs, few_shot=True)
    if absent:
        chapter.missing("The few-shot curves of K = " + ", ".join(str(k) for k in absent)
                        + " (measured from a model's weights)")


# --------------------------------------------------------------------------- what the generator renders

def faces(chapter, indices: range) -> torch.Tensor:
    """test_mtfl's faces ``indices`` in [0, 1]. Shape: (N, 3, H, W)."""
    return chapter.test_mtfl.images[indices.start:indices.stop].float() / 255


def _show_pose(ax, out: dict, i: int, size: float, title: str | None = None) -> None:
    """The pose view ``i`` of a :meth:`~lmcore.methods.jakab.Jakab.swap` output with its landmarks."""
    view = out["pose_view"][i].cpu()
    viz.show_landmarks(ax, view, normalized_to_pixels(out["points"][i].cpu(), view.shape[-1]), size=size, title=title)


def reconstruction_figure(model, images: torch.Tensor, title: str):
    """Top: each face (the target) with its landmarks; bottom: the generator's rendering of it from
    its own appearance. ``images``: (N, 3, H, W) in [0, 1]. Returns the figure."""
    out = model.swap(images, images)
    fig, axes = plt.subplots(2, len(images), figsize=(11, 4))
    for i in range(len(images)):
        _show_pose(axes[0, i], out, i, 10, "target" if i == 0 else None)
        viz.show_landmarks(axes[1, i], out["generated"][i].cpu(), title="rendered" if i == 0 else None)
    fig.suptitle(title, fontsize=9)
    return fig


def swap_grid_figure(model, images: torch.Tensor, title: str):
    """The appearance of face A (rows) rendered with the landmarks of face B (columns), for every
    pair of ``images`` ((N, 3, H, W) in [0, 1]); the first row shows each B with its landmarks,
    the first column each A. Returns the figure."""
    n = len(images)
    fig, axes = plt.subplots(n + 1, n + 1, figsize=(1.8 * (n + 1), 1.8 * (n + 1)))
    axes[0, 0].axis("off")
    for j in range(n):
        _show_pose(axes[0, j + 1], model.swap(images[j:j + 1], images[j:j + 1]), 0, 8, "pose B" if j == 0 else None)
    for i in range(n):
        viz.show_landmarks(axes[i + 1, 0], model.to_view(images[i:i + 1])[0].cpu(),
                           title="appearance A" if i == 0 else None)
        swapped = model.swap(images[i:i + 1].expand(n, -1, -1, -1), images)["generated"].cpu()
        for j in range(n):
            viz.show_landmarks(axes[i + 1, j + 1], swapped[j])
    fig.suptitle(title, fontsize=9)
    return fig


def show_reconstructions(chapter, model) -> None:
    """:func:`reconstruction_figure` and :func:`swap_grid_figure` of the K = :data:`MAIN_K` model on
    test_mtfl faces, or say that there is no such model."""
    if model is None:
        chapter.missing(f"Reconstructions and disentanglement (the K = {MAIN_K} model)")
        return
    reconstruction_figure(model, faces(chapter, RECONSTRUCTED), f"Reconstruction, K = {MAIN_K} [{chapter.profile}]")
    plt.show()
    swap_grid_figure(model, faces(chapter, GRID),
                     f"Appearance of A with the landmarks of B, K = {MAIN_K} [{chapter.profile}]")
    plt.show()


def face_swap_pngs(model, images: torch.Tensor) -> list[list[bytes]]:
    """``pngs[a][b]``: appearance face ``a``, pose face ``b`` with its landmarks, and ``a`` rendered
    with ``b``'s landmarks, side by side, for every pair of ``images`` ((N, 3, H, W) in [0, 1])."""
    pngs = []
    for i in range(len(images)):
        out = model.swap(images[i:i + 1].expand(len(images), -1, -1, -1), images)
        row = []
        for j in range(len(images)):
            fig, axes = plt.subplots(1, 3, figsize=(6, 2.2))
            viz.show_landmarks(axes[0], out["appearance_view"][j].cpu(), title="appearance A")
            _show_pose(axes[1], out, j, 12, "pose B")
            viz.show_landmarks(axes[2], out["generated"][j].cpu(), title="A with B's landmarks")
            row.append(viz.figure_png(fig, dpi=70))
        pngs.append(row)
    return pngs


def show_face_swap(chapter, model) -> None:
    """Two sliders pick an appearance face and a pose face among test_mtfl faces
    :data:`SWAP_POOL` (:func:`face_swap_pngs`, linked in the browser), or say there is no model."""
    if model is None:
        chapter.missing(f"The face-swap widget (the K = {MAIN_K} model)")
        return
    names = [f"test_mtfl face {i}" for i in SWAP_POOL]
    display(viz.pair_stack(face_swap_pngs(model, faces(chapter, SWAP_POOL)), names, names,
                           row_description="A", col_description="B"))


# --------------------------------------------------------------------------- the ablation and training

def ablation(chapter, main_run=None) -> dict:
    """``{label: record}`` of the ablation (:data:`ABLATION`: the perceptual loss against a pixel
    loss, K = :data:`MAIN_K`), over the budget's ablation config (``lmcore.experiments.jakab.BUDGETS``: shorter in
    ``cpu``, the learning-rate decay at the same fraction); a variant equal to ``main_run`` (the
    K = :data:`MAIN_K` run, where there is one) is that run."""
    return chapter.variants("jakab", ABLATION, base=method_settings("jakab").ablation_config(chapter.settings),
                            prefix="ablation", reuse=[r for r in (main_run,) if r is not None])


def show_ablation(chapter, records: dict) -> None:
    """The ablation's errors on the protocol, one row per label, or say that there are none."""
    if not records:
        chapter.missing("The ablation, perceptual against pixel loss")
        return
    display(reporting.protocol_table(list(records.values()),
                                     label=lambda r: next(label for label, x in records.items() if x is r)))
