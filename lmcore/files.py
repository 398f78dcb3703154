"""Small file-system helpers shared by the loop, the records, the image cache and the data
scripts: write a file atomically, is a process alive (whose temp file may be removed), make a
rename durable, and a file's digest."""
from __future__ import annotations

import contextlib
import hashlib
import os
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
