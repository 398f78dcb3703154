"""The page "Landmarks on your photo": the zoo's detectors on whole photos (:mod:`lmcore.faces`),
the upload widget, and the whole pipeline's quality on MTFL-80 faces placed in larger photos
(:mod:`lmcore.placed_faces`), with the verdict on which model to pick."""
from __future__ import annotations

import io

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display
from PIL import Image

from ..data.sources import get_source
from ..detect import draw_faces
from ..evaluation import paired_difference
from ..faces import PhotoDetector, as_photo, crop_square
from ..paths import RESULTS_DIR
from ..placed_faces import FINDER_ROW, MEAN_SHAPE_ROW, PlacedQuality, paste_face
from ..training.records import read_record
from ..zoo import available, is_direct, load_detector, record_path

#: placed test_mtfl faces the quality table scores, per profile (the smoke profile proves the code
#: path: its intervals are too wide to rank anything)
PLACED_FACES = {"smoke": 12}
DEFAULT_PLACED_FACES = 200
#: the models the smoke profile scores (every other profile: every leaderboard run with weights)
SMOKE_MODELS = ("zhang/k10", "fse/k10")
PIPELINE, CROP = "pipeline, found faces", "crop, found faces"


def page_models(profile: str) -> list[str]:
    """The zoo's unsupervised face detectors the page scores: the leaderboard's runs that have
    weights, less the supervised detector, which the page shows as its baseline."""
    if profile == "smoke":
        return list(SMOKE_MODELS)
    runs = pd.read_csv(RESULTS_DIR / "leaderboard.csv")["run"]
    zoo = set(available())
    return [run for run in runs if run in zoo and not is_direct(read_record(record_path(run), check_digest=False))]


def placed_faces_count(profile: str) -> int:
    return PLACED_FACES.get(profile, DEFAULT_PLACED_FACES)


def several_faces_photo(size=(480, 320)) -> Image.Image:
    """Three test_mtfl faces pasted into an LSPET-128 photo (people at sport): a photo with several
    faces of known points, made from the data the book ships with."""
    faces = get_source("mtfl80").split("test_mtfl", limit=3)
    background = get_source("lspet128").split("val", limit=3).images[2].permute(1, 2, 0).numpy()
    photo = Image.fromarray(background).resize(size, Image.Resampling.BICUBIC)
    for image, square in zip(faces.images, [(20, 90, 130), (190, 40, 110), (330, 150, 140)]):
        photo = Image.fromarray(paste_face(photo, image.permute(1, 2, 0).numpy(), square))
    return photo


def photo_figure(detector: PhotoDetector, photos: dict, taken_whole: tuple = (), size: float = 4.0):
    """Each photo of ``photos`` (``{title: image}``) with its faces' landmarks (dots), 5 points
    (crosses) and boxes; the photos titled in ``taken_whole`` are taken whole as a face crop (their
    centre square, as before faces were found: ``--crop``). Returns the figure."""
    fig, axes = plt.subplots(1, len(photos), figsize=(size * len(photos), size), squeeze=False)
    for ax, (title, image) in zip(axes[0], photos.items()):
        photo = as_photo(image)
        whole = title in taken_whole
        faces = detector(photo, crop=whole)
        ax.imshow(np.asarray(photo))
        draw_faces(ax, faces)
        found = f"{len(faces)} face{'' if len(faces) == 1 else 's'} found"
        ax.set_title(f"{title}: {'its centre square as the crop' if whole else found}", fontsize=10)
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def upload_widget(detector: PhotoDetector):
    """A file-upload button: each photo uploaded is shown with its faces' points (in Jupyter Lab;
    the static book keeps the button but has no kernel to answer it)."""
    upload = widgets.FileUpload(accept="image/*", multiple=False, description="your photo")
    output = widgets.Output()

    def show(change):
        output.clear_output()
        with output:
            for item in change["new"]:
                try:
                    photo = Image.open(io.BytesIO(item["content"].tobytes()))
                    fig = photo_figure(detector, {item["name"]: photo}, size=6.0)
                except Exception as exc:  # a file that is not a photo: one line, in the widget
                    print(f"{item['name']}: {type(exc).__name__}: {exc}")
                    continue
                plt.show(fig)

    upload.observe(show, names="value")
    display(widgets.VBox([upload, output]))


def quality_table(quality: PlacedQuality):
    """The table of :func:`lmcore.placed_faces.placed_quality`, formatted (errors in % of IOD)."""
    shown = quality.table.drop(columns=["faces found"])
    return (shown.style.format(precision=2, na_rep="-")
            .format("{:.0%}", subset=["pipeline failures"], na_rep="-").set_caption(
                f"{len(quality.placed)} test_mtfl faces placed in 320 px photos; {quality.table['faces found'].iloc[0]:.0%} "
                f"found; errors in % of the inter-ocular distance; supervised baseline {quality.supervised:.2f} "
                "(on crops, all of test_mtfl)"))


