"""Data sets: MTFL-80 (embedded default), LSPET-128 (pose), landmark folders written by
``data_scripts/``, PF-PASCAL's alignment pairs, the registry-fetched sets, and the sources a run's config names
(:mod:`lmcore.data.sources`)."""
from .folders import LandmarkFolder
from .lspet import FLIP_PERMUTATION, JOINT_NAMES, LSPET128
from .mtfl import MTFL80, LandmarkSet, POINT_NAMES, derive_splits, read_label_file
from .pf_pascal import AlignmentPairs, load_pf_pascal
from .sources import get_source

__all__ = ["AlignmentPairs", "FLIP_PERMUTATION", "JOINT_NAMES", "LSPET128", "LandmarkFolder", "LandmarkSet", "MTFL80", "POINT_NAMES",
           "derive_splits", "get_source", "load_pf_pascal", "read_label_file"]
