"""Profiles: how long and how big every chapter trains.

* ``smoke``: CI. Seconds to a few minutes per chapter; proves the code path. Its numbers are
  meaningless and every table labels them so.
* ``cpu``: the default where there is no GPU. The best numbers a 2-core machine reaches in the
  time budget each chapter states (20-30 minutes).
* ``paper``: the default where there is a GPU: the papers' settings, trained to convergence.

Chosen by the caller, else by ``$LMBOOK_PROFILE``, else by the hardware.
"""
from __future__ import annotations

import torch

from . import env
from .errors import ConfigError

PROFILES = ("smoke", "cpu", "paper")

DESCRIPTIONS = {
    "smoke": "smoke test (CI): proves the code path; numbers are meaningless",
    "cpu": "default CPU profile: best numbers a 2-core machine reaches in the chapter's time budget",
    "paper": "paper profile (GPU): the papers' settings trained to convergence",
}


def default_profile() -> str:
    return "paper" if torch.cuda.is_available() else "cpu"


def resolve_profile(requested: str | None = None) -> str:
    """``requested`` if given, else ``$LMBOOK_PROFILE``, else ``paper`` with CUDA and ``cpu`` without."""
    profile = requested or env.profile() or default_profile()
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile '{profile}' (from the argument or $LMBOOK_PROFILE); "
                          f"choose one of {', '.join(PROFILES)}")
    return profile


def select_device(requested: str | None = None) -> torch.device:
    """``requested`` or ``$LMBOOK_DEVICE``, else CUDA where present, else the CPU. A device this
    machine lacks (``cuda`` where PyTorch sees no GPU, ``cuda:3`` on a machine with two) is a
    :class:`ConfigError` in one line."""
    name = requested or env.device()
    if not name:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device '{name}'; choose cpu, cuda, cuda:<n> or mps") from None
    source = "" if requested else " (from $LMBOOK_DEVICE)"
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}'{source}: PyTorch sees no GPU on this machine; use cpu, or unset LMBOOK_DEVICE")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"device '{name}'{source}: this machine has {torch.cuda.device_count()} GPU(s), "
                          f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device '{name}'{source}: PyTorch sees no Apple GPU (mps) on this machine; use cpu")
    return device
