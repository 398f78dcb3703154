"""How well the whole photo pipeline works: MTFL-80 faces placed in larger photos.

MTFL-80's images are already face crops, so its test numbers say how a detector does once
somebody has cut the face out. Here each face is pasted, at a random size and position, into a
larger photo whose background is a real photo (an LSPET-128 image of people at sport, from its
``val`` split, which no face model trained on), and the whole pipeline runs on the photo: the face
finder, the crop (:func:`lmcore.faces.crop_square`), the detector and its regressor. Its points are
scored against the placed face's annotated points by the protocol's error (mean point-to-point
distance in % of the inter-ocular distance), beside

* the same faces' error on their own 80 px crops (the record's protocol: the "crop-based" number);
* the error when the face is cut from the photo at the exact square where it was pasted (what a
  perfect finder would give: it separates the cost of resampling from the cost of framing).

A placed face counts as **found** when a box of the finder holds the centre of its 5 annotated
points and its size is between 1 and 6 inter-ocular distances (:func:`match_face`); boxes that
match no placed face (a finder's mistake, or a real person of the background) are counted apart.

:func:`calibrate_crop` measures, on regressor_train faces, the framing :mod:`lmcore.faces` crops
with; :func:`placed_quality` scores on test_mtfl faces.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from PIL import Image

from .data.mtfl import IMAGE_SIZE, LandmarkSet
from .data.sources import get_source
from .evaluation import failure_rate, normalised_errors, paired_difference
from .faces import FaceFinder, FoundFace, crop_face, crop_square, crop_to_photo
from .training.run_record import RunRecord
from .zoo import load_detector, record_path

#: side of the placed photos (px); each face's 80 px crop is pasted at a side drawn log-uniformly
#: from FACE_SIDES, so from 0.8 to 2.4 times its own size, and the face is always whole in the photo
PHOTO_SIDE = 320
FACE_SIDES = (64, 192)
#: the pasted crop fades into the background over this fraction of its side (no hard square edge
#: for the finder to key on)
FEATHER = 0.1
#: a finder's box matches a placed face when its size is within these multiples of the face's IOD
MATCH_SIZES_IOD = (1.0, 6.0)
#: the supervised baseline of chapter 0, which the table measures the models against
SUPERVISED_RECORD = "supervised/reference"
#: the table's rows beside the models: the mean shape in each crop, and the finder's own points
MEAN_SHAPE_ROW, FINDER_ROW = "mean shape", "MTCNN's own 5 points"


@dataclass
class PlacedFaces:
    """Photos with one placed face each: ``photos`` ``N x S x S x 3`` uint8, ``squares`` ``N x 3``
    (left, top, side) where each 80 px crop was pasted, ``points`` ``N x 5 x 2`` the face's
    annotated points in the photo, ``faces`` the faces placed, in order."""

    photos: np.ndarray
    squares: np.ndarray
    points: np.ndarray
    faces: LandmarkSet

    def __len__(self) -> int:
        return len(self.photos)


def paste_face(background: Image.Image, face: np.ndarray, square: tuple[int, int, int]) -> np.ndarray:
    """``face`` (``h x w x 3`` uint8) resized to ``square`` (left, top, side) and blended into
    ``background`` with a border that fades over :data:`FEATHER` of its side."""
    left, top, side = square
    resized = np.asarray(Image.fromarray(face).resize((side, side), Image.Resampling.LANCZOS), dtype=np.float32)
    edge = np.minimum(np.arange(side) + 0.5, side - np.arange(side) - 0.5) / (FEATHER * side)
    alpha = np.clip(np.minimum(edge[:, None], edge[None, :]), 0, 1)[..., None]
    canvas = np.asarray(background, dtype=np.float32).copy()
    region = canvas[top:top + side, left:left + side]
    canvas[top:top + side, left:left + side] = alpha * resized + (1 - alpha) * region
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8)


def place_faces(faces: LandmarkSet, backgrounds: torch.Tensor, seed: int, photo_side: int = PHOTO_SIDE,
                face_sides: tuple[int, int] = FACE_SIDES) -> PlacedFaces:
    """One photo per face of ``faces`` (80 px crops and their points): a random image of
    ``backgrounds`` (``M x 3 x h x w`` uint8) enlarged to ``photo_side``, the face pasted at a
    random size in ``face_sides`` and a random position inside it. Deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    photos, squares = [], []
    for image in faces.images:
        background = backgrounds[int(rng.integers(len(backgrounds)))].permute(1, 2, 0).numpy()
        side = int(round(np.exp(rng.uniform(*np.log(face_sides)))))
        left, top = (int(v) for v in rng.integers(0, photo_side - side + 1, size=2))
        enlarged = Image.fromarray(background).resize((photo_side, photo_side), Image.Resampling.BICUBIC)
        photos.append(paste_face(enlarged, image.permute(1, 2, 0).numpy(), (left, top, side)))
        squares.append((left, top, side))
    squares = np.array(squares, dtype=np.float64)
    points = faces.points.numpy() * (squares[:, None, 2:] / IMAGE_SIZE) + squares[:, None, :2]
    return PlacedFaces(np.stack(photos), squares, points, faces)


