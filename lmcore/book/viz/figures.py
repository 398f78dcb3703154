"""Figures the chapters share: landmarks under warps and across instances, regression results,
the regressor's contribution graph, learning and few-shot curves, and the checkpoint scrubber."""
from __future__ import annotations

from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from ...evaluation import detect_all, fit_linear_map
from ...geometry import WarpSpec, random_tps, warp_image
from ...geometry.coords import normalized_to_pixels
from ...methods.base import LEARNING_CURVE_KEY, SNAPSHOT_KEY
from ...zoo import lineage
from .basics import POINT_COLOURS, figure_png, landmark_colours, show_landmarks, slider_stack


def landmarks_under_warps(detect: Callable, image: torch.Tensor, spec: WarpSpec, count: int = 5, seed: int = 0,
                          title: str | None = None):
    """One image (uint8 ``3 x H x W``) and ``count - 1`` random warps of it, each with the landmarks
    detected on it: equivariant landmarks stay on the same parts (Thewlis Figs. 3-5, top rows)."""
    g = torch.Generator().manual_seed(seed)
    base = image.float()[None] / 255.0
    warps = random_tps(spec, count - 1, g)
    views = torch.cat([base, warp_image(base.expand(count - 1, -1, -1, -1), warps)])
    size = image.shape[-1]
    points = normalized_to_pixels(detect(views).cpu(), size)
    fig, axes = plt.subplots(1, count, figsize=(1.9 * count, 2.1))
    colours = landmark_colours(points.shape[1])
    for i, ax in enumerate(axes):
        show_landmarks(ax, views[i], points[i], colours=colours, size=16, title="original" if i == 0 else f"warp {i}")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.2, rect=(0, 0, 1, 0.92 if title else 1))  # the title above the panels' own
    return fig


def landmarks_on_instances(detect: Callable, images: torch.Tensor, ncols: int = 8, title: str | None = None):
    """Landmarks detected on different faces (uint8 ``N x 3 x H x W``), one colour per landmark."""
    points = detect_all(detect, images)
    colours = landmark_colours(points.shape[1])
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.7 * ncols, 1.7 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < n:
            show_landmarks(ax, images[i], points[i], colours=colours, size=12)
        else:
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.2, rect=(0, 0, 1, 0.92 if title else 1))  # the title above the panels' own
    return fig


def regression_on_faces(discovered_train, annotated_train, discovered_test, annotated_test, images, count: int = 8,
                        intercept: bool = True, title: str | None = None):
    """Annotated points predicted from the discovered ones (Thewlis Fig. 6): discovered landmarks
    as small crosses, predictions as large dots, ground truth as small white dots."""
    fit = fit_linear_map(discovered_train, annotated_train, intercept=intercept)
    predicted = fit.predict(np.asarray(discovered_test[:count]))
    fig, axes = plt.subplots(1, count, figsize=(1.9 * count, 2.1))
    k = discovered_test.shape[1]
    for i, ax in enumerate(axes):
        show_landmarks(ax, images[i], discovered_test[i], colours=["0.7"] * k, marker="x", size=10)
        ax.scatter(predicted[i, :, 0], predicted[i, :, 1], c=POINT_COLOURS, s=26, edgecolors="black", linewidths=0.5)
        truth = np.asarray(annotated_test[i])
        ax.scatter(truth[:, 0], truth[:, 1], c="white", s=6, edgecolors="black", linewidths=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.2, rect=(0, 0, 1, 0.92 if title else 1))  # the title above the panels' own
    return fig


def regressor_graph(discovered_train, annotated_train, image, discovered, annotated, threshold: float = 0.2,
                    title: str | None = None):
    """Which discovered landmarks the regressor uses for each annotated one (Thewlis Fig. 7).

    For each annotated point: the absolute coefficients of its regressor column, summed over x and
    y per discovered landmark, l1-normalised; contributions below ``threshold`` are dropped; arrow
    width is proportional to the contribution.
    """
    fit = fit_linear_map(discovered_train, annotated_train, intercept=True)
    k = np.asarray(discovered).shape[0]
    weights = np.abs(fit.weight).reshape(k, 2, -1, 2).sum(axis=(1, 3))  # K discovered x P annotated
    weights = weights / weights.sum(0, keepdims=True)
    fig, ax = plt.subplots(figsize=(3.6, 3.6))
    colours = landmark_colours(k)
    show_landmarks(ax, image, discovered, colours=colours, marker="x", size=40)
    annotated = np.asarray(annotated)
    discovered = np.asarray(discovered)
    ax.scatter(annotated[:, 0], annotated[:, 1], s=60, c="#2ca02c", edgecolors="white", zorder=3)
    for target in range(annotated.shape[0]):
        for source in range(k):
            w = weights[source, target]
            if w < threshold:
                continue
            ax.annotate("", xy=annotated[target], xytext=discovered[source],
                        arrowprops=dict(arrowstyle="->", color=colours[source], lw=0.5 + 6 * w, alpha=0.8))
    if title:
        ax.set_title(title, fontsize=8)
    return fig, weights


