"""The landmark autoencoder of Zhang et al. 2018, §3.1-3.4.

detector (Eq. 1-4): an hourglass gives K + 1 raw maps R (one background); a softmax *across
channels* gives D (Eq. 2); landmark k is the weighted mean coordinate of D_k (Eq. 3).

descriptors (Eq. 9-10): a second hourglass gives a feature map F with S channels; each landmark
pools F under the Gaussian approximation D-bar_k of its map (Eq. 6) and projects the result with
its own matrix W_k to C < S numbers; the background pools under D_{K+1} / zeta_{K+1}.

decoder (Eq. 11-14): each landmark becomes a Gaussian density of width sigma_dec (background: 1),
normalised across channels into D-tilde (Eq. 12); the descriptors, each mapped back by its own
W-tilde_k and a LeakyReLU, are unpooled under D-tilde (Eq. 13); this is done for several
sigma_dec and a third hourglass decodes the concatenation into the image (Eq. 14), through a
sigmoid. Without descriptors (MNIST, App. B) the decoder sees the D-tilde maps alone.

Two choices reproduce the authors' released code where it differs from the text (the chapter's
fidelity table): ``descriptor_pooling="detection"`` pools each descriptor under the detection map
``D_k / zeta_k`` itself rather than its Gaussian fit (lmdis-rep generic_encoder.py:76-84), and
``decoder_maps="code"`` draws the decoder's Gaussians with the code's normaliser,
``1 / (2 pi sigma^4 (H W)^2)`` against a background of ``1 / (H W)`` (keypoints_2d.py:157-158 with
keypoint_decoder.py:80-81), instead of Eq. 11's density ``1 / (2 pi sigma^2)`` against 1: the
landmark channels then carry ``1 / (sigma^2 H W)`` of Eq. 11's share, 1 % at sigma = 0.125 with the
code's 80 x 80 decoder; that size is kept whatever the view's (:data:`CODE_DECODER_SIZE`), so a
smaller CPU view keeps the code's balance between landmark and background channels.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..geometry import landmark_statistics, squared_distance_maps
from .hourglass import Hourglass


CODE_DECODER_SIZE = 80  # the side of the released code's decoder output (nets/decoder/general_80x80.py)
DEFAULT_NET = {"width": 32, "depth": 3, "max_width": 128, "skip_convs": 2, "block_convs": 2}
DESCRIPTOR_POOLING = ("gaussian", "detection")
DECODER_MAPS = ("density", "code")


class LandmarkAutoencoder(nn.Module):
    """``detector_net``, ``feature_net``, ``decoder_net``: the shapes of the three hourglasses
    (:class:`~lmcore.models.hourglass.Hourglass` arguments ``width``, ``depth``, ``max_width``,
    ``skip_convs``, ``block_convs``); ``feature_channels``: S, the shared feature space of Eq. 9
    and 13; ``descriptor_dim``: C of Eq. 10."""

    def __init__(self, num_landmarks: int, feature_channels: int = 32, descriptor_dim: int = 8,
                 decoder_sigmas=(0.02, 0.05, 0.1), with_descriptors: bool = True, image_channels: int = 3,
                 detector_net: dict | None = None, feature_net: dict | None = None, decoder_net: dict | None = None,
                 descriptor_pooling: str = "gaussian", decoder_maps: str = "density"):
        super().__init__()
        if descriptor_pooling not in DESCRIPTOR_POOLING or decoder_maps not in DECODER_MAPS:
            raise ValueError(f"descriptor_pooling in {DESCRIPTOR_POOLING}, decoder_maps in {DECODER_MAPS}")
        k1 = num_landmarks + 1
        self.num_landmarks = num_landmarks
        self.decoder_sigmas = tuple(decoder_sigmas)
        self.with_descriptors = with_descriptors
        self.descriptor_pooling, self.decoder_maps = descriptor_pooling, decoder_maps
        self.detector = Hourglass(image_channels, k1, **(detector_net or DEFAULT_NET))
        per_sigma = k1
        if with_descriptors:
            self.features = Hourglass(image_channels, feature_channels, **(feature_net or DEFAULT_NET))
            # W_k (Eq. 10) and W-tilde_k (Eq. 13), one matrix per landmark and the background
            self.encode_weight = nn.Parameter(torch.randn(k1, feature_channels, descriptor_dim) / math.sqrt(feature_channels))
            self.decode_weight = nn.Parameter(torch.randn(k1, descriptor_dim, feature_channels) / math.sqrt(descriptor_dim))
            per_sigma += feature_channels
        self.decoder = Hourglass(per_sigma * len(self.decoder_sigmas), image_channels, **(decoder_net or DEFAULT_NET))

    # ---- Eq. 1-4
    def detection_maps(self, images: torch.Tensor) -> torch.Tensor:
        """D: ``B x (K+1) x H x W``, a softmax across channels (the last is the background)."""
        return torch.softmax(self.detector(images), dim=1)

    def landmarks(self, detection: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(points ``B x K x 2`` normalised, variances ``B x K x 2``) of the landmark channels."""
        return landmark_statistics(detection[:, :-1])

    # ---- Eq. 6, 9, 10
    def descriptors(self, images, detection, points, variances) -> torch.Tensor:
        """f: ``B x (K+1) x C``."""
        feats = self.features(images)  # B x S x H x W
        b, s, h, w = feats.shape
        if self.descriptor_pooling == "gaussian":
            sigma2 = variances.mean(-1).clamp_min(1e-6)  # sigma_det^2 = (var_u + var_v) / 2
            masks = torch.exp(-squared_distance_maps(points, h, w) / (2 * sigma2[..., None, None]))
            masks = torch.cat([masks, detection[:, -1:]], 1)  # D-bar_k (Eq. 6), the background's D_{K+1}
        else:  # the released code: every channel of D itself
            masks = detection
        masks = masks / masks.sum((-1, -2), keepdim=True).clamp_min(1e-12)  # B x (K+1) x H x W
        pooled = torch.einsum("bkhw,bshw->bks", masks, feats)
        return torch.einsum("bks,ksc->bkc", pooled, self.encode_weight)

    # ---- Eq. 11-14
    def render(self, points: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
        """D-tilde for one sigma_dec (edge units): ``B x (K+1) x size x size``, channels sum to one."""
        sq_edge = squared_distance_maps(points, size, size) * 0.25
        density = torch.exp(-sq_edge / (2 * sigma**2)) / (2 * math.pi * sigma**2)
        if self.decoder_maps == "code":  # the code's normaliser at its 80 px decoder, against 1 / (H W)
            density = density / (sigma**2 * CODE_DECODER_SIZE**2)
        raw = torch.cat([density, torch.ones_like(density[:, :1])], 1)
        return raw / raw.sum(1, keepdim=True)

    def decode(self, points: torch.Tensor, descriptors: torch.Tensor | None, size: int) -> torch.Tensor:
        """Image ``B x 3 x size x size`` in (0, 1) from landmarks (and descriptors)."""
        inputs = []
        if self.with_descriptors:
            unpooled = F.leaky_relu(torch.einsum("bkc,kcs->bks", descriptors, self.decode_weight), 0.2)
        for sigma in self.decoder_sigmas:
            maps = self.render(points, size, sigma)
            inputs.append(maps)
            if self.with_descriptors:
                inputs.append(torch.einsum("bkhw,bks->bshw", maps, unpooled))
        return torch.sigmoid(self.decoder(torch.cat(inputs, 1)))

    def forward(self, images: torch.Tensor) -> dict:
        """Encode and decode: detection maps, landmarks, variances, descriptors, reconstruction."""
        detection = self.detection_maps(images)
        points, variances = self.landmarks(detection)
        descriptors = self.descriptors(images, detection, points, variances) if self.with_descriptors else None
        reconstruction = self.decode(points, descriptors, images.shape[-1])
        return {"detection": detection, "points": points, "variances": variances, "descriptors": descriptors,
                "reconstruction": reconstruction}
