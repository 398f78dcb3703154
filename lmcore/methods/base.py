"""What every method offers the training loop, the protocol and the chapters."""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..geometry import crop_warp, warp_image


def deep_update(base: dict, overrides: dict | None) -> dict:
    """Copy of ``base`` with ``overrides`` merged in, nested dicts merged key by key."""
    out = copy.deepcopy(base)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class LandmarkMethod(nn.Module):
    """Base class of the paper methods.

    A method is built from a config ``{"method": {...}, "train": {...}}`` (``train`` holds
    :class:`lmcore.training.TrainConfig` fields) and offers:

    * ``forward(images, generator, step) -> dict`` of loss terms with the total under ``"loss"``:
      one training step's losses, called by the training loop (images ``B x 3 x S x S`` float in
      [0, 1] at the source resolution S of ``train.resolution``; ``generator`` for random warps
      on the images' device);
    * ``landmarks(view_images) -> B x K x 2``: landmarks of images already in the method's *view*
      (see below), in view coordinates, with gradients;
    * ``detect(images) -> B x K x 2``: landmarks in normalised coordinates of the full image,
      for float images in [0, 1] of any size;
    * ``default_config(profile)``: the settings of each profile.

    The *view* is what the networks see: the central ``method.view_crop`` fraction of the image,
    resampled to ``method.view_size`` pixels. A crop below 1 zooms on the face (MTFL-80's faces
    fill the middle of the frame) and lets random warps show real image context around the view
    instead of padding.
    """

    name = "base"
    #: ``method`` settings counted in training steps, rescaled by :meth:`shortened_config`
    step_settings: tuple[str, ...] = ()
    #: the training split of MTFL-80 each method learns from (labels unused)
    train_split = "unsup_train"

    def __init__(self, config: dict):
        super().__init__()
        self.config = copy.deepcopy(config)
        self.view_size = int(config["method"].get("view_size", 80))
        self.view_crop = float(config["method"].get("view_crop", 1.0))

    @classmethod
    def default_config(cls, profile: str) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def shortened_config(cls, config: dict, steps: int) -> dict:
        """``config`` with a ``steps``-step schedule: the learning-rate milestones and the method's
        step-counted settings (:attr:`step_settings`, e.g. when a loss weight grows) keep their
        fraction of the schedule, so a short ablation run goes through the same phases."""
        out = copy.deepcopy(config)
        scale = steps / out["train"]["steps"]

        def rescale(value):
            return [int(round(v * scale)) for v in value] if isinstance(value, (list, tuple)) else int(round(value * scale))

        out["train"]["steps"] = int(steps)
        out["train"]["lr_milestones"] = rescale(out["train"].get("lr_milestones", []))
        for key in cls.step_settings:
            out["method"][key] = rescale(out["method"][key])
        return out

    @property
    def num_landmarks(self) -> int:
        return int(self.config["method"]["num_landmarks"])

    def view_warp(self, batch: int, device=None):
        """The crop of the view as a warp: ``map`` takes view coordinates to image coordinates."""
        return crop_warp(batch, self.view_crop, device)

    def to_view(self, images: torch.Tensor) -> torch.Tensor:
        """Images (any size) -> the method's view, ``B x 3 x view_size x view_size``."""
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
