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
closure).
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


def _module_file(module: str, root: Path) -> str | None:
    """``lmcore.a.b`` -> ``lmcore/a/b.py`` or ``lmcore/a/b/__init__.py`` (relative), if it exists."""
    parts = module.split(".")
    if parts[0] != "lmcore":
        return None
    for candidate in ("/".join(parts) + ".py", "/".join(parts) + "/__init__.py"):
        if (root / candidate).is_file():
            return candidate
    return None


def _module_name(rel: str) -> str:
    name = rel[:-3].replace("/", ".")
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


def _imports(rel: str, root: Path) -> set[str]:
    """The ``lmcore`` files that ``rel`` imports (at any depth of its code), as relative paths."""
    source = (root / rel).read_bytes()
    tree = ast.parse(source, filename=rel)
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
    for i in range(1, len(parts) + 1):
        init = "/".join(parts[:i]) + "/__init__.py"
        if (root / init).is_file():
            out.add(init)
    return out


def module_closure(roots: tuple[str, ...], root: Path = PROJECT_ROOT) -> tuple[str, ...]:
    """Every ``lmcore`` file reached from ``roots`` (relative paths) by imports, sorted."""
    return _closure(tuple(roots), str(Path(root).resolve()), _tree_stamp(Path(root)))


@lru_cache(maxsize=64)
def _closure(roots: tuple[str, ...], root: str, stamp: tuple) -> tuple[str, ...]:
    base = Path(root)
    seen: set[str] = set()
    todo = [r for r in roots if (base / r).is_file()]
    while todo:
        rel = todo.pop()
        if rel in seen or rel in NOT_FOLLOWED:
            continue
        seen.add(rel)
        todo.extend((_imports(rel, base) | _parents(rel, base)) - seen)
    return tuple(sorted(seen))


def _tree_stamp(root: Path) -> tuple:
    """Cheap key that changes when a source file under ``root/lmcore`` changes (size, mtime)."""
    package = root / "lmcore"
    return tuple(sorted((p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                        for p in package.rglob("*.py") if "__pycache__" not in p.parts))


def method_roots(method: str | None) -> tuple[str, ...]:
    """The closure's roots for ``method`` (its module and :data:`ENGINE`); for None, every module."""
    if method is None:
        package = PROJECT_ROOT / "lmcore"
        return tuple(sorted(p.relative_to(PROJECT_ROOT).as_posix() for p in package.rglob("*.py")
                            if "__pycache__" not in p.parts))
    from ..methods import REGISTRY, get_method

    get_method(method)  # an unknown name is a ConfigError naming the choices
    module = REGISTRY[method].split(":")[0]
    return (_module_file(module, PROJECT_ROOT),) + ENGINE


def code_files(method: str | None = None, root: Path = PROJECT_ROOT) -> dict[str, str]:
    """``{relative path: first 16 hex digits of its sha256}`` of the code a run of ``method``
    depends on (its import closure); every ``lmcore`` module for ``method=None``."""
    root = Path(root)
    if method is None:
        files = sorted(p.relative_to(root).as_posix() for p in (root / "lmcore").rglob("*.py")
                       if "__pycache__" not in p.relative_to(root).parts and p.is_file())
    else:
        files = module_closure(method_roots(method), root)
    return {rel: hashlib.sha256((root / rel).read_bytes()).hexdigest()[:16] for rel in files}


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


def dirty_files(root: Path = PROJECT_ROOT, files: list[str] | None = None) -> list[str] | None:
    """The ``.py`` files under ``root/lmcore`` that differ from ``HEAD`` (modified, staged, deleted,
    renamed, or untracked and not ignored), among ``files`` (relative paths, e.g. a run's closure)
    when given; ``None`` when git cannot tell (no git, not a repository)."""
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
