"""The losses of Zhang et al. 2018 (landmarks as structural representations).

Coordinates in these losses are in units of the image edge (the image is 1 wide), as the paper's
Table 7 note requires: "the coordinates are first normalized with respect to the image edge
length"; lmcore's normalised coordinates span 2, so they are halved here. Each loss sums over
landmarks (and landmark pairs) and averages over the batch.
"""
from __future__ import annotations

import math

import torch

from ..geometry import Warp
from ..geometry.moments import landmark_statistics  # noqa: F401  (Eq. 3; lives in geometry, kept importable here)


def to_edge_units(points: torch.Tensor) -> torch.Tensor:
    """Normalised coordinates (image 2 wide) -> units of the image edge (image 1 wide)."""
    return points * 0.5


def concentration_loss(variances: torch.Tensor) -> torch.Tensor:
    """Eq. 5: the exponential of the entropy of the isotropic Gaussian that approximates each map.

    With ``sigma_det^2 = (var_u + var_v) / 2`` (edge units) that is ``2 pi e sigma_det^2``. Eq. 5 as
    printed squares the sum of the variances; the text defines the loss as this exponential of the
    entropy, which is what is implemented. variances: ``B x K x 2`` in normalised units.
    """
    var_edge = variances * 0.25
    sigma2 = var_edge.sum(-1) / 2
    return (2 * math.pi * math.e * sigma2).sum(-1).mean()


def separation_loss(points: torch.Tensor, sigma: float) -> torch.Tensor:
    """Eq. 7: ``sum_{k != k'} exp(-|p_k - p_k'|^2 / (2 sigma^2))`` (edge units)."""
    p = to_edge_units(points)
    sq = ((p[:, :, None, :] - p[:, None, :, :]) ** 2).sum(-1)
    k = p.shape[1]
    off_diagonal = ~torch.eye(k, dtype=torch.bool, device=p.device)
    return (torch.exp(-sq / (2 * sigma**2)) * off_diagonal).sum((-1, -2)).mean()


def equivariance_loss(points: torch.Tensor, points_warped: torch.Tensor, warp: Warp) -> torch.Tensor:
    """Eq. 8: ``sum_k |g(x'_k, y'_k) - (x_k, y_k)|^2`` for ``I' = I o g`` (``warp.map`` is g)."""
    carried = warp.map(points_warped)
    return (to_edge_units(carried - points) ** 2).sum(-1).sum(-1).mean()


def reconstruction_loss(images: torch.Tensor, reconstructions: torch.Tensor, sigma_color: float = 0.05) -> torch.Tensor:
    """Eq. 17: Gaussian negative log-likelihood ``|I - I~|_F^2 / sigma^2 + ln(2 pi sigma^2)`` on
    [0, 1] pixels; the squared Frobenius norm sums over an image's pixels and channels."""
    squared = ((images - reconstructions) ** 2).flatten(1).sum(-1)
    return (squared / sigma_color**2 + math.log(2 * math.pi * sigma_color**2)).mean()
