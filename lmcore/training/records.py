"""Run records: what a number in the book came from.

A run record is a JSON file written atomically next to the run's checkpoint::

    {"method", "profile", "config", "git_commit", "device", "wall_time_s", "data", "metrics", ...}

``metrics`` holds ``forward``, ``backward`` and ``consistency`` errors per test split. Extra keys
(``history``: the learning curve; ``created``; ``run_name``; ``status``) travel alongside.

What code made a number: :func:`git_commit` (``HEAD``, ``+dirty``), and, where git cannot tell,
:func:`code_fingerprint` (a hash of the ``lmcore`` sources) and :func:`lmcore_is_dirty`.
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

from ..errors import CorruptRecordError
from ..files import fsync_dir
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


#: modules under lmcore/ that present results and never train (no training module imports them):
#: editing them (a paper's quoted number, a table's layout, a figure) retrains nothing
PRESENTATION_ONLY = ("lmcore/papers.py", "lmcore/reporting.py", "lmcore/chapter.py", "lmcore/leaderboard.py", "lmcore/bench.py",
                     "lmcore/viz/")


def _trains(rel: str) -> bool:
    return not any(rel == p or (p.endswith("/") and rel.startswith(p)) for p in PRESENTATION_ONLY)


def code_fingerprint(root: Path = PROJECT_ROOT) -> str:
    """First 16 hex digits of a sha256 over every ``*.py`` file under ``root/lmcore`` that can
    change a run (sorted relative paths and bytes; ``__pycache__`` and :data:`PRESENTATION_ONLY`
    ignored): equal exactly when those sources are, with or without git."""
    root = Path(root)
    digest = hashlib.sha256()
    package = root / "lmcore"
    files = sorted((p.relative_to(root).as_posix(), p) for p in package.rglob("*.py")
                   if "__pycache__" not in p.relative_to(root).parts and p.is_file()
                   and _trains(p.relative_to(root).as_posix()))
    for rel, path in files:
        data = path.read_bytes()
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:16]


def lmcore_is_dirty(root: Path = PROJECT_ROOT) -> bool | None:
    """Whether a ``.py`` file under ``root/lmcore`` that can change a run (see :func:`code_fingerprint`)
    differs from ``HEAD`` (modified, staged, deleted, renamed, or untracked and not ignored); ``None``
    when git cannot tell (no git, not a repository)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", "lmcore"],
                             cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    entries = out.decode("utf-8", "surrogateescape").split("\0")
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2], entry[3:]
        paths = [path]
        if "R" in status or "C" in status:  # a rename or copy is followed by its original path
            paths.append(entries[index] if index < len(entries) else "")
            index += 1
        if any(p.endswith(".py") and _trains(p) for p in paths):
            return True
    return False


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
    """Write ``payload`` to ``.NAME.tmp<pid>``, fsync it, rename it onto ``path``, fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w") as fh:
            json.dump(payload, fh, indent=1, sort_keys=False, default=float)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


RECORD_ADVICE = "delete it, or rerun with --force (LMBOOK_RETRAIN=1) to make the run again"


def read_record(path: Path) -> dict:
    """A run record; one that is not valid JSON (cut short, edited by hand) or lacks a required
    key raises :class:`CorruptRecordError` naming the file (a ``ValueError`` too)."""
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
    record["_path"] = str(path)
    return record


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
