"""Prepare UT Zappos50K shoes (square images, no landmarks) in ``ROOT/shoes/``.

Source: UT Zappos50K (Yu and Grauman, CVPR 2014 / ICCV 2017), about 50,000 catalogue images
of shoes; the authors ask that it be used for academic, non-commercial purposes and cited.
The default download is the official square version, 136x136 JPEGs (``DEFAULT_URL``). No
hash is known to the project; the download cannot be tested here (no open web).

Preparation: every image resized to 80x80 at its relative path under ``images/`` (the
folder names of the release: category/subcategory/brand, spaces included). There are no
landmarks: ``images.txt`` lists the paths, one per line; ``splits/train.txt`` and
``splits/test.txt`` follow our rule (sorted paths, every 10th is test), not a paper's.

    python data_scripts/fetch_shoes.py [--root DIR] [--force] [--from-folder DIR]
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

NAME = "shoes"
DEFAULT_URL = "http://vision.cs.utexas.edu/projects/finegrained/utzap50k/ut-zap50k-images-square.zip"
RELEASE_DIR = "ut-zap50k-images-square"
SPLITS = ("train", "test")
HINT = ("Download ut-zap50k-images-square.zip from "
        "https://vision.cs.utexas.edu/projects/finegrained/utzap50k/, extract it and run "
        "python data_scripts/fetch_shoes.py --from-folder DIR")


def prepare(src: Path, out: Path, hashes: dict[str, str] | None) -> dict[str, int]:
    base = _common.find_dir(src, [RELEASE_DIR]) or src
    images = sorted(p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not images:
        raise _common.FetchError(f"{src} holds no images. {HINT}")
    items = []
    for path in images:
        rel = "images/" + path.relative_to(base).with_suffix(".jpg").as_posix()
        if "\n" in rel:
            raise _common.FetchError(f"{path}: a newline in a file name cannot be listed")
        items.append((rel, path, None, None))
    with _common.atomic_dir(out) as tmp:
        return _common.write_landmark_folder(tmp, items, _common.modulo_split, hashes, with_labels=False)


def verify(folder: Path) -> int:
    return _common.verify_landmark_folder(folder, SPLITS, label_file=None, list_file="images.txt")


def main(argv: list[str] | None = None) -> int:
    parser = _common.make_parser(__doc__.splitlines()[0])
    _common.add_web_source_options(parser, [DEFAULT_URL])
    args = parser.parse_args(argv)
    return _common.guarded(NAME, lambda: _common.web_dataset_fetch(
        args, parser, NAME, [DEFAULT_URL], HINT, prepare, verify))


if __name__ == "__main__":
    sys.exit(main())
