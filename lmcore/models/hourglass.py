"""A light hourglass network (Newell et al. 2016 style, as Zhang et al. 2018 App. G.2 uses).

Mirrored encoder (conv blocks + 2x2 max-pool) and decoder (nearest upsampling + conv blocks);
skip links of convolutions join encoder and decoder maps of the same resolution by element-wise
addition. Every convolution is followed by batch norm and LeakyReLU, as in the paper's appendix.
The output keeps the input's resolution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_block(cin: int, cout: int, n: int = 2, kernel: int = 3) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, kernel, padding=kernel // 2, bias=False),
                   nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True)]
    return nn.Sequential(*layers)


class Hourglass(nn.Module):
    """``B x in_channels x H x W`` -> ``B x out_channels x H x W`` (H, W divisible by 2**depth).

    width: channels at full resolution, doubled at each level down to ``max_width``; depth: number
    of pooling levels; skip_convs: convolutions in each skip link (the paper uses 2 or 3);
    block_convs: convolutions in each encoder/decoder block (fewer makes a CPU-sized network).
    The output layer is a plain 1x1 convolution (no normalisation or activation).
    """

    def __init__(self, in_channels: int, out_channels: int, width: int = 32, depth: int = 3,
                 max_width: int = 128, skip_convs: int = 2, block_convs: int = 2):
        super().__init__()
        widths = [min(width * 2**i, max_width) for i in range(depth + 1)]
        self.depth = depth
        self.stem = conv_block(in_channels, widths[0], n=1, kernel=5)
        self.down = nn.ModuleList(conv_block(widths[i], widths[i + 1], n=block_convs) for i in range(depth))
        self.bottleneck = conv_block(widths[depth], widths[depth], n=block_convs)
        self.skips = nn.ModuleList(conv_block(widths[i], widths[i], n=skip_convs) for i in range(depth))
        self.up = nn.ModuleList(conv_block(widths[i + 1], widths[i], n=block_convs) for i in range(depth))
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % 2**self.depth or w % 2**self.depth:
            raise ValueError(f"hourglass of depth {self.depth} needs sides divisible by {2 ** self.depth}, got {h}x{w}")
        x = self.stem(x)
        skips = []
        for i in range(self.depth):
            skips.append(self.skips[i](x))
            x = self.down[i](F.max_pool2d(x, 2))
        x = self.bottleneck(x)
        for i in reversed(range(self.depth)):
            x = self.up[i](F.interpolate(x, scale_factor=2, mode="nearest")) + skips[i]
        return self.head(x)
