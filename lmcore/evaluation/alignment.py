"""Semantic alignment: carry the labelled points of face A onto face B and score them (PCK).

Xu et al. 2020 (the C3 chapter) show that discovered landmarks capture correspondence by a
transfer test (their Table 3): the labelled points of an image A are carried onto another
image B through some *transfer function*, and the carried points are scored against B's own
labels. The book runs it offline on faces:

* a fixed, seeded list of pairs ``(a, b)`` of *different* test faces (:func:`fixed_pairs`);
* a transfer ``points_b ~ transfer(images_a, images_b, points_a)`` on batches:
  :func:`transfer_identity` (the baseline: B's points are where A's are) or the transfer
  through discovered landmarks (:func:`landmark_transfer`: the least-squares affine map taking
  A's landmarks to B's, :func:`affine_from_landmarks`, applied to A's labels);
* PCK@0.1 (:func:`pck`): the percentage of carried points whose error is *under* 0.1 x a
  normaliser of B's labels, either the inter-ocular distance (``"iod"``: labelled points 0 and
  1, the eye centres) or the diagonal of the bounding box of B's 5 labelled points (``"box"``).

Point convention: torch tensors ``B x N x 2`` of (x, y) in normalised coordinates ``[-1, 1]``
(:mod:`lmcore.geometry.coords`); the labelled sets store pixels, and :func:`alignment_scores`
converts both ways (scores are computed in pixels, so non-square images are scored correctly).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..geometry.coords import normalized_to_pixels, pixels_to_normalized
from .protocol import normalised_errors

Transfer = Callable[..., torch.Tensor]
"""Called with keywords ``images_a``, ``images_b`` (``b x C x H x W`` float in [0, 1]) and
``points_a`` (``b x N x 2`` normalised); returns the points carried onto B, ``b x N x 2``
normalised. Keywords, so that :func:`transfer_identity` (points first) fits the same slot."""

PCK_NORMALISERS = {"iod": "eyes", "box": "box"}  # name here -> name in protocol.normaliser_distance

AFFINE_RIDGE = 1e-6


def fixed_pairs(n_faces: int, n_pairs: int, seed: int = 0) -> torch.Tensor:
    """Seeded pairs of different faces: ``n_pairs x 2`` long tensor of indices ``(a, b)``, ``a != b``.

    Pairs are ordered (``(a, b)`` and ``(b, a)`` are different tests) and all distinct while
    ``n_pairs <= n_faces (n_faces - 1)``; beyond that every ordered pair is used in turn.
    """
    if n_faces < 2:
        raise ValueError(f"pairs of different faces need n_faces >= 2, not {n_faces}")
    if n_pairs < 0:
        raise ValueError(f"n_pairs must be >= 0, not {n_pairs}")
    generator = torch.Generator().manual_seed(seed)
    total = n_faces * (n_faces - 1)  # ordered pairs a != b, coded c = a (n - 1) + r
    if 2 * n_pairs >= total:
        # dense: random orders of all the pairs (total <= 2 n_pairs + 2, so this is small)
        rounds = -(-n_pairs // total)
        codes = torch.cat([torch.randperm(total, generator=generator) for _ in range(rounds)])[:n_pairs]
    else:
        # sparse: draw codes until n_pairs distinct ones (at least half of the draws succeed);
        # a full permutation would not fit for large sets (20k faces: 4e8 pairs)
        kept: dict[int, None] = {}
        while len(kept) < n_pairs:
            for code in torch.randint(total, (2 * (n_pairs - len(kept)),), generator=generator).tolist():
                kept.setdefault(code)
                if len(kept) == n_pairs:
                    break
        codes = torch.tensor(list(kept), dtype=torch.long)
    a = codes // (n_faces - 1)
    rest = codes % (n_faces - 1)
    b = rest + (rest >= a).long()  # skip a itself: b runs over the n - 1 other faces
    return torch.stack([a, b], dim=1)


def transfer_identity(points_a: torch.Tensor, images_a=None, images_b=None) -> torch.Tensor:
    """The baseline transfer: B's points are predicted where A's are. ``B x N x 2`` -> same."""
    return points_a


def affine_from_landmarks(landmarks_a: torch.Tensor, landmarks_b: torch.Tensor,
                          ridge: float = AFFINE_RIDGE) -> torch.Tensor:
    """Least-squares affine maps taking each A's landmarks to B's: ``B x 2 x 3``.

    landmarks_a, landmarks_b: ``B x K x 2``. Returns ``M = [A | t]`` minimising
    ``sum_k |A l_a,k + t - l_b,k|^2 + ridge |A - I|^2``. The translation is exact given A (it
    matches the centroids); the tiny ridge pulls the linear part towards the *identity* rather
    than zero, so degenerate landmark sets (K < 3, or collinear) give a translation (K = 1) or
    the closest well-posed map instead of a collapse of every point onto one spot.
    Solved in float64 (the normal equations square the conditioning), returned in the input dtype.
    """
    if landmarks_a.shape != landmarks_b.shape or landmarks_a.ndim != 3 or landmarks_a.shape[-1] != 2:
        raise ValueError(f"landmarks must both be B x K x 2, got {tuple(landmarks_a.shape)} "
                         f"and {tuple(landmarks_b.shape)}")
    la, lb = landmarks_a.double(), landmarks_b.double()
    mean_a, mean_b = la.mean(1, keepdim=True), lb.mean(1, keepdim=True)
    xa, xb = la - mean_a, lb - mean_b  # B x K x 2
    eye = torch.eye(2, dtype=la.dtype, device=la.device)
    gram = xa.transpose(1, 2) @ xa + ridge * eye  # B x 2 x 2, symmetric
    cross = xb.transpose(1, 2) @ xa + ridge * eye  # B x 2 x 2
    linear = torch.linalg.solve(gram, cross.transpose(1, 2)).transpose(1, 2)  # cross @ gram^-1
    translation = mean_b.transpose(1, 2) - linear @ mean_a.transpose(1, 2)  # B x 2 x 1
    return torch.cat([linear, translation], dim=2).to(landmarks_a.dtype)


def apply_affine(matrices: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """``matrices`` ``B x 2 x 3`` applied to ``points`` ``B x N x 2``: ``B x N x 2``."""
    return points @ matrices[:, :, :2].transpose(1, 2) + matrices[:, None, :, 2]


def transfer_by_landmarks(points_a: torch.Tensor, landmarks_a: torch.Tensor,
                          landmarks_b: torch.Tensor) -> torch.Tensor:
    """Carry ``points_a`` (``B x N x 2``) by the affine map fitted from A's landmarks to B's
    (``B x K x 2`` each, :func:`affine_from_landmarks`): ``B x N x 2``."""
    return apply_affine(affine_from_landmarks(landmarks_a, landmarks_b).to(points_a.dtype), points_a)


def landmark_transfer(detect: Callable[[torch.Tensor], torch.Tensor]) -> Transfer:
    """The transfer through discovered landmarks of a detector ``images b x C x H x W -> b x K x 2``
    (normalised), for :func:`alignment_scores`."""

    def transfer(images_a: torch.Tensor, images_b: torch.Tensor, points_a: torch.Tensor) -> torch.Tensor:
        landmarks_a, landmarks_b = detect(images_a), detect(images_b)
        return transfer_by_landmarks(points_a, landmarks_a.to(points_a), landmarks_b.to(points_a))

    return transfer


def pck(predicted, truth, threshold: float = 0.1, normaliser: str = "iod") -> dict:
    """PCK@``threshold`` of carried points against B's labels.

    predicted, truth: ``P x 5 x 2`` in one common unit (pixels or normalised; tensors or arrays).
    The normaliser comes from ``truth``: ``"iod"`` (distance of points 0 and 1) or ``"box"``
    (diagonal of the bounding box of the points). A point is correct when its error is strictly
    under ``threshold x normaliser``. Returns ``{"pck": % of all points of all pairs,
    "per_point": [5 %], "mean_error": mean error in % of the normaliser, "threshold",
    "normaliser"}``, plain floats.
    """
    if normaliser not in PCK_NORMALISERS:
        raise ValueError(f"normaliser must be one of {tuple(PCK_NORMALISERS)}, not {normaliser!r}")
    errors = normalised_errors(predicted, truth, normaliser=PCK_NORMALISERS[normaliser])  # P x 5, in %
    correct = errors < 100.0 * threshold
    return {
        "pck": float(100.0 * correct.mean()),
        "per_point": [float(v) for v in 100.0 * correct.mean(0)],
        "mean_error": float(errors.mean()),
        "threshold": float(threshold),
        "normaliser": normaliser,
    }


def _as_float_images(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


@torch.no_grad()
def alignment_scores(transfer: Transfer, images: torch.Tensor, points: torch.Tensor, pairs: torch.Tensor,
                     batch_size: int = 64, thresholds: Sequence[float] = (0.1,)) -> dict:
    """Carry the labels of each pair's first face onto its second and score them.

    transfer: see :data:`Transfer` (called under ``torch.no_grad``); images: ``N x C x H x W``
    uint8 (scaled to [0, 1]) or float; points: ``N x 5 x 2`` labels in *pixels* of those images
    (``LandmarkSet.points``); pairs: ``P x 2`` indices ``(a, b)`` (:func:`fixed_pairs`).
    Returns ``{"iod": pck at 0.1, "box": pck at 0.1, "n_pairs": P, "by_threshold":
    {"iod": {str(t): pck %}, "box": {...}}}`` (:func:`pck`), JSON-serialisable.
    """
    size = (int(images.shape[-1]), int(images.shape[-2]))  # (W, H), as coords expects
    pairs = torch.as_tensor(pairs, dtype=torch.long)
    points = torch.as_tensor(points, dtype=torch.float32)
    predicted = []
    for start in range(0, len(pairs), batch_size):
        a, b = pairs[start:start + batch_size].unbind(1)
        carried = transfer(images_a=_as_float_images(images[a]), images_b=_as_float_images(images[b]),
                           points_a=pixels_to_normalized(points[a], size))
        predicted.append(normalized_to_pixels(carried.detach().float().cpu(), size))
    predicted = torch.cat(predicted) if predicted else points[:0]
    truth = points[pairs[:, 1]]
    result: dict = {name: pck(predicted, truth, 0.1, name) for name in PCK_NORMALISERS}
    result["n_pairs"] = int(len(pairs))
    result["by_threshold"] = {name: {str(float(t)): pck(predicted, truth, float(t), name)["pck"] for t in thresholds}
                              for name in PCK_NORMALISERS}
    return result


def cross_image_consistency(detect: Callable[[torch.Tensor], torch.Tensor], transfer: Transfer, images: torch.Tensor,
                            points: torch.Tensor, pairs: torch.Tensor, batch_size: int = 64) -> dict:
    """C3's Figure 3 as a number: carry the *discovered* landmarks of A onto B through ``transfer``
    (e.g. the learnt flow) and measure how far they land from B's own discovered landmarks.

    detect: ``images -> b x K x 2`` (normalised); transfer, images, pairs: as in
    :func:`alignment_scores`; points: the labels (pixels), used only for B's inter-ocular distance.
    Returns ``{"mean": error in % of B's IOD over landmarks and pairs, "per_landmark": [K],
    "n_pairs": P}``. A detector whose landmarks follow the flow scores low; the flow's own error
    counts too, so compare detectors through the same transfer.
    """
    size = (int(images.shape[-1]), int(images.shape[-2]))
    pairs = torch.as_tensor(pairs, dtype=torch.long)
    points = torch.as_tensor(points, dtype=torch.float32)
    errors = []
    for start in range(0, len(pairs), batch_size):
        a, b = pairs[start:start + batch_size].unbind(1)
        images_a, images_b = _as_float_images(images[a]), _as_float_images(images[b])
        with torch.no_grad():
            landmarks_a, landmarks_b = detect(images_a).float().cpu(), detect(images_b).float().cpu()
            carried = transfer(images_a=images_a, images_b=images_b, points_a=landmarks_a).float().cpu()
        distance = (normalized_to_pixels(carried, size) - normalized_to_pixels(landmarks_b, size)).norm(dim=-1)
        iod = (points[b, 0] - points[b, 1]).norm(dim=-1, keepdim=True)
        errors.append(100 * distance / iod)
    errors = torch.cat(errors)
    return {"mean": float(errors.mean()), "per_landmark": [float(e) for e in errors.mean(0)], "n_pairs": int(len(pairs))}


def keypoint_box_side(points: torch.Tensor) -> torch.Tensor:
    """The larger side of the bounding box of ``... x n x 2`` points: NC-Net's ``L_pck`` on PF-PASCAL."""
    extent = points.max(-2).values - points.min(-2).values
    return extent.max(-1).values