def learning_curves(records: Sequence[dict], label: Callable[[dict], str] | None = None, ax=None,
                    reference_line: float | None = None, reference_label: str = "mean shape", root=None):
    """Forward error on test_mtfl during training (regressor on 2,000 labelled faces) against
    training time, for each run record. A run started from a reference (``train.init_from``)
    shows its whole lineage: the ancestors' curves first (thin, same colour), its own after their
    training time (``root``: where the ancestors' records are, default ``results/``)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.4))
    for record in records:
        offset, colour = 0.0, None
        chain = lineage(record, root)
        for member in chain:
            history = [h for h in member.get("history", []) if LEARNING_CURVE_KEY in h]
            own = member is chain[-1]
            if history:
                minutes = [offset + h["wall_time_s"] / 60 for h in history]
                kwargs = {"marker": "o", "ms": 3} if own else {"lw": 1, "alpha": 0.6}
                line, = ax.plot(minutes, [h[LEARNING_CURVE_KEY] for h in history], color=colour, **kwargs,
                                label=((label(record) if label else record.get("run_name")) + f" [{record['profile']}]"
                                       + (f" (from {chain[0].get('run_name')}, {len(chain) - 1} ancestor(s))"
                                          if len(chain) > 1 else "")) if own else None)
                colour = line.get_color()
            offset += member.get("wall_time_s", 0) / 60
    if reference_line is not None:
        ax.axhline(reference_line, color="0.5", ls="--", lw=1, label=reference_label)
    ax.set_xlabel("training time (min)")
    ax.set_ylabel("forward error, test_mtfl (% IOD)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return ax


def few_shot_plot(curves: dict[str, list], paper: dict | None = None, paper_label: str = "paper", ax=None):
    """Error against the number of labelled images: ``curves`` maps a label to a few-shot curve
    (entries with ``n``, ``mean``, ``std``); ``paper`` maps n to the paper's value."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.4))
    for name, curve in curves.items():
        n = [c["n"] for c in curve]
        ax.errorbar(n, [c["mean"] for c in curve], yerr=[c["std"] for c in curve], marker="o", ms=3, capsize=2,
                    label=name)
    if paper:
        ax.plot(list(paper), list(paper.values()), "k--", marker="s", ms=3, label=paper_label)
    ax.set_xscale("log")
    ax.set_xlabel("labelled images for the regressor (n)")
    ax.set_ylabel("forward error (% IOD)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return ax


def checkpoint_scrubber(record: dict, images: torch.Tensor, width: str = "640px"):
    """A slider through the run's training checkpoints: the landmarks that each evaluation step
    recorded on a few test faces (``images``: the first test_mtfl faces, uint8)."""
    history = [h for h in record.get("history", []) if SNAPSHOT_KEY in h]
    if not history:
        raise ValueError("the record carries no landmark snapshots (trained without a learning curve)")
    pngs, labels = [], []
    for entry in history:
        points = np.asarray(entry[SNAPSHOT_KEY])
        n = min(len(points), len(images))
        fig, axes = plt.subplots(1, n, figsize=(1.6 * n, 1.8))
        colours = landmark_colours(points.shape[1])
        for i, ax in enumerate(np.atleast_1d(axes)):
            show_landmarks(ax, images[i], points[i], colours=colours, size=14)
        fig.tight_layout(pad=0.1)
        pngs.append(figure_png(fig, dpi=70))
        labels.append(f"step {entry['step']} ({entry['wall_time_s'] / 60:.1f} min): forward error "
                      f"{entry[LEARNING_CURVE_KEY]:.1f} % IOD [{record['profile']} profile]")
    return slider_stack(pngs, labels, description="checkpoint", width=width)
