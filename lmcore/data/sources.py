"""Data sources by name: what a run trains on, and the identity of that data.

A method's config names its training data in ``config["data"]``: ``{"source": NAME, "split":
SPLIT}``. :func:`get_source` turns the name into an object with

* ``split(name, every=1) -> LandmarkSet``: images (uint8 ``N x C x H x W``), points (pixels;
  ``N x 0 x 2`` for sets without labels) and, for pose, ``visible``;
* ``splits``: the split names it offers;
* ``fingerprint() -> str``: a hash of the data's content (label files, pinned arrays), part of
  every run's identity, so a run made on other or damaged data is never reused;
* ``has_face_protocol``: whether the book's 5-point face protocol (chapter 0) scores it.

A missing source raises :class:`~lmcore.errors.MissingDataError` naming the command or the
folder that provides it.

==================  ==========================================  ====================================
name                what                                        provided by
==================  ==========================================  ====================================
``mtfl80``          12,995 faces, 5 points (embedded default)   ``../shared/data/mtfl80``
``lspet128``        10,000 people, 14 joints (pose)             ``../shared/data/lspet128``
``mnist``           digits, no points                           ``data_scripts/fetch_mnist.py``
``fashion_footwear``  sandals, sneakers, boots, no points       ``data_scripts/fetch_fashion_mnist.py``
``celeba`` (with MAFL's splits), ``aflw``, ``cats``, ``shoes``: landmark folders, ``data_scripts/fetch_*.py``
==================  ==========================================  ====================================
"""
from __future__ import annotations

import hashlib
from functools import lru_cache

import torch

from ..errors import ConfigError
from ..paths import data_root
from .mtfl import LandmarkSet

FOLDER_SOURCES = ("celeba", "aflw", "cats", "shoes")  # the folders data_scripts/fetch_*.py write


class ArraySource:
    """A registry-fetched set of unlabelled images (MNIST, Fashion-MNIST footwear), zero-padded
    so that random warps keep the object in the frame (Zhang et al. App. G.1 pad 28 to 56)."""

    has_face_protocol = False

    def __init__(self, name: str, pad: int = 14):
        self.name = name
        self.pad = pad
        if name == "mnist":
            from .registry_sets import load_mnist, mnist_path

            images, labels = load_mnist()
            self.root = mnist_path()
            split_of = torch.zeros(len(images), dtype=torch.long)
        else:
            from .registry_sets import fashion_footwear_path, load_fashion_footwear

            images, labels, split_of = load_fashion_footwear()
            self.root = fashion_footwear_path()
        self.labels = labels
        self.images = torch.nn.functional.pad(images[:, None], (pad, pad, pad, pad))
        self._split_of = split_of
        self.splits = {"train": (split_of == 0).nonzero().flatten().tolist(),
                       "test": (split_of == 1).nonzero().flatten().tolist()}
        if not self.splits["test"]:
            del self.splits["test"]

    def split(self, name: str, every: int = 1, *, limit: int | None = None) -> LandmarkSet:
        """The images of one split (``limit`` keeps its first rows, then every ``every``-th)."""
        if name not in self.splits:
            raise ConfigError(f"data source '{self.name}' has no split '{name}'; choose one of {sorted(self.splits)}")
        rows = self.splits[name][:limit] if limit else self.splits[name]
        index = torch.as_tensor(rows[::every], dtype=torch.long)
        images = self.images[index]
        return LandmarkSet(f"{self.name}/{name}", [f"{self.name}/{i}" for i in index.tolist()], images,
                           torch.zeros(len(images), 0, 2))

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.images.numpy().tobytes())
        digest.update(f"pad={self.pad}".encode())
        return digest.hexdigest()[:16]


def _mtfl80():
    from .mtfl import MTFL80

    source = MTFL80()
    source.has_face_protocol = True
    return source


def _lspet128():
    from .lspet import LSPET128

    source = LSPET128()
    source.has_face_protocol = False
    return source


def _folder(name: str):
    from .folders import LandmarkFolder

    source = LandmarkFolder(name)
    source.has_face_protocol = False
    return source


SOURCES = {
    "mtfl80": _mtfl80,
    "lspet128": _lspet128,
    "mnist": lambda: ArraySource("mnist"),
    "fashion_footwear": lambda: ArraySource("fashion_footwear"),
    **{name: (lambda n=name: _folder(n)) for name in FOLDER_SOURCES},
}


@lru_cache(maxsize=8)
def _cached(name: str, root: str):
    return SOURCES[name]()


def get_source(name: str):
    """The data source registered under ``name`` (read once per process and data root)."""
    if name not in SOURCES:
        raise ConfigError(f"unknown data source '{name}'; choose one of {', '.join(sorted(SOURCES))}")
    return _cached(name, str(data_root()))
