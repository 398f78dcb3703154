"""Fetch Fashion-MNIST from Debian and keep its footwear in ``ROOT/fashion_footwear/footwear.npz``.

Source: the Debian package ``dataset-fashion-mnist`` (MIT), version and sha256 pinned below,
fetched with ``apt-get download`` (no root needed) and unpacked with ``dpkg-deb -x`` (a
pure-Python reader is used where dpkg-deb is missing). It ships the original gzipped IDX
files under ``usr/share/datasets/fashion-mnist/``. If the archive serves another version
than the pinned one, the script stops and says so (its hash could not match).

Output: the sandals (class 5), sneakers (7) and ankle boots (9) of the training and test
sets, in file order: ``images`` uint8 [N,28,28], ``labels`` int64 (original class ids),
``split`` int64 (0 train, 1 test), ``source``. N = 21,000. The content hash of the arrays is
pinned in ``lmcore.data.registry_sets``.

    python data_scripts/fetch_fashion_mnist.py [--root DIR] [--force]
"""
from __future__ import annotations

import gzip
import struct
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

from lmcore.data.registry_sets import (  # noqa: E402
    FOOTWEAR_CLASSES, FOOTWEAR_COUNT, FOOTWEAR_FILE, FOOTWEAR_NAME, check_footwear, read_npz,
)

NAME = "fashion_footwear"
PACKAGE = "dataset-fashion-mnist"
VERSION = "0.0~git20200523.55506a9-1"
DEB_SHA256 = "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0"
TAG = f"deb:{PACKAGE}={VERSION}"
IDX_DIR = "usr/share/datasets/fashion-mnist"
FILES = {
    0: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    1: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (``path`` or ``path.gz``) as a uint8 array of its declared shape."""
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.is_file():
            raw = candidate.read_bytes()
            if candidate.suffix == ".gz":
                raw = gzip.decompress(raw)
            break
    else:
        raise _common.FetchError(f"{path.name}(.gz) is not in the package")
    if len(raw) < 4 or raw[0:2] != b"\0\0" or raw[2] != 0x08:
        raise _common.FetchError(f"{path.name}: not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise _common.FetchError(f"{path.name}: {data.size} bytes of data for shape {shape}")
    return data.reshape(shape)


def footwear_from_folder(folder: Path) -> dict[str, np.ndarray]:
    """The footwear classes of both splits, from a folder holding the four IDX files."""
    images, labels, split = [], [], []
    for split_id, (image_file, label_file) in FILES.items():
        x, y = read_idx(folder / image_file), read_idx(folder / label_file)
        if x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != (x.shape[0],):
            raise _common.FetchError(f"{image_file}/{label_file}: shapes {x.shape} and {y.shape} do not pair")
        keep = np.isin(y, list(FOOTWEAR_CLASSES))
        images.append(x[keep])
        labels.append(y[keep].astype(np.int64))
        split.append(np.full(int(keep.sum()), split_id, dtype=np.int64))
    return {
        "images": np.ascontiguousarray(np.concatenate(images)),
        "labels": np.concatenate(labels),
        "split": np.concatenate(split),
        "source": np.array([TAG]),
    }


def existing_is_valid(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        check_footwear(read_npz(path, ("images", "labels", "split", "source")), path)
        return True
    except Exception as exc:
        _common.warn(NAME, f"existing {path} does not verify ({_common.one_line(exc)}); fetching again")
        return False


def fetch(root: Path, force: bool) -> str:
    out = root / FOOTWEAR_NAME / FOOTWEAR_FILE
    if not force and existing_is_valid(out):
        return f"{NAME}: already present and verified ({TAG}): {out}"
    with _common.scratch_dir(NAME) as tmp:
        deb = _common.apt_download(PACKAGE, tmp)
        version = _common.deb_field(deb, "Version")
        if version != VERSION:
            raise _common.FetchError(
                f"the Debian archive serves {PACKAGE} {version}, but this script pins {VERSION} "
                f"(sha256 {DEB_SHA256}); check the new package and update VERSION, DEB_SHA256 and the "
                "content hash in lmcore/data/registry_sets.py"
            )
        _common.verify_sha256(deb, DEB_SHA256, f"{PACKAGE} {VERSION}")
        unpacked = tmp / "unpacked"
        _common.deb_extract(deb, unpacked)
        data = footwear_from_folder(unpacked / IDX_DIR)
    if len(data["images"]) != FOOTWEAR_COUNT:
        raise _common.FetchError(f"found {len(data['images'])} footwear images, expected {FOOTWEAR_COUNT}")
    check_footwear(data, out)  # the pinned content hash, before anything is written
    _common.atomic_save_npz(out, **data)
    check_footwear(read_npz(out, ("images", "labels", "split", "source")), out)  # read back
    n_train = int((data["split"] == 0).sum())
    return (f"{NAME}: wrote {len(data['images']):,} footwear images ({n_train:,} train, "
            f"{len(data['images']) - n_train:,} test) from {TAG} to {out}")


def main(argv: list[str] | None = None) -> int:
    parser = _common.make_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    return _common.guarded(NAME, lambda: fetch(_common.root_of(args), args.force))


if __name__ == "__main__":
    sys.exit(main())
