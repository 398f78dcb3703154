"""What every method offers the training loop, the protocol and the chapters."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


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
      one training step's losses, called by the training loop (images ``B x 3 x R x R`` float in
      [0, 1] at the training resolution R; ``generator`` for random warps on the images' device);
    * ``detect(images) -> B x K x 2``: landmarks in normalised coordinates for float images in
      [0, 1] at any size (they are resized to the training resolution first);
    * ``default_config(profile)``: the settings of each profile.
    """

    name = "base"
    #: the training split of MTFL-80 each method learns from (labels unused)
    train_split = "unsup_train"

    def __init__(self, config: dict):
        super().__init__()
        self.config = copy.deepcopy(config)
        self.resolution = int(config["train"].get("resolution", 80))

    @classmethod
    def default_config(cls, profile: str) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def num_landmarks(self) -> int:
        return int(self.config["method"]["num_landmarks"])

    def to_resolution(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] == self.resolution and images.shape[-2] == self.resolution:
            return images
        return F.interpolate(images, size=(self.resolution, self.resolution), mode="bilinear",
                             antialias=True, align_corners=False)

    def landmarks(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """Landmarks of images already at the training resolution, with gradients."""
        raise NotImplementedError

    @torch.no_grad()
    def detect(self, images: torch.Tensor) -> torch.Tensor:
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        points = self.landmarks(self.to_resolution(images.to(device)))
        self.train(was_training)
        return points
