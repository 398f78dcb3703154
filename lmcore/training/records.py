"""Run records: what a number in the book came from.

A run record is a JSON file written atomically next to the run's checkpoint::

    {"method", "profile", "config", "git_commit", "device", "wall_time_s", "data", "metrics", ...}

``metrics`` holds ``forward``, ``backward`` and ``consistency`` errors per test split. Extra keys
(``history``: the learning curve; ``created``; ``run_name``; ``status``) travel alongside.

What code made a number: :func:`git_commit` (``HEAD``, ``+dirty``), and, where git cannot tell,
:func:`~lmcore.training.code_identity.code_fingerprint` (a hash of the ``lmcore`` modules a run
imports) and :func:`~lmcore.training.code_identity.lmcore_is_dirty`.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import platform
import subprocess
from pathlib import Path

import torch

from ..errors import CorruptRecordError
from ..files import atomic_writer
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
    """Write ``payload`` as JSON onto ``path`` atomically (:func:`lmcore.files.atomic_writer`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path, "w") as fh:
        json.dump(payload, fh, indent=1, sort_keys=False, default=float)


RECORD_ADVICE = "delete it, or rerun with --force (LMBOOK_RETRAIN=1) to make the run again"
#: the record's own sha256 (over every other field): a record edited by hand no longer matches it
DIGEST_KEY = "record_sha256"
#: metrics whose entries are ``{split: {"mean": number, ...}}``
_ERROR_METRICS = ("forward", "backward", "consistency", "tune")


def record_digest(record: dict) -> str:
    """sha256 of a record's fields (all but :data:`DIGEST_KEY` and private ``_`` keys), as JSON
    with sorted keys: what :func:`write_record` stores and :func:`read_record` checks."""
    fields = {k: v for k, v in record.items() if k != DIGEST_KEY and not k.startswith("_")}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=float).encode()).hexdigest()


def write_record(path: Path, record: dict) -> dict:
    """Write a run record atomically with its digest (:func:`record_digest`); returns what was written."""
    payload = {k: v for k, v in record.items() if k != DIGEST_KEY and not k.startswith("_")}
    payload = json.loads(json.dumps(payload, default=float))  # as it reads back (tuples -> lists, ...)
    payload[DIGEST_KEY] = record_digest(payload)
    write_json_atomic(path, payload)
    return payload


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def record_problems(record: dict) -> list[str]:
    """What is wrong with a record's fields (types and values the book relies on); empty if nothing."""
    from ..profiles import PROFILES

    problems = []

    def need(ok: bool, text: str) -> None:
        if not ok:
            problems.append(text)

    need(isinstance(record.get("method"), str) and bool(record.get("method")), "'method' must be a name")
    need(record.get("profile") in PROFILES, f"'profile' must be one of {', '.join(PROFILES)}")
    config = record.get("config")
    need(isinstance(config, dict) and all(isinstance(config.get(k), dict) for k in ("method", "train"))
         and isinstance(config.get("data", {}), dict), "'config' must hold the groups 'method' and 'train'")
    need(isinstance(record.get("git_commit"), str), "'git_commit' must be text")
    need(isinstance(record.get("device"), dict), "'device' must be a group")
    need(_finite(record.get("wall_time_s")) and record["wall_time_s"] >= 0, "'wall_time_s' must be a number >= 0")
    need(isinstance(record.get("data"), dict), "'data' must be a group")
    steps = record.get("steps")
    need(steps is None or (isinstance(steps, int) and not isinstance(steps, bool) and steps >= 0),
         "'steps' must be a whole number")
    run_name = record.get("run_name", "x")
    need(isinstance(run_name, str) and "/" not in run_name and "\\" not in run_name and ".." not in run_name
         and run_name.strip() == run_name and bool(run_name), "'run_name' must be a plain folder name")
    need(isinstance(record.get("history", []), list), "'history' must be a list")
    parents = record.get("parents") or {}
    need(isinstance(parents, dict) and all(
        isinstance(p, dict) and all(isinstance(p.get(k), str) for k in ("method", "run_name", "identity"))
        for p in parents.values()), "'parents' must map roles to {method, run_name, identity}")
    metrics = record.get("metrics")
    if not isinstance(metrics, dict):
        problems.append("'metrics' must be a group")
        return problems
    for metric in _ERROR_METRICS:
        splits = metrics.get(metric, {})
        if not isinstance(splits, dict):
            problems.append(f"'metrics.{metric}' must be a group of splits")
            continue
        for split, entry in splits.items():
            need(isinstance(entry, dict) and _finite(entry.get("mean")) and entry["mean"] >= 0,
                 f"'metrics.{metric}.{split}.mean' must be a number >= 0")
    return problems


def read_record(path: Path, check_digest: bool = True) -> dict:
    """A run record; one that is not valid JSON (cut short, edited by hand), lacks a required key,
    has a field of the wrong type, or (``check_digest``) no longer matches its digest raises
    :class:`CorruptRecordError` naming the file (a ``ValueError`` too)."""
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptRecordError(f"{path} is not a readable run record ({type(exc).__name__}: {exc}); "
                                 f"it was probably cut short or edited by hand: {RECORD_ADVICE}") from exc
    if not isinstance(record, dict):
        raise CorruptRecordError(f"{path} holds a JSON {type(record).__name__}, not a run record: {RECORD_ADVICE}")
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise CorruptRecordError(f"{path} is not a run record: missing {missing}; {RECORD_ADVICE}")
    problems = record_problems(record)
    if problems:
        raise CorruptRecordError(f"{path} is not a valid run record ({'; '.join(problems[:3])}): {RECORD_ADVICE}")
    if check_digest:
        stored = record.get(DIGEST_KEY)
        if stored is None:
            raise CorruptRecordError(f"{path} carries no digest ('{DIGEST_KEY}'), so its numbers cannot be trusted "
                                     f"(written by an older lmbook, or by hand): {RECORD_ADVICE}")
        if stored != record_digest(record):
            raise CorruptRecordError(f"{path} was changed after it was written (its fields no longer match its "
                                     f"digest '{DIGEST_KEY}'): {RECORD_ADVICE}")
    record["_path"] = str(path)
    return record


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
