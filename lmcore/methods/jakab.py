"""Jakab, Gupta, Bilen & Vedaldi 2018: unsupervised learning of object landmarks through
conditional image generation (IMM; "Cond." in C3's Table 1, "Scratch" in Sanchez's tables).

Two views of one image differ by a warp: a *target* x' (mildly warped) and a *source* x (warped
more). The generator must render x' from the appearance of x and the landmarks of x'; since the
landmarks reach it only as Gaussian maps (a tight bottleneck), the pose encoder learns to put its
K points on the geometry of the object. Loss: perceptual (VGG16, per-layer normalised).

Each setting below is a choice the released code or the paper makes; which values each profile
takes (the ``paper`` profile: the authors' released configuration) is :mod:`lmcore.experiments.jakab`.
"""
from __future__ import annotations

import torch

from ..config import Between, ListOf, OneOf
from ..geometry import ComposedWarp, WarpSpec, random_tps, warp_image
from ..losses.perceptual import VGG16_LAYERS, PerceptualLoss, pixel_loss, smooth_border_mask
from ..models.conditional_generator import (MAP_FORMS, MAP_GRIDS, MAPS_AT, OUTPUTS, TORCH_BATCH_NORM_DEFAULTS,
                                            UPSAMPLING, ConditionalGenerator)
from .base import COMMON_RANGES, WARP_RANGES, LandmarkMethod


class Jakab(LandmarkMethod):
    """Pose encoder, Gaussian bottleneck, appearance encoder and generator, trained by perceptual loss."""

    name = "jakab"
    # the ImageNet VGG16 of the perceptual loss is fetched and checksummed data, not a checkpoint's
    frozen_prefixes = ("criterion.vgg.body.",)
    ranges = {**COMMON_RANGES, "width": Between(1, 1024), "downsamples": Between(1, 5), "max_width": Between(1, 2048),
              "gaussian_std": Between(0, 2, above=True), "map_form": OneOf(*MAP_FORMS), "maps_at": OneOf(*MAPS_AT),
              "upsampling": OneOf(*UPSAMPLING), "output": OneOf(*OUTPUTS), "loss": OneOf("perceptual", "pixel"),
              "vgg_layers": ListOf(OneOf(*VGG16_LAYERS), 1, 13), "perceptual_distance": OneOf("l1", "l2"),
              "normaliser_init": ListOf(Between(0, 1e6, above=True), 0, 14), "loss_scale": Between(0, 1e6, above=True),
              "vgg_input": OneOf("rgb", "gray"), "target_warp": WARP_RANGES, "source_warp": WARP_RANGES,
              "pair_warps": OneOf("code", "independent"), "map_grid": OneOf(*MAP_GRIDS),
              "batch_norm_momentum": Between(0, 1, above=True), "batch_norm_eps": Between(0, 1, above=True)}
    #: settings added after runs were recorded without them, with the values those runs used
    SETTINGS_ADDED_LATER = {"map_grid": "centres", "batch_norm_momentum": TORCH_BATCH_NORM_DEFAULTS[0],
                            "batch_norm_eps": TORCH_BATCH_NORM_DEFAULTS[1]}

    def __init__(self, config: dict):
        super().__init__(config)
        m = {**self.SETTINGS_ADDED_LATER, **config["method"]}
        self.model = ConditionalGenerator(m["num_landmarks"], m["width"], m["downsamples"], m["max_width"],
                                          m["gaussian_std"], m["map_form"], m["maps_at"], m["upsampling"], m["output"],
                                          m["map_grid"], (m["batch_norm_momentum"], m["batch_norm_eps"]))
        if m["loss"] == "perceptual":
            self.criterion = PerceptualLoss(tuple(m["vgg_layers"]), distance=m["perceptual_distance"],
                                            initial=m["normaliser_init"] or None, scale=m["loss_scale"],
                                            gray=m["vgg_input"] == "gray")
        elif m["loss"] == "pixel":
            self.criterion = None
        else:
            raise ValueError(f"unknown loss '{m['loss']}' (perceptual or pixel)")
        self.target_warp = WarpSpec(**m["target_warp"])
        self.source_warp = WarpSpec(**m["source_warp"])

    def landmarks(self, images):
        return self.model.pose(images)[0]

    def in_view(self, warp, view):
        """The sampling map of a random ``warp`` and the view crop: with ``pair_warps = "code"`` the
        warp acts in the view's own coordinates (the released code warps its 128 px crop), else in
        the image's (the book's earlier warps)."""
        return ComposedWarp(view, warp) if self.config["method"]["pair_warps"] == "code" else ComposedWarp(warp, view)

    def views(self, images, generator, with_mask: bool = False):
        """(source, target): two differently warped views of each image; with ``with_mask`` also
        the loss mask of the target (``method.border_mask``: the code's smooth border mask carried
        by the target's warp, zero where the warp leaves the view; None without a mask).

        ``pair_warps = "code"``: the source is warped from the target (sampled once, along both
        warps), as the released code does (imm/datasets/tps_dataset.py:82-83); ``"independent"``:
        each view is warped from the original image."""
        m = self.config["method"]
        b = images.shape[0]
        view = self.view_warp(b, images.device)
        target_warp = random_tps(self.target_warp, b, generator, images.device)
        source_warp = random_tps(self.source_warp, b, generator, images.device)
        if m["pair_warps"] == "code":
            to_target, to_source = ComposedWarp(view, target_warp), ComposedWarp(view, target_warp, source_warp)
        else:
            to_target, to_source = ComposedWarp(target_warp, view), ComposedWarp(source_warp, view)
        target = warp_image(images, to_target, size=self.view_size)
        source = warp_image(images, to_source, size=self.view_size)
        if not with_mask:
            return source, target
        mask = None
        if m["border_mask"]:
            mask = smooth_border_mask(self.view_size, device=images.device).expand(b, 1, -1, -1)
            if m["pair_warps"] == "code":
                mask = warp_image(mask, target_warp, padding_mode="zeros")
        return source, target, mask

    def forward(self, images, generator, step):
        source, target, mask = self.views(images, generator, with_mask=True)
        out = self.model(source, target)
        if self.criterion is None:
            loss = pixel_loss(out["generated"], target)
        else:
            loss = self.criterion(out["generated"], target, mask)
        return {"loss": loss, "pixel_mse": ((out["generated"] - target) ** 2).mean().detach()}

    @torch.no_grad()
    def swap(self, appearance_images: torch.Tensor, pose_images: torch.Tensor) -> dict:
        """Render the landmarks of ``pose_images`` with the appearance of ``appearance_images``
        (full-frame images in [0, 1]); returns the views, the landmarks and the generated images."""
        self.eval()
        device = next(self.parameters()).device
        app = self.to_view(appearance_images.to(device))
        pose = self.to_view(pose_images.to(device))
        out = self.model(app, pose)
        out["appearance_view"], out["pose_view"] = app, pose
        return out