def sample_faces(split: str, count: int, seed: int) -> LandmarkSet:
    """``count`` faces of MTFL-80's ``split``, drawn without replacement (all when fewer)."""
    faces = get_source("mtfl80").split(split)
    if count >= len(faces):
        return faces
    return faces.subset(np.sort(np.random.default_rng(seed).choice(len(faces), size=count, replace=False)))


def placed_photos(split: str, count: int, seed: int) -> PlacedFaces:
    """``count`` faces of MTFL-80's ``split`` placed on LSPET-128 val backgrounds."""
    return place_faces(sample_faces(split, count, seed), get_source("lspet128").split("val").images, seed)


def match_face(found: list[FoundFace], points: np.ndarray) -> FoundFace | None:
    """The finder's face that is the placed face with annotated ``points`` (``5 x 2``), or None:
    a box holding the points' centre, of a size within :data:`MATCH_SIZES_IOD`; the nearest."""
    centre = points.mean(0)
    iod = float(np.linalg.norm(points[0] - points[1]))
    low, high = MATCH_SIZES_IOD
    candidates = []
    for face in found:
        left, top, right, bottom = face.box
        size = ((right - left) + (bottom - top)) / 2
        if left <= centre[0] <= right and top <= centre[1] <= bottom and low * iod <= size <= high * iod:
            candidates.append((np.hypot((left + right) / 2 - centre[0], (top + bottom) / 2 - centre[1]), face))
    return min(candidates, key=lambda c: c[0])[1] if candidates else None


def find_placed(placed: PlacedFaces, finder: FaceFinder) -> tuple[list[FoundFace | None], int]:
    """The finder's match for each placed face (None: not found), and how many other boxes it
    reported (its mistakes, or real people of the backgrounds)."""
    matches, others = [], 0
    for photo, points in zip(placed.photos, placed.points):
        found = finder(Image.fromarray(photo))
        match = match_face(found, points)
        matches.append(match)
        others += len(found) - (match is not None)
    return matches, others


def calibrate_crop(placed: PlacedFaces, matches: list[FoundFace | None]) -> dict:
    """The framing that makes a crop around a finder's box match the placed crops, over the found
    faces: the geometric mean of the placed square's side over the box size (the mean of its width
    and height), and the mean shift from the box centre to the square's centre, in box sizes.
    MTFL-80 frames its LFW faces looser than its web faces, so the ratio has two modes: a mean
    moves smoothly with their shares where a median would jump between them.
    :data:`lmcore.faces.CROP_SCALE` and :data:`~lmcore.faces.CROP_SHIFT` are these numbers."""
    ratios = []
    for (left, top, side), match in zip(placed.squares, matches):
        if match is None:
            continue
        b_left, b_top, b_right, b_bottom = match.box
        size = ((b_right - b_left) + (b_bottom - b_top)) / 2
        ratios.append((np.log(side / size), (left + side / 2 - (b_left + b_right) / 2) / size,
                       (top + side / 2 - (b_top + b_bottom) / 2) / size))
    if not ratios:
        raise ValueError("the finder found none of the placed faces: nothing to calibrate on")
    log_scale, shift_x, shift_y = np.array(ratios).T
    return {"scale": float(np.exp(log_scale.mean())), "shift": (float(shift_x.mean()), float(shift_y.mean())),
            "faces": len(ratios)}


@dataclass
class PipelineCrops:
    """What the detectors see of the placed photos, cut once for every model: ``exact`` the
    80 px crops cut at the squares where the faces were pasted; ``found`` the crops the pipeline
    cuts around the finder's boxes (``found_squares``) for the faces it found (``found_index``)."""

    exact: torch.Tensor
    found: torch.Tensor
    found_squares: list
    found_index: np.ndarray


def _as_batch(crops: list[np.ndarray]) -> torch.Tensor:
    if not crops:
        return torch.zeros(0, 3, IMAGE_SIZE, IMAGE_SIZE)
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0


def cut_crops(placed: PlacedFaces, matches: list[FoundFace | None]) -> PipelineCrops:
    exact, found, squares, index = [], [], [], []
    for i, (photo, square, match) in enumerate(zip(placed.photos, placed.squares, matches)):
        image = Image.fromarray(photo)
        exact.append(crop_face(image, tuple(square)))
        if match is not None:
            squares.append(crop_square(match.box))
            found.append(crop_face(image, squares[-1]))
            index.append(i)
    return PipelineCrops(_as_batch(exact), _as_batch(found), squares, np.array(index, dtype=int))


def _points_in_photo(points: torch.Tensor, squares) -> np.ndarray:
    return np.stack([crop_to_photo(p.numpy(), s) for p, s in zip(points, squares)]) if len(squares) else np.zeros((0, 5, 2))


