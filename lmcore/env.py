"""Every environment variable lmbook reads, read and checked here and nowhere else.

Each ``LMBOOK_*`` variable takes a fixed set of values (a folder variable: a path; the timing
variables: what ``tools/lmbook`` writes), and unset or empty means its default. Anything else is
one line naming the variable, the value and what it takes (:class:`EnvironmentSettingError`, a
:class:`~lmcore.errors.ConfigError`: exit code 2 on the command line), before it can change what
a command does: ``LMBOOK_RETRAIN=false`` is refused, never read as "retrain".

Each variable, what it takes and what it is for are declared once, in :data:`VARIABLES` (the
book's appendix page *Environment variables* lists them).

torchrun's variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``)
come together or not at all: a stray ``RANK=1`` or ``WORLD_SIZE=2`` without torchrun would train
as one process of a group that does not exist (no lock, no record), so it is refused
(:func:`torchrun_rank`).

``python -m lmcore.env`` prints every variable with its value and exits 2 with one line when one
is wrong (``tools/lmbook`` runs it before building anything).
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError


class EnvironmentSettingError(ConfigError):
    """An environment variable holds a value lmbook does not take; the message names the
    variable, the value and what it takes, in one line."""


@dataclass(frozen=True)
class Variable:
    """An environment variable: its name, the values it takes (``values``: a fixed set; None: what
    ``takes`` describes), what it takes and what it is for, in words."""

    name: str
    takes: str
    meaning: str
    values: tuple[str, ...] | None = None


FLAG = ("0", "1")
VARIABLES = {v.name: v for v in (
    Variable("LMBOOK_PROFILE", "smoke, reference, cpu or paper (unset: by hardware)",
             "the profile of `make book` and of training (reference: the book only)",
             ("smoke", "reference", "cpu", "paper")),
    Variable("LMBOOK_DEVICE", "cpu, cuda, cuda:<n> or mps (unset: cuda where PyTorch sees a GPU, else cpu)",
             "the device runs train on"),
    Variable("LMBOOK_RETRAIN", "1 (retrain), or 0 or unset (reuse finished runs)",
             "retrain every run asked for, as --force does", FLAG),
    Variable("LMBOOK_PROGRESS", "0 (no progress lines), or 1 or unset (progress)",
             "progress lines or bars while training (the book's build sets 0)", FLAG),
    Variable("LMBOOK_DEBUG", "1 (a traceback), or 0 or unset (one line)",
             "what a data script shows for an unexpected error", FLAG),
    Variable("LMBOOK_RUNS", "a folder (unset: runs/)", "checkpoints and run records"),
    Variable("LMBOOK_DATA_ROOT", "a folder (unset: data/)", "fetched data sets and weights"),
    Variable("LMBOOK_CACHE", "a folder (unset: .cache/)", "decoded images and other derived caches; safe to delete"),
    Variable("LMBOOK_PYTHON", "an executable Python with the dependencies (unset: .venv/bin/python)",
             "the interpreter tools/lmbook (make) uses"),
    Variable("LMBOOK_STARTED_AT", "seconds since the epoch (set by tools/lmbook)",
             "when the make command began, for its timing record"),
    Variable("LMBOOK_CACHES", "cold or warm (set by tools/lmbook)",
             "whether the cache folder was empty when the make command began", ("cold", "warm")),
)}
FOLDERS = ("LMBOOK_RUNS", "LMBOOK_DATA_ROOT", "LMBOOK_CACHE")
DEVICE = re.compile(r"cpu|cuda(:\d{1,3})?|mps")
#: what torchrun sets in every process it starts (it sets more; these are what lmbook relies on)
TORCHRUN = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def _fail(name: str, value: str) -> EnvironmentSettingError:
    shown = repr(value) if len(value) <= 80 else repr(value[:77] + "...")
    return EnvironmentSettingError(f"environment variable {name} must be {VARIABLES[name].takes}, got {shown}")


def raw(name: str) -> str:
    """The text of variable ``name`` ("" when unset); ``name`` must be one of :data:`VARIABLES`."""
    if name not in VARIABLES:
        raise KeyError(f"{name} is not one of lmbook's environment variables (lmcore.env.VARIABLES)")
    return os.environ.get(name, "")


def choice(name: str) -> str | None:
    """The value of a variable with a fixed set of values, or None when unset or empty."""
    value = raw(name)
    if not value:
        return None
    if value not in VARIABLES[name].values:
        raise _fail(name, value)
    return value


def flag(name: str, default: bool) -> bool:
    """A 0/1 variable as a bool (``default`` when unset or empty)."""
    value = choice(name)
    return default if value is None else value == "1"


def retrain() -> bool:
    """``LMBOOK_RETRAIN=1``: retrain the runs asked for."""
    return flag("LMBOOK_RETRAIN", False)


def progress() -> bool:
    """Progress lines while training, unless ``LMBOOK_PROGRESS=0``."""
    return flag("LMBOOK_PROGRESS", True)


def debug() -> bool:
    """``LMBOOK_DEBUG=1``: the data scripts show the traceback of an unexpected error."""
    return flag("LMBOOK_DEBUG", False)


def profile() -> str | None:
    """``LMBOOK_PROFILE``, or None when unset."""
    return choice("LMBOOK_PROFILE")


def caches() -> str | None:
    """``LMBOOK_CACHES`` (cold or warm), or None when unset."""
    return choice("LMBOOK_CACHES")


def device() -> str | None:
    """``LMBOOK_DEVICE`` (its form only: :func:`lmcore.profiles.select_device` checks the
    hardware has it), or None when unset."""
    value = raw("LMBOOK_DEVICE")
    if value and not DEVICE.fullmatch(value):
        raise _fail("LMBOOK_DEVICE", value)
    return value or None


def folder(name: str) -> Path | None:
    """The folder a folder variable (:data:`FOLDERS`) names, absolute, or None when unset; a
    path that exists and is not a folder is refused before anything is computed for it."""
    if name not in FOLDERS:
        raise KeyError(f"{name} is not a folder variable ({', '.join(FOLDERS)})")
    value = raw(name)
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise EnvironmentSettingError(f"environment variable {name}={value} is a file, not a folder: "
                                      f"set {name} to a writable folder, or unset it")
    return path


def started_at() -> float | None:
    """``LMBOOK_STARTED_AT`` (seconds since the epoch), or None when unset."""
    value = raw("LMBOOK_STARTED_AT")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise _fail("LMBOOK_STARTED_AT", value) from None
    if not 0 < seconds < 1e11:
        raise _fail("LMBOOK_STARTED_AT", value)
    return seconds


def python() -> str | None:
    """``LMBOOK_PYTHON`` (an executable, found on ``PATH`` or by its path), or None when unset."""
    value = raw("LMBOOK_PYTHON")
    if value and shutil.which(value) is None:
        raise _fail("LMBOOK_PYTHON", value)
    return value or None


def torchrun_rank() -> int:
    """This process's rank under torchrun, 0 without it. torchrun's variables (:data:`TORCHRUN`)
    come together: some without the others (a stray ``RANK=1`` or ``WORLD_SIZE=2``), or values
    that are not ranks, are refused in one line."""
    return torchrun_group()[0]


def torchrun_group() -> tuple[int, int]:
    """``(rank, world size)`` under torchrun, ``(0, 1)`` without it (see :func:`torchrun_rank`)."""
    given = [name for name in TORCHRUN if os.environ.get(name, "") != ""]
    if not given:
        return 0, 1
    missing = [name for name in TORCHRUN if name not in given]
    if missing:
        shown = ", ".join(f"{name}={os.environ[name]!r}" for name in given)
        raise EnvironmentSettingError(
            f"{shown} set without torchrun ({', '.join(missing)} unset): a stray RANK or WORLD_SIZE would train as "
            "one process of a group that does not exist; unset them, or launch with torchrun --nproc_per_node N "
            "-m lmcore.train ...")
    numbers = {}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        text = os.environ[name]
        if not text.isdigit():
            raise EnvironmentSettingError(f"environment variable {name} must be a whole number (torchrun sets it), "
                                          f"got {text!r}")
        numbers[name] = int(text)
    rank, world = numbers["RANK"], numbers["WORLD_SIZE"]
    if world < 1 or rank >= world:
        raise EnvironmentSettingError(f"environment variables RANK={rank} and WORLD_SIZE={world} do not fit "
                                      "(0 <= RANK < WORLD_SIZE); launch with torchrun, which sets both")
    return rank, world


def check_environment() -> None:
    """Read every variable of :data:`VARIABLES` and torchrun's; raise
    :class:`EnvironmentSettingError` for the first that is wrong."""
    for name, variable in VARIABLES.items():
        if name in FOLDERS:
            folder(name)
        elif variable.values is not None:
            choice(name)
    device()
    started_at()
    python()
    torchrun_group()


def describe() -> list[tuple[str, str, str, str]]:
    """``(name, value or "(unset)", what it takes, what it is for)`` of every variable."""
    return [(v.name, os.environ.get(v.name) or "(unset)", v.takes, v.meaning) for v in VARIABLES.values()]


def main(argv=None) -> int:
    """``python -m lmcore.env``: every variable and its value; exit 2 with one line when one is wrong."""
    try:
        check_environment()
    except EnvironmentSettingError as exc:
        print(f"[lmbook] error: {exc}", file=sys.stderr)
        return 2
    if "--quiet" not in (argv if argv is not None else sys.argv[1:]):
        for name, value, takes, meaning in describe():
            print(f"{name:18s} {value:24s} {meaning}; takes {takes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
