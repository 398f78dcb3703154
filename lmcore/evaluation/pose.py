"""PCK (percentage of correct keypoints), the pose score of LSPET-128.

A joint is correct when its predicted position is *under* ``threshold x torso size`` from the
label, the torso size being the distance between two labelled joints of the same image
(LSP: right shoulder, index 8, and left hip, index 3). Only visible joints count.
"""
from __future__ import annotations

import numpy as np
import torch


def _array(value, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64 if name != "visible" else bool)


def pck(predicted, truth, visible, threshold: float = 0.2, torso: tuple[int, int] = (8, 3)) -> dict:
    """PCK@``threshold`` of ``predicted`` against ``truth``.

    predicted, truth: ``N x J x 2`` (x, y pixels; tensors or arrays); visible: ``N x J`` bool
    (the labels' visibility). Images whose two ``torso`` joints are not both visible, or
    coincide (torso size 0), have no scale to normalise by: they are **skipped** entirely
    (none of their joints count) and reported in ``skipped``. A NaN prediction counts as
    wrong.

    Returns ``{"pck": float, "per_joint": [J floats], "correct": int, "joints": int,
    "images": int, "skipped": int, "threshold": float}``: ``pck`` = correct / counted visible
    joints over the scored images; ``per_joint[j]`` the same for joint ``j`` alone (NaN where
    no scored image has it visible); ``images`` the number of images scored. ``pck`` is NaN
    when nothing could be scored.
    """
    pred, true, vis = _array(predicted, "predicted"), _array(truth, "truth"), _array(visible, "visible")
    if pred.shape != true.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"predicted and truth must both be N x J x 2, got {pred.shape} and {true.shape}")
    if vis.shape != pred.shape[:2]:
        raise ValueError(f"visible must be N x J = {pred.shape[:2]}, got {vis.shape}")
    a, b = torso
    size = np.linalg.norm(true[:, a] - true[:, b], axis=-1)  # N
    scored = vis[:, a] & vis[:, b] & (size > 0)
    counted = vis & scored[:, None]  # N x J
    distance = np.linalg.norm(pred - true, axis=-1)  # N x J
    with np.errstate(invalid="ignore", divide="ignore"):
        correct = (distance < threshold * size[:, None]) & counted  # NaN compares False
        per_joint_total = counted.sum(0)
        per_joint = np.where(per_joint_total > 0, correct.sum(0) / np.maximum(per_joint_total, 1), np.nan)
    total = int(counted.sum())
    return {
        "pck": float(correct.sum() / total) if total else float("nan"),
        "per_joint": [float(v) for v in per_joint],
        "correct": int(correct.sum()),
        "joints": total,
        "images": int(scored.sum()),
        "skipped": int((~scored).sum()),
        "threshold": float(threshold),
    }
