"""Prepare CelebA (aligned faces, 5 landmarks) with the MAFL splits in ``ROOT/celeba/``.

Official source: https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Liu, Luo, Wang, Tang,
ICCV 2015; non-commercial research use only). Its files sit on Google Drive, which plain HTTP
cannot fetch reliably (confirmation pages, quotas): ``Img/img_align_celeba.zip``,
``Anno/list_landmarks_align_celeba.txt``, ``Eval/list_eval_partition.txt``. The MAFL split
lists (``MAFL/training.txt``, 19,000 names; ``MAFL/testing.txt``, 1,000) come from the TCDCN
project (Zhang et al.). The default download is the single archive that Thewlis et al.
(ICCV 2017) published with CelebA *and* the MAFL lists (``DEFAULT_URL``); no hash of it is
known to the project. The download cannot be tested here (no open web).

Preparation (``--from-folder`` takes a folder holding ``img_align_celeba/``,
``list_landmarks_align_celeba.txt`` and ``MAFL/training.txt``, ``MAFL/testing.txt`` at any
depth): each 178x218 aligned image is cropped to its central 178x178 square (rows 20..198)
and resized to 80x80; the 5 points (left eye, right eye, nose, left and right mouth corner)
follow. Output ``ROOT/celeba/``: ``img_align_celeba/NAME.jpg``, ``labels.txt`` rows
``path x1..x5 y1..y5``, ``splits/mafl_train.txt``, ``splits/mafl_test.txt`` and
``splits/unsup_train.txt`` (every image except the MAFL test images: the protocol of
Thewlis et al. 2017).

    python data_scripts/fetch_celeba.py [--root DIR] [--force] [--from-folder DIR]
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

NAME = "celeba"
OFFICIAL_PAGE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
DEFAULT_URL = "http://www.robots.ox.ac.uk/~vgg/research/unsupervised_landmarks/resources/celeba.zip"
IMAGE_DIR = "img_align_celeba"
CROP_BOX = (0.0, 20.0, 178.0, 198.0)  # central 178x178 square of the 178x218 aligned images
SPLITS = ("mafl_train", "mafl_test", "unsup_train")
HINT = (f"Download CelebA ({OFFICIAL_PAGE}: Img/img_align_celeba.zip, Anno/list_landmarks_align_celeba.txt) "
        "and the MAFL lists (MAFL/training.txt, MAFL/testing.txt), extract them into one folder and run "
        "python data_scripts/fetch_celeba.py --from-folder DIR")


def read_landmarks(path: Path) -> dict[str, np.ndarray]:
    """``list_landmarks_align_celeba.txt``: a count line, a header line, then rows
    ``NAME lefteye_x lefteye_y righteye_x ... rightmouth_y`` (x and y interleaved)."""
    rows: dict[str, np.ndarray] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if len(parts) != 11 or not parts[0].lower().endswith(".jpg"):
                continue  # the count and header lines
            try:
                values = np.array([float(v) for v in parts[1:]], dtype=np.float64)
            except ValueError as exc:
                raise _common.FetchError(f"{path}:{lineno}: {exc}") from exc
            rows[parts[0]] = values.reshape(5, 2)
    if not rows:
        raise _common.FetchError(f"{path} holds no landmark rows")
    return rows


def read_name_list(path: Path) -> list[str]:
    return [line.split()[0] for line in _common.read_lines(path)]


def prepare(src: Path, out: Path, hashes: dict[str, str] | None) -> dict[str, int]:
    images = _common.find_dir(src, [IMAGE_DIR, IMAGE_DIR + "_hq"])
    landmarks = _common.find_file(src, "list_landmarks_align_celeba.txt")
    mafl_train = _common.find_file(src, "training.txt", parent="MAFL")
    mafl_test = _common.find_file(src, "testing.txt", parent="MAFL")
    missing = [what for what, found in (("img_align_celeba/", images), ("list_landmarks_align_celeba.txt", landmarks),
                                        ("MAFL/training.txt", mafl_train), ("MAFL/testing.txt", mafl_test)) if found is None]
    if missing:
        raise _common.FetchError(f"{src} lacks {', '.join(missing)}. {HINT}")
    points = read_landmarks(landmarks)
    train_names, test_names = read_name_list(mafl_train), read_name_list(mafl_test)
    unknown = [n for n in train_names + test_names if n not in points]
    if unknown:
        raise _common.FetchError(f"{len(unknown)} MAFL name(s) have no CelebA landmarks, first {unknown[0]}")
    available = sorted(n for n in points if (images / n).is_file())
    if len(available) != len(points):
        _common.warn(NAME, f"{len(points) - len(available):,} listed image(s) are not in {images}; skipped")
    mafl_test_set = set(test_names)

    def splits(names: list[str]) -> dict[str, list[str]]:
        present = {n.split("/", 1)[1] for n in names}
        return {
            "mafl_train": [f"{IMAGE_DIR}/{n}" for n in train_names if n in present],
            "mafl_test": [f"{IMAGE_DIR}/{n}" for n in test_names if n in present],
            "unsup_train": [n for n in names if n.split("/", 1)[1] not in mafl_test_set],
        }

    items = ((f"{IMAGE_DIR}/{n}", images / n, points[n], CROP_BOX) for n in available)
    with _common.atomic_dir(out) as tmp:
        return _common.write_landmark_folder(tmp, items, splits, hashes)


def verify(folder: Path) -> int:
    return _common.verify_landmark_folder(folder, SPLITS)


def main(argv: list[str] | None = None) -> int:
    parser = _common.make_parser(__doc__.splitlines()[0])
    _common.add_web_source_options(parser, [DEFAULT_URL])
    args = parser.parse_args(argv)
    return _common.guarded(NAME, lambda: _common.web_dataset_fetch(
        args, parser, NAME, [DEFAULT_URL], HINT, prepare, verify))


if __name__ == "__main__":
    sys.exit(main())
