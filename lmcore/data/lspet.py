"""LSPET-128: 10,000 people with 14 joints, the supervised pose source category.

The folder (``../shared/data/lspet128`` or ``$LMBOOK_DATA_ROOT/lspet128``, found by its
``joints.csv``) holds ``images/imNNNNN.jpg`` (128 x 128 RGB crops), ``joints.csv`` (header
``path,x1,y1,v1,...,x14,y14,v14``; x, y in crop pixels where the image spans ``[0, 128]``;
``v = 1`` where the joint is annotated visible and inside the crop, else its x, y are
meaningless) and ``splits/train.txt`` (9,000), ``splits/val.txt`` (1,000).

The splits are derived by the README's rule (row index ``i`` in file order, ``i % 10 == 0``
-> val, else train) and checked against the shipped lists; ``joints.csv`` is validated row
by row (see :func:`parse_joints_csv`) and its sha256 is checked against the one the data
README gives (:data:`JOINTS_SHA256`). Score a detector with :func:`lmcore.evaluation.pose.pck`.
"""
from __future__ import annotations

import hashlib
import math
import re
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from ..errors import CorruptDataError
from ..paths import find_dataset
from .images import array_sha256, load_image_stack, load_image_tensor
from .mtfl import (
    LandmarkSet,
    check_line_end,
    check_rows_against_lists,
    check_splits_against_lists,
    decode_text,
)

NAME = "lspet128"
IMAGE_SIZE = 128
JOINTS_FILE = "joints.csv"
# From ../shared/data/lspet128/README.md: the identity of the shipped joints.csv.
JOINTS_SHA256 = "24c2233526c649219874ffb76588f8799d331d1ae67cbec436aaa7b248dfad97"
SPLITS = ("train", "val")
VAL_EVERY = 10  # row i (0-based, file order) is val when i % VAL_EVERY == 0

# LSP order; "right" is the person's right.
JOINT_NAMES = (
    "right ankle", "right knee", "right hip", "left hip", "left knee", "left ankle",
    "right wrist", "right elbow", "right shoulder", "left shoulder", "left elbow", "left wrist",
    "neck", "head top",
)
# Joint j of a horizontally flipped image is joint FLIP_PERMUTATION[j] of the original:
# flipped_points = points[:, FLIP_PERMUTATION] with x -> IMAGE_SIZE - x (same for visible).
FLIP_PERMUTATION = (5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13)

HEADER = "path," + ",".join(f"x{j},y{j},v{j}" for j in range(1, len(JOINT_NAMES) + 1))
N_FIELDS = 1 + 3 * len(JOINT_NAMES)  # 43
# Every coordinate of the shipped file is written with exactly two decimals ("%.2f").
COORD_FORMAT = re.compile(r"-?\d+\.\d\d")
# Visible joints lie inside the crop (README; the shipped ones span 12.8 .. 115.2). The
# coordinates of invisible joints are meaningless but finite (the shipped ones span
# -939.52 .. 34.87); past 16 crop widths a value is a corrupt one (1e5, a lost point).
VISIBLE_RANGE = (0.0, float(IMAGE_SIZE))
ANY_RANGE = (-16.0 * IMAGE_SIZE, 17.0 * IMAGE_SIZE)


