"""Drawing helpers and browser-linked widgets that the chapters' figures build on."""
from __future__ import annotations

import ast
import html
import inspect
import re
import textwrap

import io
from typing import Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from IPython.display import HTML, display

from ...profiles import DESCRIPTIONS
from ..references import DESCRIPTION, REFERENCE, TRAIN_COMMAND
from ..tables import code_html

POINT_COLOURS = ["#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00"]


def landmark_colours(k: int) -> list:
    """K distinct colours (tab10, then tab20, then a continuous map)."""
    cmap = plt.get_cmap("tab10" if k <= 10 else "tab20" if k <= 20 else "gist_rainbow")
    return [cmap(i % cmap.N if k <= 20 else i / max(k - 1, 1)) for i in range(k)]


def to_hwc(image) -> np.ndarray:
    """``3 x H x W`` uint8/float tensor or array -> ``H x W x 3`` float array in [0, 1]."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        image = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
        image = image.numpy()
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] in (1, 3):
        image = image.transpose(1, 2, 0)
    return np.clip(image.squeeze(), 0, 1)


def show_landmarks(ax, image, points=None, colours=None, marker="o", size=18, title=None, edge=None):
    """Draw an image (``3 x H x W``) with pixel-coordinate points (``K x 2``) on ``ax``."""
    img = to_hwc(image)
    h, w = img.shape[:2]
    ax.imshow(img, extent=(0, w, h, 0), cmap="gray" if img.ndim == 2 else None)
    if points is not None:
        pts = np.asarray(points.detach().cpu() if isinstance(points, torch.Tensor) else points)
        colours = colours or landmark_colours(len(pts))
        ax.scatter(pts[:, 0], pts[:, 1], c=colours[: len(pts)], s=size, marker=marker,
                   edgecolors=edge or ("white" if marker == "o" else None), linewidths=0.6)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=8)


def image_grid(images, point_sets: Sequence | None = None, ncols: int = 8, titles=None, size: float = 1.6,
               colours=None, marker="o", point_size=14):
    """A contact sheet: one panel per image, each with its points. Returns the figure."""
    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        pts = None if point_sets is None else point_sets[i]
        show_landmarks(ax, images[i], pts, colours=colours, marker=marker, size=point_size,
                       title=titles[i] if titles else None)
    fig.tight_layout(pad=0.2)
    return fig


def figure_png(fig, dpi: int = 80) -> bytes:
    """Render a figure to PNG bytes and close it (for widgets)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def slider_stack(pngs: Sequence[bytes], labels: Sequence[str], description: str = "frame", width: str = "520px"):
    """An ipywidgets browser: a slider picks one of several pre-rendered images.

    The slider and the image stack are linked in the browser (``jslink``), so the widget works
    in Jupyter Lab *and* in the static book, where no kernel runs.
    """
    images = [widgets.Image(value=png, format="png", layout=widgets.Layout(width=width)) for png in pngs]
    stack = widgets.Stack(images, selected_index=0)
    slider = widgets.IntSlider(value=0, min=0, max=len(pngs) - 1, description=description, continuous_update=True,
                               readout=False, layout=widgets.Layout(width=width))
    caption = widgets.Stack([widgets.HTML(f"<b>{label}</b>") for label in labels], selected_index=0)
    widgets.jslink((slider, "value"), (stack, "selected_index"))
    widgets.jslink((slider, "value"), (caption, "selected_index"))
    return widgets.VBox([slider, caption, stack])


def pair_stack(pngs: Sequence[Sequence[bytes]], row_labels: Sequence[str], col_labels: Sequence[str],
               row_description: str = "A", col_description: str = "B", width: str = "520px"):
    """Two sliders pick (row, column) among pre-rendered images ``pngs[row][col]``, in the browser."""
    col_slider = widgets.IntSlider(value=0, min=0, max=len(col_labels) - 1, description=col_description,
                                   readout=False, layout=widgets.Layout(width=width))
    row_slider = widgets.IntSlider(value=0, min=0, max=len(row_labels) - 1, description=row_description,
                                   readout=False, layout=widgets.Layout(width=width))
    rows = []
    for row in pngs:
        inner = widgets.Stack([widgets.Image(value=p, format="png", layout=widgets.Layout(width=width)) for p in row],
                              selected_index=0)
        widgets.jslink((col_slider, "value"), (inner, "selected_index"))
        rows.append(inner)
    outer = widgets.Stack(rows, selected_index=0)
    widgets.jslink((row_slider, "value"), (outer, "selected_index"))
    row_caption = widgets.Stack([widgets.HTML(f"{row_description}: <b>{t}</b>") for t in row_labels], selected_index=0)
    col_caption = widgets.Stack([widgets.HTML(f"{col_description}: <b>{t}</b>") for t in col_labels], selected_index=0)
    widgets.jslink((row_slider, "value"), (row_caption, "selected_index"))
    widgets.jslink((col_slider, "value"), (col_caption, "selected_index"))
    return widgets.VBox([row_slider, row_caption, col_slider, col_caption, outer])


#: the class of a stand-in box, the marker the page check (tools/check_book.py) counts them by
STAND_IN_CLASS = "lmbook-stand-in"


class StandIn:
    """What a chapter shows where a table or figure cannot be: a box with a stable class
    (:data:`STAND_IN_CLASS`) in the page, saying what is missing and why, ``command``s in code; the
    same sentence as plain text outside a notebook (``str``). Displayed by
    :meth:`lmcore.book.chapter.Chapter.missing`."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        body = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(self.text, quote=False))
        return f'<div class="{STAND_IN_CLASS}" data-lmbook="stand-in">{body}</div>'


def profile_note(profile: str) -> str:
    """A Markdown line saying what the profile's numbers are worth."""
    if profile == REFERENCE:
        return (f"**Profile `reference`**: {DESCRIPTION}. Each table says which commit trained each reference and "
                f"whether `lmcore` has changed since; `{TRAIN_COMMAND}` trains this chapter's runs instead.")
    text = DESCRIPTIONS[profile]
    if profile == "smoke":
        return f"**Profile `smoke`**: {text}. Every number below is a code-path check, not a result."
    return f"**Profile `{profile}`**: {text}."


def show_code(*sources: str) -> None:
    """Display source code (:func:`code_excerpt`, ``inspect.getsource``) as a code block of the page:
    wrapped, never cut, its docstrings' backticks inside code."""
    display(HTML("".join(code_html(source) for source in sources)))


def code_excerpt(function) -> str:
    """``function``'s source without its docstring: the lines a chapter quotes for an equation."""
    source = inspect.getsource(function)
    tree = ast.parse(textwrap.dedent(source)).body[0]
    if ast.get_docstring(tree) is None:
        return source
    lines = source.splitlines(keepends=True)
    first_body_line = tree.body[1].lineno - 1 if len(tree.body) > 1 else len(lines)
    header = lines[:tree.body[0].lineno - 1]  # the def line(s), up to the docstring
    return "".join(header + lines[first_body_line:])
