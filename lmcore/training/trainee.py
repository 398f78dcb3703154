"""What a run trains: its method built from the config with its parents adopted and its initial
weights loaded, fed its training split by the loop.

This module is part of every run's training identity (``TRAINING_ENGINE`` in
:mod:`lmcore.training.code_identity`), unlike the run API around it (:mod:`lmcore.training.runs`),
which finds, locks, stores and reuses runs but computes nothing a run's weights depend on. The
attestation probes (:mod:`lmcore.training.probe`) train through it too, so a probe computes
exactly what the run's first steps computed.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..config import TrainConfig
from ..data.sources import get_source
from ..methods import build_method, get_method
from ..zoo import load_initial_weights
from .loop import TrainResult, train


def build_trainee(method: str, config: dict, parent_models: dict | None = None, init_weights: bool = True):
    """The method of ``config``, freshly initialised from its seed, with its trained parents
    (``{role: model}``) adopted and, with ``init_weights``, the zoo weights ``train.init_from``
    names loaded (a checkpoint of the run, when it resumes, replaces them)."""
    model = build_method(method, config)
    if parent_models:
        model.adopt_parents(parent_models)
    if init_weights and config["train"].get("init_from"):
        load_initial_weights(model, config["train"]["init_from"])
    return model


def train_trainee(model, method: str, config: dict, run_dir: Path, device: torch.device, *,
                  evaluate=None, identity: dict | None = None, progress: bool = True, meta: dict | None = None,
                  name: str = "train", stop_after: int | None = None):
    """Train ``model`` (from :func:`build_trainee`) on its config's training split by the loop:
    ``(TrainResult, the training set)``. Batches are its images, ``(images, targets)`` for a method
    that learns from labels, or pairs of different images for one that trains on pairs."""
    cls = get_method(method)
    train_set = get_source(config["data"]["source"]).split(config["data"]["split"])
    result: TrainResult = train(model, train_set.images, TrainConfig.from_dict(config["train"]), run_dir, device,
                                evaluate=evaluate, identity=identity, progress=progress, stop_after=stop_after,
                                targets=cls.training_targets(train_set), meta=meta, name=name,
                                pairs=cls.trains_on_pairs)
    return result, train_set
