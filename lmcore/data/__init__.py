"""Data sets: MTFL-80 (embedded default) and the registry-fetched sets."""
from .mtfl import MTFL80, LandmarkSet, POINT_NAMES, derive_splits, read_label_file

__all__ = ["MTFL80", "LandmarkSet", "POINT_NAMES", "derive_splits", "read_label_file"]
