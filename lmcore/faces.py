"""Landmarks on any photo: find the faces, crop each one as MTFL-80's faces are framed, detect.

    from lmcore.zoo import load
    detector = load("zhang/k10")          # a PhotoDetector
    for face in detector("photo.jpg"):    # a path, a PIL image or an H x W x 3 array
        face.box, face.landmarks, face.points   # all in the photo's pixels (x right, y down)

The zoo's detectors were trained on MTFL-80: 80 x 80 face crops. A photo is not a crop, so the
faces are found first, by **MTCNN** (Zhang et al. 2016) from ``facenet-pytorch``, whose weights
ship inside its package (2 MB) and which runs on the project's own torch (environment.yml says why
it was chosen over OpenCV's cascades, dlib's HOG detector and MediaPipe). Each face is then cut out
as a square framed like MTFL-80's crops (:func:`crop_square`: :data:`CROP_SCALE` times the size of
the finder's box, shifted by :data:`CROP_SHIFT`, measured by
:func:`lmcore.placed_faces.calibrate_crop`), resized to 80 x 80 as ``data_scripts/`` resized
MTFL's images, and the detector's landmarks and 5 regressed points are mapped back to the photo.

A photo that already is a face crop skips the finder (``crop=True``): it is centre-cropped to a
square, as the command did before faces were found.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .data.mtfl import IMAGE_SIZE
from .errors import LmbookError

#: the 5 regressed points, in MTFL-80's order ("left" is image-left)
POINT_NAMES = ("left eye", "right eye", "nose", "left mouth corner", "right mouth corner")
#: PIL modes a photo may have (converted to RGB); 16/32-bit and float images are refused
PHOTO_MODES = ("RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "YCbCr", "1")
#: the crop's side over the finder's box size (the mean of its width and height), and the crop
#: centre's shift from the box centre in box sizes (x, y), as measured by
#: :func:`lmcore.placed_faces.calibrate_crop` on 400 regressor_train faces placed in photos
#: (scale 2.010, shift (-0.010, 0.006); test faces never chose them); tests/test_faces.py measures
#: them again. MTFL-80 frames its LFW faces looser (about 2.4 boxes) than its web faces (1.65):
#: one framing fits neither exactly, and the book's page shows what that costs
CROP_SCALE = 2.01
CROP_SHIFT = (-0.01, 0.01)
#: the finder looks at the photo shrunk to this longer side (faces of 20 px and more there):
#: time grows with the pixels, and a phone photo's faces are large
FIND_SIDE = 640
#: MTCNN's final score a face needs (its own default keeps 0.7): on 400 regressor_train faces
#: placed on LSPET's photos, 0.9 keeps every placed face (the lowest scored 0.948) and 129 of the
#: 198 other boxes (some are real faces of the backgrounds' people)
MIN_FACE_SCORE = 0.9


class PhotoError(ValueError):
    """A photo that cannot be read as an image (one line for the user)."""


class FaceFinderError(LmbookError):
    """The face finder cannot run (its package is missing)."""


def open_photo(path: Path | str) -> Image.Image:
    """The photo at ``path`` as RGB, turned upright by its EXIF orientation. Raises
    :class:`PhotoError` with one line for anything that is not a readable 8-bit image, a
    decompression bomb included."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode not in PHOTO_MODES:
                raise PhotoError(f"{path}: unsupported image mode {image.mode} (use an 8-bit RGB or grey photo)")
            return ImageOps.exif_transpose(image).convert("RGB")
    except FileNotFoundError:
        raise PhotoError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise PhotoError(f"{path}: is a folder, not a photo") from None
    except PermissionError:
        raise PhotoError(f"{path}: permission denied") from None
    except Image.DecompressionBombError:
        raise PhotoError(f"{path}: too many pixels to be a photo (over {2 * Image.MAX_IMAGE_PIXELS:,}; "
                         "PIL refuses it as a possible decompression bomb)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, PhotoError):
            raise
        raise PhotoError(f"{path}: not a readable image ({type(exc).__name__})") from None


def as_photo(image) -> Image.Image:
    """A path, a PIL image or an array (``H x W`` or ``H x W x 3|4``, uint8, or float in [0, 1])
    as an upright RGB PIL image."""
    if isinstance(image, (str, Path)):
        return open_photo(image)
    if isinstance(image, Image.Image):
        if image.mode not in PHOTO_MODES:
            raise PhotoError(f"unsupported image mode {image.mode} (use an 8-bit RGB or grey photo)")
        return ImageOps.exif_transpose(image).convert("RGB")
    array = np.asarray(image)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or min(array.shape[:2]) == 0:
        raise PhotoError(f"an image array must be H x W, H x W x 3 or H x W x 4, got shape {array.shape}")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise PhotoError("a float image array must hold values in [0, 1]")
        array = np.round(array * 255)
    elif array.dtype != np.uint8:
        raise PhotoError(f"an image array must be uint8 or float in [0, 1], got {array.dtype}")
    return Image.fromarray(array.astype(np.uint8)).convert("RGB")


def crop_square(box) -> tuple[float, float, float]:
    """``(left, top, side)`` of the square cut around a finder's box ``(left, top, right, bottom)``
    so that the face is framed as in MTFL-80's crops (:data:`CROP_SCALE`, :data:`CROP_SHIFT`)."""
    left, top, right, bottom = (float(v) for v in box)
    size = ((right - left) + (bottom - top)) / 2
    side = CROP_SCALE * size
    centre_x = (left + right) / 2 + CROP_SHIFT[0] * size
    centre_y = (top + bottom) / 2 + CROP_SHIFT[1] * size
    return centre_x - side / 2, centre_y - side / 2, side


def centre_square(width: int, height: int) -> tuple[float, float, float]:
    """``(left, top, side)`` of the largest centred square: a photo that already is a face crop."""
    side = min(width, height)
    return float((width - side) // 2), float((height - side) // 2), float(side)


def crop_face(photo: Image.Image, square: tuple[float, float, float]) -> np.ndarray:
    """The ``square`` of ``photo`` (black where it leaves the photo) resized to MTFL-80's
    80 x 80 as ``data_scripts/_common.crop_resize`` made MTFL-80 (Lanczos): ``80 x 80 x 3`` uint8."""
    left, top, side = pixel_square(square)
    return np.array(photo.crop((left, top, left + side, top + side))
                      .resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS, reducing_gap=3.0))


def pixel_square(square: tuple[float, float, float]) -> tuple[int, int, int]:
    """``square`` on whole pixels, at least one pixel wide: what :func:`crop_face` cuts."""
    left, top, side = square
    return int(round(left)), int(round(top)), max(1, int(round(side)))


def crop_to_photo(points: np.ndarray, square: tuple[float, float, float]) -> np.ndarray:
    """Points in the 80 px crop of ``square`` -> the photo's pixels (the inverse of
    :func:`crop_face`, on the same whole-pixel square)."""
    left, top, side = pixel_square(square)
    return np.asarray(points, dtype=np.float64) * (side / IMAGE_SIZE) + np.array([left, top])


@dataclass(frozen=True)
class FoundFace:
    """A face the finder found: its box ``(left, top, right, bottom)`` and score, in the photo's
    pixels, and its own 5 points (MTCNN's, supervised on other data: shown, never used to crop)."""

    box: tuple[float, float, float, float]
    score: float
    finder_points: np.ndarray


class FaceFinder:
    """Every face of a photo, by MTCNN (``facenet-pytorch``; weights inside its package)."""

    def __init__(self, min_score: float = MIN_FACE_SCORE, find_side: int = FIND_SIDE):
        try:
            from facenet_pytorch import MTCNN
        except ImportError as exc:
            raise FaceFinderError(f"the face finder needs facenet-pytorch ({exc}); install the project's dependencies "
                                  "(environment.yml), e.g. .venv/bin/pip install -c constraints.txt facenet-pytorch==2.5.3") from None
        self.mtcnn = MTCNN(keep_all=True, device="cpu")
        self.min_score = min_score
        self.find_side = find_side

    def __call__(self, photo: Image.Image) -> list[FoundFace]:
        """The faces of an RGB ``photo``, best score first."""
        scale = min(1.0, self.find_side / max(photo.size))
        small = photo if scale == 1.0 else photo.resize((max(1, round(photo.width * scale)),
                                                         max(1, round(photo.height * scale))), Image.Resampling.BILINEAR)
        with torch.no_grad():
            boxes, scores, points = self.mtcnn.detect(small, landmarks=True)
        if boxes is None:
            return []
        # facenet-pytorch returns object arrays under numpy 2
        boxes = np.asarray(boxes, dtype=np.float64) / scale
        scores = np.asarray(scores, dtype=np.float64)
        points = np.asarray(points, dtype=np.float64) / scale
        order = np.argsort(-scores)
        return [FoundFace(tuple(boxes[i].tolist()), float(scores[i]), points[i]) for i in order
                if scores[i] >= self.min_score]


@dataclass(frozen=True)
class Face:
    """One face's result, everything in the photo's pixels: the square the detector saw
    ``(left, top, side)``, the K landmarks, the 5 regressed points (:data:`POINT_NAMES`), and
    the finder's box and score (None for a photo taken as a crop)."""

    square: tuple[float, float, float]
    landmarks: np.ndarray
    points: np.ndarray
    box: tuple[float, float, float, float] | None = None
    score: float | None = None

    def as_dict(self, digits: int = 2) -> dict:
        rounded = lambda values: np.round(np.asarray(values, dtype=np.float64), digits).tolist()  # noqa: E731
        return {"box": None if self.box is None else rounded(self.box),
                "score": None if self.score is None else round(self.score, 4),
                "square": rounded(self.square),
                "landmarks": rounded(self.landmarks),
                "points": {name: rounded(point) for name, point in zip(POINT_NAMES, self.points)}}


class PhotoDetector:
    """A zoo face detector (:class:`lmcore.zoo.Detector`) on whole photos: ``detector(image)``
    returns a :class:`Face` per face found, best score first (``crop=True``: the photo is
    already a face crop, one :class:`Face` for its centre square)."""

    def __init__(self, detector, finder: FaceFinder | None = None):
        self.detector = detector
        self._finder = finder

    @property
    def name(self) -> str:
        return self.detector.name

    @property
    def finder(self) -> FaceFinder:
        if self._finder is None:  # built on first use: a crop needs none
            self._finder = FaceFinder()
        return self._finder

    def __call__(self, image, crop: bool = False) -> list[Face]:
        photo = as_photo(image)
        if crop:
            return self.on_squares(photo, [centre_square(*photo.size)])
        found = self.finder(photo)
        return self.on_squares(photo, [crop_square(f.box) for f in found], found)

    def on_squares(self, photo: Image.Image, squares: list, found: list[FoundFace] | None = None) -> list[Face]:
        """The detector on given squares of ``photo`` (each cut and resized to 80 x 80)."""
        if not squares:
            return []
        crops = np.stack([crop_face(photo, square) for square in squares])
        images = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0
        landmarks = self.detector(images)
        points = self.detector.points(images, landmarks)
        found = found or [None] * len(squares)
        return [Face(square, crop_to_photo(lm.numpy(), square), crop_to_photo(pt.numpy(), square),
                     None if f is None else f.box, None if f is None else f.score)
                for square, lm, pt, f in zip(squares, landmarks, points, found)]
