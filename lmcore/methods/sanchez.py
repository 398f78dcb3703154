"""Sanchez & Tzimiropoulos 2019: object landmark discovery through unsupervised adaptation.

A landmark detector trained *with labels* on another category (the ``pose`` parent run, people)
is adapted to faces *without labels*, through Jakab et al.'s conditional image generation (§3):
the generator must render a mildly warped view of a face from the appearance of a more warped
view and the landmarks of the first, and the detector learns whatever landmarks make that
possible. Three modes, as the paper compares them:

* ``proposed``: every convolution of the frozen core carries a learnt C_out x C_out projection,
  initialised to the identity (:func:`lmcore.models.projected.make_adaptable`); the projections,
  batch norm and a new K-channel head are trained (~9% of the parameters at the paper's width);
* ``finetune``: the core's weights, all trainable, with a new head;
* ``scratch``: the same network randomly initialised (the core run is then unused).

The released code (ESanchezLozano/SAIC-Unsupervised-landmark-detection-NeurIPS2019) has its own
image-to-image generator with residual blocks, one Gaussian map per landmark at the detector's
resolution, a pixel + VGG16 MSE loss, two independent rotations as the training pair, only the 3x3
convolutions projected (:mod:`lmcore.models.sanchez_generator`): ``method.generator = "sanchez"``;
``"jakab"`` takes the Jakab chapter's generator, loss and warps instead. Which profile takes which
is :mod:`lmcore.experiments.sanchez`. The frozen core comes from the parent run named in
``config["parents"]["core"]``, trained (or reused) before this run.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..config import Between, ListOf, OneOf, deep_update
from ..errors import ConfigError
from ..geometry import ComposedWarp, marginal_soft_argmax, soft_argmax, warp_image
from ..models.fan import FAN
from ..models.projected import fold_projections, make_adaptable
from ..models.sanchez_generator import (SanchezGenerator, SanchezLoss, code_map_std,
                                        sanchez_pair_warps)
from .jakab import Jakab

MODES = ("proposed", "finetune", "scratch")


#: the adaptation's generator, loss and pairs: the Jakab chapter's (``"jakab"``), or the released
#: Sanchez code's (``"sanchez"``: its generator, maps exp(-d^2 / map_sigma) in map pixels at the
#: detector's resolution, pixel + VGG16 MSE, and its rotation pairs)
GENERATORS = ("jakab", "sanchez")
POINTS = ("softargmax", "marginal")


def _rgb(images):
    """Grey images (Fashion-MNIST footwear, the generalisation case) as three equal channels: the
    core, the generator and the VGG16 of the perceptual loss all read RGB."""
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


class FANPose(nn.Module):
    """The detector as Jakab's generator expects its pose encoder: images -> (points, logits), the
    points by a soft argmax at ``temperature`` (the code's 0.1) or from the maps' marginals."""

    def __init__(self, detector: nn.Module, temperature: float, points: str = "softargmax"):
        super().__init__()
        if points not in POINTS:
            raise ValueError(f"points must be one of {POINTS}, got '{points}'")
        self.detector = detector
        self.temperature, self.points = temperature, points

    def forward(self, images):
        logits = self.detector(images)
        if self.points == "marginal":
            return marginal_soft_argmax(logits)[0], logits
        return soft_argmax(logits, self.temperature)[0], logits


class SanchezModel(nn.Module):
    """The released code's adaptation model, with Jakab's ``ConditionalGenerator`` interface:
    ``forward(appearance_images, pose_images)`` renders the pose of the second with the appearance
    of the first. ``pose``: the detector (a :class:`FANPose`); the maps: ``exp(-d^2 / sigma)`` in
    pixels of the detector's maps (the generator's bottleneck, S / 4)."""

    def __init__(self, pose: nn.Module, num_landmarks: int, width: int, blocks: int, sigma: float):
        super().__init__()
        self.pose = pose
        self.generator = SanchezGenerator(num_landmarks, width, 2, blocks)
        self.sigma = sigma

    def render(self, points: torch.Tensor, size: int) -> list[torch.Tensor]:
        from ..geometry import gaussian_heatmaps

        side = self.generator.map_size(size)
        return [gaussian_heatmaps(points, side, side, code_map_std(side, self.sigma))]

    def forward(self, appearance_images: torch.Tensor, pose_images: torch.Tensor) -> dict:
        points, scores = self.pose(pose_images)
        maps = self.render(points, pose_images.shape[-1])
        generated = self.generator(appearance_images, maps[0])
        return {"points": points, "scores": scores, "maps": maps, "generated": generated}


class Sanchez(Jakab):
    """Jakab's conditional generator with a FAN detector adapted from a supervised core."""

    name = "sanchez"
    ranges = {**Jakab.ranges, "mode": OneOf(*MODES), "projected": OneOf("all", "3x3"), "core_width": Between(8, 1024),
              "core_depth": Between(1, 6), "core_landmarks": Between(1, 256), "temperature": Between(0, 100, above=True),
              "loss": OneOf("perceptual", "pixel", "sanchez"), "points": OneOf(*POINTS),
              "point_temperature": Between(0, 100, above=True), "generator": OneOf(*GENERATORS),
              "generator_width": Between(4, 256), "generator_blocks": Between(0, 16), "map_sigma": Between(0, 100, above=True),
              "rotation_std_deg": ListOf(Between(0, 90), 2, 2), "rotation_clip_deg": Between(0, 180),
              "margin_std": Between(0, 30)}

    def __init__(self, config: dict):
        m = config["method"]
        if m["loss"] == "sanchez":  # Jakab's constructor knows the other two
            config = deep_update(config, {"method": {"loss": "pixel"}})
        super().__init__(config)
        self.config["method"]["loss"] = m["loss"]
        if m["loss"] == "sanchez":
            self.criterion = SanchezLoss(tuple(m["vgg_layers"]))
        # the structure of each mode, so that a checkpoint loads before (or without) the parent
        core = FAN(m["core_landmarks"], m["core_width"], m["core_depth"], m["temperature"])
        pose = FANPose(self._adapt(core), m["point_temperature"], m["points"])
        if m["generator"] == "sanchez":
            self.model = SanchezModel(pose, m["num_landmarks"], m["generator_width"], m["generator_blocks"],
                                      m["map_sigma"])
        else:
            self.model.pose = pose

    def clip_groups(self) -> list[list[nn.Parameter]]:
        """The detector and the rest (the generator), each clipped on its own under
        ``train.grad_clip_mode = "per_network"`` (the code's model.py:146-148)."""
        detector = set(id(p) for p in self.model.pose.parameters())
        return [list(self.model.pose.parameters()), [p for p in self.parameters() if id(p) not in detector]]

    @classmethod
    def check_config(cls, config: dict) -> None:
        super().check_config(config)
        m = config["method"]
        if m["view_size"] % (4 * 2 ** m["core_depth"]):
            raise ConfigError(f"setting 'method.view_size' must be a multiple of {4 * 2 ** m['core_depth']} for the "
                              f"FAN core, got {m['view_size']}")

    def _adapt(self, core: FAN) -> nn.Module:
        m = self.config["method"]
        if m["mode"] == "proposed":
            return make_adaptable(core, m["num_landmarks"], projected=m["projected"])
        if m["mode"] == "scratch":  # the same network, randomly initialised
            return FAN(m["num_landmarks"], m["core_width"], m["core_depth"], m["temperature"])
        detector = copy.deepcopy(core)
        detector.replace_head(m["num_landmarks"])
        return detector

    def views(self, images, generator, with_mask: bool = False):
        """(source, target): with the code's generator, two independent rotations of the image
        (N(0, 30 deg) for the target the detector sees and the generator reproduces, N(0, 15 deg)
        for the appearance source, each clipped) zoomed by the code's crop-margin jitter, then the
        view; else Jakab's pair."""
        images = _rgb(images)
        m = self.config["method"]
        if m["generator"] != "sanchez":
            return super().views(images, generator, with_mask)
        b = images.shape[0]
        view = self.view_warp(b, images.device)
        pair = sanchez_pair_warps(b, generator, images.device, *m["rotation_std_deg"], clip_deg=m["rotation_clip_deg"],
                                  margin_std=m["margin_std"])
        target = warp_image(images, ComposedWarp(pair.target, view), size=self.view_size)
        source = warp_image(images, ComposedWarp(pair.appearance, view), size=self.view_size)
        return (source, target, None) if with_mask else (source, target)

    def to_view(self, images):
        return super().to_view(_rgb(images))

    def adopt_parents(self, parents: dict) -> None:
        """Build the detector from the trained core (``parents["core"]``, a ``pose`` run)."""
        core = parents["core"].core
        m = self.config["method"]
        if (core.width, core.depth, core.num_landmarks) != (m["core_width"], m["core_depth"], m["core_landmarks"]):
            raise ConfigError(f"the core run has width {core.width}, depth {core.depth}, {core.num_landmarks} maps; "
                              f"method.core_width/core_depth/core_landmarks say {m['core_width']}, {m['core_depth']}, "
                              f"{m['core_landmarks']}")
        if m["mode"] != "scratch":
            device = next(self.parameters()).device
            self.model.pose = FANPose(self._adapt(copy.deepcopy(core).cpu()), m["point_temperature"],
                                      m["points"]).to(device)

    @property
    def detector(self) -> nn.Module:
        return self.model.pose.detector

    def folded_detector(self) -> nn.Module:
        """The detector with its projections folded into plain convolutions (same output; the
        evaluation then costs what the core costs)."""
        return fold_projections(self.detector) if self.config["method"]["mode"] == "proposed" else self.detector
