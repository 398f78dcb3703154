"""Which code a run depends on: the ``lmcore`` modules its method imports, and nothing else.

A run's identity holds a fingerprint of its code (:func:`code_fingerprint`). It is computed over
the **import closure** of the run: the method's own module and every ``lmcore`` module it
imports, directly or through other modules (imports inside functions included), together with
the modules that train and evaluate every method (:data:`ENGINE`: the loop, the run API, the
protocol, the data sources). The closure is read from the source files with :mod:`ast`, without
importing anything, so it is the same with or without git and on every machine.

So an edit to C3's loss retrains C3 (and nothing that does not import it), an edit to the
training loop retrains everything, and an edit to a chapter's helpers, a quoted paper number, a
figure or another method's module retrains nothing. Two modules are registries, not code a run
executes: ``lmcore/__init__.py`` and the method registry ``lmcore/methods/__init__.py``; they are
neither part of a closure nor followed (following the registry would put every method in every
closure). Two folders are left out the same way (:data:`NOT_FOLLOWED_FOLDERS`):
``lmcore/experiments/``, the settings every method's profiles resolve from, which reach a run only
as its config (held whole in its identity, so a profile edit retrains exactly the runs whose config
it changes), and ``lmcore/book/``, which no run imports.

A process reads the package's sources **once**, when this module is imported (:func:`sources`),
and keys every run it trains by that snapshot, the code it is running: editing ``lmcore`` while a
long sweep trains neither relabels the sweep's later runs with code they did not run nor makes
them look uncommitted. Whether a run's code is committed is decided the same way, by comparing
the snapshot with ``HEAD``'s files (:func:`dirty_files`).
"""
from __future__ import annotations

import ast
import hashlib
import subprocess
from functools import lru_cache
from pathlib import Path

from ..paths import PROJECT_ROOT

#: modules every run executes whatever its method: the run API (which imports the loop, the
#: records and the protocol) and the data sources
ENGINE = ("lmcore/training/runs.py", "lmcore/data/sources.py")
#: registries: importing them runs no code of a run's, so they are neither hashed nor followed
NOT_FOLLOWED = frozenset({"lmcore/__init__.py", "lmcore/methods/__init__.py"})
#: folders of settings and of presentation: what they give a run is its config, which its identity
#: holds whole (experiments), or nothing (the book)
NOT_FOLLOWED_FOLDERS = ("lmcore/experiments/", "lmcore/book/")


def _not_followed(rel: str) -> bool:
    return rel in NOT_FOLLOWED or rel.startswith(NOT_FOLLOWED_FOLDERS)


_SOURCES: dict[str, bytes] = {}


def sources(root: Path = PROJECT_ROOT) -> dict[str, bytes]:
    """``{relative path: bytes}`` of every ``lmcore`` source: for the project, the snapshot this
    process took when it imported this module; for another root (tests), read now."""
    root = Path(root)
    if root.resolve() == PROJECT_ROOT.resolve() and _SOURCES:
        return _SOURCES
    found = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / "lmcore").rglob("*.py"))
             if "__pycache__" not in p.relative_to(root).parts and p.is_file()}
    if root.resolve() == PROJECT_ROOT.resolve():
        _SOURCES.update(found)
    return found


def _module_file(module: str, root: Path) -> str | None:
    """``lmcore.a.b`` -> ``lmcore/a/b.py`` or ``lmcore/a/b/__init__.py`` (relative), if it exists."""
    parts = module.split(".")
    if parts[0] != "lmcore":
        return None
    files = sources(root)
    for candidate in ("/".join(parts) + ".py", "/".join(parts) + "/__init__.py"):
        if candidate in files:
            return candidate
    return None


def _module_name(rel: str) -> str:
    name = rel[:-3].replace("/", ".")
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


def _imports(rel: str, root: Path) -> set[str]:
    """The ``lmcore`` files that ``rel`` imports (at any depth of its code), as relative paths."""
    tree = ast.parse(sources(root)[rel], filename=rel)
    module = _module_name(rel)
    package = module if rel.endswith("__init__.py") else module.rpartition(".")[0]
    found: set[str] = set()

    def add(name: str) -> None:
        path = _module_file(name, root)
        if path is not None:
            found.add(path)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            add(target)
            for alias in node.names:  # `from pkg import submodule`
                add(f"{target}.{alias.name}")
    return found


def _parents(rel: str, root: Path) -> set[str]:
    """The package ``__init__`` files Python runs before ``rel``."""
    out = set()
    parts = rel.split("/")[:-1]
    files = sources(root)
    for i in range(1, len(parts) + 1):
        init = "/".join(parts[:i]) + "/__init__.py"
        if init in files:
            out.add(init)
    return out


