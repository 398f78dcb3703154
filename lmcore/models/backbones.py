"""Frozen ImageNet ResNet-50, the paper's backbone N for C3's cross-image flow module.

C3 (Xu et al. 2020, §4) uses "the outputs of the last two residual blocks" of an ImageNet
ResNet-50 as f' and f, so ``layer3`` feeds the flow. The book's offline default is ImageNet VGG16
(:class:`lmcore.losses.perceptual.VGG16Features`, fetched and sha256-pinned by
``data_scripts/fetch_vgg16_weights.py``); ResNet-50 is loaded from torchvision's own ImageNet file
where a user has it in torch's hub cache. It cannot be fetched on an offline machine, and nothing
here downloads it: a missing file is a :class:`~lmcore.errors.MissingDataError` saying how to
put it there.

Like ``VGG16Features``: RGB ``B x 3 x H x W`` in [0, 1] goes in (ImageNet normalisation inside), a
dict of named activations comes out, frozen (weights and batch-norm statistics). Strides: ``layer1`` 4 (256
channels), ``layer2`` 8 (512), ``layer3`` 16 (1024), ``layer4`` 32 (2048).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..data.weights import IMAGENET_MEAN, IMAGENET_STD
from ..errors import CorruptDataError, MissingDataError

#: ResNet-50's residual stages: name -> (stride, channels)
RESNET50_LAYERS = {"layer1": (4, 256), "layer2": (8, 512), "layer3": (16, 1024), "layer4": (32, 2048)}
#: torchvision's ImageNet ResNet-50 files, in order of preference (``ResNet50_Weights``)
RESNET50_FILES = ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth")  # IMAGENET1K_V1, IMAGENET1K_V2


def resnet50_weights_path() -> Path:
    """The first of torchvision's ImageNet ResNet-50 files present in torch's hub cache
    (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``)."""
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    for name in RESNET50_FILES:
        if (folder / name).is_file():
            return folder / name
    raise MissingDataError(
        f"no ImageNet ResNet-50 weights in {folder} (looked for {' or '.join(RESNET50_FILES)}); they cannot be "
        "fetched offline: on a machine with a network run python -c \"import torchvision; "
        "torchvision.models.resnet50(weights='IMAGENET1K_V1')\" and copy the file it writes (in that "
        f"machine's torch hub cache, under checkpoints/) into {folder}; or keep method.flow_backbone=vgg16, the "
        "offline default")


class ResNet50Features(nn.Module):
    """Frozen ImageNet ResNet-50 returning the named residual stages (``RESNET50_LAYERS``).

    Input: RGB ``B x 3 x H x W`` in [0, 1]; output ``{name: B x C x H/s x W/s}`` (``s`` the
    stage's stride, sides rounded up). Only the layers up to the deepest one asked for are kept.
    """

    def __init__(self, layers=("layer3",)):
        super().__init__()
        import torchvision

        unknown = [name for name in layers if name not in RESNET50_LAYERS]
        if unknown:
            raise ValueError(f"unknown ResNet-50 layers {unknown}; choose from {list(RESNET50_LAYERS)}")
        path = resnet50_weights_path()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated or foreign file
            raise CorruptDataError(f"{path}: not a readable ResNet-50 state dict ({exc})") from exc
        net = torchvision.models.resnet50(weights=None)
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise CorruptDataError(f"{path}: not torchvision's ResNet-50 ({str(exc).splitlines()[0]})") from exc
        self.source = f"torchvision ResNet-50 ImageNet ({path.name})"
        self.layers = tuple(layers)
        depth = max(list(RESNET50_LAYERS).index(name) for name in layers)
        stages = [net.layer1, net.layer2, net.layer3, net.layer4][: depth + 1]
        # `body` like VGG16Features', so that frozen_prefixes ("backbone.body.") keeps it out of checkpoints
        self.body = nn.Sequential(nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool), *stages)
        for p in self.body.parameters():
            p.requires_grad_(False)
        self.body.eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.body.eval()  # frozen batch-norm statistics: ImageNet's, never the faces'
        return self

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.body[0]((images - self.mean) / self.std)
        out = {}
        for name, stage in zip(RESNET50_LAYERS, self.body[1:]):
            x = stage(x)
            if name in self.layers:
                out[name] = x
        return out

