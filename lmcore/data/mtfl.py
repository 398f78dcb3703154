"""MTFL-80: the book's embedded real-face data set and its fixed evaluation protocol.

The folder (``../shared/data/mtfl80`` or ``$LMBOOK_DATA_ROOT/mtfl80``) holds 12,995 80x80
faces, two label files with 5 points per face (left eye, right eye, nose, left and right
mouth corner; pixel coordinates) and ``splits/``. The five splits are *derived here* by the
rule of the data set's README, and a test checks them against the shipped lists:

1. clean rows = training rows minus the ``net_7876`` rows whose mean y is below 25 px
   (their labels are wrong), sorted by path;
2. ``test_mtfl`` = clean rows at positions ``i % 8 == 0``;
3. ``regressor_train`` = the other clean rows;
4. ``unsup_train`` = all training rows minus ``test_mtfl`` (labels unused);
5. ``test_aflw`` = the AFLW rows of the testing file.

Points are returned in the image frame where the image spans ``[0, W] x [0, H]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from ..errors import CorruptDataError
from ..paths import find_dataset
from .images import load_image_stack

IMAGE_SIZE = 80
POINT_NAMES = ("left eye", "right eye", "nose", "left mouth", "right mouth")
SPLITS = ("unsup_train", "regressor_train", "test_mtfl", "test_aflw")
BAD_LABEL_MEAN_Y = 25.0  # net_7876 rows whose mean y is below this carry wrong labels


@dataclass
class LandmarkSet:
    """Images with annotated points.

    images: ``N x 3 x H x W`` uint8 tensor; points: ``N x P x 2`` float tensor of (x, y)
    pixel coordinates; names: relative paths, in order.
    """

    name: str
    names: list[str]
    images: torch.Tensor
    points: torch.Tensor

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index) -> "LandmarkSet":
        index = torch.as_tensor(index, dtype=torch.long)
        return LandmarkSet(self.name, [self.names[i] for i in index.tolist()], self.images[index], self.points[index])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])


def read_label_file(path: Path) -> dict[str, np.ndarray]:
    """Parse ``path x1..x5 y1..y5`` rows into ``{path: 5 x 2 array}``; bad rows name the line."""
    rows: dict[str, np.ndarray] = {}
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 11:
                raise CorruptDataError(f"{path}:{lineno}: expected a path and 10 numbers, got {len(parts)} fields")
            try:
                values = np.array([float(v) for v in parts[1:]], dtype=np.float64)
            except ValueError as exc:
                raise CorruptDataError(f"{path}:{lineno}: {exc}") from exc
            rows[parts[0].replace("\\", "/")] = np.stack([values[:5], values[5:]], axis=1)
    return rows


def has_bad_label(name: str, points: np.ndarray) -> bool:
    """The README's rule for the known labelling defect of MTFL-80."""
    return name.startswith("net_7876/") and float(points[:, 1].mean()) < BAD_LABEL_MEAN_Y


def derive_splits(training: dict[str, np.ndarray], testing: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """The protocol's splits, by the rule of the data README (see module docstring)."""
    excluded = sorted(n for n, p in training.items() if has_bad_label(n, p))
    excluded_set = set(excluded)
    clean = sorted(n for n in training if n not in excluded_set)
    test_mtfl = [n for i, n in enumerate(clean) if i % 8 == 0]
    regressor_train = [n for i, n in enumerate(clean) if i % 8 != 0]
    test_set = set(test_mtfl)
    unsup_train = sorted(n for n in training if n not in test_set)
    test_aflw = sorted(testing)
    return {
        "unsup_train": unsup_train,
        "regressor_train": regressor_train,
        "test_mtfl": test_mtfl,
        "test_aflw": test_aflw,
        "excluded_bad_labels": excluded,
    }


class MTFL80:
    """The MTFL-80 data set with its derived splits.

    >>> data = MTFL80()                     # doctest: +SKIP
    >>> test = data.split("test_mtfl")      # LandmarkSet of 957 faces
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else find_dataset("mtfl80", marker="new_training.txt")
        for required in ("new_training.txt", "new_testing.txt"):
            if not (self.root / required).exists():
                raise CorruptDataError(f"{self.root} is not an MTFL-80 folder: {required} is missing")
        self.training = read_label_file(self.root / "new_training.txt")
        self.testing = read_label_file(self.root / "new_testing.txt")
        self.splits = derive_splits(self.training, self.testing)

    @cached_property
    def _all_names(self) -> list[str]:
        return sorted(self.training) + sorted(self.testing)

    @cached_property
    def _index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self._all_names)}

    @cached_property
    def _images(self) -> np.ndarray:
        paths = [self.root / n for n in self._all_names]
        return load_image_stack(paths, (IMAGE_SIZE, IMAGE_SIZE), "mtfl80")

    def points_of(self, name: str) -> np.ndarray:
        return self.training[name] if name in self.training else self.testing[name]

    def split(self, split: str, limit: int | None = None, every: int = 1) -> LandmarkSet:
        """Images and points of one split (``limit`` keeps its first ``limit`` rows; ``every``
        keeps every ``every``-th row, e.g. 8 for the smoke profile's cheap evaluation)."""
        if split not in self.splits:
            raise KeyError(f"unknown split '{split}'; choose one of {sorted(self.splits)}")
        names = self.splits[split][:limit] if limit else list(self.splits[split])
        return self.by_names(names[::every], split)

    def by_names(self, names, label: str = "selection") -> LandmarkSet:
        """Images and points of the named rows (relative paths), in the order given."""
        unknown = [n for n in names if n not in self._index]
        if unknown:
            raise KeyError(f"not in MTFL-80: {unknown[:3]}")
        idx = np.array([self._index[n] for n in names], dtype=np.int64)
        images = torch.from_numpy(np.ascontiguousarray(self._images[idx]))
        points = torch.from_numpy(np.stack([self.points_of(n) for n in names])).float()
        return LandmarkSet(label, list(names), images, points)

    def describe(self) -> dict:
        """Counts per split, for run records and the chapter's tables."""
        return {"root": str(self.root), **{k: len(v) for k, v in self.splits.items()}}