def quality_figure(quality: PlacedQuality):
    """Each model's error on its crops and through the whole pipeline (same found faces), with the
    supervised baseline and the mean shape as lines. Returns the figure."""
    table = quality.table.drop(index=[MEAN_SHAPE_ROW, FINDER_ROW])
    fig, ax = plt.subplots(figsize=(max(6.0, 1.0 * len(table)), 4.0))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table[CROP], 0.4, label="on its 80 px crops", color="tab:gray")
    ax.bar(x + 0.2, table[PIPELINE], 0.4, label="whole pipeline on the photos", color="tab:blue")
    ax.axhline(quality.supervised, color="tab:green", linestyle="--", label="supervised (crops)")
    ax.axhline(quality.table.loc[MEAN_SHAPE_ROW, PIPELINE], color="tab:red", linestyle=":", label="mean shape (pipeline)")
    ax.axhline(quality.table.loc[FINDER_ROW, PIPELINE], color="tab:purple", linestyle="-.",
               label="MTCNN's own points")
    ax.set_xticks(x, table.index, rotation=40, ha="right", fontsize=9)
    ax.set_ylabel("forward error, % IOD")
    ax.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.5))
    fig.tight_layout()
    return fig


def best_models(quality: PlacedQuality) -> tuple[str, list[str]]:
    """The model with the lowest pipeline error, and the others that a paired bootstrap over the
    same found faces cannot tell from it."""
    table = quality.table.drop(index=[MEAN_SHAPE_ROW, FINDER_ROW])
    best = table[PIPELINE].idxmin()
    found = np.isfinite(quality.errors[best]["pipeline"])
    tied = [name for name in table.index if name != best and not paired_difference(
        quality.errors[name]["pipeline"][found], quality.errors[best]["pipeline"][found])["certain"]]
    return best, tied


def verdict(quality: PlacedQuality) -> str:
    """Which model to pick, how far it and the others are from the supervised baseline, and what
    the pipeline costs: markdown, from the numbers."""
    table = quality.table.drop(index=[MEAN_SHAPE_ROW, FINDER_ROW])
    best, tied = best_models(quality)
    row = table.loc[best]
    worst_cost = table["pipeline - crop"].idxmax()
    lines = [f"**Pick {best}**: {row[PIPELINE]:.2f} % of the inter-ocular distance through the whole pipeline "
             f"({row['pipeline - supervised']:+.2f} from the supervised baseline's {quality.supervised:.2f}, "
             f"which was measured on crops), against {row[CROP]:.2f} on the same faces' own crops."]
    if tied:
        lines.append(f"On these {len(quality.placed)} faces a paired bootstrap cannot tell it from {', '.join(tied)}: "
                     "any of them is as good a choice.")
    lines.append(f"Through the pipeline the models are {table['pipeline - supervised'].min():.1f} to "
                 f"{table['pipeline - supervised'].max():.1f} points of IOD from the supervised baseline. The pipeline "
                 f"costs {worst_cost} the most, {table.loc[worst_cost, 'pipeline - crop']:+.2f} against its own crops "
                 f"(95 % interval {table.loc[worst_cost, '95% interval']}), and "
                 f"{table.loc[table['pipeline - crop'].idxmin(), 'pipeline - crop']:+.2f} to "
                 f"{table['pipeline - crop'].idxmin()}: the cut-out face is the same for every model, so what differs is "
                 "how much each detector depends on the face sitting where MTFL-80's crops put it.")
    lines.append(f"The mean shape placed in each crop scores {quality.table.loc[MEAN_SHAPE_ROW, PIPELINE]:.2f}; "
                 f"MTCNN's own 5 points (supervised, on other faces) {quality.table.loc[FINDER_ROW, PIPELINE]:.2f}. "
                 f"The finder also reported {quality.other_boxes} boxes that are none of the placed faces "
                 f"(in {len(quality.placed)} photos of people at sport: some are real faces of the background).")
    return "\n\n".join(lines)


def pipeline_examples(quality: PlacedQuality, model: str, count: int = 6, size: float = 2.4):
    """The first ``count`` placed faces, each zoomed from its photo, with the pipeline's points of
    ``model`` (white crosses, its landmarks as dots, the finder's box) and the labels (green rings),
    and each face's error. Returns the figure."""
    detector = PhotoDetector(load_detector(model))
    fig, axes = plt.subplots(1, count, figsize=(size * count, size))
    for i, ax in enumerate(axes):
        photo, match = Image.fromarray(quality.placed.photos[i]), quality.matches[i]
        ax.imshow(quality.placed.photos[i])
        if match is not None:
            draw_faces(ax, detector.on_squares(photo, [crop_square(match.box)], [match]))
        ax.scatter(*quality.placed.points[i].T, s=40, facecolors="none", edgecolors="lime", linewidths=1.5)
        left, top, side = quality.placed.squares[i]
        margin = 0.3 * side
        ax.set_xlim(left - margin, left + side + margin)
        ax.set_ylim(top + side + margin, top - margin)
        error = quality.errors[model]["pipeline"][i]
        ax.set_title("not found" if match is None else f"{error:.1f} % IOD", fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    return fig