@torch.no_grad()
def pair_pck(transfer: Transfer, pairs, threshold: float = 0.1) -> dict:
    """Carry each pair's source keypoints onto its target and score them (PF-PASCAL, C3's Table 3).

    transfer: see :data:`Transfer`; pairs: :class:`lmcore.data.pf_pascal.AlignmentPairs` (images at
    one size, keypoints in pixels of the original images, a different number per pair). The
    carried points are mapped to the target's original pixels; a point is correct when its error is
    strictly under ``threshold`` x the larger side of the target keypoints' box (the image where the
    error is measured, as NC-Net measures in the image it warps onto). Returns ``{"pck": % of all
    points, "pck_per_pair": mean over pairs of each pair's %, "per_class": {class: %}, "n_pairs",
    "n_points", "threshold"}``.
    """
    correct, per_pair, per_class = [], [], {}
    for p in range(len(pairs)):
        a, b = int(pairs.index_a[p]), int(pairs.index_b[p])
        size_a = tuple(int(v) for v in pairs.sizes[a])
        size_b = tuple(int(v) for v in pairs.sizes[b])
        carried = transfer(images_a=_as_float_images(pairs.images[a:a + 1]),
                           images_b=_as_float_images(pairs.images[b:b + 1]),
                           points_a=pixels_to_normalized(pairs.points_a[p][None].float(), size_a))
        predicted = normalized_to_pixels(carried.detach().float().cpu(), size_b)[0]
        truth = pairs.points_b[p].float()
        hits = (predicted - truth).norm(dim=-1) < threshold * keypoint_box_side(truth)
        correct.append(hits)
        per_pair.append(float(hits.float().mean()))
        per_class.setdefault(int(pairs.classes[p]), []).append(hits)
    everything = torch.cat(correct) if correct else torch.zeros(0, dtype=torch.bool)
    return {
        "pck": float(100.0 * everything.float().mean()) if len(everything) else float("nan"),
        "pck_per_pair": float(100.0 * sum(per_pair) / max(len(per_pair), 1)),
        "per_class": {c: float(100.0 * torch.cat(h).float().mean()) for c, h in sorted(per_class.items())},
        "n_pairs": len(per_pair),
        "n_points": int(len(everything)),
        "threshold": float(threshold),
    }
