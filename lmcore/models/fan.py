"""The landmark detector of Sanchez & Tzimiropoulos 2019 (§4.1): a one-stack FAN hourglass.

FAN (Bulat & Tzimiropoulos 2017) is the hourglass of Newell et al. 2016 with FAN's ConvBlock in
place of the bottleneck residual block. At ``width`` w (the paper's is 256)::

    image B x 3 x S x S
    conv1 7x7 stride 2 (3 -> w/4) + BN + ReLU          S/2
    ConvBlock(w/4 -> w/2), 2x2 average pool              S/4
    ConvBlock(w/2 -> w/2), ConvBlock(w/2 -> w)
    hourglass of depth 4 (ConvBlocks of w channels)     S/4 -> S/64 -> S/4
    ConvBlock(w -> w), 1x1 conv (w -> w) + BN + ReLU
    head: 1x1 conv (w -> K)                              B x K x S/4 x S/4 heatmap logits

At S = 128 the heatmaps are 32 x 32, as in the paper. The layout (average pooling in the hourglass,
nearest upsampling, biases on the 7x7 and the two last 1x1 convolutions only) follows the authors'
released code (``MTFAN.py``), which the paper only summarises ("the Hourglass architecture [22] ...
spatial downsampling and residual blocks ... batch-norm and ReLU"). At w = 256 and K = 16 (the MPII
core) it has 6.22M parameters, 17 ConvBlocks and so 51 3x3 convolutions.

Landmarks: a spatial soft-argmax over each map with ``beta = 10`` (§4.1), i.e. a softmax of
``logits / temperature`` with temperature 0.1 (the code's ``--t 0.1``: the same thing). The code
returns pixel indices 0..31 of the map; we return lmcore's normalised coordinates, in which pixel
index i of a map of side n sits at ``(2 i + 1) / n - 1`` (see lmcore.geometry.coords).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..geometry import gaussian_heatmaps, soft_argmax
from ..geometry.coords import pixel_centres


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, bias=False)


class ConvBlock(nn.Module):
    """FAN's residual block: ``B x cin x h x w -> B x cout x h x w``.

    Three pre-activated (BN, ReLU, 3x3 conv) stages of ``cout/2``, ``cout/4`` and ``cout/4``
    channels, each feeding the next; their outputs are concatenated (``cout`` channels) and added
    to the input, through a pre-activated 1x1 convolution when ``cin != cout``.
    """

    def __init__(self, cin: int, cout: int):
        super().__init__()
        if cout % 4:
            raise ValueError(f"ConvBlock needs an output width divisible by 4, got {cout}")
        half, quarter = cout // 2, cout // 4
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), conv3x3(cin, half)
        self.bn2, self.conv2 = nn.BatchNorm2d(half), conv3x3(half, quarter)
        self.bn3, self.conv3 = nn.BatchNorm2d(quarter), conv3x3(quarter, quarter)
        self.downsample = None
        if cin != cout:
            self.downsample = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
                                            nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = self.conv1(F.relu(self.bn1(x)))
        out2 = self.conv2(F.relu(self.bn2(out1)))
        out3 = self.conv3(F.relu(self.bn3(out2)))
        residual = x if self.downsample is None else self.downsample(x)
        return torch.cat([out1, out2, out3], 1) + residual


class HourglassLevel(nn.Module):
    """One level of the recursive hourglass: ``B x w x h x w' -> same shape`` (h, w' divisible by
    ``2**depth``). Upper branch: a ConvBlock at this resolution; lower branch: 2x2 average pool,
    ConvBlock, the next level (or one more ConvBlock at the bottom), ConvBlock, nearest upsampling."""

    def __init__(self, width: int, depth: int):
        super().__init__()
        self.upper = ConvBlock(width, width)
        self.down = ConvBlock(width, width)
        self.inner = HourglassLevel(width, depth - 1) if depth > 1 else ConvBlock(width, width)
        self.up = ConvBlock(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.up(self.inner(self.down(F.avg_pool2d(x, 2))))
        return self.upper(x) + F.interpolate(low, scale_factor=2, mode="nearest")


class FAN(nn.Module):
    """One-stack FAN: images ``B x 3 x H x W`` -> heatmap logits ``B x K x H/4 x W/4``.

    num_landmarks: K; width: channels of the hourglass (paper 256; divisible by 8); depth: hourglass
    levels (paper 4; H and W must be divisible by ``4 * 2**depth``, i.e. 64 at depth 4);
    temperature: of the soft-argmax (paper: beta = 10, i.e. 0.1).
    """

    def __init__(self, num_landmarks: int = 10, width: int = 256, depth: int = 4, temperature: float = 0.1):
        super().__init__()
        if width % 8:
            raise ValueError(f"FAN width must be divisible by 8 (ConvBlocks split it in quarters), got {width}")
        self.num_landmarks, self.width, self.depth, self.temperature = num_landmarks, width, depth, temperature
        self.conv1 = nn.Conv2d(3, width // 4, 7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(width // 4)
        self.conv2 = ConvBlock(width // 4, width // 2)
        self.conv3 = ConvBlock(width // 2, width // 2)
        self.conv4 = ConvBlock(width // 2, width)
        self.hourglass = HourglassLevel(width, depth)
        self.top = ConvBlock(width, width)
        self.conv_last = nn.Conv2d(width, width, 1)
        self.bn_end = nn.BatchNorm2d(width)
        self.head = nn.Conv2d(width, num_landmarks, 1)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Everything but the head: ``B x 3 x H x W -> B x width x H/4 x W/4``."""
        h, w = images.shape[-2:]
        unit = 4 * 2**self.depth
        if h % unit or w % unit:
            raise ValueError(f"FAN of depth {self.depth} needs image sides divisible by {unit}, got {h}x{w}")
        x = F.relu(self.bn1(self.conv1(images)))
        x = F.avg_pool2d(self.conv2(x), 2)
        x = self.conv4(self.conv3(x))
        x = self.top(self.hourglass(x))
        return F.relu(self.bn_end(self.conv_last(x)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Heatmap logits ``B x K x H/4 x W/4`` (no activation)."""
        return self.head(self.features(images))

    def heatmaps_to_points(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Soft-argmax at ``self.temperature``: logits ``B x K x h x w`` -> (points ``B x K x 2``
        normalised (x, y), probabilities ``B x K x h x w`` summing to one per map)."""
        return soft_argmax(logits, self.temperature)

    def landmarks(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``B x 3 x H x W`` -> landmarks ``B x K x 2`` in normalised coordinates [-1, 1]."""
        return self.heatmaps_to_points(self(images))[0]

    def replace_head(self, num_landmarks: int) -> nn.Conv2d:
        """Put a freshly initialised ``width -> num_landmarks`` 1x1 head in place (on the old head's
        device and dtype; §3: the last layer is domain specific and trained from scratch).
        Returns the new head."""
        old = self.head
        self.head = nn.Conv2d(self.width, num_landmarks, 1).to(device=old.weight.device, dtype=old.weight.dtype)
        self.num_landmarks = num_landmarks
        return self.head


def gaussian_targets(points: torch.Tensor, height: int, width: int, sigma: float = 0.5) -> torch.Tensor:
    """Target heatmaps for supervised training of the core: ``exp(-d^2 / sigma)``, ``d`` the
    distance in pixels of the ``height x width`` map, peaking at 1.

    points: ``B x K x 2`` normalised -> ``B x K x height x width``. §3 writes
    ``exp(-|u - a_k|^2 / sigma^2)`` with sigma = sqrt(0.5) (§4.1), the code ``exp(-d^2 / 0.5)``:
    the same map, whose nearest neighbours of an on-pixel peak get e^-2 = 0.135. This is
    lmcore.geometry.gaussian_heatmaps with std = sqrt(sigma / 2) map pixels, per axis.
    """
    if height == width:  # one normalised unit is the same number of pixels on both axes
        return gaussian_heatmaps(points, height, width, math.sqrt(sigma / 2) * 2.0 / width)
    grid = pixel_centres(height, width, points.device, points.dtype)
    scale = points.new_tensor([width / 2.0, height / 2.0])  # normalised -> map pixels, per axis
    diff = (grid[None, None] - points[:, :, None, None, :]) * scale
    return torch.exp(-(diff**2).sum(-1) / sigma)
