"""The cross-image flow module of C3 (Xu et al. 2020, §3.2), after NC-Net (Rocco et al. 2018).

Two feature maps ``fa`` (image A) and ``fb`` (image B) give a 4D cosine correlation
``C[b, ya, xa, yb, xb]``; a learnable filter of separable 4D convolutions (Eq. 3) refines it
into ``C_hat``; a softmax over one image's positions turns it into score maps ``S``, and their
expectation (soft-argmax) into transformation maps ``T``.

**Naming.** Here the subscript order is the direction *points travel*: ``T_ab`` is indexed by
A's positions and holds B's (normalised) coordinates, so a point of A is carried into B by
sampling ``T_ab`` at it (:func:`transfer_points`), and B's maps are pulled onto A's grid by
sampling them along ``T_ab`` (:func:`warp_maps`). The paper names the direction an *image is
warped*: its ``T^{j->i}`` is indexed by i's positions and warps j onto i. With ``(i, j) = (a, b)``:

* ``T_ab = T^{j->i}`` (paper), from ``S_ab = S^{j->i}``: softmax of ``C_hat(xa, ya, *, *)``;
* ``T_ba = T^{i->j}`` (paper), from ``S_ba = S^{i->j}``: softmax of ``C_hat(*, *, xb, yb)``.

For a synthetic pair ``B = A o g`` (lmcore's :class:`~lmcore.geometry.Warp` convention)
``T_ab = g.transport`` and ``T_ba = g.map`` (:func:`flow_of_warp`).

**Resolutions and cost.** The 4D tensors hold ``Ha Wa Hb Wb`` values per channel, quadratic in
the feature map's area: 8x8 maps (ResNet-50's last stage at 128 px) give 4,096 values, 16x16
(stride 8 at 128 px, the resolution this book expects) 65,536, 32x32 about a million. Every
filter layer keeps one such tensor per channel for the backward pass:
:func:`correlation_memory_bytes` gives the size.

The paper says ``argmax``, which is not differentiable; T here is the soft-argmax (the
expectation under S), optionally restricted to a window around the arg-max (``window``), so
that far, weaker matches cannot pull it towards the image centre.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..geometry.coords import pixel_centres
from ..geometry.softargmax import expected_coordinates
from ..geometry.warps import Warp


def correlation_4d(fa: torch.Tensor, fb: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cosine similarity of every position of ``fa`` with every position of ``fb``.

    fa: ``B x C x Ha x Wa``, fb: ``B x C x Hb x Wb`` (any scale: each feature vector is
    L2-normalised here). Returns ``B x Ha x Wa x Hb x Wb`` in ``[-1, 1]``; entry
    ``[n, ya, xa, yb, xb]`` compares ``fa[n, :, ya, xa]`` with ``fb[n, :, yb, xb]``. A zero
    feature vector has similarity 0 with everything.
    """
    if fa.shape[:2] != fb.shape[:2]:
        raise ValueError(f"feature maps differ in batch or channels: {tuple(fa.shape)} vs {tuple(fb.shape)}")
    fa = F.normalize(fa, dim=1, eps=eps)
    fb = F.normalize(fb, dim=1, eps=eps)
    return torch.einsum("ncij,nckl->nijkl", fa, fb)


def correlation_memory_bytes(height: int, width: int | None = None, height_b: int | None = None,
                             width_b: int | None = None, channels: int = 1, batch: int = 1,
                             bytes_per_value: int = 4) -> int:
    """Bytes of one ``batch x channels x Ha x Wa x Hb x Wb`` tensor (float32 by default).

    B's size defaults to A's, A's width to its height. E.g. 16x16 maps: 256 KiB per channel
    and pair; 32x32: 4 MiB.
    """
    width = height if width is None else width
    height_b = height if height_b is None else height_b
    width_b = width if width_b is None else width_b
    return batch * channels * height * width * height_b * width_b * bytes_per_value


def _swap_images(x: torch.Tensor) -> torch.Tensor:
    """``B x C x Ha x Wa x Hb x Wb`` -> ``B x C x Hb x Wb x Ha x Wa`` (the correlation of B with A)."""
    return x.permute(0, 1, 4, 5, 2, 3)