def model_errors(detector, placed: PlacedFaces, crops: PipelineCrops) -> dict[str, np.ndarray]:
    """Each placed face's error (% IOD, ``N``) for one zoo face detector
    (:class:`lmcore.zoo.Detector`): on its own 80 px crop (``crop``), cut from the photo at the
    square where it was pasted (``exact square``), and through the whole pipeline (``pipeline``,
    NaN where the face was not found)."""
    on_crops = detector.points(placed.faces.images.float() / 255.0)
    exact = _points_in_photo(detector.points(crops.exact), placed.squares)
    pipeline = np.full(placed.points.shape, np.nan)
    if len(crops.found_index):
        pipeline[crops.found_index] = _points_in_photo(detector.points(crops.found), crops.found_squares)
    return {"crop": normalised_errors(on_crops.numpy(), placed.faces.points.numpy()).mean(1),
            "exact square": normalised_errors(exact, placed.points).mean(1),
            "pipeline": normalised_errors(pipeline, placed.points).mean(1)}


def mean_shape_errors(placed: PlacedFaces, crops: PipelineCrops) -> dict[str, np.ndarray]:
    """The same errors for the mean shape of regressor_train (no detector: every face gets the
    average face's points in its crop), the floor any detector must clear."""
    mean = get_source("mtfl80").split("regressor_train").points.mean(0)
    shapes = lambda n: mean.expand(n, -1, -1)  # noqa: E731
    pipeline = np.full(placed.points.shape, np.nan)
    if len(crops.found_index):
        pipeline[crops.found_index] = _points_in_photo(shapes(len(crops.found_index)), crops.found_squares)
    return {"crop": normalised_errors(shapes(len(placed)).numpy(), placed.faces.points.numpy()).mean(1),
            "exact square": normalised_errors(_points_in_photo(shapes(len(placed)), placed.squares), placed.points).mean(1),
            "pipeline": normalised_errors(pipeline, placed.points).mean(1)}


def finder_point_errors(placed: PlacedFaces, matches: list[FoundFace | None]) -> np.ndarray:
    """Each placed face's error for the finder's own 5 points (MTCNN's, supervised on other
    faces), NaN where not found."""
    points = np.stack([np.full((5, 2), np.nan) if m is None else m.finder_points for m in matches])
    return normalised_errors(points, placed.points).mean(1)


@dataclass
class PlacedQuality:
    """:func:`placed_quality`'s result: the table, each row's per-face errors, the placed photos,
    the finder's matches and its other boxes."""

    table: pd.DataFrame
    errors: dict[str, dict[str, np.ndarray]]
    placed: PlacedFaces
    matches: list
    other_boxes: int
    supervised: float


def quality_row(errors: dict[str, np.ndarray], found: np.ndarray, supervised: float) -> dict:
    """One row of the table from a model's per-face errors (``found``: faces the finder found)."""
    row = {"crop, all faces": errors["crop"].mean() if "crop" in errors else np.nan,
           "exact square": errors["exact square"].mean() if "exact square" in errors else np.nan,
           "pipeline, found faces": np.nanmean(errors["pipeline"]) if found.any() else np.nan,
           "crop, found faces": errors["crop"][found].mean() if "crop" in errors and found.any() else np.nan}
    if "crop" in errors and found.any():
        paired = paired_difference(errors["pipeline"][found], errors["crop"][found])
        row["pipeline - crop"], row["95% interval"] = paired["difference"], f"[{paired['low']:.2f}, {paired['high']:.2f}]"
    else:
        row["pipeline - crop"], row["95% interval"] = np.nan, ""
    row["pipeline failures"] = failure_rate(errors["pipeline"][found]) if found.any() else np.nan
    row["pipeline - supervised"] = row["pipeline, found faces"] - supervised
    return row


def placed_quality(models: list[str], count: int = 200, seed: int = 0, split: str = "test_mtfl",
                   finder: FaceFinder | None = None) -> PlacedQuality:
    """The whole pipeline on ``count`` faces of ``split`` placed in photos, for each zoo face
    detector in ``models``, beside the same faces' crop-based errors, the mean shape, the finder's
    own points and the supervised baseline's record (forward error on all of test_mtfl, % IOD).
    Errors in % of IOD; ``pipeline failures``: the share of found faces above
    :data:`~lmcore.evaluation.FAILURE_THRESHOLD` %."""
    placed = placed_photos(split, count, seed)
    matches, others = find_placed(placed, finder or FaceFinder())
    crops = cut_crops(placed, matches)
    found = np.array([m is not None for m in matches])
    supervised = float(RunRecord.from_file(record_path(SUPERVISED_RECORD))["metrics"]["forward"][split]["mean"])
    errors = {name: model_errors(load_detector(name), placed, crops) for name in models}
    errors[MEAN_SHAPE_ROW] = mean_shape_errors(placed, crops)
    errors[FINDER_ROW] = {"pipeline": finder_point_errors(placed, matches)}
    rows = {name: quality_row(e, found, supervised) for name, e in errors.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.insert(0, "faces found", found.mean())
    table.index.name = "model"
    return PlacedQuality(table, errors, placed, matches, others, supervised)
