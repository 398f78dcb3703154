"""Chapter 0's tables and figures: MTFL-80's faces, its splits, the mean-shape yardstick and the
supervised detector: its runs, the papers' supervised detectors and its points on test faces."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from ..data import POINT_NAMES, LandmarkSet
from ..evaluation import detect_all, mean_shape_error, normalised_errors
from ..training import load_references
from . import papers, reporting
from .tables import explain_missing
from .viz import POINT_COLOURS, figure_png, image_grid, show_landmarks, slider_stack

#: how the chapter's figures name each annotated point's colour (``POINT_COLOURS``' order)
COLOUR_NAMES = ("red", "blue", "green", "purple", "orange")


def sample_faces(split: LandmarkSet, count: int = 8, rng: np.random.Generator | None = None) -> np.ndarray:
    """``count`` distinct indices of ``split`` drawn by ``rng`` (the chapter draws test_mtfl's, then
    test_aflw's, from one generator seeded 0, so its figures show the same faces every build)."""
    rng = np.random.default_rng(0) if rng is None else rng
    return rng.choice(len(split), count, replace=False)


def annotated_faces_figure(shown: dict[str, tuple[LandmarkSet, np.ndarray]]):
    """A contact sheet of the ``{split name: (split, indices)}`` faces with their annotated points,
    eight per row; returns the figure."""
    images, points, titles = [], [], []
    for name, (split, index) in shown.items():
        images += list(split.images[index])
        points += list(split.points[index])
        titles += [f"{name} {i}" for i in index]
    fig = image_grid(images, points, ncols=8, colours=POINT_COLOURS, titles=titles)
    fig.suptitle("Annotated points: " + ", ".join(f"{n} ({c})" for n, c in zip(POINT_NAMES, COLOUR_NAMES)),
                 fontsize=9, y=1.02)
    return fig


def excluded_faces_figure(data, count: int = 8):
    """The first ``count`` faces the protocol excludes for bad labels, with those labels, titled
    by file name; returns the figure."""
    bad = data.by_names(data.splits["excluded_bad_labels"][:count])
    return image_grid(list(bad.images), list(bad.points), ncols=8, colours=POINT_COLOURS,
                      titles=[n.split("/")[-1] for n in bad.names])


def check_shipped_splits(data) -> list[str]:
    """The names of the splits that the protocol derives from MTFL-80's labels (``data.splits``),
    each checked against the list shipped with the data (``<root>/splits/<name>.txt``); raises
    ``ValueError`` naming the splits that differ."""
    differ = [name for name in data.splits
              if (data.root / "splits" / f"{name}.txt").read_text().split() != data.splits[name]]
    if differ:
        raise ValueError(f"derived splits differ from the lists shipped in {data.root / 'splits'}: {', '.join(differ)}")
    return sorted(data.splits)


def mean_shape_table(regressor_train: LandmarkSet, tests: dict[str, LandmarkSet]) -> pd.DataFrame:
    """The mean shape's forward error on each test split: its mean and each point's (% of IOD,
    rounded to 2 digits), one column per split; the mean shape is regressor_train's."""
    errors = {name: mean_shape_error(regressor_train.points, split.points) for name, split in tests.items()}
    return pd.DataFrame({name: [round(r["mean"], 2)] + [round(v, 2) for v in r["per_point"]]
                         for name, r in errors.items()}, index=["mean (% IOD)"] + list(POINT_NAMES))


def predictions_figure(model, faces: LandmarkSet, profile: str, count: int = 16):
    """The first ``count`` faces with ``model``'s landmarks (crosses) over the annotated points
    (dots); returns the figure."""
    predicted = detect_all(model.detect, faces.images[:count])
    fig = image_grid(list(faces.images[:count]), list(predicted), ncols=8, colours=POINT_COLOURS, marker="x",
                     point_size=22)
    for ax, truth in zip(fig.axes, faces.points[:count]):
        ax.scatter(truth[:, 0], truth[:, 1], s=8, c="white", edgecolors="black", linewidths=0.4)
    fig.suptitle(f"Supervised detector ({profile} profile) on test_mtfl: crosses predicted, dots annotated",
                 fontsize=9, y=1.02)
    return fig


def face_browser(shown: dict[str, tuple[LandmarkSet, np.ndarray]], model, profile: str):
    """A slider over the ``{split name: (split, indices)}`` faces, each with its annotated points
    and, given a ``model``, its landmarks (crosses) and their error in % of IOD."""
    pngs, labels = [], []
    for name, (split, index) in shown.items():
        guesses = detect_all(model.detect, split.images[index]) if model is not None else [None] * len(index)
        for i, guess in zip(index, guesses):
            fig, ax = plt.subplots(figsize=(3, 3))
            show_landmarks(ax, split.images[i], split.points[i], colours=POINT_COLOURS, size=40)
            label = f"{name} image {i}"
            if guess is not None:
                ax.scatter(guess[:, 0], guess[:, 1], marker="x", c=POINT_COLOURS, s=50)
                error = normalised_errors(guess[None], split.points[i][None]).mean()
                label += f": supervised error {error:.1f} % IOD ({profile} profile)"
            pngs.append(figure_png(fig))
            labels.append(label)
    return slider_stack(pngs, labels, description="face", width="320px")


# ------------------------------------------------------------------ the chapter's sections
def show_sizes(data) -> None:
    """How many images each split of MTFL-80 has, and the folder it was read from."""
    sizes = data.describe()
    display(pd.DataFrame({"images": {k: v for k, v in sizes.items() if k != "root"}}))
    print("read from", sizes["root"])


def supervised_label(record) -> str:
    """A supervised run's row label: its name and whether it is the committed reference."""
    return f"{record.run_name} ({'committed reference' if record.is_reference else 'this execution'})"


def show_supervised(chapter):
    """The supervised detector's errors and provenance: this build's run (a training profile)
    beside the committed references; returns this build's run (None in the reference profile's
    place when there is none)."""
    supervised = chapter.headline_runs("00_data_and_protocol").get("reference")
    runs = ([supervised] if chapter.trains and supervised is not None else []) + load_references("supervised")
    display(reporting.error_table(runs, "forward", label=supervised_label))
    display(reporting.provenance_table(runs, label=supervised_label))
    return supervised


def quoted_supervised_table() -> pd.DataFrame:
    """The supervised detectors the papers quote (:data:`lmcore.book.papers.SUPERVISED`), one row
    each, a column per test set; "–" where the paper gives no number."""
    table = pd.DataFrame(papers.SUPERVISED["rows"], index=[f"{c} (paper)" for c in papers.SUPERVISED["columns"]]).T
    return explain_missing(table, f"the paper quotes no number for that detector on that test set "
                                  f"({papers.SUPERVISED['source']})")


def show_quoted_supervised() -> None:
    """:func:`quoted_supervised_table` and its source."""
    display(quoted_supervised_table())
    print("source:", papers.SUPERVISED["source"])


def show_supervised_on_faces(chapter, supervised):
    """The supervised detector's points on test faces (or why not); returns its model, or None."""
    model = chapter.model(supervised) if chapter.has_model(supervised) else None
    if model is None:
        chapter.missing("The supervised detector on test faces (its reference carries no weights)")
        return None
    predictions_figure(model, chapter.test_mtfl, chapter.profile)
    plt.show()
    return model
