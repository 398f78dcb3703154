"""The conditional generator, bottleneck, loss and training pairs of Sanchez & Tzimiropoulos 2019
as their released code has them (ESanchezLozano/SAIC-Unsupervised-landmark-detection-NeurIPS2019,
commit f85093f; ``file:line`` below refer to it), written for lmcore from those facts.

Generator (``model.py:11-64`` built at ``model.py:94``). At base width ``w`` (the code's 32), K
landmarks and an ``S x S`` appearance image::

    appearance B x 3 x S x S, in [0, 1] as loaded (no mean/std normalisation)
    7x7 conv stride 1 (3 -> w) + BN + ReLU                          S
    4x4 conv stride 2 (w -> 2w) + BN + ReLU                         S/2
    4x4 conv stride 2 (2w -> 4w) + BN + ReLU                        S/4
    concatenate the K Gaussian maps (4w + K channels), BN           S/4
    6 residual blocks: x + BN(3x3 conv(ReLU(BN(3x3 conv(x)))))      S/4, 4w + K channels
    4x4 transposed conv stride 2 (C -> C // 2) + BN + ReLU          S/2
    4x4 transposed conv stride 2 (C // 2 -> C // 4) + BN + ReLU     S
    7x7 conv (-> 3), tanh; the image is 0.5 (tanh + 1), in [0, 1]   (model.py:143)

No convolution has a bias; every normalisation is a BatchNorm2d with affine parameters and running
statistics (the residual block's docstring in the code says "instance normalization"; the layer is
batch norm). At S = 128 and K = 10: 128 features, then 138 at the bottleneck, 69 and 34 on the
way up; 2.42M parameters. The paper (§4.1) says the downsampling brings the features "up to 256";
the code's width of 32 gives 128, and this module follows the code.

Where this module departs: nothing in the architecture. The code never leaves training mode, so
its batch norm always uses batch statistics; here batch norm follows the module's train/eval
mode like any PyTorch module (the generator is not used at evaluation). Weights keep PyTorch's
default initialisation, as in the code (its ``init_weights`` is never called).

Bottleneck (``utils.py:24-74``, ``MTFAN.py:209-219``): the detector's 32 x 32 logits go through a
softmax over all positions at temperature 0.1 and the expected (column, row) index is the
landmark; each landmark is drawn back as ``exp(-d^2 / 0.5)`` with ``d`` in pixels of the map:
:func:`sanchez_maps`.

Loss (``model.py:114-124, 144``; ``utils.py:77-95``): mean squared pixel error plus the mean
squared error of ImageNet VGG16's relu1_2, relu2_2, relu3_3 and relu4_3 activations, fed the
[0, 1] images without ImageNet normalisation, all weights 1: :func:`sanchez_loss` /
:class:`SanchezLoss`. (The paper, §3, says VGG-19 and an L1 distance.)

Training pairs (``databases.py:19-30``, ``utils.py:100-144``): two independent rotations of the
original image, N(0, 30 deg) for the image the detector sees and the generator must reproduce,
N(0, 15 deg) for the generator's appearance input, each clipped at +-40 deg; each image is then
cropped around the box of its own rotated landmarks with a margin of 70 % of the box's mean side,
jittered per image by ``int(N(0, 4))`` percentage points; no TPS, no drawn translation or scale:
:func:`sanchez_pair_warps`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..geometry import AffineWarp, draws

#: ``exp(-d^2 / sigma)`` with d in map pixels (Train_options.py:19; the paper's sigma = sqrt 0.5)
CODE_MAP_SIGMA = 0.5
#: soft-argmax temperature (Train_options.py:20; the paper's beta = 10)
CODE_TEMPERATURE = 0.1
#: the perceptual loss's VGG16 activations (utils.py:80-87)
CODE_VGG_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
#: rotation std (deg) of the detector's / reconstructed image and of the appearance image
#: (databases.py:26 with Train_options.py:35: ``(j + 1) * 15``), and the clip (utils.py:103)
CODE_TARGET_ROTATION_STD = 30.0
CODE_APPEARANCE_ROTATION_STD = 15.0
CODE_ROTATION_CLIP = 40.0
#: the crop margin, % of the landmark box's mean side, and its per-image jitter (Train_options.py:22;
#: utils.py:106, 126)
CODE_MARGIN = 70.0
CODE_MARGIN_STD = 4.0


def _conv_bn_relu(conv: nn.Module, channels: int) -> list[nn.Module]:
    return [conv, nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]


class SanchezResidualBlock(nn.Module):
    """``x + BN(conv3x3(ReLU(BN(conv3x3(x)))))``, bias-free, no activation after the sum:
    ``B x C x h x w -> B x C x h x w``."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn_relu(nn.Conv2d(channels, channels, 3, padding=1, bias=False), channels),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SanchezGenerator(nn.Module):
    """The code's image generator: appearance image + K landmark maps -> image.

    num_landmarks: K (the maps' channels); width: the first convolution's channels (the code's
    ``conv_dim`` = 32); downsamples: stride-2 stages (the code's 2: maps at S/4, the detector's
    output size); blocks: residual blocks at the bottleneck (the code's 6).
    See the module docstring for the layers.
    """

    def __init__(self, num_landmarks: int = 10, width: int = 32, downsamples: int = 2, blocks: int = 6,
                 out_channels: int = 3):
        super().__init__()
        self.num_landmarks, self.width, self.downsamples, self.blocks = num_landmarks, width, downsamples, blocks
        layers = _conv_bn_relu(nn.Conv2d(3, width, 7, padding=3, bias=False), width)
        channels = width
        for _ in range(downsamples):
            layers += _conv_bn_relu(nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1, bias=False),
                                    2 * channels)
            channels *= 2
        self.encoder = nn.Sequential(*layers)
        channels += num_landmarks
        self.bottleneck_channels = channels
        layers = [nn.BatchNorm2d(channels)] + [SanchezResidualBlock(channels) for _ in range(blocks)]
        for _ in range(downsamples):
            layers += _conv_bn_relu(nn.ConvTranspose2d(channels, channels // 2, 4, stride=2, padding=1, bias=False),
                                    channels // 2)
            channels //= 2
        layers += [nn.Conv2d(channels, out_channels, 7, padding=3, bias=False), nn.Tanh()]
        self.decoder = nn.Sequential(*layers)

    def map_size(self, size: int) -> int:
        """Side of the maps the generator reads for ``size`` px images (``size / 2**downsamples``)."""
        return size // 2**self.downsamples

    def forward(self, appearance: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """appearance: ``B x 3 x S x S`` in [0, 1]; maps: ``B x K x S/4 x S/4`` (at the default two
        downsamplings; :func:`sanchez_maps`). Returns images ``B x 3 x S x S`` in [0, 1]
        (``0.5 (tanh + 1)``, as the code maps its output before the loss)."""
        features = self.encoder(appearance)
        if maps.shape[-2:] != features.shape[-2:] or maps.shape[1] != self.num_landmarks:
            raise ValueError(f"maps must be B x {self.num_landmarks} x {tuple(features.shape[-2:])}, "
                             f"got {tuple(maps.shape)}")
        return 0.5 * (self.decoder(torch.cat([features, maps], 1)) + 1.0)


# --------------------------------------------------------------------------- the bottleneck


def code_map_std(size: int, sigma: float = CODE_MAP_SIGMA) -> float:
    """The std, in lmcore's normalised units, of the code's map ``exp(-d^2 / sigma)`` (d in pixels)
    drawn on a ``size x size`` map: ``sqrt(sigma / 2)`` map pixels, one pixel being ``2 / size``
    normalised units. At the code's 32 x 32 and sigma 0.5: 0.5 px = 1/32 = 0.03125."""
    return math.sqrt(sigma / 2.0) * 2.0 / size


def sanchez_maps(points: torch.Tensor, size: int, sigma: float = CODE_MAP_SIGMA) -> torch.Tensor:
    """The code's bottleneck maps: ``exp(-((i - x)^2 + (j - y)^2) / sigma)`` at every map pixel
    (column i, row j), peaking at 1 on the point; at sigma = 0.5 a Gaussian of std 0.5 map pixel.

    points: ``B x K x 2`` in lmcore's normalised coordinates (x, y). Grid convention: the code
    draws on integer indices 0 .. size-1 and its soft-argmax returns points on the same indices,
    so index i is the centre of pixel i, which lmcore places at ``(2 i + 1) / size - 1``; a point
    ``u`` is at index ``(u + 1) size / 2 - 1/2``. In normalised units this is
    ``lmcore.geometry.gaussian_heatmaps(points, size, size, code_map_std(size, sigma))``.
    Returns ``B x K x size x size``.
    """
    index = (points + 1.0) * (size / 2.0) - 0.5  # B x K x 2, map pixels (column, row)
    ticks = torch.arange(size, device=points.device, dtype=points.dtype)
    dx = ticks.view(1, 1, 1, size) - index[..., 0, None, None]  # B x K x 1 x size
    dy = ticks.view(1, 1, size, 1) - index[..., 1, None, None]  # B x K x size x 1
    return torch.exp(-(dx**2 + dy**2) / sigma)


# --------------------------------------------------------------------------- the loss


def vgg_raw_input(images: torch.Tensor) -> torch.Tensor:
    """``images * std + mean`` (ImageNet's): what to give
    :class:`lmcore.losses.perceptual.VGG16Features`, which subtracts the mean and divides by the
    std inside, so that its convolutions see ``images`` themselves, as the code's VGG16 does."""
    from ..data.weights import IMAGENET_MEAN, IMAGENET_STD

    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return images * std + mean


def sanchez_loss_terms(generated: torch.Tensor, target: torch.Tensor, features,
                       layers=CODE_VGG_LAYERS, imagenet_normalised: bool = False) -> dict[str, torch.Tensor]:
    """The code's terms: ``{"pixels": MSE(generated, target), layer: MSE of the activations}``.

    generated, target: ``B x 3 x H x W`` in [0, 1]. features: a callable taking images in [0, 1]
    and returning a dict of activations after ImageNet normalisation (a
    :class:`lmcore.losses.perceptual.VGG16Features`); with ``imagenet_normalised`` False (the
    code's) it is fed :func:`vgg_raw_input` so that the normalisation is undone. Every term is the
    mean over all its elements (``torch.nn.MSELoss``); the target's activations carry no gradient.
    """
    prepare = (lambda x: x) if imagenet_normalised else vgg_raw_input
    terms = {"pixels": F.mse_loss(generated, target)}
    fake = features(prepare(generated))
    with torch.no_grad():
        real = features(prepare(target))
    for name in layers:
        terms[name] = F.mse_loss(fake[name], real[name])
    return terms


def sanchez_loss(generated: torch.Tensor, target: torch.Tensor, features, layers=CODE_VGG_LAYERS,
                 imagenet_normalised: bool = False) -> torch.Tensor:
    """The code's reconstruction loss: the unweighted sum of :func:`sanchez_loss_terms` (a scalar)."""
    return torch.stack(list(sanchez_loss_terms(generated, target, features, layers, imagenet_normalised).values())).sum()


class SanchezLoss(nn.Module):
    """:func:`sanchez_loss` with its own frozen ImageNet VGG16 (``layers``: the code's four).
    ``forward(generated, target)``: images ``B x 3 x H x W`` in [0, 1] -> scalar."""

    def __init__(self, layers=CODE_VGG_LAYERS, imagenet_normalised: bool = False):
        super().__init__()
        from ..losses.perceptual import VGG16Features

        self.layers, self.imagenet_normalised = tuple(layers), imagenet_normalised
        self.vgg = VGG16Features(self.layers)

    def terms(self, generated: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return sanchez_loss_terms(generated, target, self.vgg, self.layers, self.imagenet_normalised)

    def forward(self, generated: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask``: Jakab's loss interface; the code's loss has none, so it must be None."""
        if mask is not None:
            raise ValueError("the Sanchez code's loss takes no mask")
        return sanchez_loss(generated, target, self.vgg, self.layers, self.imagenet_normalised)


# --------------------------------------------------------------------------- the training pairs


def clipped_rotations(batch: int, std_deg: float, clip_deg: float | None = CODE_ROTATION_CLIP, generator=None,
                      device=None) -> torch.Tensor:
    """``B`` angles in degrees, N(0, std_deg) clipped to ``+-clip_deg`` (None: unclipped), one
    per example through :func:`lmcore.geometry.draws.normal` (so DDP shards draw consistently)."""
    angles = draws.normal((batch,), generator, device) * std_deg
    return angles if clip_deg is None else angles.clamp(-clip_deg, clip_deg)


def margin_scales(batch: int, margin: float = CODE_MARGIN, margin_std: float = CODE_MARGIN_STD, generator=None,
                  device=None) -> torch.Tensor:
    """The zoom of the code's crop-margin jitter, ``B`` factors around 1 (1 exactly when
    ``margin_std`` is 0, and then nothing is drawn).

    The code crops ``int(m * delta / 100)`` pixels around the landmark box on each side, with
    ``m = int(margin + margin_std * N(0, 1))`` (int truncates towards zero) and ``delta`` the box's
    mean side; taking the box's side as ``delta``, the crop's side is ``delta (1 + 2 m / 100)``,
    so the content appears at ``(1 + 2 margin / 100) / (1 + 2 m / 100)`` of its size at the mean
    margin (std about 3.3 % at the code's 70 +- 4). The box's own change with the rotation, its
    aspect ratio (the code resizes the box anisotropically) and the pixel rounding are not
    reproduced."""
    if margin_std == 0:
        return torch.ones(batch, device=device)
    m = torch.trunc(margin + margin_std * draws.normal((batch,), generator, device))
    return (1 + 2 * margin / 100) / (1 + 2 * m / 100)


@dataclass
class SanchezPair:
    """The two views' warps, about the view's centre, each mapping its view's coordinates to the
    original's (``warp_image(original, warp)`` draws the view): ``target``, the image the detector
    sees and the generator must reproduce (the code's ``Im``), and ``appearance``, the generator's
    input (``ImP``); their angles (degrees, ``B``; content rotated clockwise on screen for a positive
    angle, as lmcore's :meth:`AffineWarp.similarity` and the code's ``getRotationMatrix2D(c, -a)``)
    and scales (``B``, 1 without margin jitter)."""

    target: AffineWarp
    appearance: AffineWarp
    target_deg: torch.Tensor
    appearance_deg: torch.Tensor
    target_scale: torch.Tensor
    appearance_scale: torch.Tensor


def sanchez_pair_warps(batch: int, generator=None, device=None, target_std_deg: float = CODE_TARGET_ROTATION_STD,
                       appearance_std_deg: float = CODE_APPEARANCE_ROTATION_STD,
                       clip_deg: float | None = CODE_ROTATION_CLIP, margin: float = CODE_MARGIN,
                       margin_std: float = CODE_MARGIN_STD) -> SanchezPair:
    """The code's training pair as two independent lmcore warps of one image (about its centre):
    the target rotated by N(0, 30 deg), the appearance image by N(0, 15 deg), each clipped at
    +-40 deg, each zoomed by its own crop-margin jitter (:func:`margin_scales`; ``margin_std=0``
    for rotations only). No translation, no TPS. Draw order: target angles, appearance angles,
    then (with jitter) target and appearance margins."""
    target_deg = clipped_rotations(batch, target_std_deg, clip_deg, generator, device)
    appearance_deg = clipped_rotations(batch, appearance_std_deg, clip_deg, generator, device)
    target_scale = margin_scales(batch, margin, margin_std, generator, device)
    appearance_scale = margin_scales(batch, margin, margin_std, generator, device)
    shift = torch.zeros(batch, 2, device=target_deg.device, dtype=target_deg.dtype)

    def warp(deg, scale):
        return AffineWarp.similarity(torch.deg2rad(deg), scale.to(deg), shift)

    return SanchezPair(warp(target_deg, target_scale), warp(appearance_deg, appearance_scale), target_deg,
                       appearance_deg, target_scale, appearance_scale)