def module_closure(roots: tuple[str, ...], root: Path = PROJECT_ROOT) -> tuple[str, ...]:
    """Every ``lmcore`` file reached from ``roots`` (relative paths) by imports, sorted."""
    files = sources(root)
    stamp = hashlib.sha256(b"".join(hashlib.sha256(k.encode() + v).digest() for k, v in files.items())).hexdigest()
    return _closure(tuple(roots), str(Path(root).resolve()), stamp)


@lru_cache(maxsize=64)
def _closure(roots: tuple[str, ...], root: str, stamp: str) -> tuple[str, ...]:
    base = Path(root)
    files = sources(base)
    seen: set[str] = set()
    todo = [r for r in roots if r in files]
    while todo:
        rel = todo.pop()
        if rel in seen or _not_followed(rel):
            continue
        seen.add(rel)
        todo.extend((_imports(rel, base) | _parents(rel, base)) - seen)
    return tuple(sorted(seen))


def method_roots(method: str | None) -> tuple[str, ...]:
    """The closure's roots for ``method`` (its module and :data:`ENGINE`); for None, every module."""
    if method is None:
        return tuple(sources())
    from ..methods import REGISTRY, get_method

    get_method(method)  # an unknown name is a ConfigError naming the choices
    module = REGISTRY[method].split(":")[0]
    return (_module_file(module, PROJECT_ROOT),) + ENGINE


def code_files(method: str | None = None, root: Path = PROJECT_ROOT) -> dict[str, str]:
    """``{relative path: first 16 hex digits of its sha256}`` of the code a run of ``method``
    depends on (its import closure); every ``lmcore`` module for ``method=None``."""
    root = Path(root)
    files = sources(root)
    chosen = sorted(files) if method is None else module_closure(method_roots(method), root)
    return {rel: hashlib.sha256(files[rel]).hexdigest()[:16] for rel in chosen}


def code_fingerprint(method: str | None = None, root: Path = PROJECT_ROOT) -> str:
    """First 16 hex digits of a sha256 over the files of :func:`code_files` (paths and bytes):
    equal exactly when the code a run of ``method`` executes is, with or without git."""
    digest = hashlib.sha256()
    for rel, sha in code_files(method, root).items():
        digest.update(f"{rel}\0{sha}\0".encode())
    return digest.hexdigest()[:16]


def changed_files(old: dict[str, str] | None, new: dict[str, str]) -> list[str]:
    """The files that differ between two :func:`code_files` manifests (added, removed or edited)."""
    if not old:
        return []
    return sorted(rel for rel in set(old) | set(new) if old.get(rel) != new.get(rel))


def _git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def dirty_files(root: Path = PROJECT_ROOT, files: list[str] | None = None) -> list[str] | None:
    """The ``.py`` files under ``root/lmcore`` that differ from ``HEAD`` (modified, staged, deleted,
    renamed, or untracked and not ignored), among ``files`` (relative paths, e.g. a run's closure)
    when given; ``None`` when git cannot tell (no git, not a repository). For the project's own
    run closures (``files`` given) the comparison is with this process's snapshot (:func:`sources`),
    the code it runs, not with the files on disk now."""
    if files is not None and Path(root).resolve() == PROJECT_ROOT.resolve():
        try:
            listing = subprocess.run(["git", "ls-tree", "-r", "HEAD", "--", "lmcore"], cwd=root, capture_output=True,
                                     check=True, text=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return None
        committed = {line.split("\t", 1)[1]: line.split()[2] for line in listing.splitlines() if "\t" in line}
        snapshot = sources(root)
        return sorted(rel for rel in files if rel not in snapshot or committed.get(rel) != _git_blob(snapshot[rel]))
    try:
        out = subprocess.run(["git", "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", "lmcore"],
                             cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    wanted = None if files is None else set(files)
    entries = out.decode("utf-8", "surrogateescape").split("\0")
    found = []
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
        found += [p for p in paths if p.endswith(".py") and (wanted is None or p in wanted)]
    return sorted(set(found))


def lmcore_is_dirty(root: Path = PROJECT_ROOT, files: list[str] | None = None) -> bool | None:
    """Whether any file of :func:`dirty_files` differs from ``HEAD``; ``None`` when git cannot tell."""
    found = dirty_files(root, files)
    return None if found is None else bool(found)


sources()  # the snapshot: this process's code, whatever is edited on disk later
