"""Small file-system helpers shared by the loop, the records, the image cache and the data
scripts: is a process alive (whose temp file may be removed), and make a rename durable."""
from __future__ import annotations

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
