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

import importlib
from functools import lru_cache

from ..errors import ConfigError
from ..paths import data_root


#: ``{name: "module:class"}``: the class is built with the source's name where it serves several
#: (``takes_name``), else without arguments. A string registry, so that a run's code identity holds
#: its own source's module and not every parser (lmcore.training.code_identity.REGISTRIES).
SOURCES = {
    "mtfl80": "lmcore.data.mtfl:MTFL80",
    "lspet128": "lmcore.data.lspet:LSPET128",
    "mnist": "lmcore.data.arrays:ArraySource",
    "fashion_footwear": "lmcore.data.arrays:ArraySource",
    "celeba": "lmcore.data.folders:LandmarkFolder",
    "aflw": "lmcore.data.folders:LandmarkFolder",
    "cats": "lmcore.data.folders:LandmarkFolder",
    "shoes": "lmcore.data.folders:LandmarkFolder",
}
FOLDER_SOURCES = tuple(name for name, entry in SOURCES.items() if entry.endswith(":LandmarkFolder"))


@lru_cache(maxsize=8)
def _cached(name: str, root: str):
    module, attribute = SOURCES[name].split(":")
    factory = getattr(importlib.import_module(module), attribute)
    return factory(name) if getattr(factory, "takes_name", False) else factory()


def get_source(name: str):
    """The data source registered under ``name`` (read once per process and data root)."""
    if name not in SOURCES:
        raise ConfigError(f"unknown data source '{name}'; choose one of {', '.join(sorted(SOURCES))}")
    return _cached(name, str(data_root()))
