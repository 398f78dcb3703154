"""From score maps to landmark coordinates."""
from __future__ import annotations

import torch

from .coords import pixel_centres


def spatial_softmax(scores: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Softmax over the pixels of each map: ``B x K x H x W`` -> probabilities of the same shape."""
    b, k, h, w = scores.shape
    return torch.softmax(scores.reshape(b, k, h * w) / temperature, dim=-1).reshape(b, k, h, w)


def expected_coordinates(probs: torch.Tensor, grid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean normalised coordinate of each map (maps need not sum to one; they are normalised).

    probs: ``B x K x H x W`` non-negative -> ``B x K x 2`` (x, y). ``grid`` (``H x W x 2``) gives
    the normalised coordinates of the map's pixels when the map does not span the whole image
    (e.g. the output of unpadded convolutions); by default the map spans the image.
    """
    b, k, h, w = probs.shape
    if grid is None:
        grid = pixel_centres(h, w, probs.device, probs.dtype)
    grid = grid.reshape(h * w, 2).to(probs)
    flat = probs.reshape(b, k, h * w)
    mass = flat.sum(-1, keepdim=True).clamp_min(torch.finfo(probs.dtype).tiny)
    return (flat @ grid) / mass


def soft_argmax(scores: torch.Tensor, temperature: float = 1.0,
                grid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-argmax (Thewlis 2017 Eq. 4): the expected location under the spatial softmax.

    scores: ``B x K x H x W`` raw scores. Lower ``temperature`` sharpens the softmax towards
    the arg-max. ``grid``: see :func:`expected_coordinates`. Returns
    ``(points B x K x 2, probabilities B x K x H x W)``.
    """
    probs = spatial_softmax(scores, temperature)
    return expected_coordinates(probs, grid), probs


def marginal_soft_argmax(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates from the marginals (Jakab 2018): average the raw scores over the other axis,
    softmax along each axis, take the expectation.

    scores: ``B x K x H x W`` -> ``(points B x K x 2, (px B x K x W, py B x K x H))``.
    """
    b, k, h, w = scores.shape
    px = torch.softmax(scores.mean(dim=2), dim=-1)  # B x K x W
    py = torch.softmax(scores.mean(dim=3), dim=-1)  # B x K x H
    xs = (torch.arange(w, device=scores.device, dtype=scores.dtype) * 2 + 1) / w - 1
    ys = (torch.arange(h, device=scores.device, dtype=scores.dtype) * 2 + 1) / h - 1
    points = torch.stack([(px * xs).sum(-1), (py * ys).sum(-1)], dim=-1)
    return points, (px, py)
