"""Where lmbook finds its data, writes its runs and keeps its reference results.

Three places matter:

* the *shared* data folder ``../shared/data`` beside the project (read-only; holds MTFL-80);
* the *data root*, where ``data_scripts/`` write what they fetch: ``$LMBOOK_DATA_ROOT`` if set,
  else ``<project>/data``;
* the *runs* folder for checkpoints and run records of training: ``$LMBOOK_RUNS`` if set,
  else ``<project>/runs``.

A data set is looked up by name in the data root first, then in the shared folder, so a user
who sets ``LMBOOK_DATA_ROOT`` to a folder holding ``mtfl80/`` uses that copy.
"""
from __future__ import annotations

from pathlib import Path

from . import env
from .errors import MissingDataError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
RESULTS_DIR = PROJECT_ROOT / "results"

# The command that fetches or prepares each named data set; quoted in every
# "missing data" message so that the user knows what to run.
FETCH_COMMANDS = {
    "mtfl80": "python data_scripts/fetch_mtfl.py  (or set LMBOOK_DATA_ROOT to a folder holding mtfl80/)",
    "mnist": "python data_scripts/fetch_mnist.py",
    "fashion_footwear": "python data_scripts/fetch_fashion_mnist.py",
    "vgg16": "python data_scripts/fetch_vgg16_weights.py",
    "celeba": "python data_scripts/fetch_celeba.py",
    "aflw": "python data_scripts/fetch_aflw.py",
    "cats": "python data_scripts/fetch_cats.py",
    "shoes": "python data_scripts/fetch_shoes.py",
    "lspet128": "copy LSPET-128 to ../shared/data/lspet128 or $LMBOOK_DATA_ROOT/lspet128 (see its README)",
}


def data_root() -> Path:
    """The writable folder that data scripts fill (``$LMBOOK_DATA_ROOT`` or ``<project>/data``)."""
    return env.folder("LMBOOK_DATA_ROOT") or PROJECT_ROOT / "data"


def runs_root() -> Path:
    """Folder of training runs (checkpoints and run records): ``$LMBOOK_RUNS`` or ``<project>/runs``."""
    return env.folder("LMBOOK_RUNS") or PROJECT_ROOT / "runs"


def cache_root() -> Path:
    """Folder for derived caches (decoded image arrays): ``$LMBOOK_CACHE`` or ``<project>/.cache``;
    safe to delete. A ``$LMBOOK_CACHE`` that is a file is refused here, before anything is decoded."""
    return env.folder("LMBOOK_CACHE") or PROJECT_ROOT / ".cache"


def fetch_command(name: str) -> str:
    return FETCH_COMMANDS.get(name, f"python data_scripts/fetch_{name}.py")


def find_dataset(name: str, marker: str | None = None) -> Path:
    """Return the folder of data set ``name``, searching the data root then ``../shared/data``.

    ``marker`` is a file that must exist inside the folder for it to count. A folder of that
    name in the data root without ``marker`` is an incomplete copy and an error, never a reason
    to use the shared copy instead (the user put it there to be used); only a data root without
    the folder falls back. Raises :class:`MissingDataError` naming the fetch command.
    """
    if env.raw("LMBOOK_DATA_ROOT") and not data_root().is_dir():
        # a mistyped data root must not silently fall back to the shared copy
        raise MissingDataError(f"LMBOOK_DATA_ROOT={env.raw('LMBOOK_DATA_ROOT')} is not a folder; create it (the data "
                               f"scripts fill it) or unset LMBOOK_DATA_ROOT to use {SHARED_DATA}")
    local = data_root() / name
    if marker is not None and (local.exists() or local.is_symlink()) and not (local / marker).exists():
        raise MissingDataError(f"{local} is an incomplete copy of '{name}': {marker} is missing; "
                               f"fetch it with:  {fetch_command(name)}")
    candidates = [local, SHARED_DATA / name]
    for folder in candidates:
        if folder.is_dir() and (marker is None or (folder / marker).exists()):
            return folder
    searched = ", ".join(str(c) for c in candidates)
    raise MissingDataError(
        f"data set '{name}' not found (looked in: {searched}). "
        f"Fetch it with:  {fetch_command(name)}"
    )


def display_path(path: Path | str | None) -> str | None:
    """``path`` as a record or a message shows it, without this machine's absolute folders:
    relative to the project (``runs/...``), to the folder beside it (``../shared/data/mtfl80``),
    or, elsewhere, as ``$LMBOOK_RUNS/...`` or ``$LMBOOK_DATA_ROOT/...`` when under those, else
    its last two parts (``.../mtfl80``)."""
    if path is None:
        return None
    path = Path(path).resolve()
    for base, label in ((PROJECT_ROOT, None), (PROJECT_ROOT.parent, "..")):
        try:
            rel = path.relative_to(base).as_posix()
        except ValueError:
            continue
        return rel if label is None else f"{label}/{rel}"
    for variable, base in (("$LMBOOK_RUNS", runs_root()), ("$LMBOOK_DATA_ROOT", data_root())):
        try:
            return f"{variable}/{path.relative_to(base).as_posix()}"
        except ValueError:
            continue
    return ".../" + "/".join(path.parts[-2:])
