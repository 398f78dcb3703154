"""Reader of the landmark folders that ``data_scripts/`` write (CelebA, AFLW, cats, shoes).

``data_scripts/_common.write_landmark_folder`` writes ``<data root>/NAME/`` with:

* 80x80 RGB JPEGs at relative paths (``img_align_celeba/X.jpg``, ``faces/ID.jpg``, ...);
* ``labels.txt``: rows ``path x1..xP y1..yP`` joined by single spaces, each number as
  ``repr(float)``, ``nan`` for a point that is not annotated (AFLW); or, for sets without
  landmarks (shoes), ``images.txt``: one path per line (paths may contain spaces);
* ``splits/NAME.txt``: one path per line (the split rules differ per set, so they are read,
  not derived); optionally ``points.txt`` (point names, AFLW) and ``SOURCE_SHA256``.

Every line ends with ``\\n``. Points are pixel coordinates in the frame ``[0, 80] x [0, 80]``.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from ..errors import CorruptDataError
from ..paths import find_dataset
from .images import load_image_tensor
from .mtfl import LandmarkSet, check_line_end, check_number_token, decode_text, files_sha256

IMAGE_SIZE = 80  # data_scripts/_common.IMAGE_SIZE
LABEL_FILE, LIST_FILE, POINTS_FILE = "labels.txt", "images.txt", "points.txt"
# Points may leave the crop a little (an AFLW face box is 1.2 x the face rectangle); a
# value a whole frame away is a corrupt one.
COORD_RANGE = (-float(IMAGE_SIZE), 2.0 * IMAGE_SIZE)


def parse_landmark_labels(text: str, path: Path) -> tuple[list[str], np.ndarray]:
    """Parse ``labels.txt`` into ``(names, points N x P x 2 float64, NaN = not annotated)``.

    Raises :class:`CorruptDataError` naming ``file:line`` for: a row that is not a path and
    an even number of values; a row whose point count differs from the first row's; a
    repeated path; a value that is infinite, outside :data:`COORD_RANGE` or not written as
    ``repr(float)`` (what ``format_row`` writes; catches a number cut short); no rows; a
    last row without a line end (a file cut inside it). ``nan`` is accepted (a missing point).
    """
    names: list[str] = []
    first_line: dict[str, int] = {}
    rows: list[np.ndarray] = []
    n_points = None
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        parts = line.split(" ")  # the writer's separator (format_row)
        if len(parts) < 3 or (len(parts) - 1) % 2:
            raise CorruptDataError(f"{path}:{lineno}: expected a path and 2P numbers, got {len(parts)} fields")
        if n_points is None:
            n_points = (len(parts) - 1) // 2
        elif len(parts) != 1 + 2 * n_points:
            raise CorruptDataError(f"{path}:{lineno}: {(len(parts) - 1) / 2:g} points, the first row has {n_points}")
        name = parts[0]
        if name in first_line:
            raise CorruptDataError(f"{path}:{lineno}: {name} repeats line {first_line[name]}")
        first_line[name] = lineno
        values = np.array([np.nan if token == "nan" else check_number_token(token, path, lineno, *COORD_RANGE)
                           for token in parts[1:]], dtype=np.float64)
        names.append(name)
        rows.append(np.stack([values[:n_points], values[n_points:]], axis=1))
    if not names:
        raise CorruptDataError(f"{path}: no rows")
    check_line_end(text, path)
    return names, np.stack(rows)


def parse_name_list(text: str, path: Path) -> list[str]:
    """One path per line (spaces belong to the path); repeated paths are refused."""
    names: list[str] = []
    first_line: dict[str, int] = {}
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        if line in first_line:
            raise CorruptDataError(f"{path}:{lineno}: {line} repeats line {first_line[line]}")
        first_line[line] = lineno
        names.append(line)
    check_line_end(text, path)
    return names


class LandmarkFolder:
    """A landmark folder written by ``data_scripts/`` (see the module docstring).

    >>> cats = LandmarkFolder("cats")        # doctest: +SKIP
    >>> test = cats.split("test")            # images N x 3 x 80 x 80 uint8, points N x 9 x 2

    ``root`` is the folder itself; by default it is found with
    :func:`lmcore.paths.find_dataset` (data root, then ``../shared/data``), and a missing one
    raises MissingDataError naming ``python data_scripts/fetch_NAME.py``. Label folders give
    ``visible`` (``N x P`` bool, False where a point is ``nan``); image-only folders (shoes)
    give points ``N x 0 x 2`` and ``visible`` None. A damaged file raises CorruptDataError
    naming it.
    """

    has_face_protocol = False
    #: one class serves every folder: lmcore.data.sources builds it with the folder's name
    takes_name = True

    def __init__(self, name: str, root: str | Path | None = None):
        self.name = name
        self.root = Path(root) if root is not None else find_dataset(name, marker="splits")
        label_path, list_path = self.root / LABEL_FILE, self.root / LIST_FILE
        if label_path.is_file():
            self.list_file = label_path
        elif list_path.is_file():
            self.list_file = list_path
        else:
            raise CorruptDataError(f"{self.root} is not a landmark folder: neither {LABEL_FILE} nor {LIST_FILE}")
        split_dir = self.root / "splits"
        split_files = sorted(split_dir.glob("*.txt")) if split_dir.is_dir() else []
        if not split_files:
            raise CorruptDataError(f"{split_dir} holds no split lists (splits/NAME.txt)")
        # Read every file once: the parsed content and the fingerprint come from the same bytes.
        raw = {self.list_file.name: self.list_file.read_bytes()}
        raw.update({f"splits/{p.name}": p.read_bytes() for p in split_files})
        self._fingerprint = files_sha256(raw)
        text = decode_text(raw[self.list_file.name], self.list_file)
        if self.list_file == label_path:
            self.names, self._points = parse_landmark_labels(text, label_path)
        else:
            self.names = parse_name_list(text, list_path)
            self._points = np.zeros((len(self.names), 0, 2))
        self._index = {n: i for i, n in enumerate(self.names)}
        self.splits: dict[str, list[str]] = {}
        for p in split_files:
            members = parse_name_list(decode_text(raw[f"splits/{p.name}"], p), p)
            unknown = [n for n in members if n not in self._index]
            if unknown:
                raise CorruptDataError(f"{p} names {len(unknown)} path(s) not in {self.list_file.name}, first {unknown[0]}")
            self.splits[p.stem] = members
        self.point_names = self._read_point_names()

    def _read_point_names(self) -> tuple[str, ...] | None:
        path = self.root / POINTS_FILE
        if not path.is_file():
            return None
        names = tuple(line for line in decode_text(path.read_bytes(), path).split("\n") if line.strip())
        if len(names) != self.num_points:
            raise CorruptDataError(f"{path} names {len(names)} points, {self.list_file.name} has {self.num_points}")
        return names

    @property
    def num_points(self) -> int:
        return int(self._points.shape[1])

    @cached_property
    def has_labels(self) -> bool:
        return self.list_file.name == LABEL_FILE

    def fingerprint(self) -> str:
        """sha256 (hex) over the label (or image) list and every ``splits/*.txt``, as loaded,
        each prefixed by its relative path and size (:func:`lmcore.data.mtfl.files_sha256`).
        The split lists count because they are data here (e.g. the MAFL lists), not derived."""
        return self._fingerprint

    def split(self, name: str, every: int = 1, *, limit: int | None = None) -> LandmarkSet:
        """Images (``N x 3 x 80 x 80`` uint8), points (``N x P x 2``) and ``visible`` of one
        split (``limit`` keeps its first rows, then every ``every``-th)."""
        if name not in self.splits:
            raise KeyError(f"'{self.name}' has no split '{name}'; choose one of {sorted(self.splits)}")
        names = self.splits[name][:limit] if limit else list(self.splits[name])
        names = names[::every]
        idx = np.array([self._index[n] for n in names], dtype=np.int64)
        images = load_image_tensor([self.root / n for n in names], (IMAGE_SIZE, IMAGE_SIZE), f"{self.name}-{name}")
        points = self._points[idx].reshape(len(idx), self.num_points, 2)
        visible = torch.from_numpy(~np.isnan(points).any(-1)) if self.has_labels else None
        return LandmarkSet(f"{self.name}/{name}", names, images,
                           torch.from_numpy(points).float(), visible)

    def describe(self) -> dict:
        return {"root": str(self.root), "images": len(self.names), "points": self.num_points,
                **{k: len(v) for k, v in self.splits.items()}}