def _coordinate(token: str, visible: bool, path: Path, lineno: int, column: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise CorruptDataError(f"{path}:{lineno}: {column}={token!r} is not a number") from None
    if not math.isfinite(value):
        raise CorruptDataError(f"{path}:{lineno}: {column} is non-finite ({token!r})")
    low, high = VISIBLE_RANGE if visible else ANY_RANGE
    if not low <= value <= high:
        kind = "a visible joint's" if visible else "an invisible joint's"
        raise CorruptDataError(f"{path}:{lineno}: {column}={token} is outside {kind} sane range [{low:g}, {high:g}]")
    if not COORD_FORMAT.fullmatch(token):
        raise CorruptDataError(f"{path}:{lineno}: {column}={token!r} is not written with two decimals "
                               "as every coordinate of the file is: a number cut short or edited")
    return value


def parse_joints_csv(text: str, path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Parse ``joints.csv`` into ``(names, points N x 14 x 2 float64, visible N x 14 bool)``.

    Raises :class:`CorruptDataError` naming ``file:line`` for: a header other than
    :data:`HEADER`; a row without 43 fields; an empty or repeated path; a visibility other
    than ``0``/``1``; a coordinate that is not finite, outside :data:`VISIBLE_RANGE` (visible
    joints) or :data:`ANY_RANGE` (all joints), or not written with exactly two decimals (a
    number cut short: ``21.05 -> 21.0`` or ``2``); no rows; a last row without a line end
    (a file cut inside it).
    """
    lines = text.splitlines()
    if not lines or lines[0].strip() != HEADER:
        got = lines[0][:60] if lines else "an empty file"
        raise CorruptDataError(f"{path}:1: expected the header {HEADER[:40]}..., got {got!r}")
    names: list[str] = []
    first_line: dict[str, int] = {}
    points, visible = [], []
    for lineno, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        fields = line.strip().split(",")
        if len(fields) != N_FIELDS:
            raise CorruptDataError(f"{path}:{lineno}: expected {N_FIELDS} fields (path, then x, y, v for "
                                   f"{len(JOINT_NAMES)} joints), got {len(fields)}")
        name = fields[0]
        if not name:
            raise CorruptDataError(f"{path}:{lineno}: empty path")
        if name in first_line:
            raise CorruptDataError(f"{path}:{lineno}: {name} repeats line {first_line[name]}")
        first_line[name] = lineno
        row_points, row_visible = [], []
        for j in range(len(JOINT_NAMES)):
            x, y, v = fields[1 + 3 * j: 4 + 3 * j]
            if v not in ("0", "1"):
                raise CorruptDataError(f"{path}:{lineno}: v{j + 1}={v!r}, expected 0 or 1")
            row_visible.append(v == "1")
            row_points.append((_coordinate(x, v == "1", path, lineno, f"x{j + 1}"),
                               _coordinate(y, v == "1", path, lineno, f"y{j + 1}")))
        names.append(name)
        points.append(row_points)
        visible.append(row_visible)
    if not names:
        raise CorruptDataError(f"{path}: no rows after the header")
    check_line_end(text, path)
    return names, np.array(points, dtype=np.float64), np.array(visible, dtype=bool)


def derive_lspet_splits(names: list[str]) -> dict[str, list[str]]:
    """The README's rule: row ``i`` (file order) is val when ``i % 10 == 0``, else train."""
    return {
        "train": [n for i, n in enumerate(names) if i % VAL_EVERY != 0],
        "val": [n for i, n in enumerate(names) if i % VAL_EVERY == 0],
    }


class LSPET128:
    """LSPET-128 with its derived, checked splits.

    >>> data = LSPET128()                   # doctest: +SKIP
    >>> val = data.split("val")             # 1,000 people: images 1000 x 3 x 128 x 128 uint8,
    >>> val.points.shape, val.visible.shape # points 1000 x 14 x 2, visible 1000 x 14 bool

    ``sha256`` is the expected hash of ``joints.csv`` (default: the README's); pass None to
    skip that check (a folder made otherwise, e.g. a small test copy).
    Raises MissingDataError (naming the fetch command) when no folder is found and
    CorruptDataError naming the file for any failed check.
    """

    has_face_protocol = False
    joint_names = JOINT_NAMES
    flip_permutation = FLIP_PERMUTATION

    def __init__(self, root: str | Path | None = None, sha256: str | None = JOINTS_SHA256):
        self.root = Path(root) if root is not None else find_dataset(NAME, marker=JOINTS_FILE)
        path = self.root / JOINTS_FILE
        if not path.is_file():
            raise CorruptDataError(f"{self.root} is not an LSPET-128 folder: {JOINTS_FILE} is missing")
        raw = path.read_bytes()  # parse and hash the same bytes
        self.names, points, visible = parse_joints_csv(decode_text(raw, path), path)
        self._fingerprint = hashlib.sha256(raw).hexdigest()
        if sha256 is not None and self._fingerprint != sha256:
            raise CorruptDataError(f"{path}: sha256 {self._fingerprint} differs from the data README's {sha256}: "
                                   "an edited, truncated or other copy")
        self._points = points
        self._visible = visible
        self._index = {n: i for i, n in enumerate(self.names)}
        self.splits = derive_lspet_splits(self.names)
        lists = self.root / "splits"
        if lists.is_dir():
            check_rows_against_lists(path, self.names, [lists / f"{s}.txt" for s in SPLITS])
            check_splits_against_lists(self.splits, self.root, {s: path for s in self.splits})

    def fingerprint(self) -> str:
        """The data's identity for run records: sha256 (hex) over ``joints.csv`` as loaded and the
        decoded images of every split (:attr:`images_sha256`)."""
        return hashlib.sha256(f"joints {self._fingerprint}\nimages {self.images_sha256}\n".encode()).hexdigest()

    def labels_sha256(self) -> str:
        """sha256 (hex) of ``joints.csv`` as loaded (:data:`JOINTS_SHA256` unless the check was
        switched off): the data identity of records keyed before the images were part of it."""
        return self._fingerprint

    @cached_property
    def images_sha256(self) -> str:
        """sha256 over each split's decoded images (``N x 3 x 128 x 128`` uint8, from the verified
        decode cache that training reads too)."""
        digest = hashlib.sha256()
        for name in sorted(self.splits):
            stack = load_image_stack([self.root / n for n in self.splits[name]], (IMAGE_SIZE, IMAGE_SIZE), f"{NAME}-{name}")
            digest.update(f"{name} {array_sha256(stack)}\n".encode())
        return digest.hexdigest()

    def split(self, name: str, every: int = 1, *, limit: int | None = None) -> LandmarkSet:
        """Images, joints and visibility of one split (``limit`` keeps its first rows, then
        ``every`` every ``every``-th). Only the selected images are decoded (and cached)."""
        if name not in self.splits:
            raise KeyError(f"unknown split '{name}'; choose one of {sorted(self.splits)}")
        names = self.splits[name][:limit] if limit else list(self.splits[name])
        names = names[::every]
        idx = np.array([self._index[n] for n in names], dtype=np.int64)
        images = load_image_tensor([self.root / n for n in names], (IMAGE_SIZE, IMAGE_SIZE), f"{NAME}-{name}")
        return LandmarkSet(
            f"{NAME}/{name}", names,
            images,
            torch.from_numpy(self._points[idx]).float(),
            torch.from_numpy(self._visible[idx]),
        )

    def describe(self) -> dict:
        return {"root": str(self.root), **{k: len(v) for k, v in self.splits.items()},
                "visible_joints": int(self._visible.sum())}
