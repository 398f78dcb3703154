"""Unsupervised adaptation by projection (Sanchez & Tzimiropoulos 2019, §3, Eq. 1).

A trained core's convolution weights theta_X (``C_o x C_i x k x k``) are frozen; the target network
uses ``theta_Y = W x_1 theta_X``, the 1-mode (output-channel) product with a learnt ``C_o x C_o``
matrix W initialised to the identity (Rosenfeld & Tsotsos' "deep adaptation"). Batch norm is
initialised from the core and trained; the last layer (the heatmap head) is new and trained from
scratch; nothing else learns.

Which convolutions are projected. §3 says "for each convolutional layer" (the head excepted), and
that is the default here (``projected="all"``): the 7x7 stem, the 3x3 convolutions and the 1x1
convolutions (shortcuts and ``conv_last``) are all frozen and projected. The authors' code projects
only the 3x3 convolutions and leaves the 7x7 stem and the 1x1 convolutions fully trainable
(``projected="3x3"`` reproduces it). Both give the paper's "~0.5M" learnable parameters at width 256
(0.55M and 0.51M of 6.2M); "all" is the paper's and keeps the whole core frozen. For a square 1x1
convolution, projection is only a re-parametrisation (W theta reaches any matrix when theta is
invertible), so the two differ mainly on the stem.

Why the frozen weight is a buffer, not a frozen parameter: a buffer never appears in
``parameters()``, so no optimiser, weight decay, gradient clipping or parameter count sees it, and
code that unfreezes "all parameters" (a fine-tuning switch) cannot unfreeze it by accident. It is a
persistent buffer, so ``state_dict()`` stays self-contained (a method leaves the core's weights out of
its checkpoints through its ``frozen_prefixes``: they are the core's, saved by the core's own run).
Under DistributedDataParallel (broadcast_buffers=True) the frozen weights are broadcast each step
with the batch-norm statistics: harmless, ~25 MB at width 256.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

PROJECTED_MODES = ("all", "3x3")


class ProjectedConv2d(nn.Module):
    """A frozen convolution re-parametrised on its output mode: ``W'[o] = sum_j P[o, j] W[j]``.

    conv: the trained ``nn.Conv2d`` (``groups == 1``); its weight ``C_o x C_i x k x k`` (and bias
    ``C_o``) are copied into buffers ``frozen_weight`` / ``frozen_bias``; ``projection`` (``C_o x
    C_o``, the only parameter) starts at the identity, so the layer starts equal to ``conv``.
    The bias, frozen too, is projected with the weight (``b' = P b``): the layer is then exactly
    P applied to the frozen convolution's output at every pixel, the 1x1-adapter reading of the
    method (§2: "an alternative - and equivalent - approach"). (The code projects only bias-free
    3x3 convolutions, so it never has to choose.)
    Input ``B x C_i x H x W`` -> ``B x C_o x H' x W'`` as ``conv``.
    Note: weight decay on ``projection`` pulls it towards zero, not the identity.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        if not isinstance(conv, nn.Conv2d) or conv.groups != 1:
            # with groups, mixing output channels of different groups is not a per-layer projection
            raise ValueError("ProjectedConv2d needs an nn.Conv2d with groups == 1")
        weight = conv.weight.detach().clone()
        self.register_buffer("frozen_weight", weight)
        self.register_buffer("frozen_bias", None if conv.bias is None else conv.bias.detach().clone())
        self.projection = nn.Parameter(torch.eye(weight.shape[0], device=weight.device, dtype=weight.dtype))
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.stride, self.padding = conv.kernel_size, conv.stride, conv.padding
        self.dilation, self.padding_mode = conv.dilation, conv.padding_mode
        self._reversed_padding_repeated_twice = conv._reversed_padding_repeated_twice

    def effective_weight(self) -> torch.Tensor:
        """``P x_1 W``: ``C_o x C_i x k x k``."""
        w = self.frozen_weight
        return (self.projection @ w.reshape(w.shape[0], -1)).reshape(w.shape)

    def effective_bias(self) -> torch.Tensor | None:
        """``P b`` (``C_o``), or None for a bias-free convolution."""
        return None if self.frozen_bias is None else self.projection @ self.frozen_bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # projecting the weight (C_o^2 C_i k^2 operations) is cheaper than a 1x1 conv on the output
        weight, bias = self.effective_weight(), self.effective_bias()
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return F.conv2d(x, weight, bias, self.stride, 0, self.dilation)
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation)

    @torch.no_grad()
    def to_conv(self) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` holding the folded weight and bias (trainable, like any conv)."""
        w = self.frozen_weight
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
                         self.dilation, bias=self.frozen_bias is not None, padding_mode=self.padding_mode,
                         device=w.device, dtype=w.dtype)
        conv.weight.copy_(self.effective_weight())
        if conv.bias is not None:
            conv.bias.copy_(self.effective_bias())
        return conv

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"bias={self.frozen_bias is not None}")


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def make_adaptable(core: nn.Module, num_landmarks: int | None = None, *, mode: str = "proposed",
                   projected: str = "all") -> nn.Module:
    """A copy of the trained ``core`` ready for the paper's unsupervised adaptation (§3).

    core: a trained network whose last layer is the attribute ``head`` (e.g. :class:`FAN`); it is
    not modified. num_landmarks: when given, the copy gets a freshly initialised head with that many
    maps through ``core.replace_head`` (the paper's method always does, "trained from scratch");
    None keeps the core's head weights (trainable), e.g. to check that the copy starts equal to the
    core. mode: only "proposed" (fine-tuning and training from scratch need no wrapper).
    projected: "all" (paper, §3: every convolution but the head) or "3x3" (authors' code: 3x3
    convolutions only; the others stay trainable).

    In the copy, the projected convolutions are :class:`ProjectedConv2d` with identity projections;
    trainable: the projections, batch norm's affine parameters (running statistics keep updating in
    train mode, initialised from the core), the head, and with "3x3" the unprojected convolutions;
    every other parameter is frozen (requires_grad False).
    """
    if mode != "proposed":
        raise ValueError(f"make_adaptable builds the 'proposed' model only, got mode '{mode}'")
    if projected not in PROJECTED_MODES:
        raise ValueError(f"projected must be one of {PROJECTED_MODES}, got '{projected}'")
    if not isinstance(getattr(core, "head", None), nn.Module):
        raise ValueError("make_adaptable needs a core whose last layer is its attribute 'head'")
    if any(isinstance(m, ProjectedConv2d) for m in core.modules()):
        raise ValueError("the core already carries projections")
    model = copy.deepcopy(core)
    if num_landmarks is not None:
        model.replace_head(num_landmarks)
    model.requires_grad_(False)
    head = set(model.head.modules())
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and m not in head]
    for name, conv in convs:
        if projected == "all" or conv.kernel_size == (3, 3):
            _replace(model, name, ProjectedConv2d(conv))
        else:
            conv.requires_grad_(True)  # the code trains the 7x7 stem and the 1x1 convolutions
    for m in model.modules():
        if isinstance(m, (nn.modules.batchnorm._BatchNorm, ProjectedConv2d)):
            for p in m.parameters(recurse=False):
                p.requires_grad_(True)
    model.head.requires_grad_(True)
    return model


def fold_projections(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in which every :class:`ProjectedConv2d` is a plain ``nn.Conv2d`` with the
    folded weight ``P x_1 W`` (and bias ``P b``): the same function, at the core's cost."""
    folded = copy.deepcopy(model)
    for name, m in [(n, m) for n, m in folded.named_modules() if isinstance(m, ProjectedConv2d)]:
        _replace(folded, name, m.to_conv())
    return folded


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """``trainable``: elements of parameters with requires_grad; ``network``: elements of the
    network as deployed (its :func:`fold_projections`): all parameters but the projections, plus
    the frozen weights and biases; ``projections``: elements of the projection matrices."""
    projections = [m for m in model.modules() if isinstance(m, ProjectedConv2d)]
    projection_ids = {id(m.projection) for m in projections}
    frozen = sum(b.numel() for m in projections for b in (m.frozen_weight, m.frozen_bias) if b is not None)
    return {
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "network": sum(p.numel() for p in model.parameters() if id(p) not in projection_ids) + frozen,
        "projections": sum(m.projection.numel() for m in projections),
    }


def trainable_share(model: nn.Module) -> float:
    """Trainable parameters over the deployed network's parameters (§3: "~10% compared to
    fine-tuning", i.e. over what fine-tuning trains). 1.0 for a fully trainable plain network."""
    counts = parameter_counts(model)
    return counts["trainable"] / counts["network"]
