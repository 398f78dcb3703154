"""The landmark detector of Thewlis et al. 2017, §4.1."""
from __future__ import annotations

import torch
from torch import nn

from ..geometry.coords import pixel_centres


class FSEDetector(nn.Module):
    """Six conv layers (20, 48, 64, 80, 256, K filters), batch norm and ReLU after each of the
    first five, one 2x2 max-pool after conv1: ``B x 3 x H x W`` -> raw scores ``B x K x H/2 x W/2``.

    The paper gives the widths but not the kernel sizes; ``kernel_sizes`` defaults to those of
    TCDCN [Zhang et al. 2014], the network it adapts (5, 5, 3, 3), then 3 and 1. The score layer
    has no batch norm or ReLU: a ReLU before the spatial softmax would zero every negative score
    and flatten the maps (the paper's "each layer" is read as each hidden layer).
    ``padding_mode`` is the convolutions' (``zeros`` as usual; ``replicate`` or ``reflect`` give the
    network less absolute-position information at the frame's edges). ``padding="valid"`` drops
    the padding altogether: the maps then cover the interior of the image only (see
    :meth:`map_grid`), and no output can tell where the frame's edges are, so the network cannot
    learn landmarks fixed to the frame.
    """

    def __init__(self, num_landmarks: int, widths=(20, 48, 64, 80, 256), kernel_sizes=(5, 5, 3, 3, 3, 1),
                 padding_mode: str = "zeros", padding: str = "same"):
        super().__init__()
        if len(widths) != 5 or len(kernel_sizes) != 6:
            raise ValueError("FSEDetector takes 5 hidden widths and 6 kernel sizes")
        if padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same' or 'valid', got '{padding}'")
        self.padding = padding
        self.kernel_sizes = tuple(kernel_sizes)
        pad = (lambda k: k // 2) if padding == "same" else (lambda k: 0)
        layers: list[nn.Module] = []
        channels = 3
        for i, (width, k) in enumerate(zip(widths, kernel_sizes[:5])):
            layers += [nn.Conv2d(channels, width, k, padding=pad(k), bias=False, padding_mode=padding_mode),
                       nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            if i == 0:
                layers.append(nn.MaxPool2d(2))
            channels = width
        k = kernel_sizes[5]
        layers.append(nn.Conv2d(channels, num_landmarks, k, padding=pad(k), padding_mode=padding_mode))
        self.net = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # the paper: "random Gaussian noise"
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def map_grid(self, size: int, device=None, dtype=torch.float32) -> torch.Tensor:
        """Normalised image coordinates of every score-map pixel for a ``size x size`` input:
        ``h x w x 2``. With 'same' padding the map spans the image; with 'valid' padding each
        output pixel sits at the centre of its receptive field."""
        if self.padding == "same":
            return pixel_centres(size // 2, size // 2, device, dtype)
        offset, stride, extent = 0.0, 1.0, size  # input pixel index = offset + stride * j
        for i, k in enumerate(self.kernel_sizes):
            offset += stride * (k - 1) / 2
            extent -= k - 1
            if i == 0:
                offset += stride * 0.5
                stride *= 2
                extent //= 2
        index = torch.arange(extent, device=device, dtype=dtype)
        centres = (2 * (offset + stride * index) + 1) / size - 1
        gy, gx = torch.meshgrid(centres, centres, indexing="ij")
        return torch.stack([gx, gy], -1)
