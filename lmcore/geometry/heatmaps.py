"""Rendering points as maps."""
from __future__ import annotations

import torch

from .coords import pixel_centres


def squared_distance_maps(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``|u - p_k|^2`` for every pixel centre u: points ``B x K x 2`` -> ``B x K x H x W``."""
    grid = pixel_centres(height, width, points.device, points.dtype)  # H x W x 2
    diff = grid[None, None] - points[:, :, None, None, :]
    return (diff**2).sum(-1)


def gaussian_heatmaps(points: torch.Tensor, height: int, width: int, std: float) -> torch.Tensor:
    """Unnormalised isotropic Gaussians ``exp(-|u - p|^2 / (2 std^2))`` peaking at 1.

    points: ``B x K x 2`` normalised; std in normalised units (the image is 2 wide).
    Returns ``B x K x H x W``.
    """
    return torch.exp(-squared_distance_maps(points, height, width) / (2.0 * std**2))


def gaussian_densities(points: torch.Tensor, height: int, width: int, std: float) -> torch.Tensor:
    """Gaussian maps normalised to sum to one over the pixels (a discrete density per point)."""
    maps = gaussian_heatmaps(points, height, width, std)
    return maps / maps.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
