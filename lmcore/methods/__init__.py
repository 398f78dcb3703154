"""One module per paper, each composing geometry, models and losses into a trainable method."""
from __future__ import annotations

import importlib

from ..config import deep_update
from .base import LandmarkMethod

REGISTRY = {
    "fse": "lmcore.methods.fse:FSE",
    "zhang": "lmcore.methods.zhang:Zhang",
    "jakab": "lmcore.methods.jakab:Jakab",
    "supervised": "lmcore.methods.supervised:SupervisedRegressor",
    "pose": "lmcore.methods.pose:PoseCore",
    "face_core": "lmcore.methods.pose:FaceCore",
    "sanchez": "lmcore.methods.sanchez:Sanchez",
    "c3_flow": "lmcore.methods.c3:C3Flow",
    "c3": "lmcore.methods.c3:C3",
}


def get_method(name: str) -> type[LandmarkMethod]:
    """The method class registered under ``name`` (imported on first use)."""
    if name not in REGISTRY:
        from ..errors import ConfigError

        raise ConfigError(f"unknown method '{name}'; choose one of {', '.join(sorted(REGISTRY))}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_method(name: str, config: dict) -> LandmarkMethod:
    """Construct method ``name`` from ``config`` with its weights initialised from the run's seed."""
    import torch

    torch.manual_seed(int(config["train"].get("seed", 0)))
    return get_method(name)(config)


__all__ = ["LandmarkMethod", "REGISTRY", "build_method", "deep_update", "get_method"]
