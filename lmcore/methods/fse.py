"""Thewlis, Bilen & Vedaldi 2017: factorized spatial embeddings (FSE).

A detector is trained so that its landmarks move with random warps of the image (equivariance,
Eq. 5 or 6) while different landmarks fire in different places (diversity, Eq. 7 or 8). The
objective is Eq. 9: ``L'_align + gamma L''_div(x) + gamma L''_div(x')`` with weight decay.

Choices where the paper is silent (the chapter lists them, and :mod:`lmcore.experiments.fse` holds
each profile's values): kernel sizes, the warp ranges, coordinates of the losses in pixels of the
probability map, and, for the CPU profile, a lower training resolution and a higher learning rate.
"""
from __future__ import annotations

import torch

from ..geometry import WarpSpec, soft_argmax, spatial_softmax, synthesize_pair
from ..losses.fse import (
    diversity_loss_max,
    diversity_loss_overlap,
    landmark_alignment_loss,
    probability_map_alignment_loss,
)
from ..models.fse_detector import FSEDetector
from ..config import Between, ListOf, OneOf
from .base import COMMON_RANGES, WARP_RANGES, LandmarkMethod


class FSE(LandmarkMethod):
    """Detector + equivariance and diversity losses of Thewlis et al. 2017."""

    name = "fse"
    ranges = {**COMMON_RANGES, "alignment": OneOf("probability", "landmark"), "diversity": OneOf("max", "overlap", "none"),
              "gamma": Between(0, 1e6), "pool": Between(1, 64), "widths": ListOf(Between(1, 4096), 5, 5),
              "kernel_sizes": ListOf(Between(1, 15), 6, 6), "padding": OneOf("valid", "same"),
              "padding_mode": OneOf("zeros", "reflect", "replicate", "circular"),
              "first_warp": WARP_RANGES, "second_warp": WARP_RANGES}

    def __init__(self, config: dict):
        super().__init__(config)
        m = config["method"]
        self.detector = FSEDetector(m["num_landmarks"], tuple(m["widths"]), tuple(m["kernel_sizes"]),
                                    m["padding_mode"], m["padding"])
        self.first_warp = WarpSpec(**m["first_warp"])
        self.second_warp = WarpSpec(**m["second_warp"])

    def map_grid(self, size: int, device=None):
        return self.detector.map_grid(size, device)

    def landmarks(self, images):
        return soft_argmax(self.detector(images), grid=self.map_grid(images.shape[-1], images.device))[0]

    def diversity(self, probs):
        m = self.config["method"]
        if m["diversity"] == "max":
            return diversity_loss_max(probs, m["pool"])
        if m["diversity"] == "overlap":
            return diversity_loss_overlap(probs)
        if m["diversity"] == "none":
            return probs.new_zeros(())
        raise ValueError(f"unknown diversity loss '{m['diversity']}'")

    def forward(self, images, generator, step):
        m = self.config["method"]
        pair = synthesize_pair(images, self.first_warp, self.second_warp, generator,
                               view=self.view_warp(len(images), images.device), size=self.view_size)
        scores = self.detector(torch.cat([pair.first, pair.second]))
        b = images.shape[0]
        grid = self.map_grid(self.view_size, images.device)
        probs = spatial_softmax(scores)
        p1, p2 = probs[:b], probs[b:]
        if m["alignment"] == "probability":
            align = probability_map_alignment_loss(p1, p2, pair.warp, grid)
        elif m["alignment"] == "landmark":
            pts = soft_argmax(scores, grid=grid)[0]
            unit = float(grid[0, 1, 0] - grid[0, 0, 0])
            align = landmark_alignment_loss(pts[:b], pts[b:], pair.warp, unit)
        else:
            raise ValueError(f"unknown alignment loss '{m['alignment']}'")
        div = self.diversity(p1) + self.diversity(p2)
        loss = align + m["gamma"] * div
        return {"loss": loss, "align": align.detach(), "diversity": div.detach()}

