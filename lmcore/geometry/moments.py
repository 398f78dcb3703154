"""Moments of maps over the pixel grid: a map's mean coordinate and variance, and the grid a map
lives on together with the length of one of its pixels."""
from __future__ import annotations

import torch

from .coords import pixel_centres


def landmark_statistics(detection: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean coordinate (Zhang 2018 Eq. 3) and variance along each axis of each map
    ``D_k / zeta_k``.

    detection: ``B x K x H x W`` non-negative (e.g. the landmark channels of Zhang's D), spanning
    the image. Returns ``(points B x K x 2, variances B x K x 2)`` in normalised coordinates.
    """
    b, k, h, w = detection.shape
    grid = pixel_centres(h, w, detection.device, detection.dtype).reshape(h * w, 2)
    weights = detection.reshape(b, k, h * w)
    weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-12)
    mean = weights @ grid
    second = weights @ (grid**2)
    return mean, (second - mean**2).clamp_min(0.0)


def map_grid_and_unit(h: int, w: int, grid: torch.Tensor | None, device, dtype) -> tuple[torch.Tensor, float]:
    """The map's pixel coordinates (``h x w x 2``, normalised; ``grid`` if given, else the pixel
    centres of an ``h x w`` map spanning the image) and the normalised length of one map pixel
    (the unit of the FSE losses)."""
    if grid is None:
        grid = pixel_centres(h, w, device, dtype)
    unit = float(grid[0, 1, 0] - grid[0, 0, 0]) if w > 1 else 2.0 / w
    return grid.to(device=device, dtype=dtype), unit
