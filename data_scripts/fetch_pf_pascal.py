"""Prepare PF-PASCAL's semantic-alignment test pairs (Ham et al. 2018) in ``ROOT/pf_pascal/``.

Source: the Proposal Flow PASCAL data set (``PF-dataset-PASCAL.zip``: 1,351 image pairs of 20
PASCAL VOC categories with hand-labelled corresponding keypoints) and the test split of Rocco
et al. 2018 (``test_pairs_pf_pascal.csv``: 299 pairs; columns ``source_image, target_image,
class, XA, YA, XB, YB``, coordinates ``;``-separated, in pixels of the original images), the
protocol that NC-Net and C3 (Xu et al. 2020, Table 3) report PCK@0.1 on. Research use. No hash
is known to the project; the download cannot be tested here (no open web), so the computed
hashes are printed and kept in ``SOURCE_SHA256``.

Preparation: every image of a pair is resized, whole and without keeping its aspect ratio (as
NC-Net's evaluation does), to 80 x 80 (``JPEGImages/NAME.jpg``); ``images.txt`` keeps each
image's original ``name width height``, and ``pairs/test.txt`` (and ``pairs/val.txt`` where
``val_pairs_pf_pascal.csv`` is given) the pairs as ``source target class xA yA xB yB``, each
coordinate list ``;``-separated in pixels of the *original* images, so that the PCK threshold
(alpha x the larger side of the source keypoints' box, NC-Net's ``L_pck``) is measured where the
annotators clicked. ``lmcore.data.pf_pascal`` reads the folder.

    python data_scripts/fetch_pf_pascal.py [--root DIR] [--force] [--from-folder DIR]
                                           [--url URL ...] [--sha256 [FILE=]HEX ...]
"""
from __future__ import annotations

import csv
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

NAME = "pf_pascal"
DEFAULT_URLS = (
    "http://www.di.ens.fr/willow/research/proposalflow/dataset/PF-dataset-PASCAL.zip",
    "http://www.di.ens.fr/willow/research/cnngeometric/other_resources/test_pairs_pf_pascal.csv",
)
PAIR_FILES = {"test": "test_pairs_pf_pascal.csv", "val": "val_pairs_pf_pascal.csv"}
COLUMNS = ("source_image", "target_image", "class", "XA", "YA", "XB", "YB")
HINT = ("Download PF-dataset-PASCAL.zip (https://www.di.ens.fr/willow/research/proposalflow/) and "
        "test_pairs_pf_pascal.csv (https://www.di.ens.fr/willow/research/cnngeometric/other_resources/), "
        "extract the zip and put the csv beside it in one folder, and run "
        "python data_scripts/fetch_pf_pascal.py --from-folder DIR")


def parse_coordinates(text: str, where: str) -> np.ndarray:
    """``"1.5;20;33"`` -> a float array (the CSV's coordinate lists)."""
    try:
        values = np.array([float(v) for v in text.strip().strip(";").split(";")], dtype=np.float64)
    except ValueError as exc:
        raise _common.FetchError(f"{where}: coordinates {text!r} are not ';'-separated numbers") from exc
    if not len(values) or not np.isfinite(values).all():
        raise _common.FetchError(f"{where}: coordinates {text!r} are empty or not finite")
    return values


def read_pairs(csv_path: Path) -> list[dict]:
    """The rows of a Rocco et al. pair list: image names (file names only), class, and the two
    ``P x 2`` keypoint arrays in original pixels."""
    pairs = []
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise _common.FetchError(f"{csv_path}: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            where = f"{csv_path.name} line {line}"
            xa, ya = parse_coordinates(row["XA"], where), parse_coordinates(row["YA"], where)
            xb, yb = parse_coordinates(row["XB"], where), parse_coordinates(row["YB"], where)
            if not len(xa) == len(ya) == len(xb) == len(yb):
                raise _common.FetchError(f"{where}: the four coordinate lists differ in length")
            pairs.append({"source": Path(row["source_image"]).name, "target": Path(row["target_image"]).name,
                          "class": int(float(row["class"])),
                          "points_a": np.stack([xa, ya], 1), "points_b": np.stack([xb, yb], 1)})
    if not pairs:
        raise _common.FetchError(f"{csv_path} lists no pairs")
    return pairs


def _coordinates(values: np.ndarray) -> str:
    return ";".join(f"{v:.2f}" for v in values)


def pair_row(pair: dict) -> str:
    a, b = pair["points_a"], pair["points_b"]
    return " ".join([pair["source"], pair["target"], str(pair["class"]),
                     _coordinates(a[:, 0]), _coordinates(a[:, 1]), _coordinates(b[:, 0]), _coordinates(b[:, 1])])


def prepare(src: Path, out: Path, hashes: dict[str, str] | None) -> dict[str, int]:
    images_dir = _common.find_dir(src, ["JPEGImages"])
    if images_dir is None:
        raise _common.FetchError(f"{src} holds no JPEGImages folder. {HINT}")
    splits = {split: _common.find_file(src, file_name) for split, file_name in PAIR_FILES.items()}
    if splits["test"] is None:
        raise _common.FetchError(f"{src} holds no {PAIR_FILES['test']}. {HINT}")
    pairs = {split: read_pairs(path) for split, path in splits.items() if path is not None}
    names = sorted({p[k] for rows in pairs.values() for p in rows for k in ("source", "target")})
    sizes = []
    with _common.atomic_dir(out) as tmp:
        for name in names:
            image = _common.open_rgb(images_dir / name)
            resized, _ = _common.crop_resize(image, None)
            _common.save_jpeg(resized, tmp / "JPEGImages" / name)
            sizes.append(f"{name} {image.width} {image.height}")
        _common.write_lines(tmp / "images.txt", sizes)
        counts = {"images": len(names)}
        for split, rows in pairs.items():
            _common.write_lines(tmp / "pairs" / f"{split}.txt", [pair_row(p) for p in rows])
            counts[split] = len(rows)
        if hashes:
            _common.write_lines(tmp / "SOURCE_SHA256", [_common.sha256_lines(hashes).rstrip("\n")])
    return counts


def verify(folder: Path) -> int:
    """Every split reads with lmcore's own reader (pairs of listed images, well-formed keypoints) and
    every image is 80 x 80: the image count."""
    from lmcore.data.pf_pascal import load_pf_pascal

    splits = sorted(p.stem for p in (folder / "pairs").glob("*.txt"))
    if "test" not in splits:
        raise _common.FetchError(f"{folder / 'pairs' / 'test.txt'} is missing")
    for split in splits:
        load_pf_pascal(split, folder)
    sizes = [line.split()[0] for line in _common.read_lines(folder / "images.txt")]
    for name in sizes:
        with _common.Image.open(folder / "JPEGImages" / name) as im:
            if im.size != (_common.IMAGE_SIZE, _common.IMAGE_SIZE):
                raise _common.FetchError(f"{folder / 'JPEGImages' / name} is {im.size}, not 80 x 80")
    return len(sizes)


def main(argv: list[str] | None = None) -> int:
    parser = _common.make_parser(__doc__.splitlines()[0])
    _common.add_web_source_options(parser, DEFAULT_URLS)
    args = parser.parse_args(argv)
    return _common.guarded(NAME, lambda: _common.web_dataset_fetch(
        args, parser, NAME, DEFAULT_URLS, HINT, prepare, verify))


if __name__ == "__main__":
    sys.exit(main())
