"""Coordinate conventions shared by every lmcore function.

* **Normalised coordinates** (used by all geometry, models and losses): ``(x, y)`` in
  ``[-1, 1]``, x to the right, y down; the image spans ``[-1, 1]^2`` edge to edge, so the
  centre of pixel ``i`` of ``W`` is at ``(2 i + 1) / W - 1``. This is
  ``torch.nn.functional.grid_sample``'s ``align_corners=False`` convention.
* **Pixel coordinates** (used by data sets and the evaluation protocol): ``(x, y)`` in
  ``[0, W] x [0, H]``, the image spanning ``[0, W]`` edge to edge (pixel ``i`` centred at
  ``i + 0.5``).

Point tensors are ``... x 2`` with ``(x, y)`` last.
"""
from __future__ import annotations

import torch


def pixels_to_normalized(points: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Pixel coordinates (image ``size`` = W or (W, H)) to normalised coordinates. Shape kept."""
    w, h = (size, size) if isinstance(size, int) else size
    scale = points.new_tensor([2.0 / w, 2.0 / h])
    return points * scale - 1.0


def normalized_to_pixels(points: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`pixels_to_normalized`."""
    w, h = (size, size) if isinstance(size, int) else size
    scale = points.new_tensor([w / 2.0, h / 2.0])
    return (points + 1.0) * scale


def pixel_centres(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalised coordinates of every pixel centre: ``H x W x 2`` with (x, y) last."""
    ys = (torch.arange(height, device=device, dtype=dtype) * 2 + 1) / height - 1
    xs = (torch.arange(width, device=device, dtype=dtype) * 2 + 1) / width - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1)
