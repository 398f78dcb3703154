"""Losses of C3 (Xu et al. 2020): the cross-image cycle (§3.1, Eqs. 1-2), the cross-image flow's
equivariance (§3.2, Eq. 4) and the flow's pre-training.

Notation (see :mod:`lmcore.models.flow`): ``T_ab`` (``B x Ha x Wa x 2``) holds, for each
position of image A, its correspondent in B (normalised coordinates); ``T_ba`` the reverse.
In the paper's notation ``T_ab = T^{j->i}`` and ``T_ba = T^{i->j}`` with ``(i, j) = (a, b)``.

The paper writes ``||.||_2`` and gives no reduction; here each term is a mean of squared
differences (per map value, or per landmark), so that the loss does not grow with K or the
map size and its weight transfers between settings.

Whether L_equiv also trains the flow module (through ``T``) the paper does not say. Passing
``T.detach()`` trains only the pose branch; without it the flow can move towards the
landmarks as much as the landmarks towards the flow.
"""
from __future__ import annotations

import torch

from ..models.flow import warp_maps


def cross_image_cycle_loss(criterion, originals: tuple[torch.Tensor, torch.Tensor],
                           reconstructions: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Eq. 1: ``L_cycle = P(I_i, I'_i) + P(I_j, I'_j)``.

    criterion: the perceptual loss ``P(generated, target)`` (e.g.
    :class:`~lmcore.losses.perceptual.PerceptualLoss`); originals ``(I_i, I_j)`` and
    reconstructions ``(I'_i, I'_j)``: ``B x 3 x S x S`` each, ``I'`` rendered after two swaps.
    """
    return criterion(reconstructions[0], originals[0]) + criterion(reconstructions[1], originals[1])


def pose_invariance_loss(poses: tuple[torch.Tensor, torch.Tensor],
                         poses_again: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Eq. 2: ``L_inv = ||p'_i - p_i||_2 + ||p'_j - p_j||_2``.

    poses ``(p_i, p_j)``: ``B x K x h x w`` pose maps of the two images (the Gaussian maps rendered
    at their landmarks); poses_again ``(p'_i, p'_j)``: those of the swapped images ``I_{j,i}`` and
    ``I_{i,j}``, which carry the poses of i and j. Each term is a mean of squared differences.
    """
    return ((poses_again[0] - poses[0]) ** 2).mean() + ((poses_again[1] - poses[1]) ** 2).mean()


def equivariance_loss(pose_a: torch.Tensor, pose_b: torch.Tensor, T_ab: torch.Tensor,
                      T_ba: torch.Tensor) -> torch.Tensor:
    """Eq. 4: ``L_equiv = ||p_i - T^{j->i} o p_j||_2 + ||p_j - T^{i->j} o p_i||_2``.

    pose_a, pose_b: ``B x K x h x w`` pose maps of A and B (the Gaussian maps rendered at the
    landmarks, or the probability maps); ``T_ab``: ``B x Ha x Wa x 2``, ``T_ba``:
    ``B x Hb x Wb x 2`` (resampled to ``h x w`` when the sizes differ). ``o`` is warping by
    inverse sampling: ``(T_ab o p_b)(u) = p_b(T_ab(u))`` lies on A's grid. Where the
    correspondent falls outside the other image the warped map is 0. Returns a scalar: the
    sum over the two directions of the mean squared difference.
    """
    into_a = warp_maps(pose_b, T_ab)
    into_b = warp_maps(pose_a, T_ba)
    return ((pose_a - into_a) ** 2).mean() + ((pose_b - into_b) ** 2).mean()


def flow_supervision_loss(T_pred: torch.Tensor, T_true: torch.Tensor,
                          valid: torch.Tensor | None = None) -> torch.Tensor:
    """Pre-training of the flow module on synthetic pairs whose flow is known (not in the paper).

    The paper pre-trains the flow module "following NC-Net", whose weak supervision raises the
    mean best-match score on matching image pairs and lowers it on non-matching ones. The book
    departs from it: on a synthetic pair ``B = A o g`` the true flow is known
    (:func:`~lmcore.models.flow.flow_of_warp`), so T is supervised directly by its mean
    end-point error ``|T_pred(u) - T_true(u)|``.

    T_pred, T_true: ``B x H x W x 2`` (one direction; add the loss of the other). ``valid``:
    ``B x H x W`` bool, by default the positions whose true correspondent lies inside the other
    image (``|T_true| <= 1``); positions without one have no target. Returns a scalar in
    normalised units (one cell of a 16-wide map is 0.125).
    """
    if valid is None:
        valid = (T_true.abs() <= 1).all(-1)
    error = (T_pred - T_true).norm(dim=-1)
    weight = valid.to(error.dtype)
    return (error * weight).sum() / weight.sum().clamp_min(1.0)


__all__ = ["cross_image_cycle_loss", "equivariance_loss", "flow_supervision_loss", "pose_invariance_loss"]
