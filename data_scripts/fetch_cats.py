"""Prepare the cat heads data set (Zhang, Sun, Tang, ECCV 2008) in ``ROOT/cats/``.

Source: "Cat Head Detection - How to Effectively Exploit Shape and Texture Features"
(Weiwei Zhang, Jian Sun, Xiaoou Tang, ECCV 2008): about 9,000 cat photographs in folders
``CAT_00`` .. ``CAT_06``, each ``X.jpg`` with a ``X.jpg.cat`` file ``9 x1 y1 ... x9 y9``
(left eye, right eye, mouth, left ear 1-3, right ear 1-3). Research use. The original
Microsoft Research page is gone; the copy on the Internet Archive (``DEFAULT_URLS``, two zip
files) is the default download. No hash is known to the project; the download cannot be
tested here (no open web).

Preparation: each head is cropped to a square centred on the bounding box of its 9 points,
with side 1.3 x the larger side of that box (outside the photo is black), and resized to
80x80. Output ``ROOT/cats/``: ``CAT_0k/NAME.jpg``, ``labels.txt`` rows ``path x1..x9 y1..y9``,
``splits/train.txt`` and ``splits/test.txt`` (our rule, not a paper's: sorted paths, every
10th is test).

    python data_scripts/fetch_cats.py [--root DIR] [--force] [--from-folder DIR]
                                      [--url URL ...] [--sha256 [FILE=]HEX ...]
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import lmcore  # noqa: F401
except ImportError:  # run from a checkout without the editable install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
import numpy as np  # noqa: E402

NAME = "cats"
DEFAULT_URLS = (
    "https://archive.org/download/CAT_DATASET/CAT_DATASET_01.zip",
    "https://archive.org/download/CAT_DATASET/CAT_DATASET_02.zip",
)
N_POINTS = 9
MARGIN = 1.3
SPLITS = ("train", "test")
HINT = ("Download the cat heads data set (CAT_DATASET_01.zip and CAT_DATASET_02.zip, e.g. from "
        "https://archive.org/details/CAT_DATASET), extract both into one folder and run "
        "python data_scripts/fetch_cats.py --from-folder DIR")


def read_cat_file(path: Path) -> np.ndarray:
    """``N x1 y1 ... xN yN`` -> N x 2 points."""
    try:
        values = [float(v) for v in path.read_text().split()]
    except ValueError as exc:
        raise _common.FetchError(f"{path}: {exc}") from exc
    if not values or int(values[0]) != N_POINTS or len(values) < 1 + 2 * N_POINTS:
        raise _common.FetchError(f"{path}: expected '9' followed by 18 coordinates")
    return np.array(values[1:1 + 2 * N_POINTS], dtype=np.float64).reshape(N_POINTS, 2)


def head_box(points: np.ndarray) -> tuple[float, float, float, float]:
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, MARGIN * max(x1 - x0, y1 - y0, 1.0) / 2
    return (cx - half, cy - half, cx + half, cy + half)


def prepare(src: Path, out: Path, hashes: dict[str, str] | None) -> dict[str, int]:
    annotations = sorted(src.rglob("*.jpg.cat"))
    if not annotations:
        raise _common.FetchError(f"{src} holds no *.jpg.cat files. {HINT}")
    items = []
    for cat in annotations:
        image = cat.with_suffix("")  # X.jpg.cat -> X.jpg
        if not image.is_file():
            _common.warn(NAME, f"{cat} has no image beside it; skipped")
            continue
        points = read_cat_file(cat)
        rel = f"{image.parent.name}/{image.name}"
        items.append((rel, image, points, head_box(points)))
    with _common.atomic_dir(out) as tmp:
        return _common.write_landmark_folder(tmp, items, _common.modulo_split, hashes)


def verify(folder: Path) -> int:
    return _common.verify_landmark_folder(folder, SPLITS)


def main(argv: list[str] | None = None) -> int:
    parser = _common.make_parser(__doc__.splitlines()[0])
    _common.add_web_source_options(parser, DEFAULT_URLS)
    args = parser.parse_args(argv)
    return _common.guarded(NAME, lambda: _common.web_dataset_fetch(
        args, parser, NAME, DEFAULT_URLS, HINT, prepare, verify))


if __name__ == "__main__":
    sys.exit(main())
