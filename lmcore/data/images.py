"""Image decoding with clear errors, and a decoded-array cache shared by every process."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..errors import CorruptDataError
from ..files import pid_alive
from ..paths import cache_root


def read_rgb(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode one image to an ``H x W x 3`` uint8 array.

    Raises :class:`CorruptDataError` naming the file if it cannot be decoded, or if ``size``
    (width, height) is given and the image has another size.
    """
    try:
        with Image.open(path) as im:
            im.load()
            rgb = im.convert("RGB")
    except FileNotFoundError:
        raise
    except Exception as exc:  # Pillow raises several types for truncated or bogus files
        raise CorruptDataError(f"cannot decode image {path}: {exc}") from exc
    if size is not None and rgb.size != tuple(size):
        raise CorruptDataError(f"image {path} is {rgb.size[0]}x{rgb.size[1]}, expected {size[0]}x{size[1]}")
    return np.asarray(rgb, dtype=np.uint8)


def _cache_key(paths: Sequence[Path], size: tuple[int, int]) -> str:
    digest = hashlib.sha1(repr(size).encode())
    for p in paths:
        st = p.stat()
        digest.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


# Temp files of the cache are ``<name>-<key>.tmp<pid>.npy`` (see load_image_stack).
_TMP_NAME = re.compile(r"\.tmp(\d+)\.npy$")


def remove_orphaned_temp_files(folder: Path) -> list[Path]:
    """Delete ``*.tmp<pid>.npy`` files in ``folder`` whose writer ``pid`` is no longer alive.

    A process killed while writing the cache (each temp file is ~250 MB for MTFL-80) leaves
    its temp file behind; nothing else would ever remove it. Files of live processes are
    kept (they may still be writing). Returns the removed paths.
    """
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for path in folder.glob("*.tmp*.npy"):
        match = _TMP_NAME.search(path.name)
        if match is None or pid_alive(int(match.group(1))):
            continue
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:  # another process swept it first
            pass
    return removed


def load_image_stack(paths: Sequence[Path], size: tuple[int, int], name: str) -> np.ndarray:
    """Decode ``paths`` into an ``N x 3 x H x W`` uint8 array, cached on disk.

    The cache file (in :func:`lmcore.paths.cache_root`) is keyed on the paths, sizes and
    modification times of the files, so a changed or replaced image invalidates it. It is
    written atomically and memory-mapped on later loads. Each call (read or write) first
    removes temp files left by killed writers (:func:`remove_orphaned_temp_files`).
    """
    paths = [Path(p) for p in paths]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise CorruptDataError(f"{len(missing)} image(s) listed for '{name}' are missing, first: {missing[0]}")
    key = _cache_key(paths, size)
    cache_file = cache_root() / f"{name}-{key}.npy"
    remove_orphaned_temp_files(cache_file.parent)
    if cache_file.exists():
        try:
            return np.load(cache_file, mmap_mode="r")
        except (ValueError, OSError):
            cache_file.unlink(missing_ok=True)  # a truncated cache is rebuilt, never trusted
    width, height = size
    stack = np.empty((len(paths), 3, height, width), dtype=np.uint8)
    for i, p in enumerate(paths):
        stack[i] = read_rgb(p, size).transpose(2, 0, 1)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(f".tmp{os.getpid()}.npy")
    try:
        np.save(tmp, stack)
        os.replace(tmp, cache_file)
    except FileNotFoundError:
        # Another process took our temp file for an orphan (a writer in another pid
        # namespace sharing this cache): the decoded stack is still right, only not cached.
        pass
    except BaseException:
        tmp.unlink(missing_ok=True)  # an error or Ctrl-C must not leave 250 MB behind
        raise
    return stack


def load_image_tensor(paths: Sequence[Path], size: tuple[int, int], name: str) -> "torch.Tensor":
    """:func:`load_image_stack` as a writable ``N x 3 x H x W`` uint8 tensor (a memory-mapped cache
    is read-only, and torch needs a copy of it)."""
    import torch

    images = load_image_stack(paths, size, name)
    return torch.from_numpy(images if images.flags.writeable else np.array(images))
