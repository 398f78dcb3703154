"""Warps that move points and images consistently.

A warp ``g`` relates a *source* image ``I`` to a *warped* image ``I' = I o g``, that is
``I'(u) = I(g(u))``. Every warp here offers both directions:

* :meth:`Warp.map` is ``g`` itself, from warped-image coordinates to source coordinates. It is
  the sampling map: images are warped by *inverse sampling* along it (:func:`warp_image`).
* :meth:`Warp.transport` is ``g^-1``, from source coordinates to warped coordinates: it
  carries points *forward*, so a landmark at ``p`` in ``I`` lies at ``transport(p)`` in ``I'``.

All coordinates are normalised (see :mod:`lmcore.geometry.coords`); points are ``B x N x 2``
and every warp is batched (one warp per image, ``B`` of them).

Three kinds: :class:`AffineWarp` (similarities and affinities, exact inverse),
:class:`TPSWarp` (thin-plate splines [Bookstein 1989], inverse by Newton's method) and
:class:`ComposedWarp` (one warp applied after another). :func:`random_warp` samples them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, asdict

import torch
import torch.nn.functional as F

from ..profiling import timed
from . import draws
from .coords import pixel_centres


class Warp:
    """Interface: ``map`` (warped -> source, for sampling) and ``transport`` (source -> warped)."""

    def map(self, points: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def transport(self, points: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def sampling_grid(self, height: int, width: int) -> torch.Tensor:
        """``B x H x W x 2`` source coordinates of each warped-image pixel (for grid_sample)."""
        ref = self._reference()
        centres = pixel_centres(height, width, ref.device, ref.dtype).reshape(1, height * width, 2)
        centres = centres.expand(self.batch_size, -1, -1)
        return self.map(centres).reshape(self.batch_size, height, width, 2)

    @property
    def batch_size(self) -> int:
        return self._reference().shape[0]

    def _reference(self) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


@timed("warps")
def warp_image(images: torch.Tensor, warp: Warp, padding_mode: str = "border", mode: str = "bilinear",
               size: int | None = None) -> torch.Tensor:
    """Warp images by inverse sampling: ``out(u) = images(warp.map(u))``.

    images: ``B x C x H x W`` float. ``padding_mode`` is grid_sample's (``border`` repeats the
    edge pixels, as the papers' padding with edge values does). ``size`` sets the output side
    (default: the input's), so a crop and a warp happen in one resampling.
    """
    b, _, h, w = images.shape
    if warp.batch_size != b:
        raise ValueError(f"warp holds {warp.batch_size} transforms for {b} images")
    if size is not None:
        h = w = size
    grid = warp.sampling_grid(h, w).to(images.dtype)
    return F.grid_sample(images, grid, mode=mode, padding_mode=padding_mode, align_corners=False)


# --------------------------------------------------------------------------- affine


class AffineWarp(Warp):
    """``map(p) = A p + t`` with ``matrix = [A | t]`` of shape ``B x 2 x 3``."""

    def __init__(self, matrix: torch.Tensor):
        if matrix.ndim != 3 or matrix.shape[1:] != (2, 3):
            raise ValueError(f"affine matrix must be B x 2 x 3, got {tuple(matrix.shape)}")
        self.matrix = matrix

    def _reference(self):
        return self.matrix

    def map(self, points):
        return points @ self.matrix[:, :, :2].transpose(1, 2) + self.matrix[:, None, :, 2]

    def inverse(self) -> "AffineWarp":
        lin = torch.linalg.inv(self.matrix[:, :, :2])
        t = -(lin @ self.matrix[:, :, 2:])
        return AffineWarp(torch.cat([lin, t], dim=2))

    def transport(self, points):
        return self.inverse().map(points)

    @staticmethod
    def identity(batch: int, device=None, dtype=torch.float32) -> "AffineWarp":
        eye = torch.eye(2, 3, device=device, dtype=dtype)
        return AffineWarp(eye.expand(batch, 2, 3).clone())

    @staticmethod
    def similarity(angle: torch.Tensor, scale: torch.Tensor, translation: torch.Tensor) -> "AffineWarp":
        """The map of a similarity about the image centre.

        angle (radians), scale: ``B``; translation: ``B x 2`` (normalised). The *content* of
        the warped image is the source rotated by ``angle``, scaled by ``scale`` and shifted by
        ``translation``: ``transport(p) = s R(angle) p + t``; ``map`` is its inverse.
        """
        cos, sin = torch.cos(angle), torch.sin(angle)
        rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
        forward = torch.cat([rot * scale[:, None, None], translation[:, :, None]], dim=2)
        return AffineWarp(forward).inverse()


# --------------------------------------------------------------------------- thin-plate splines


def _tps_kernel(sq_dist: torch.Tensor) -> torch.Tensor:
    """TPS radial basis ``U(r) = r^2 log r^2`` written on squared distances (U(0) = 0)."""
    return sq_dist * torch.log(sq_dist.clamp_min(1e-20))


class TPSWarp(Warp):
    """Thin-plate spline map ``map(p) = a0 + A p + sum_i w_i U(|p - c_i|)``.

    control: ``B x N x 2`` control points (in warped-image coordinates), ``affine``:
    ``B x 2 x 3`` (``[A | a0]``), ``weights``: ``B x N x 2``. Build one with :meth:`fit`.
    """

    def __init__(self, control: torch.Tensor, affine: torch.Tensor, weights: torch.Tensor):
        self.control, self.affine, self.weights = control, affine, weights

    def _reference(self):
        return self.control

    @staticmethod
    def fit(control: torch.Tensor, targets: torch.Tensor, regularization: float = 0.0) -> "TPSWarp":
        """The TPS with ``map(control_i) = targets_i`` (exactly, for ``regularization=0``).

        control, targets: ``B x N x 2``. A small ``regularization`` smooths the spline and keeps
        the system solvable when control points nearly coincide.
        """
        b, n, _ = control.shape
        dtype = control.dtype
        c = control.double()
        kernel = _tps_kernel(torch.cdist(c, c) ** 2)
        if regularization:
            kernel = kernel + regularization * torch.eye(n, dtype=c.dtype, device=c.device)
        ones = torch.ones(b, n, 1, dtype=c.dtype, device=c.device)
        p = torch.cat([ones, c], dim=2)  # B x N x 3
        top = torch.cat([kernel, p], dim=2)
        bottom = torch.cat([p.transpose(1, 2), torch.zeros(b, 3, 3, dtype=c.dtype, device=c.device)], dim=2)
        system = torch.cat([top, bottom], dim=1)  # B x (N+3) x (N+3)
        rhs = torch.cat([targets.double(), torch.zeros(b, 3, 2, dtype=c.dtype, device=c.device)], dim=1)
        solution = torch.linalg.solve(system, rhs)
        weights = solution[:, :n]
        a = solution[:, n:]  # rows: a0, coefficient of x, coefficient of y -> 3 x 2
        affine = torch.stack([a[:, 1:, 0], a[:, 1:, 1]], dim=1)  # B x 2 x 2, row j = output j
        affine = torch.cat([affine, a[:, 0, :, None]], dim=2)
        return TPSWarp(control, affine.to(dtype), weights.to(dtype))

    def map(self, points):
        sq = torch.cdist(points, self.control) ** 2  # B x M x N
        linear = points @ self.affine[:, :, :2].transpose(1, 2) + self.affine[:, None, :, 2]
        return linear + _tps_kernel(sq) @ self.weights

    def jacobian(self, points: torch.Tensor) -> torch.Tensor:
        """``d map / d p`` at each point: ``B x M x 2 x 2`` (row = output coordinate)."""
        diff = points[:, :, None, :] - self.control[:, None, :, :]  # B x M x N x 2
        sq = (diff**2).sum(-1)
        # grad of r^2 log r^2 w.r.t. p is 2 (p - c) (log r^2 + 1)
        grad = 2 * diff * (torch.log(sq.clamp_min(1e-20)) + 1)[..., None]
        jac = torch.einsum("bmnj,bni->bmij", grad, self.weights)
        return jac + self.affine[:, None, :, :2]

    def transport(self, points, iterations: int = 30, tolerance: float = 1e-6):
        """Solve ``map(q) = p`` for q by Newton's method, started from the affine part's inverse."""
        inv_affine = AffineWarp(self.affine).inverse()
        q = inv_affine.map(points)
        for _ in range(iterations):
            residual = self.map(q) - points
            if residual.abs().max() < tolerance:
                break
            step = torch.linalg.solve(self.jacobian(q), residual[..., None])[..., 0]
            q = q - step
        return q


class ComposedWarp(Warp):
    """Warp by ``warps[0]`` first, then by ``warps[1]``, and so on.

    For ``I1 = I o g1`` and ``I2 = I1 o g2``: ``I2(u) = I(g1(g2(u)))``, so ``map`` applies the
    maps last-to-first and ``transport`` applies the transports first-to-last.
    """

    def __init__(self, *warps: Warp):
        if not warps:
            raise ValueError("ComposedWarp needs at least one warp")
        self.warps = warps

    def _reference(self):
        return self.warps[0]._reference()

    def map(self, points):
        for w in reversed(self.warps):
            points = w.map(points)
        return points

    def transport(self, points):
        for w in self.warps:
            points = w.transport(points)
        return points


# --------------------------------------------------------------------------- random warps


@dataclass(frozen=True)
class WarpSpec:
    """Distribution of random warps: a similarity about the centre plus optional TPS jitter.

    Lengths are fractions of the image edge (the image is 1 wide), the papers' unit; angles in
    degrees. ``distribution`` is ``"uniform"`` (rotation and log2-scale uniform in
    ``+-value``) or ``"normal"`` (``value`` is the standard deviation). Translation is uniform in
    ``+-translation``, or normal with that std (``translation_distribution = "normal"``).

    The TPS part (``tps_grid`` control points per side, spanning ``[-tps_extent, tps_extent]`` in
    normalised coordinates; 0: none) is of one of two kinds:

    * ``tps_kind = "spline"``: the control points are jittered with Gaussian noise of std
      ``tps_std`` and the thin-plate spline through them is fitted; ``tps_bend`` then scales its
      non-affine part (the released code of Zhang et al. evaluates its spline with half the kernel
      it was solved with: ``tps_bend = 0.5``);
    * ``tps_kind = "kernel"``: the spline's kernel weights are drawn directly, in normalised units,
      ``N(0, tps_std^2)`` plus ``N(0, tps_sparse_std^2)`` on a random half of them, and added to the
      similarity's map unconstrained (no spline is solved), as the released code of Jakab et al.
      draws its warps (imm/utils/tps_sampler.py).
    """

    rotation_deg: float = 0.0
    log2_scale: float = 0.0
    translation: float = 0.0
    tps_grid: int = 0
    tps_std: float = 0.0
    distribution: str = "uniform"
    tps_extent: float = 1.0
    tps_bend: float = 1.0
    translation_distribution: str = "uniform"
    tps_kind: str = "spline"
    tps_sparse_std: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def _draw(spread: float, n: int, distribution: str, generator, device) -> torch.Tensor:
    if spread == 0:
        return torch.zeros(n, device=device)
    if distribution == "normal":
        return draws.normal((n,), generator, device) * spread
    if distribution == "uniform":
        return (draws.uniform((n,), generator, device) * 2 - 1) * spread
    raise ValueError(f"unknown distribution '{distribution}' (uniform or normal)")


@timed("warps")
def random_similarity(spec: WarpSpec, batch: int, generator=None, device=None) -> AffineWarp:
    """A batch of random similarities drawn from ``spec`` (its TPS fields are ignored)."""
    angle = _draw(math.radians(spec.rotation_deg), batch, spec.distribution, generator, device)
    scale = torch.exp2(_draw(spec.log2_scale, batch, spec.distribution, generator, device))
    if spec.translation_distribution == "normal":
        shift = draws.normal((batch, 2), generator, device) * (2 * spec.translation)
    elif spec.translation_distribution == "uniform":
        shift = (draws.uniform((batch, 2), generator, device) * 2 - 1) * (2 * spec.translation)
    else:
        raise ValueError(f"unknown translation distribution '{spec.translation_distribution}' (uniform or normal)")
    return AffineWarp.similarity(angle, scale, shift)


def regular_grid(n: int, batch: int, device=None, extent: float = 1.0) -> torch.Tensor:
    """``B x n^2 x 2`` points on an ``n x n`` grid spanning ``[-extent, extent]^2``."""
    ticks = torch.linspace(-extent, extent, n, device=device)
    gy, gx = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([gx, gy], -1).reshape(1, n * n, 2).expand(batch, -1, -1).contiguous()


@timed("warps")
def random_tps(
    spec: WarpSpec,
    batch: int,
    generator=None,
    device=None,
    control_points: torch.Tensor | None = None,
    control_std: float | None = None,
) -> Warp:
    """Random warp from ``spec``: TPS jitter of control points, then the random similarity.

    Control points are the regular ``tps_grid x tps_grid`` grid, or ``control_points``
    (``B x N x 2``, e.g. current landmarks, Zhang 2018 App. F.3) jittered with ``control_std``
    (defaults to ``spec.tps_std``). Returns an :class:`AffineWarp` when there is no TPS part.
    """
    similarity = random_similarity(spec, batch, generator, device)
    if spec.tps_kind == "kernel" and control_points is None:
        return _random_kernel_tps(spec, similarity, batch, generator, device)
    if spec.tps_kind not in ("spline", "kernel"):
        raise ValueError(f"unknown TPS kind '{spec.tps_kind}' (spline or kernel)")
    std = spec.tps_std if control_std is None else control_std
    if control_points is None and (spec.tps_grid == 0 or std == 0):
        return similarity
    if control_points is None:
        control = regular_grid(spec.tps_grid, batch, device, extent=spec.tps_extent)
    else:
        control = control_points.detach()
    jitter = draws.normal(control.shape, generator, device) * (2 * std)
    local = TPSWarp.fit(control, control + jitter, regularization=1e-3 if control_points is not None else 0.0)
    # map = similarity_map o local_map: fold the similarity into the TPS coefficients
    lin, t = similarity.matrix[:, :, :2], similarity.matrix[:, :, 2:]
    affine = torch.cat([lin @ local.affine[:, :, :2], lin @ local.affine[:, :, 2:] + t], dim=2)
    weights = spec.tps_bend * local.weights @ lin.transpose(1, 2)
    return TPSWarp(control, affine, weights)


def _random_kernel_tps(spec: WarpSpec, similarity: AffineWarp, batch: int, generator, device) -> Warp:
    """``map(p) = similarity.map(p) + sum_i w_i U(|p - c_i|)`` with the weights drawn directly."""
    if spec.tps_grid == 0:
        return similarity
    control = regular_grid(spec.tps_grid, batch, device, extent=spec.tps_extent)
    weights = draws.normal(control.shape, generator, device) * spec.tps_std
    if spec.tps_sparse_std:
        half = (draws.uniform(control.shape, generator, device) < 0.5).to(weights.dtype)
        weights = weights + half * draws.normal(control.shape, generator, device) * spec.tps_sparse_std
    return TPSWarp(control, similarity.matrix, weights)


@dataclass
class WarpedPair:
    """Two views of the same images: ``second = first o warp``.

    ``warp.map`` carries coordinates of ``second`` into ``first``; ``warp.transport`` carries
    points of ``first`` into ``second``.
    """

    first: torch.Tensor
    second: torch.Tensor
    warp: Warp


def crop_warp(batch: int, crop: float, device=None, dtype=torch.float32) -> AffineWarp:
    """The central crop covering ``crop`` of the image's width as a warp (``map(v) = crop * v``)."""
    matrix = torch.tensor([[crop, 0.0, 0.0], [0.0, crop, 0.0]], device=device, dtype=dtype)
    return AffineWarp(matrix.expand(batch, 2, 3).clone())


@timed("warps")
def synthesize_pair(
    images: torch.Tensor,
    first_spec: WarpSpec,
    second_spec: WarpSpec,
    generator=None,
    padding_mode: str = "border",
    view: Warp | None = None,
    size: int | None = None,
) -> WarpedPair:
    """FSE-style pair synthesis (Thewlis 2017 §4.1): ``x = I o g1`` and ``x' = x o g2``.

    ``x'`` is sampled from ``I`` once, along ``g1 o g2``, so it is not blurred twice. The first
    warp keeps the network from learning only centred, upright faces; the second is the warp
    the equivariance losses know. With a ``view`` (e.g. :func:`crop_warp`) both images show
    that view of the warped image at ``size`` pixels, so the warps reveal real image context
    around the view instead of padding (whose edges are features a detector could track).
    ``warp`` is then ``g2`` in view coordinates.
    """
    b = images.shape[0]
    g1 = random_tps(first_spec, b, generator, images.device)
    g2 = random_tps(second_spec, b, generator, images.device)
    to_first = ComposedWarp(g1, view) if view is not None else g1
    first = warp_image(images, to_first, padding_mode, size=size)
    second = warp_image(images, ComposedWarp(to_first, g2), padding_mode, size=size)
    return WarpedPair(first, second, g2)
