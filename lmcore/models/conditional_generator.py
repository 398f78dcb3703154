"""Conditional image generation from landmarks (Jakab, Gupta, Bilen & Vedaldi 2018), written to be
reused: the pose encoder, the Gaussian renderer (the tight bottleneck) and the image generator are
separate modules that the Sanchez and C3 chapters compose differently.

Shapes: images ``B x 3 x S x S`` in [0, 1]; points ``B x K x 2`` normalised (see lmcore.geometry).
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


class GaussianRenderer(nn.Module):
    """Landmarks -> Gaussian maps ``exp(-|u - p|^2 / (2 std^2))`` at several resolutions.

    This is the bottleneck: the generator sees the pose only through these maps, so the encoder
    must put its K points where the geometry of the image is. ``std`` is in normalised units.
    """

    def __init__(self, std: float = 0.1):
        super().__init__()
        self.std = std

    def forward(self, points: torch.Tensor, sizes) -> list[torch.Tensor]:
        return [gaussian_heatmaps(points, s, s, self.std) for s in sizes]


class ImageGenerator(nn.Module):
    """Appearance features (``B x A x h x w``) + landmark maps at every scale -> image.

    At the coarsest scale the maps are concatenated with the appearance features; each of the
    ``upsamples`` stages doubles the resolution (nearest), concatenates the maps of that scale and
    applies two 3x3 convolutions; a 3x3 convolution and a sigmoid give the image in (0, 1).
    """

    def __init__(self, appearance_channels: int, num_landmarks: int, width: int = 32, upsamples: int = 3,
                 max_width: int = 256, out_channels: int = 3):
        super().__init__()
        widths = [min(width * 2**i, max_width) for i in range(upsamples + 1)]  # fine ... coarse
        self.upsamples = upsamples
        self.start = nn.Sequential(conv_bn_relu(appearance_channels + num_landmarks, widths[-1]),
                                   conv_bn_relu(widths[-1], widths[-1]))
        self.stages = nn.ModuleList()
        for level in reversed(range(upsamples)):
            self.stages.append(nn.Sequential(conv_bn_relu(widths[level + 1] + num_landmarks, widths[level]),
                                             conv_bn_relu(widths[level], widths[level])))
        self.out = nn.Conv2d(widths[0], out_channels, 3, padding=1)

    def forward(self, appearance: torch.Tensor, maps: list[torch.Tensor]) -> torch.Tensor:
        """``maps`` from coarse to fine: ``upsamples + 1`` tensors, the first at the features' size."""
        x = self.start(torch.cat([appearance, maps[0]], 1))
        for stage, m in zip(self.stages, maps[1:]):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = stage(torch.cat([x, m], 1))
        return torch.sigmoid(self.out(x))


class ConditionalGenerator(nn.Module):
    """The whole model: pose encoder + renderer + appearance encoder + generator."""

    def __init__(self, num_landmarks: int, width: int = 32, downsamples: int = 3, max_width: int = 256,
                 gaussian_std: float = 0.1):
        super().__init__()
        self.pose = PoseEncoder(num_landmarks, width, downsamples, max_width)
        self.appearance = ConvEncoder(3, width, downsamples, max_width)
        self.renderer = GaussianRenderer(gaussian_std)
        self.generator = ImageGenerator(self.appearance.out_channels, num_landmarks, width, downsamples, max_width)
        self.downsamples = downsamples

    def map_sizes(self, size: int) -> list[int]:
        return [size // 2 ** (self.downsamples - i) for i in range(self.downsamples + 1)]

    def forward(self, appearance_images: torch.Tensor, pose_images: torch.Tensor) -> dict:
        """Render the pose of ``pose_images`` with the appearance of ``appearance_images``."""
        points, scores = self.pose(pose_images)
        maps = self.renderer(points, self.map_sizes(pose_images.shape[-1]))
        generated = self.generator(self.appearance(appearance_images), maps)
        return {"points": points, "scores": scores, "maps": maps, "generated": generated}
