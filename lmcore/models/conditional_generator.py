"""Conditional image generation from landmarks (Jakab, Gupta, Bilen & Vedaldi 2018), written to be
reused: the pose encoder, the Gaussian renderer (the tight bottleneck) and the image generator are
separate modules that the Sanchez and C3 chapters compose differently.

Shapes: images ``B x 3 x S x S`` in [0, 1]; points ``B x K x 2`` normalised (see lmcore.geometry).

Where the authors' released code (tomasjakab/imm) builds its generator otherwise, an argument
reproduces it (the chapter's fidelity table lists each): Gaussians ``exp(-d^2 / std^2)``
(``map_form="code"``) drawn on its grid (``map_grid="linspace"``), the pose maps fed at the
bottleneck only (``maps_at="bottleneck"``), bilinear upsampling, a linear output and TensorFlow's
batch-norm settings (``batch_norm=(0.01, 1e-3)``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..geometry import gaussian_heatmaps, marginal_soft_argmax


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class ConvEncoder(nn.Module):
    """Jakab et al.'s encoder: a 7x7 conv, then ``downsamples`` blocks of (3x3 conv stride 2, 3x3
    conv), doubling the width up to ``max_width``. ``B x C x S x S -> B x out x S/2^d x S/2^d``."""

    def __init__(self, in_channels: int = 3, width: int = 32, downsamples: int = 3, max_width: int = 256):
        super().__init__()
        layers = [conv_bn_relu(in_channels, width, 7), conv_bn_relu(width, width)]
        channels = width
        for _ in range(downsamples):
            out = min(channels * 2, max_width)
            layers += [conv_bn_relu(channels, out, stride=2), conv_bn_relu(out, out)]
            channels = out
        self.net = nn.Sequential(*layers)
        self.out_channels = channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class PoseEncoder(nn.Module):
    """Images -> K score maps at ``S / 2^downsamples`` -> landmarks from the maps' marginals."""

    def __init__(self, num_landmarks: int, width: int = 32, downsamples: int = 3, max_width: int = 256):
        super().__init__()
        self.encoder = ConvEncoder(3, width, downsamples, max_width)
        self.head = nn.Conv2d(self.encoder.out_channels, num_landmarks, 1)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(points ``B x K x 2``, raw score maps ``B x K x h x w``)."""
        scores = self.head(self.encoder(images))
        return marginal_soft_argmax(scores)[0], scores


MAP_FORMS = ("sigma", "code")
MAP_GRIDS = ("centres", "linspace")
MAPS_AT = ("all", "bottleneck")
UPSAMPLING = ("nearest", "bilinear")
OUTPUTS = ("sigmoid", "linear")
#: PyTorch's batch-norm momentum and eps (the released code's TensorFlow defaults are 0.01 and 1e-3)
TORCH_BATCH_NORM_DEFAULTS = (0.1, 1e-5)


def linspace_heatmaps(points: torch.Tensor, size: int, std: float) -> torch.Tensor:
    """``exp(-|u - p|^2 / (2 std^2))`` for u on ``linspace(-1, 1, size)`` per axis (the first and
    last pixel centres at -1 and 1): points ``B x K x 2`` in those units -> ``B x K x size x size``."""
    ticks = torch.linspace(-1.0, 1.0, size, device=points.device, dtype=points.dtype)
    dx = (ticks[None, None, None, :] - points[..., 0, None, None]) ** 2
    dy = (ticks[None, None, :, None] - points[..., 1, None, None]) ** 2
    return torch.exp(-(dx + dy) / (2.0 * std**2))


class GaussianRenderer(nn.Module):
    """Landmarks -> Gaussian maps at several resolutions: ``exp(-|u - p|^2 / (2 std^2))``
    (``form="sigma"``) or ``exp(-|u - p|^2 / std^2)`` (``form="code"``, the released code's,
    imm/models/imm_model.py:54-59: a Gaussian of std ``std / sqrt 2``, carrying about half the mass).

    ``grid``: where the pixels u are. ``"centres"``: lmcore's pixel centres, ``(2 i + 1) / n - 1``,
    in the points' own units. ``"linspace"``: the released code's, which reads the points and draws
    the maps on ``linspace(-1, 1, n)`` (imm_model.py:44-46, 256): the points come from score maps of
    the first size in ``sizes`` (n, the bottleneck), on whose pixel centres lmcore reads them, so the
    code's points are these times ``n / (n - 1)``; at n = 16 the maps are then those of the centres
    grid with std x 15/16.

    This is the bottleneck: the generator sees the pose only through these maps, so the encoder
    must put its K points where the geometry of the image is. ``std`` is in normalised units.
    """

    def __init__(self, std: float = 0.1, form: str = "sigma", grid: str = "centres"):
        super().__init__()
        if form not in MAP_FORMS:
            raise ValueError(f"map form must be one of {MAP_FORMS}, got '{form}'")
        if grid not in MAP_GRIDS:
            raise ValueError(f"map grid must be one of {MAP_GRIDS}, got '{grid}'")
        self.std = std if form == "sigma" else std / 2**0.5
        self.grid = grid

    def forward(self, points: torch.Tensor, sizes) -> list[torch.Tensor]:
        """``sizes``: coarse to fine, the first the size of the score maps the points were read on."""
        if self.grid == "centres":
            return [gaussian_heatmaps(points, s, s, self.std) for s in sizes]
        code_points = points * (sizes[0] / (sizes[0] - 1))
        return [linspace_heatmaps(code_points, s, self.std) for s in sizes]


class ImageGenerator(nn.Module):
    """Appearance features (``B x A x h x w``) + landmark maps -> image.

    At the coarsest scale the maps are concatenated with the appearance features; each of the
    ``upsamples`` stages doubles the resolution (``upsampling``), concatenates the maps of that
    scale (``maps_at="all"``; with ``"bottleneck"`` the maps enter at the coarsest scale only, as in
    the released code, imm_model.py:161) and applies two 3x3 convolutions; a 3x3 convolution gives
    the image, through a sigmoid into (0, 1) (``output="sigmoid"``) or linear (the code's).
    """

    def __init__(self, appearance_channels: int, num_landmarks: int, width: int = 32, upsamples: int = 3,
                 max_width: int = 256, out_channels: int = 3, maps_at: str = "all", upsampling: str = "nearest",
                 output: str = "sigmoid"):
        super().__init__()
        if maps_at not in MAPS_AT or upsampling not in UPSAMPLING or output not in OUTPUTS:
            raise ValueError(f"maps_at in {MAPS_AT}, upsampling in {UPSAMPLING}, output in {OUTPUTS}")
        widths = [min(width * 2**i, max_width) for i in range(upsamples + 1)]  # fine ... coarse
        self.upsamples, self.maps_at, self.upsampling, self.output = upsamples, maps_at, upsampling, output
        stage_maps = num_landmarks if maps_at == "all" else 0
        self.start = nn.Sequential(conv_bn_relu(appearance_channels + num_landmarks, widths[-1]),
                                   conv_bn_relu(widths[-1], widths[-1]))
        self.stages = nn.ModuleList()
        for level in reversed(range(upsamples)):
            self.stages.append(nn.Sequential(conv_bn_relu(widths[level + 1] + stage_maps, widths[level]),
                                             conv_bn_relu(widths[level], widths[level])))
        self.out = nn.Conv2d(widths[0], out_channels, 3, padding=1)

    def forward(self, appearance: torch.Tensor, maps: list[torch.Tensor]) -> torch.Tensor:
        """``maps`` from coarse to fine: ``upsamples + 1`` tensors, the first at the features' size
        (only the first is read with ``maps_at="bottleneck"``)."""
        x = self.start(torch.cat([appearance, maps[0]], 1))
        for level, stage in enumerate(self.stages, 1):
            x = F.interpolate(x, scale_factor=2, mode=self.upsampling,
                              **({"align_corners": False} if self.upsampling == "bilinear" else {}))
            x = stage(torch.cat([x, maps[level]], 1) if self.maps_at == "all" else x)
        image = self.out(x)
        return torch.sigmoid(image) if self.output == "sigmoid" else image


class ConditionalGenerator(nn.Module):
    """The whole model: pose encoder + renderer + appearance encoder + generator."""

    def __init__(self, num_landmarks: int, width: int = 32, downsamples: int = 3, max_width: int = 256,
                 gaussian_std: float = 0.1, map_form: str = "sigma", maps_at: str = "all",
                 upsampling: str = "nearest", output: str = "sigmoid", map_grid: str = "centres",
                 batch_norm: tuple[float, float] = TORCH_BATCH_NORM_DEFAULTS):
        """``batch_norm``: (momentum, eps) of every batch norm, momentum in PyTorch's convention (the
        weight of the new batch: TensorFlow's decay 0.99 is a momentum of 0.01)."""
        super().__init__()
        self.pose = PoseEncoder(num_landmarks, width, downsamples, max_width)
        self.appearance = ConvEncoder(3, width, downsamples, max_width)
        self.renderer = GaussianRenderer(gaussian_std, map_form, map_grid)
        self.generator = ImageGenerator(self.appearance.out_channels, num_landmarks, width, downsamples, max_width,
                                        maps_at=maps_at, upsampling=upsampling, output=output)
        self.downsamples = downsamples
        self.maps_at = maps_at
        for layer in self.modules():
            if isinstance(layer, nn.BatchNorm2d):
                layer.momentum, layer.eps = batch_norm

    def map_sizes(self, size: int) -> list[int]:
        """The sizes the pose is rendered at (coarse to fine; only the coarsest at the bottleneck)."""
        sizes = [size // 2 ** (self.downsamples - i) for i in range(self.downsamples + 1)]
        return sizes if self.maps_at == "all" else sizes[:1]

    def forward(self, appearance_images: torch.Tensor, pose_images: torch.Tensor) -> dict:
        """Render the pose of ``pose_images`` with the appearance of ``appearance_images``."""
        points, scores = self.pose(pose_images)
        maps = self.renderer(points, self.map_sizes(pose_images.shape[-1]))
        generated = self.generator(self.appearance(appearance_images), maps)
        return {"points": points, "scores": scores, "maps": maps, "generated": generated}
