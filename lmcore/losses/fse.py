"""The losses of Thewlis, Bilen & Vedaldi 2017 (factorized spatial embeddings).

Notation: a pair ``x`` (first) and ``x' = x o g`` (second); ``g = warp.map`` carries coordinates
of ``x'`` into ``x``. Probability maps are ``B x K x h x w`` (spatial softmax of the scores);
coordinates are measured in *pixels of the probability map* (the paper's units, which set the
scale of gamma against the alignment term).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..geometry import Warp
from ..geometry.moments import map_grid_and_unit


def landmark_alignment_loss(points_first: torch.Tensor, points_second: torch.Tensor, warp: Warp,
                            unit: float) -> torch.Tensor:
    """Eq. 5: ``1/K sum_r |Phi(x')_r carried into x - Phi(x)_r|^2`` on soft-argmax landmarks.

    points_*: ``B x K x 2`` normalised; ``unit``: the normalised length of one map pixel (the
    loss is in map pixels squared). Returns the mean over the batch.
    """
    carried = warp.map(points_second)
    diff = (carried - points_first) / unit
    return (diff**2).sum(-1).mean()


def probability_map_alignment_loss(probs_first: torch.Tensor, probs_second: torch.Tensor, warp: Warp,
                                   grid: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 6: ``1/K sum_r sum_uv |u - g(v)|^2 p(u|x,r) p(v|x',r)``, in linear time.

    Uses the paper's decomposition ``sum_u |u|^2 p(u) + sum_v |g(v)|^2 p'(v) - 2 (sum_u u p(u))
    . (sum_v g(v) p'(v))`` instead of visiting all pixel pairs. Zero only when both maps are
    deltas at corresponding places. ``grid``: normalised coordinates of the maps' pixels (default:
    the maps span the image). Returns the mean over the batch, in map pixels squared.
    """
    b, k, h, w = probs_first.shape
    grid, unit = map_grid_and_unit(h, w, grid, probs_first.device, probs_first.dtype)
    flat = grid.reshape(1, h * w, 2).expand(b, -1, -1)
    u = flat / unit
    gv = warp.map(flat) / unit
    p = probs_first.reshape(b, k, h * w)
    q = probs_second.reshape(b, k, h * w)
    first_moment_p = p @ u  # B x K x 2
    first_moment_q = q @ gv
    second_p = p @ (u**2).sum(-1, keepdim=True)  # B x K x 1
    second_q = q @ (gv**2).sum(-1, keepdim=True)
    per_landmark = second_p[..., 0] + second_q[..., 0] - 2 * (first_moment_p * first_moment_q).sum(-1)
    return per_landmark.mean()


def diversity_loss_overlap(probs: torch.Tensor) -> torch.Tensor:
    """Eq. 7: mutual overlap ``1/K^2 sum_{r != r'} sum_u p(u|r) p(u|r')``.

    The paper's sum runs over all (r, r'); the diagonal r = r' never vanishes, so it is left
    out here, which makes the loss zero exactly when the supports are disjoint, as the paper
    says it is. Quadratic in K. Mean over the batch.
    """
    b, k, h, w = probs.shape
    flat = probs.reshape(b, k, h * w)
    gram = flat @ flat.transpose(1, 2)
    off_diagonal = gram.sum((-1, -2)) - gram.diagonal(dim1=-2, dim2=-1).sum(-1)
    return (off_diagonal / k**2).mean()


def diversity_loss_max(probs: torch.Tensor, pool: int = 1) -> torch.Tensor:
    """Eq. 8 and its pooled form: ``K - sum_u max_r sum_{delta} p(m u + delta | r)``.

    ``pool`` is m, the side of the sum pooling applied first (m = 1 gives Eq. 8 itself); larger
    m pushes landmarks further apart. Zero when the (pooled) supports are disjoint, ``K - 1`` when
    all maps are identical. Linear in K. Mean over the batch.
    """
    b, k, h, w = probs.shape
    if pool > 1:
        probs = F.pad(probs, (0, (-w) % pool, 0, (-h) % pool))  # zero-pad to whole cells
        probs = F.avg_pool2d(probs, pool, stride=pool) * (pool * pool)
    return (k - probs.amax(dim=1).sum((-1, -2))).mean()
