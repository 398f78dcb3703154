"""Small file-system helpers shared by the loop, the records, the image cache and the data
scripts: write a file atomically, is a process alive (whose temp file may be removed), make a
rename durable, a file's digest, and what torch's weights-only loader refused in a file."""
from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine; kept on the safe side (a zombie, a process
    of another user, or any platform without ``os.kill(pid, 0)`` probing counts as alive: on
    Windows that call would end the process)."""
    if pid <= 0:
        return False
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists under another user
        return True
    return True


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the OS lets a folder be opened and synced)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_writer(path: Path, mode: str = "wb"):
    """A file handle (binary; text with ``mode="w"``) on ``.NAME.tmp<pid>`` beside ``path``:
    flushed, fsynced and renamed onto ``path`` on success (then the folder is fsynced), removed on
    any failure. A reader never sees half a file, and a killed writer leaves its temp file, which
    its pid in the name lets a later run tell from a live writer's (:func:`pid_alive`)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def weights_only_refusal(exc: BaseException) -> str | None:
    """What torch's weights-only loader refused, in a few words (``the global os.system is
    blocked``), when ``exc`` is such a refusal; else None. torch's own message spans several lines
    and advises loading with ``weights_only=False``, which would run what it refused: never shown."""
    text = str(exc).replace("\x1b[1m", "").replace("\x1b[0m", "")
    if not (isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in text):
        return None
    # torch's text: advice, then "WeightsUnpickler error: <what>" or a blank line and <what>
    parts = [p.strip() for p in text.split("\n\n") if p.strip() and not p.strip().startswith("Check the doc")]
    what = (parts[-1] if parts else text).rsplit("WeightsUnpickler error:", 1)[-1]
    return " ".join(what.split(". ")[0].split())[:160].rstrip(".") or "an object that is not a tensor"


def first_line(exc: BaseException, limit: int = 160) -> str:
    """``Type: first line of the message`` of ``exc`` (at most ``limit`` characters of it)."""
    line = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {line[:limit]}" if line else type(exc).__name__
