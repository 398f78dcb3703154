"""Make ``import torchvision`` work next to the CPU build of torch.

The only torchvision 0.28.0 wheel on PyPI is a CUDA build. Beside the CPU torch 2.13.0 its
compiled extension cannot load (it links against libtorch_cuda), and ``import torchvision``
then fails with ``operator torchvision::nms does not exist`` while registering fake kernels
for ``torchvision::nms`` and ``torchvision::qnms``. We define those two operator schemas
ourselves, with a pure-PyTorch CPU kernel for ``nms``, *only* when the extension cannot be
loaded: where it loads (any CUDA machine) this module does nothing.

Model definitions, ``transforms.v2`` and ``ops.nms`` then work; compiled image decoding does
not (lmcore decodes images with Pillow).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

_LIBRARY = None  # keeps the torch.library.Library alive for the life of the process
PATCHED = False  # True when the fallback schemas were installed


def _extension_path() -> Path | None:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0])
    for candidate in sorted(folder.glob("_C*.so")) + sorted(folder.glob("_C*.pyd")):
        return candidate
    return None


def _extension_loads(path: Path) -> bool:
    try:
        torch.ops.load_library(str(path))  # what torchvision itself does on import
        return True
    except (OSError, RuntimeError):
        return False


def _nms_cpu(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression (torchvision semantics), in plain PyTorch."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    order = scores.argsort(descending=True)
    keep = []
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    for idx in order.tolist():
        if suppressed[idx]:
            continue
        keep.append(idx)
        xx1 = torch.maximum(x1[idx], x1)
        yy1 = torch.maximum(y1[idx], y1)
        xx2 = torch.minimum(x2[idx], x2)
        yy2 = torch.minimum(y2[idx], y2)
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (areas[idx] + areas - inter).clamp(min=1e-12)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.long, device=boxes.device)


def ensure_torchvision_importable() -> bool:
    """Install the fallback schemas if torchvision's extension cannot load. Returns PATCHED."""
    global _LIBRARY, PATCHED
    if PATCHED:
        return True
    try:
        torch.ops.torchvision.nms  # already registered (extension loaded, or patched before)
        return False
    except (AttributeError, RuntimeError):
        pass
    path = _extension_path()
    if path is None or _extension_loads(path):
        return False
    _LIBRARY = torch.library.Library("torchvision", "DEF")
    _LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARY.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARY.impl("nms", _nms_cpu, "CPU")
    PATCHED = True
    # torchvision.ops.nms checks that the compiled extension loaded before it dispatches;
    # for the box operations (pure tensor code plus the nms defined above) that check is moot.
    import torchvision.ops.boxes as boxes

    boxes._assert_has_ops = lambda: None
    return True
