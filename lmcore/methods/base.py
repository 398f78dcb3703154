"""What every method offers the training loop, the protocol and the chapters: the method contract.

A method is one module under ``lmcore/methods`` and one line in ``REGISTRY``
(``lmcore/methods/__init__.py``); nothing under ``lmcore/training`` names a method. The training
loop and :func:`lmcore.training.run_method` read everything they need from the class and its
config, never by probing for attributes:

==========================  =====================================================================
contract                    where
==========================  =====================================================================
settings per profile        not here: :mod:`lmcore.experiments` holds each method's profiles and
                            chapter budgets (``method_settings(name)``); a method declares what
                            its settings mean (``ranges``, :meth:`check_config`)
training data               ``config["data"] = {"source", "split"}`` (default: the class's
                            ``data_source`` and ``train_split``), see :mod:`lmcore.data.sources`
trains with labels          ``trains_with_labels``: the loop hands ``(images, targets)`` batches,
                            targets from :meth:`training_targets` (default: the points)
pairs of different images   ``trains_on_pairs``: the loop hands ``(images_a, images_b)`` batches,
                            two different images of the training split per example (C3)
frozen weights              ``frozen_prefixes``: state-dict keys that are data or a parent's
                            weights, left out of checkpoints and restored from their source
clipping groups             :meth:`clip_groups`: the networks ``train.grad_clip_mode =
                            "per_network"`` clips apart (default: one group, all parameters)
parent runs                 ``config["parents"] = {role: {"method", "name", "overrides"}}``: runs
                            trained (or reused) first, whose identities are part of this run's;
                            :meth:`adopt_parents` receives their trained models
its own evaluation          :meth:`evaluate` (default: the face protocol of chapter 0 where the
                            source has it) and :meth:`learning_curve` (default: forward error on
                            test_mtfl)
value ranges                ``ranges``: each ``method`` setting's range (:mod:`lmcore.config`),
                            checked in one place; :meth:`check_config` for rules between settings
                            and ``shared_with_parents`` for settings a parent run must share
==========================  =====================================================================
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

from ..config import Between, OneOf, check_ranges
from ..geometry import crop_warp, warp_image

#: the ranges of a :class:`~lmcore.geometry.WarpSpec` group (lengths in image edges, angles in degrees)
WARP_RANGES = {"rotation_deg": Between(0, 180), "log2_scale": Between(0, 3), "translation": Between(0, 1),
               "tps_grid": Between(0, 32), "tps_std": Between(0, 1), "distribution": OneOf("uniform", "normal"),
               "tps_extent": Between(0.1, 2), "tps_bend": Between(0, 1),
               "translation_distribution": OneOf("uniform", "normal"), "tps_kind": OneOf("spline", "kernel"),
               "tps_sparse_std": Between(0, 1)}
#: ranges every method shares (each method's ``ranges`` adds its own settings)
COMMON_RANGES = {"num_landmarks": Between(1, 256), "view_crop": Between(0.1, 1.5), "view_size": Between(16, 1024)}

#: the history key of a learning curve's forward error on test_mtfl (viz and reporting read it)
LEARNING_CURVE_KEY = "forward_test_mtfl"
#: the learning curve's tune_val forward error (regressor on a tune_fit subset): what a lineage is grown by
TUNE_CURVE_KEY = "forward_tune_val"
#: a supervised pose core's record and learning-curve key: its PCK@0.2 on LSPET val (a fraction)
PCK_KEY = "pck_val"
#: the history key of the landmarks recorded on a few test faces at each evaluation (widgets)
SNAPSHOT_KEY = "snapshot_points"
SNAPSHOT_IMAGES = 6


class LandmarkMethod(nn.Module):
    """Base class of the paper methods (see the module docstring for the contract).

    A method is built from a config ``{"data", "method", "train", "parents"}`` (``train`` holds
    :class:`lmcore.training.TrainConfig` fields) and offers:

    * ``forward(batch, generator, step) -> dict`` of loss terms with the total under ``"loss"``:
      one training step's losses (``batch``: images ``B x C x S x S`` float in [0, 1] at the
      source resolution S of ``train.resolution``, or ``(images, points)`` when
      ``trains_with_labels``; ``generator`` for random warps on the images' device);
    * ``landmarks(view_images) -> B x K x 2``: landmarks of images already in the method's *view*
      (see below), in view coordinates, with gradients;
    * ``detect(images) -> B x K x 2``: landmarks in normalised coordinates of the full image,
      for float images in [0, 1] of any size.

    The *view* is what the networks see: the central ``method.view_crop`` fraction of the image,
    resampled to ``method.view_size`` pixels. A crop below 1 zooms on the face (MTFL-80's faces
    fill the middle of the frame) and lets random warps show real image context around the view
    instead of padding. A crop above 1 (at most 1.5) shows the frame with a margin around it, filled
    with the frame's edge pixels, so that a detector whose maps cover only the interior of its
    input (FSE's unpadded convolutions) can still reach the frame's edges.
    """

    name = "base"
    #: ``method`` settings counted in training steps, rescaled by :meth:`shortened_config`
    step_settings: tuple[str, ...] = ()
    #: default training data: a source of :mod:`lmcore.data.sources` and its split
    data_source = "mtfl80"
    train_split = "unsup_train"
    #: the loop hands ``(images, points)`` batches (points in pixels of the source images)
    trains_with_labels = False
    #: the loop hands ``(images_a, images_b)`` batches of different images (unpaired data)
    trains_on_pairs = False
    #: what :meth:`evaluate` measures, as the command line announces it
    evaluation_summary = "forward, backward and consistency errors on the test splits"
    #: state-dict key prefixes that are not checkpointed (fetched data or a parent's weights)
    frozen_prefixes: tuple[str, ...] = ()
    #: ``{role: method settings}`` a parent run must share with this run (e.g. the architecture of
    #: the networks it adopts), checked against the parent's resolved config before anything trains
    shared_with_parents: dict[str, tuple[str, ...]] = {}
    #: ``{setting: Between/OneOf/ListOf or a nested dict}`` for every ``method`` setting of every
    #: profile (:data:`COMMON_RANGES` included); a test requires each setting to have one
    ranges: dict = COMMON_RANGES

    def __init__(self, config: dict):
        super().__init__()
        self.config = copy.deepcopy(config)
        self.view_size = int(config["method"].get("view_size", 80))
        self.view_crop = float(config["method"].get("view_crop", 1.0))

    # ------------------------------------------------------------------ configuration

    @classmethod
    def check_config(cls, config: dict) -> None:
        """Raise :class:`ConfigError` for values no run can use (types are checked before): each
        setting against its declared range (:attr:`ranges`); methods add rules between settings."""
        check_ranges(config["method"], cls.ranges, "method.")

    @classmethod
    def shortened_config(cls, config: dict, steps: int) -> dict:
        """``config`` with a ``steps``-step schedule: the learning-rate milestones and the method's
        step-counted settings (:attr:`step_settings`, e.g. when a loss weight grows) keep their
        fraction of the schedule, so a short ablation run goes through the same phases."""
        out = copy.deepcopy(config)
        scale = steps / out["train"]["steps"]

        def rescale(value):
            if isinstance(value, (list, tuple)):
                return [max(1, int(round(v * scale))) for v in value]
            return max(1, int(round(value * scale)))

        out["train"]["steps"] = int(steps)
        out["train"]["lr_milestones"] = rescale(out["train"].get("lr_milestones", []))
        for key in cls.step_settings:
            out["method"][key] = rescale(out["method"][key])
        return out

    @classmethod
    def training_targets(cls, train_set) -> torch.Tensor | None:
        """What the loop hands ``forward`` beside the images (``(images, targets)`` batches), or
        None for a method that learns from images alone. Default: the annotated points (pixels)
        when :attr:`trains_with_labels`."""
        return train_set.points if cls.trains_with_labels else None

    # ------------------------------------------------------------------ parents and weights

    def adopt_parents(self, parents: dict[str, "LandmarkMethod"]) -> None:
        """Take what this method needs from its trained parent runs (``{role: model}``), before
        training starts and before a checkpoint is loaded. Methods without parents ignore it."""

    def clip_groups(self) -> list[list[nn.Parameter]]:
        """The parameter groups clipped apart under ``train.grad_clip_mode = "per_network"``."""
        return [list(self.parameters())]

    def state_dict(self, *args, **kwargs):
        state = super().state_dict(*args, **kwargs)
        if not self.frozen_prefixes:
            return state
        prefix = kwargs.get("prefix", "")
        frozen = tuple(prefix + p for p in self.frozen_prefixes)
        return type(state)((k, v) for k, v in state.items() if not k.startswith(frozen))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        if self.frozen_prefixes:  # frozen weights come from their own source, not the checkpoint
            own = super().state_dict()
            kept = {k: v for k, v in own.items() if k.startswith(self.frozen_prefixes)}
            state_dict = {**state_dict, **kept}
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, source, options, few_shot: dict | None = None, subsample: int = 1) -> dict:
        """The run record's metrics. Default: the face protocol of chapter 0 (forward, backward,
        consistency and few-shot errors) where ``source`` has it, else none."""
        if not getattr(source, "has_face_protocol", False):
            return {}
        from ..evaluation import evaluate_detector

        test_sets = {name: source.split(name, every=subsample) for name in ("test_mtfl", "test_aflw")}
        few_shot = few_shot or {}
        n_regressor = len(source.splits["regressor_train"])
        sizes = [n for n in few_shot.get("sizes", ()) if n is None or n * subsample <= n_regressor]
        return evaluate_detector(self.detect, source.split("regressor_train", every=subsample), test_sets, options,
                                 consistency_limit=1000 // subsample, few_shot_sizes=sizes,
                                 few_shot_repeats=few_shot.get("repeats", 10)).as_dict()

    def learning_curve(self, source, subsample: int = 1, n_train: int = 2000) -> Callable | None:
        """A cheap evaluation for the learning curve, called every ``train.eval_every`` steps: the
        forward error on test_mtfl with the regressor fitted on ``n_train`` labelled faces spread
        evenly over regressor_train (sorted by path: its first rows are all LFW faces), and the one
        settings and stopping points are judged by, on tune_val with the regressor fitted on as
        many faces of tune_fit (:data:`TUNE_CURVE_KEY`); both least squares without a ridge."""
        if not getattr(source, "has_face_protocol", False):
            return None
        from ..evaluation import RegressionOptions, detect_all, forward_error

        def spread(split: str):
            names = source.splits[split]
            stride = max(1, len(names) // n_train) * subsample
            return source.by_names(names[::stride][:n_train], f"{split} (learning curve subset)")

        train_set, tune_fit = spread("regressor_train"), spread("tune_fit")
        test_set, tune_val = source.split("test_mtfl", every=subsample), source.split("tune_val", every=subsample)
        plain = RegressionOptions(ridge=0.0)

        def evaluate(method) -> dict:
            with torch.no_grad():
                tr, te, tf, tv = (detect_all(method.detect, faces.images) for faces in (train_set, test_set, tune_fit, tune_val))
            result = forward_error(tr, train_set.points, te, test_set.points, plain)
            tune = forward_error(tf, tune_fit.points, tv, tune_val.points, plain)
            snapshot = [[[round(float(c), 2) for c in p] for p in face] for face in te[:SNAPSHOT_IMAGES]]
            return {LEARNING_CURVE_KEY: result["mean"], TUNE_CURVE_KEY: tune["mean"], SNAPSHOT_KEY: snapshot}

        return evaluate

    # ------------------------------------------------------------------ geometry of the view

    @property
    def num_landmarks(self) -> int:
        return int(self.config["method"]["num_landmarks"])

    def view_warp(self, batch: int, device=None):
        """The crop of the view as a warp: ``map`` takes view coordinates to image coordinates."""
        return crop_warp(batch, self.view_crop, device)

    def to_view(self, images: torch.Tensor) -> torch.Tensor:
        """Images (any size) -> the method's view, ``B x C x view_size x view_size``."""
        if self.view_crop == 1.0 and images.shape[-1] == self.view_size and images.shape[-2] == self.view_size:
            return images
        return warp_image(images, self.view_warp(len(images), images.device), size=self.view_size)

    def landmarks(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """Landmarks of images already in the view, in view coordinates, with gradients."""
        raise NotImplementedError

    @torch.no_grad()
    def detect(self, images: torch.Tensor) -> torch.Tensor:
        """Landmarks ``B x K x 2`` in normalised coordinates of the full images."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        images = images.to(device)
        points = self.landmarks(self.to_view(images))
        self.train(was_training)
        return self.view_warp(len(images), device).map(points)
