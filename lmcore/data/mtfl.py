"""MTFL-80: the book's embedded real-face data set and its fixed evaluation protocol.

The folder (``../shared/data/mtfl80`` or ``$LMBOOK_DATA_ROOT/mtfl80``) holds 12,995 80x80
faces, two label files with 5 points per face (left eye, right eye, nose, left and right
mouth corner; pixel coordinates) and ``splits/``. The splits are *derived here* by the
rule of the data set's README, and :class:`MTFL80` checks them against the shipped lists:

1. clean rows = training rows minus the ``net_7876`` rows whose mean y is below 25 px
   (their labels are wrong), sorted by path;
2. ``test_mtfl`` = clean rows at positions ``i % 8 == 0``;
3. ``regressor_train`` = the other clean rows;
4. ``unsup_train`` = all training rows minus ``test_mtfl`` (labels unused);
5. ``test_aflw`` = the AFLW rows of the testing file;
6. ``tune_val`` = ``regressor_train`` rows at positions ``i % 5 == 0``, ``tune_fit`` = the
   others: for choosing settings without looking at a test set.

Points are returned in the image frame where the image spans ``[0, W] x [0, H]``.

Label rows are validated (see :func:`read_label_file`), the row counts are checked against
the README's (:data:`ROW_COUNTS`) and the derived splits against ``splits/*.txt``, so a label
file cut at a line boundary (which parses cleanly) is refused instead of training silently on
fewer faces. ``splits/`` is required: a folder without it is an incomplete copy.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable, Mapping, Sequence, Sized

import numpy as np
import torch

from ..errors import CorruptDataError
from ..paths import find_dataset
from .images import array_sha256, load_image_stack

IMAGE_SIZE = 80
POINT_NAMES = ("left eye", "right eye", "nose", "left mouth", "right mouth")
SPLITS = ("unsup_train", "regressor_train", "test_mtfl", "test_aflw", "tune_fit", "tune_val")
LABEL_FILES = ("new_training.txt", "new_testing.txt")
# Rows per label file, fixed by the data set's README: a file cut at a line boundary parses
# cleanly, and without these counts a copy cut together with its split lists would load.
ROW_COUNTS = {"new_training.txt": 10_000, "new_testing.txt": 2_995}
#: sha256 of the label files and split lists of the embedded MTFL-80 (../shared/data/mtfl80): a copy
#: whose labels were edited while staying valid (every x shifted by 8 px inside the frame) parses,
#: derives its splits and passes every other check, and only these tell
PINNED_SHA256 = {
    "new_training.txt": "594fdde7bd3f542f89ff33335e86082a4c1976a34fe494bc392ac21ff8577929",
    "new_testing.txt": "0a14b297be7b9b3c43fb7e19529a0f9d97219bdbc5479c0917db44ca09b55ddc",
    "splits/excluded_bad_labels.txt": "1b7fc97dc1b032d1bccf4ed2b47fbed6b435135b6764dfcf525db4115a2603d3",
    "splits/regressor_train.txt": "ea1f5d4a8de144d33fe6e970787146479bc737df25f7959467d9da5a7314bddb",
    "splits/test_aflw.txt": "2df488213af6663630eeee7a8ca0ee332cfce264b67d0f2f99de201d618f100f",
    "splits/test_mtfl.txt": "1aa1bc0d9c62fd6937f7d89dd3f5854d18f1ed69b3846731865dcced4ebae4ea",
    "splits/tune_fit.txt": "3b69d655f793e75dff78aa2ce57d8612dcf2be65aab302695f04ad54211dc0d1",
    "splits/tune_val.txt": "b5a95a089ab8bc2984b19b7310309cac78feb36b782bfb4d752c5daeab62e56c",
    "splits/unsup_train.txt": "c29dbf835debbb6397544b93fff3272b02877e9cf601b1085a12662fb69fd6fa",
}
FETCH_MTFL = "python data_scripts/fetch_mtfl.py"
BAD_LABEL_MEAN_Y = 25.0  # net_7876 rows whose mean y is below this carry wrong labels
# Coordinates must lie in the 80 px image frame with a 10 px margin. The shipped files span
# -7.5 .. 69.8 px (the bad net_7876 rows reach -7.5); a value past this bound is a shifted
# label (+45 px on x passed the old bounds of [-40, 120] and gave a 292 % IOD test error), a
# typo or a corrupt file, e.g. 1e5 or a lost decimal point.
FRAME_MARGIN = 10.0
COORD_MIN, COORD_MAX = -FRAME_MARGIN, IMAGE_SIZE + FRAME_MARGIN
FRAME_TEXT = f"the image frame ({IMAGE_SIZE} px with a {FRAME_MARGIN:g} px margin)"


@dataclass
class LandmarkSet:
    """Images with annotated points.

    images: ``N x 3 x H x W`` uint8 tensor; points: ``N x P x 2`` float tensor of (x, y)
    pixel coordinates; names: relative paths, in order; visible: ``N x P`` bool tensor
    (True where the point is annotated and may be used) or None when every point is.
    """

    name: str
    names: list[str]
    images: torch.Tensor
    points: torch.Tensor
    visible: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index) -> "LandmarkSet":
        index = torch.as_tensor(index, dtype=torch.long)
        visible = None if self.visible is None else self.visible[index]
        return LandmarkSet(self.name, [self.names[i] for i in index.tolist()], self.images[index],
                           self.points[index], visible)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])


def check_number_token(token: str, path: Path | str, lineno: int,
                       low: float = COORD_MIN, high: float = COORD_MAX, bounds: str = "the sane range") -> float:
    """Parse one coordinate written by Python's ``repr(float)``; raise naming ``path:lineno``.

    Rules, in order: it parses as a float; it is finite (no ``nan``/``inf``); it lies in
    ``[low, high]`` (named ``bounds`` in the message); it is written exactly as
    ``repr(float(token))``, the format of the shipped files and of
    ``data_scripts/_common.format_row``. The last rule catches a number cut short when its cut
    leaves a non-canonical spelling: ``21.0 -> 2`` or ``21.`` (no digit after a decimal point),
    ``34.800000000000004 -> 34.80000`` (trailing zero), ``+1.0``, ``01.5``.
    """
    try:
        value = float(token)
    except ValueError:
        raise CorruptDataError(f"{path}:{lineno}: {token!r} is not a number") from None
    if not math.isfinite(value):
        raise CorruptDataError(f"{path}:{lineno}: non-finite value {token!r}")
    if not low <= value <= high:
        raise CorruptDataError(f"{path}:{lineno}: value {token} is outside {bounds} [{low:g}, {high:g}]")
    if repr(value) != token:
        raise CorruptDataError(
            f"{path}:{lineno}: {token!r} is not written as the file's numbers are (Python float repr, "
            f"here {repr(value)!r}): a number cut short or edited by hand")
    return value


def decode_text(data: bytes, path: Path | str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptDataError(f"{path}: not UTF-8 text ({exc})") from exc


def check_line_end(text: str, path: Path | str) -> None:
    """A non-empty file must end with a line end: every writer of these files ends each row
    with one, so a missing one means the file was cut inside its last row."""
    if text and not text.endswith("\n"):
        lineno = text.count("\n") + 1
        raise CorruptDataError(f"{path}:{lineno}: the last row has no line end: the file was cut short")


def parse_label_text(text: str, path: Path | str) -> dict[str, np.ndarray]:
    """Parse the text of an MTFL-80 label file (see :func:`read_label_file`)."""
    rows: dict[str, np.ndarray] = {}
    first_line: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 11:
            raise CorruptDataError(f"{path}:{lineno}: expected a path and 10 numbers, got {len(parts)} fields")
        name = parts[0].replace("\\", "/")
        if name in first_line:
            raise CorruptDataError(f"{path}:{lineno}: {name} repeats line {first_line[name]}")
        first_line[name] = lineno
        values = np.array([check_number_token(v, path, lineno, bounds=FRAME_TEXT) for v in parts[1:]],
                          dtype=np.float64)
        rows[name] = np.stack([values[:5], values[5:]], axis=1)
    check_line_end(text, path)
    return rows


def read_label_file(path: Path) -> dict[str, np.ndarray]:
    """Parse ``path x1..x5 y1..y5`` rows into ``{path: 5 x 2 array}`` (x, y per point).

    Raises :class:`CorruptDataError` naming ``file:line`` for a row without 11 fields, a
    repeated path, a value that is not finite, outside the frame ``[COORD_MIN, COORD_MAX]`` or not
    written as ``repr(float)`` (see :func:`check_number_token`), and a last row without a
    line end (a file cut inside that row). A file cut *at* a line boundary parses; the row
    count and split checks of :class:`MTFL80` catch it.
    """
    path = Path(path)
    return parse_label_text(decode_text(path.read_bytes(), path), path)


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
        "tune_fit": [n for i, n in enumerate(regressor_train) if i % 5 != 0],
        "tune_val": [n for i, n in enumerate(regressor_train) if i % 5 == 0],
    }


# --------------------------------------------------------------------------- shipped split lists


def read_name_list(path: Path) -> list[str]:
    """Names of a split list, one per line (blank lines ignored, line ends stripped)."""
    text = decode_text(Path(path).read_bytes(), path)
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


def _first(names: Iterable[str]) -> str:
    return next(iter(sorted(names)), "-")


def check_rows_against_lists(label_file: Path, names: Iterable[str], lists: Sequence[Path]) -> None:
    """Every row of ``label_file`` must appear in the union of ``lists`` and vice versa.

    Skipped unless all ``lists`` exist. Raises CorruptDataError naming the label file with
    its row count, the count the lists expect and the first missing and unexpected names.
    """
    if not lists or not all(p.is_file() for p in lists):
        return
    have = set(names)
    expected: set[str] = set()
    for p in lists:
        expected.update(read_name_list(p))
    if have == expected:
        return
    missing, extra = expected - have, have - expected
    shown = " + ".join(f"splits/{p.name}" for p in lists)
    raise CorruptDataError(
        f"{label_file} has {len(have)} rows; {shown} expect {len(expected)} "
        f"({len(missing)} missing from the file, first {_first(missing)}; "
        f"{len(extra)} not in the lists, first {_first(extra)}): a truncated or replaced label file")


def check_row_counts(label_file: Path, rows: Sized, expected: int) -> None:
    """``label_file`` must have the ``expected`` rows of the README (:data:`ROW_COUNTS`): the only
    check of a copy cut at a line boundary together with its split lists."""
    if len(rows) != expected:
        raise CorruptDataError(
            f"{label_file} has {len(rows)} rows; MTFL-80 has {expected} (its README): a truncated or "
            f"replaced label file; rebuild the folder with {FETCH_MTFL}")


def check_splits_against_lists(splits: Mapping[str, Sequence[str]], folder: Path,
                               source_of: Mapping[str, Path]) -> None:
    """Compare each derived split with ``folder/splits/NAME.txt`` where that list exists.

    ``source_of`` maps a split to the label file it is derived from (named in the error).
    Lists that are absent (an older copy without ``tune_*``) are not required.
    """
    problems = []
    for split, derived in splits.items():
        path = folder / "splits" / f"{split}.txt"
        if not path.is_file():
            continue
        shipped = read_name_list(path)
        if shipped == list(derived):
            continue
        missing, extra = set(shipped) - set(derived), set(derived) - set(shipped)
        if not missing and not extra:
            what = "the same names in another order"
        else:
            what = (f"{len(missing)} missing, first {_first(missing)}; "
                    f"{len(extra)} not listed, first {_first(extra)}")
        problems.append(f"{source_of[split]} gives {len(derived)} rows for '{split}'; "
                        f"splits/{split}.txt expects {len(shipped)} ({what})")
    if problems:
        raise CorruptDataError("derived splits differ from the shipped lists: " + " | ".join(problems))


def files_sha256(files: Mapping[str, bytes]) -> str:
    """sha256 over named byte strings, in the mapping's order: for each, the line
    ``name|length\\n`` then the bytes (so moving bytes between files changes the hash)."""
    digest = hashlib.sha256()
    for name, data in files.items():
        digest.update(f"{name}|{len(data)}\n".encode())
        digest.update(data)
    return digest.hexdigest()


def check_pinned(root: Path, raw: Mapping[str, bytes], pinned: Mapping[str, str]) -> None:
    """Each file of ``pinned`` (relative to ``root``; its bytes in ``raw`` where already read) must
    have its pinned sha256: :class:`CorruptDataError` naming the first that differs."""
    for rel, want in pinned.items():
        data = raw[rel] if rel in raw else (root / rel).read_bytes()
        have = hashlib.sha256(data).hexdigest()
        if have != want:
            raise CorruptDataError(f"{root / rel}: sha256 {have[:16]}... differs from the pinned {want[:16]}... of the "
                                   "embedded MTFL-80: an edited or other copy (restore it from ../shared/data/mtfl80, "
                                   f"or rebuild it with {FETCH_MTFL})")


class MTFL80:
    """The MTFL-80 data set with its derived splits.

    >>> data = MTFL80()                     # doctest: +SKIP
    >>> test = data.split("test_mtfl")      # LandmarkSet of 957 faces

    Raises :class:`CorruptDataError` for an invalid label row (see :func:`read_label_file`),
    a label file without the README's row count (:data:`ROW_COUNTS`), a folder without
    ``splits/`` (an incomplete copy: the splits must be checked, not only re-derived), label
    files that do not give the shipped lists and, last, label files or lists whose sha256 is not
    the pinned one (:data:`PINNED_SHA256`; ``pinned=None`` skips that check, for test copies).
    """

    #: the book's 5-point face protocol (chapter 0) scores detectors on it
    has_face_protocol = True

    def __init__(self, root: str | Path | None = None, pinned: Mapping[str, str] | None = PINNED_SHA256):
        self.root = Path(root) if root is not None else find_dataset("mtfl80", marker="new_training.txt")
        for required in LABEL_FILES:
            if not (self.root / required).exists():
                raise CorruptDataError(f"{self.root} is not an MTFL-80 folder: {required} is missing")
        # Parse and hash the same bytes, so the fingerprint names exactly what was loaded.
        raw = {f: (self.root / f).read_bytes() for f in LABEL_FILES}
        train_path, test_path = (self.root / f for f in LABEL_FILES)
        self.training = parse_label_text(decode_text(raw[LABEL_FILES[0]], train_path), train_path)
        self.testing = parse_label_text(decode_text(raw[LABEL_FILES[1]], test_path), test_path)
        self._fingerprint = files_sha256(raw)
        self.splits = derive_splits(self.training, self.testing)
        lists = self.root / "splits"
        if lists.is_dir():  # first, as these errors name the missing rows
            check_rows_against_lists(train_path, self.training, [lists / "unsup_train.txt", lists / "test_mtfl.txt"])
            check_rows_against_lists(test_path, self.testing, [lists / "test_aflw.txt"])
        check_row_counts(train_path, self.training, ROW_COUNTS[LABEL_FILES[0]])
        check_row_counts(test_path, self.testing, ROW_COUNTS[LABEL_FILES[1]])
        if not lists.is_dir():
            raise CorruptDataError(f"{self.root} has no splits/ folder: an incomplete copy of MTFL-80; "
                                   f"rebuild it with {FETCH_MTFL}")
        source_of = {s: test_path if s == "test_aflw" else train_path for s in self.splits}
        check_splits_against_lists(self.splits, self.root, source_of)
        if pinned:
            check_pinned(self.root, raw, pinned)

    def fingerprint(self) -> str:
        """The data's identity for run records: sha256 (hex) over the two label files' bytes as
        loaded (:func:`files_sha256`) and the decoded images (:func:`images_sha256`); any edit of a
        label, a split or an image gives another value."""
        return hashlib.sha256(f"labels {self._fingerprint}\nimages {self.images_sha256}\n".encode()).hexdigest()

    def labels_sha256(self) -> str:
        """sha256 (hex) of the two label files alone: the data identity of records keyed before the
        images were part of it."""
        return self._fingerprint

    @cached_property
    def images_sha256(self) -> str:
        """sha256 of every image as decoded (``N x 3 x 80 x 80`` uint8, the order of the names); from
        the verified decode cache, 0.15 s."""
        return array_sha256(self._images)

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
