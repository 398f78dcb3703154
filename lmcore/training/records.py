"""Run records: what a number in the book came from.

A run record is a JSON file written atomically next to the run's checkpoint::

    {"method", "profile", "config", "git_commit", "device", "wall_time_s", "data", "metrics", ...}

``metrics`` holds ``forward``, ``backward`` and ``consistency`` errors per test split. Extra keys
(``history``: the learning curve; ``created``; ``run_name``; ``status``) travel alongside.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path

import torch

from ..paths import PROJECT_ROOT

REQUIRED_KEYS = ("method", "profile", "config", "git_commit", "device", "wall_time_s", "data", "metrics")


def git_commit(root: Path = PROJECT_ROOT) -> str:
    """``HEAD``'s hash, with ``+dirty`` when tracked files differ from it; ``unknown`` without git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_device(device: torch.device) -> dict:
    """What ran the computation, for the record."""
    info = {"type": device.type, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu": _cpu_name(), "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
        info["world_size"] = int(os.environ.get("WORLD_SIZE", "1"))
    else:
        info["name"] = info["cpu"]
    return info


def config_hash(config: dict) -> str:
    """Stable short hash of a JSON-able config (keys sorted)."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:10]


def write_json_atomic(path: Path, payload: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump(payload, fh, indent=1, sort_keys=False, default=float)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_record(path: Path) -> dict:
    with open(path) as fh:
        record = json.load(fh)
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise ValueError(f"{path} is not a run record: missing {missing}")
    record["_path"] = str(path)
    return record


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