class SeparableConv4d(nn.Module):
    """Eq. 3: ``C_hat = W1 (x) (W2 (x) C)``, a 4D convolution done as two 2D convolutions.

    ``W2`` (``conv_b``) convolves over B's positions ``(Hb, Wb)`` at every position of A, then
    ``W1`` (``conv_a``) over A's positions ``(Ha, Wa)`` at every position of B (the paper does
    not say which kernel takes which pair of axes). Both are zero-padded to keep the size, so
    the layer equals a dense 4D convolution with the rank-``mid_channels`` kernel
    ``K[o, i, a1, a2, b1, b2] = sum_m W1[o, m, a1, a2] W2[m, i, b1, b2]`` (:meth:`kernel_4d`),
    at ``k^2 (Cin M + M Cout)`` instead of ``k^4 Cin Cout`` weights and multiplies per value.
    Only ``conv_a`` has a bias: a bias inside would be smeared by ``W1`` unevenly near the
    borders (zero padding), and the layer would no longer be a 4D convolution.

    Input and output: ``B x C x Ha x Wa x Hb x Wb``. ``kernel_size`` must be odd.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 mid_channels: int | None = None, bias: bool = True):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd (same-size output), got {kernel_size}")
        mid = out_channels if mid_channels is None else mid_channels
        pad = kernel_size // 2
        self.conv_b = nn.Conv2d(in_channels, mid, kernel_size, padding=pad, bias=False)  # W2
        self.conv_a = nn.Conv2d(mid, out_channels, kernel_size, padding=pad, bias=bias)  # W1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, ha, wa, hb, wb = x.shape
        # over B's positions: the A positions join the batch
        y = self.conv_b(x.permute(0, 2, 3, 1, 4, 5).reshape(n * ha * wa, c, hb, wb))
        m = y.shape[1]
        # over A's positions: now the B positions join the batch
        y = y.reshape(n, ha, wa, m, hb, wb).permute(0, 4, 5, 3, 1, 2).reshape(n * hb * wb, m, ha, wa)
        y = self.conv_a(y)
        o = y.shape[1]
        return y.reshape(n, hb, wb, o, ha, wa).permute(0, 3, 4, 5, 1, 2)

    def kernel_4d(self) -> torch.Tensor:
        """The equivalent dense 4D kernel, ``Cout x Cin x k x k x k x k`` (A's axes first)."""
        return torch.einsum("omab,micd->oiabcd", self.conv_a.weight, self.conv_b.weight)


class NeighbourhoodFilter(nn.Module):
    """The learnable filter of the correlation: separable 4D convolutions with ReLU between.

    channels: output channels of each layer (the last must be 1); kernel_sizes: one odd size per
    layer. Defaults follow NC-Net's released code (three layers of 3^4 kernels, 10, 10, 1
    channels): on 16x16 maps three 3-wide layers see 7x7 cells of each image (7/16 of a face),
    wide enough for neighbouring matches to agree and narrow enough to stay local; NC-Net's
    5^4 kernels were chosen for 25x25 maps. No ReLU after the last layer (NC-Net has one): a
    clipped output row can be all zeros, which gives a uniform softmax and no gradient.
    ``symmetric`` (NC-Net's symmetric mode) filters C and its A/B transpose and sums, so that
    swapping the two images transposes ``C_hat`` exactly.

    Input and output: ``B x Ha x Wa x Hb x Wb``.
    """

    def __init__(self, channels: Sequence[int] = (10, 10, 1), kernel_sizes: Sequence[int] = (3, 3, 3),
                 symmetric: bool = True):
        super().__init__()
        if len(channels) != len(kernel_sizes) or not channels:
            raise ValueError("give one kernel size per layer, at least one layer")
        if channels[-1] != 1:
            raise ValueError(f"the last layer must have 1 channel, got {channels[-1]}")
        layers: list[nn.Module] = []
        cin = 1
        for i, (cout, k) in enumerate(zip(channels, kernel_sizes)):
            layers.append(SeparableConv4d(cin, cout, k))
            if i < len(channels) - 1:
                layers.append(nn.ReLU())
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.symmetric = symmetric

    def forward(self, corr: torch.Tensor) -> torch.Tensor:
        x = corr[:, None]
        out = self.layers(x)
        if self.symmetric:
            out = out + _swap_images(self.layers(_swap_images(x)))
        return out[:, 0]


def score_maps(corr: torch.Tensor, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's score maps: softmax of ``corr / temperature`` over one image's positions.

    corr: ``B x Ha x Wa x Hb x Wb``. Returns ``(S_ab, S_ba)``: ``S_ab`` (``B x Ha x Wa x Hb x
    Wb``) sums to one over B's positions for each position of A (the paper's ``S^{j->i}``);
    ``S_ba`` (``B x Hb x Wb x Ha x Wa``, indexed by B first) over A's positions for each
    position of B (``S^{i->j}``). The paper has no temperature (its filter sets the scale);
    on the raw cosine correlation, in ``[-1, 1]``, use about 0.02-0.1.
    """
    n, ha, wa, hb, wb = corr.shape
    s_ab = torch.softmax(corr.reshape(n, ha, wa, hb * wb) / temperature, -1).reshape(n, ha, wa, hb, wb)
    corr_t = corr.permute(0, 3, 4, 1, 2)
    s_ba = torch.softmax(corr_t.reshape(n, hb, wb, ha * wa) / temperature, -1).reshape(n, hb, wb, ha, wa)
    return s_ab, s_ba


def transformation_map(corr: torch.Tensor, temperature: float = 1.0, window: int | None = None) -> torch.Tensor:
    """``T_ab``: for each position of A, the soft-argmax of its matches in B.

    corr: ``B x Ha x Wa x Hb x Wb`` (raw or filtered; for ``T_ba`` pass
    ``corr.permute(0, 3, 4, 1, 2)``). Returns ``B x Ha x Wa x 2``: (x, y) in B's normalised
    coordinates. With ``window = w`` the softmax is restricted to the ``(2w+1)^2`` cells around
    each row's arg-max (differentiable in the scores, though not in the choice of window), so
    that a broad or multi-modal row is not averaged towards the centre.
    """
    n, ha, wa, hb, wb = corr.shape
    logits = corr.reshape(n, ha * wa, hb * wb) / temperature
    if window is not None:
        best = logits.argmax(-1)  # n x Na
        by, bx = (best // wb)[..., None, None], (best % wb)[..., None, None]
        ys = torch.arange(hb, device=corr.device)[:, None]
        xs = torch.arange(wb, device=corr.device)[None, :]
        near = ((ys - by).abs() <= window) & ((xs - bx).abs() <= window)  # n x Na x Hb x Wb
        logits = logits.masked_fill(~near.reshape(n, ha * wa, hb * wb), float("-inf"))
    probs = torch.softmax(logits, -1).reshape(n, ha * wa, hb, wb)
    return expected_coordinates(probs).reshape(n, ha, wa, 2)


def transfer_points(transform: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Carry points of A into B through ``T_ab``: bilinear sampling of T at the points.

    transform: ``B x Ha x Wa x 2`` (``T_ab``); points: ``B x N x 2`` in A's normalised
    coordinates. Returns ``B x N x 2`` in B's. Beyond the outermost cell centres T is held at
    the edge value (``border`` padding), not extrapolated.
    """
    grid = points[:, :, None, :].to(transform.dtype)  # B x N x 1 x 2
    sampled = F.grid_sample(transform.permute(0, 3, 1, 2), grid, mode="bilinear",
                            padding_mode="border", align_corners=False)  # B x 2 x N x 1
    return sampled[..., 0].transpose(1, 2)


def warp_maps(maps_b: torch.Tensor, transform: torch.Tensor, padding_mode: str = "zeros") -> torch.Tensor:
    """The paper's ``T o p``: pull B's maps onto A's grid along ``T_ab``.

    maps_b: ``B x K x h x w`` (on B's image); transform: ``B x Ha x Wa x 2`` (``T_ab``),
    resampled bilinearly to ``h x w`` when the sizes differ (T holds coordinates, which
    interpolate). Returns ``B x K x h x w`` on A's image: ``out(u) = maps_b(T_ab(u))``.
    ``zeros`` padding: where A's correspondent lies outside B the map is empty.
    """
    h, w = maps_b.shape[-2:]
    grid = transform
    if grid.shape[1:3] != (h, w):
        grid = F.interpolate(grid.permute(0, 3, 1, 2), size=(h, w), mode="bilinear",
                             align_corners=False).permute(0, 2, 3, 1)
    return F.grid_sample(maps_b, grid.to(maps_b.dtype), mode="bilinear", padding_mode=padding_mode,
                         align_corners=False)


def flow_of_warp(warp: Warp, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The true ``(T_ab, T_ba)`` of a synthetic pair ``B = A o warp``, each ``B x H x W x 2``.

    ``T_ab`` is ``warp.transport`` at A's cell centres, ``T_ba`` is ``warp.map`` at B's (both
    maps ``height x width``). Values outside ``[-1, 1]`` mark positions whose correspondent
    lies outside the other image.
    """
    ref = warp._reference()
    centres = pixel_centres(height, width, ref.device, ref.dtype).reshape(1, height * width, 2)
    centres = centres.expand(warp.batch_size, -1, -1)
    t_ab = warp.transport(centres).reshape(-1, height, width, 2)
    t_ba = warp.map(centres).reshape(-1, height, width, 2)
    return t_ab, t_ba


class CrossImageFlow(nn.Module):
    """Cross-image flow module: correlation, filter (Eq. 3), score maps and T in both directions.

    channels / kernel_sizes / symmetric: the :class:`NeighbourhoodFilter`; ``channels=()``
    uses the raw correlation (no learnable filter). ``temperature`` divides the (filtered)
    correlation before each softmax; ``window``: see :func:`transformation_map`.

    forward(fa ``B x C x Ha x Wa``, fb ``B x C x Hb x Wb``) returns a dict:
    ``correlation`` (``B x Ha x Wa x Hb x Wb``), ``filtered`` (same), ``scores_ab``
    (``B x Ha x Wa x Hb x Wb``), ``scores_ba`` (``B x Hb x Wb x Ha x Wa``), ``T_ab``
    (``B x Ha x Wa x 2``, B's coordinates) and ``T_ba`` (``B x Hb x Wb x 2``, A's coordinates).
    """

    def __init__(self, channels: Sequence[int] = (10, 10, 1), kernel_sizes: Sequence[int] = (3, 3, 3),
                 symmetric: bool = True, temperature: float = 1.0, window: int | None = None):
        super().__init__()
        self.filter = NeighbourhoodFilter(channels, kernel_sizes, symmetric) if channels else None
        self.temperature = temperature
        self.window = window

    def forward(self, fa: torch.Tensor, fb: torch.Tensor) -> dict[str, torch.Tensor]:
        corr = correlation_4d(fa, fb)
        filtered = self.filter(corr) if self.filter is not None else corr
        s_ab, s_ba = score_maps(filtered, self.temperature)
        t_ab = transformation_map(filtered, self.temperature, self.window)
        t_ba = transformation_map(filtered.permute(0, 3, 4, 1, 2), self.temperature, self.window)
        return {"correlation": corr, "filtered": filtered, "scores_ab": s_ab, "scores_ba": s_ba,
                "T_ab": t_ab, "T_ba": t_ba}


def cell_size(height: int, width: int) -> tuple[float, float]:
    """Normalised length of one cell of an ``height x width`` map: ``(2 / width, 2 / height)``."""
    return 2.0 / width, 2.0 / height


__all__ = [
    "CrossImageFlow", "NeighbourhoodFilter", "SeparableConv4d", "cell_size", "correlation_4d",
    "correlation_memory_bytes", "flow_of_warp", "score_maps", "transfer_points", "transformation_map",
    "warp_maps",
]
