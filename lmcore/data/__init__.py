"""Data sets: MTFL-80 (embedded default), LSPET-128 (pose), landmark folders written by
``data_scripts/``, the registry-fetched sets, and the sources a run's config names
(:mod:`lmcore.data.sources`)."""
from .folders import LandmarkFolder
from .lspet import FLIP_PERMUTATION, JOINT_NAMES, LSPET128
from .mtfl import MTFL80, LandmarkSet, POINT_NAMES, derive_splits, read_label_file
from .sources import get_source

__all__ = ["FLIP_PERMUTATION", "JOINT_NAMES", "LSPET128", "LandmarkFolder", "LandmarkSet", "MTFL80", "POINT_NAMES",
           "derive_splits", "get_source", "read_label_file"]
