"""Registry-fetched sets of unlabelled images (MNIST, Fashion-MNIST footwear) as data sources."""
from __future__ import annotations

import hashlib

import torch

from ..errors import ConfigError
from .mtfl import LandmarkSet


class ArraySource:
    """A registry-fetched set of unlabelled images (MNIST, Fashion-MNIST footwear), zero-padded
    so that random warps keep the object in the frame (Zhang et al. App. G.1 pad 28 to 56)."""

    has_face_protocol = False
    #: one class serves both sets: lmcore.data.sources builds it with the set's name
    takes_name = True

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
