"""Which code a run depends on, hashed by what it computes.

A run has two identities (:mod:`lmcore.training.runs`): its **training** identity keys its
checkpoint, its **evaluation** identity keys the numbers scored from that checkpoint. Each holds a
fingerprint of the code behind it, made of one hash per ``lmcore`` file:

* **What a file computes, not its bytes.** A file is hashed as its syntax tree without docstrings
  or any other bare string statement (:func:`normalised`): comments, docstrings, blank lines,
  quotes, line breaks and parentheses never change an identity; a changed number, name or
  statement always does.
* **Only the files that compute.** The training closure starts at the method's module, the loop
  (``training/loop.py``), what builds and feeds a run (``training/trainee.py``), the method
  registry's ``build_method`` (its seeding) and the run's data source module, and follows their
  imports, inside functions too. It leaves out what only describes or stores
  (:data:`DESCRIBE_OR_STORE`: the identity code itself, records, checkpoints, the zoo, files, paths,
  errors, the run API), the settings (``experiments/``: a run gets them as its config, held whole in
  its identity), the book's layer (``book/``) and the protocol (``evaluation/``, the evaluation
  closure's).
* **Registries key one entry.** A registry's list (:data:`REGISTRIES`: the methods, the data
  sources) is dropped from its file's hash, and the entry a run uses is keyed instead, so adding a
  method or a data source changes no other run.
* **Evaluation apart.** The protocol (``evaluation/``) and every method's ``evaluate`` and
  ``learning_curve`` (:data:`EVALUATION_FUNCTIONS`, taken out of the training hash) make the
  evaluation closure: an edit there re-scores a run from its checkpoint instead of retraining it.

The files are read from a :class:`CodeTree`: the code this process runs (:func:`working_tree`, read
**once**, when this module is imported, so that an edit while a long sweep trains neither relabels
its later runs nor makes them look uncommitted) or the code of a git commit (:func:`commit_tree`),
which is how the identity a committed record would have under today's rules is computed for the
code that trained it. Nothing is imported: the closure is read with :mod:`ast`.
"""
from __future__ import annotations

import ast
import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError
from ..methods import get_method
from ..paths import PROJECT_ROOT

#: the version of these rules; records keyed otherwise (older lmbooks) say so
SCHEME = 2
#: the modules every run's training executes, besides its method's and its data source's
TRAINING_ENGINE = ("lmcore/training/loop.py", "lmcore/training/trainee.py", "lmcore/methods/__init__.py")
#: the protocol every run's numbers come from
EVALUATION_ENGINE = ("lmcore/evaluation/__init__.py",)
#: modules that only describe or store what runs compute: neither hashed nor followed
DESCRIBE_OR_STORE = frozenset({
    "lmcore/__init__.py", "lmcore/training/__init__.py",
    "lmcore/training/code_identity.py", "lmcore/training/records.py", "lmcore/training/run_record.py",
    "lmcore/training/checkpoint.py", "lmcore/training/runs.py", "lmcore/training/attestation.py",
    "lmcore/training/probe.py",
    "lmcore/zoo.py", "lmcore/zoo_export.py", "lmcore/files.py", "lmcore/paths.py", "lmcore/errors.py",
    "lmcore/cli.py", "lmcore/profiling.py", "lmcore/profiles.py", "lmcore/spec.py", "lmcore/env.py",
})
#: folders of settings and of presentation (what they give a run is its config, or nothing)
NOT_FOLLOWED_FOLDERS = ("lmcore/experiments/", "lmcore/book/")
#: the protocol's folder: in the evaluation closure, never in the training one
EVALUATION_FOLDER = "lmcore/evaluation/"
#: ``{registry file: the name of its list}``: the list is not hashed, the entry a run uses is
REGISTRIES = {"lmcore/methods/__init__.py": "REGISTRY", "lmcore/data/sources.py": "SOURCES"}
#: a method's functions that score it: keyed with its numbers, not with its weights
EVALUATION_FUNCTIONS = frozenset({"evaluate", "learning_curve"})


# --------------------------------------------------------------------------- trees of source files


@dataclass
class CodeTree:
    """The ``lmcore`` sources of one version of the code: ``files`` maps each relative path
    (``lmcore/a/b.py``) to its bytes; ``label`` says where they came from."""

    files: dict[str, bytes]
    label: str
    _closures: dict = field(default_factory=dict, repr=False)

    def module_file(self, module: str) -> str | None:
        """``lmcore.a.b`` -> ``lmcore/a/b.py`` or ``lmcore/a/b/__init__.py``, if it exists here."""
        parts = module.split(".")
        if parts[0] != "lmcore":
            return None
        for candidate in ("/".join(parts) + ".py", "/".join(parts) + "/__init__.py"):
            if candidate in self.files:
                return candidate
        return None

    def registry(self, rel: str) -> dict[str, str]:
        """The string entries of the registry list in ``rel`` (:data:`REGISTRIES`), read from its
        syntax tree: ``{name: "module:attribute"}``; empty where the file has no such list."""
        if rel not in self.files:
            return {}
        for node in _registry_nodes(ast.parse(self.files[rel]), REGISTRIES[rel]):
            value = node.value
            if isinstance(value, ast.Dict):
                return {k.value: v.value for k, v in zip(value.keys, value.values)
                        if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)}
        return {}


_WORKING: dict[str, bytes] = {}


def working_tree(root: Path = PROJECT_ROOT) -> CodeTree:
    """The ``lmcore`` sources under ``root``: for the project, the snapshot this process took when
    it imported this module (the code it runs); for another root (tests), read now."""
    root = Path(root)
    project = root.resolve() == PROJECT_ROOT.resolve()
    if project and _WORKING:
        return _snapshot_tree()
    found = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / "lmcore").rglob("*.py"))
             if "__pycache__" not in p.relative_to(root).parts and p.is_file()}
    if project:
        _WORKING.update(found)
        return _snapshot_tree()
    return CodeTree(found, str(root))


def sources(root: Path = PROJECT_ROOT) -> dict[str, bytes]:
    """``{relative path: bytes}`` of :func:`working_tree` (the snapshot, for the project)."""
    return working_tree(root).files


_SNAPSHOT: list[CodeTree] = []


def _snapshot_tree() -> CodeTree:
    """One tree object per snapshot, so that its closures are computed once per process (a test
    that edits the snapshot in place gets a fresh one)."""
    stamp = _stamp(_WORKING)
    if not _SNAPSHOT or _SNAPSHOT[0].label != f"working tree {stamp}":
        _SNAPSHOT[:] = [CodeTree(_WORKING, f"working tree {stamp}")]
    return _SNAPSHOT[0]


def _stamp(files: dict[str, bytes]) -> str:
    return hashlib.sha256(b"".join(hashlib.sha256(k.encode() + v).digest() for k, v in sorted(files.items()))).hexdigest()[:16]


@lru_cache(maxsize=32)
def commit_tree(commit: str, root: Path = PROJECT_ROOT) -> CodeTree:
    """The ``lmcore`` sources of git ``commit`` (raises :class:`LookupError` when git cannot give
    them: no git, not a repository, an unknown commit)."""
    try:
        listing = subprocess.run(["git", "ls-tree", "-r", "-z", commit, "--", "lmcore"], cwd=root,
                                 capture_output=True, check=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise LookupError(f"git cannot list the code of commit {commit}") from exc
    entries = [line.split("\t", 1) for line in listing.split("\0") if "\t" in line]
    wanted = [(meta.split()[2], path) for meta, path in entries if path.endswith(".py") and meta.split()[1] == "blob"]
    batch = subprocess.run(["git", "cat-file", "--batch"], cwd=root, input="".join(f"{sha}\n" for sha, _ in wanted).encode(),
                           capture_output=True, check=True).stdout
    files, offset = {}, 0
    for _, path in wanted:
        header_end = batch.index(b"\n", offset)
        size = int(batch[offset:header_end].split()[2])
        files[path] = batch[header_end + 1: header_end + 1 + size]
        offset = header_end + 1 + size + 1
    return CodeTree(files, f"commit {commit}")


# --------------------------------------------------------------------------- what a file computes


def _registry_nodes(tree: ast.Module, name: str) -> list:
    return [n for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
            and any(isinstance(t, ast.Name) and t.id == name for t in (n.targets if isinstance(n, ast.Assign) else [n.target]))]


class _Normaliser(ast.NodeTransformer):
    """Drops every bare string statement (docstrings included) and, for the training hash, a
    class's evaluation functions."""

    def __init__(self, drop_evaluation: bool):
        self.drop_evaluation = drop_evaluation

    def generic_visit(self, node):
        super().generic_visit(node)
        body = getattr(node, "body", None)
        if isinstance(body, list):
            kept = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                            and isinstance(s.value.value, str))]
            if isinstance(node, ast.ClassDef) and self.drop_evaluation:
                kept = [s for s in kept if not (isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
                                                and s.name in EVALUATION_FUNCTIONS)]
            node.body = kept or [ast.Pass()]
        return node


def normalised(source: bytes, rel: str = "", drop_evaluation: bool = False) -> str:
    """What ``source`` computes, as text: its syntax tree (``ast.dump``) without docstrings or other
    bare strings, without the registry list of a registry file (:data:`REGISTRIES`) and, with
    ``drop_evaluation``, without its classes' :data:`EVALUATION_FUNCTIONS`. Comments and layout are
    not in a syntax tree to begin with."""
    tree = ast.parse(source, filename=rel or "<source>")
    if rel in REGISTRIES:
        dropped = set(map(id, _registry_nodes(tree, REGISTRIES[rel])))
        tree.body = [n for n in tree.body if id(n) not in dropped]
    tree = _Normaliser(drop_evaluation).visit(tree)
    return ast.dump(tree, include_attributes=False)


def evaluation_functions(source: bytes, rel: str = "") -> dict[str, str]:
    """``{"Class.function": its normalised syntax tree}`` of the :data:`EVALUATION_FUNCTIONS` that
    the classes of ``source`` define."""
    found = {}
    for node in ast.walk(ast.parse(source, filename=rel or "<source>")):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in EVALUATION_FUNCTIONS:
                    found[f"{node.name}.{item.name}"] = ast.dump(_Normaliser(False).visit(item), include_attributes=False)
    return found


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@lru_cache(maxsize=4096)
def file_hash(data: bytes, rel: str, drop_evaluation: bool = False) -> str:
    """The hash of what a file computes (:func:`normalised`), once per content."""
    return _hash(normalised(data, rel, drop_evaluation))


@lru_cache(maxsize=4096)
def _evaluation_hashes(data: bytes, rel: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, _hash(code)) for name, code in evaluation_functions(data, rel).items())


# --------------------------------------------------------------------------- closures


def _module_name(rel: str) -> str:
    name = rel[:-3].replace("/", ".")
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


def _target(rel: str, node: ast.ImportFrom) -> str:
    """The absolute module name an ``ImportFrom`` in file ``rel`` imports from."""
    if not node.level:
        return node.module or ""
    module = _module_name(rel)
    base = (module if rel.endswith("__init__.py") else module.rpartition(".")[0]).split(".")
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join(base + ([node.module] if node.module else []))


def _reexports(tree: CodeTree, rel: str) -> dict[str, str] | None:
    """For a package ``__init__`` that only re-exports (imports, ``__all__``, bare strings):
    ``{name: the file that defines it}``; None for any other file. Such a file computes nothing:
    a run that imports a name through it depends on the name's own module, not on its siblings
    (``from ..data import MTFL80`` keys ``data/mtfl.py``, not LSPET's parser)."""
    if not rel.endswith("__init__.py"):
        return None
    key = ("reexports", rel)
    if key not in tree._closures:
        tree._closures[key] = _reexported_names(tree, rel)
    return tree._closures[key]


def _reexported_names(tree: CodeTree, rel: str) -> dict[str, str] | None:
    names: dict[str, str] = {}
    for node in ast.parse(tree.files[rel], filename=rel).body:
        if isinstance(node, ast.ImportFrom):
            target = _target(rel, node)
            for alias in node.names:
                path = tree.module_file(f"{target}.{alias.name}") or tree.module_file(target)
                if path is not None:
                    names[alias.asname or alias.name] = path
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue
        elif not (isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__all__"]):
            return None
    return names


@lru_cache(maxsize=4096)
def _import_statements(data: bytes, rel: str) -> tuple[tuple[str, tuple[str, ...] | None], ...]:
    """Every import of a file (at any depth of its code), once per content: ``(module, names)`` for
    ``from module import names`` (relative ones made absolute), ``(module, None)`` for ``import module``."""
    found = []
    for node in ast.walk(ast.parse(data, filename=rel)):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((_target(rel, node), tuple(alias.name for alias in node.names)))
    return tuple(found)


def _imports(tree: CodeTree, rel: str) -> set[str]:
    """The ``lmcore`` files that ``rel`` imports (at any depth of its code), as relative paths; a
    name imported through a re-exporting package (:func:`_reexports`) counts as its own module."""
    found: set[str] = set()

    def add(name: str, imported: tuple[str, ...] = ()) -> None:
        path = tree.module_file(name)
        if path is None:
            return
        reexported = _reexports(tree, path)
        if reexported is None:
            found.add(path)
        elif imported:
            found.update(reexported[n] for n in imported if n in reexported)
        else:  # the whole package: every module it re-exports
            found.update(reexported.values())

    for target, names in _import_statements(tree.files[rel], rel):
        if names is None:
            add(target)
            continue
        submodules = [name for name in names if tree.module_file(f"{target}.{name}")]
        for name in submodules:  # `from pkg import submodule`
            add(f"{target}.{name}")
        others = tuple(name for name in names if name not in submodules)
        if others or not submodules:
            add(target, others)
    return found


def _package_inits(tree: CodeTree, rel: str) -> set[str]:
    """The package ``__init__`` files Python runs before ``rel`` that compute something (a
    re-exporting one only imports: :func:`_reexports`)."""
    parts = rel.split("/")[:-1]
    inits = {"/".join(parts[:i]) + "/__init__.py" for i in range(1, len(parts) + 1)}
    return {init for init in inits if init in tree.files and _reexports(tree, init) is None}


def _excluded(rel: str, evaluation: bool) -> bool:
    if rel in DESCRIBE_OR_STORE or rel.startswith(NOT_FOLLOWED_FOLDERS):
        return True
    return not evaluation and rel.startswith(EVALUATION_FOLDER)


def closure(tree: CodeTree, roots: tuple[str, ...], evaluation: bool = False) -> tuple[str, ...]:
    """Every ``lmcore`` file reached from ``roots`` by imports, sorted, leaving out (and not
    following) what only describes or stores, the settings, the book and, for a training closure
    (``evaluation=False``), the protocol."""
    key = (tuple(roots), evaluation)
    if key not in tree._closures:
        seen: set[str] = set()
        todo = [r for r in roots if r in tree.files]
        while todo:
            rel = todo.pop()
            if rel in seen or _excluded(rel, evaluation):
                continue
            seen.add(rel)
            todo.extend((_imports(tree, rel) | _package_inits(tree, rel)) - seen)
        tree._closures[key] = tuple(sorted(seen))
    return tree._closures[key]


def _entry_file(tree: CodeTree, registry_file: str, name: str, what: str) -> tuple[str, str | None]:
    """A registry entry (``"module:attribute"``) and the file of its module."""
    entry = tree.registry(registry_file).get(name)
    if entry is None:
        raise ConfigError(f"unknown {what} '{name}' in the {tree.label}")
    return entry, tree.module_file(entry.split(":")[0])


def _default_source(method: str) -> str:
    return get_method(method).data_source


def training_roots(tree: CodeTree, method: str, source: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """The training closure's roots for ``method`` trained on data ``source``, and the registry
    entries keyed for it."""
    method_entry, method_file = _entry_file(tree, "lmcore/methods/__init__.py", method, "method")
    roots = [method_file, *TRAINING_ENGINE]
    entries = {"method": method_entry}
    source_entry = tree.registry("lmcore/data/sources.py").get(source)
    if source_entry is not None:
        entries["source"] = source_entry
        roots.append(tree.module_file(source_entry.split(":")[0]))
    else:  # an older tree whose data sources were no string registry: all of them
        roots.append("lmcore/data/sources.py")
    return tuple(r for r in roots if r), entries


# --------------------------------------------------------------------------- manifests and fingerprints


def training_manifest(method: str, source: str | None = None, tree: CodeTree | None = None) -> dict:
    """What keys a run's weights: ``{"files": {path: hash of what it computes}, "entries": {"method":
    ..., "source": ...}}`` for ``method`` trained on data ``source`` (default: its own)."""
    tree = tree or working_tree()
    source = source or _default_source(method)
    roots, entries = training_roots(tree, method, source)
    files = {rel: file_hash(tree.files[rel], rel, True) for rel in closure(tree, roots)}
    return {"files": files, "entries": entries}


def evaluation_manifest(method: str, source: str | None = None, tree: CodeTree | None = None) -> dict:
    """What keys a run's numbers besides its weights: the protocol's files and the evaluation
    functions of every class the method's training closure holds."""
    tree = tree or working_tree()
    source = source or _default_source(method)
    files = {rel: file_hash(tree.files[rel], rel) for rel in closure(tree, EVALUATION_ENGINE, evaluation=True)}
    roots, _ = training_roots(tree, method, source)
    functions = {}
    for rel in closure(tree, roots):
        functions.update({f"{rel}:{name}": digest for name, digest in _evaluation_hashes(tree.files[rel], rel)})
    return {"files": files, "functions": functions}


def fingerprint(manifest: dict) -> str:
    """First 16 hex digits of a sha256 over a manifest (sorted JSON)."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]


def code_files(method: str | None = None, root: Path = PROJECT_ROOT, source: str | None = None) -> dict[str, str]:
    """``{relative path: hash of what it computes}`` of the files that train ``method`` (its training
    closure); every ``lmcore`` module for ``method=None``."""
    tree = working_tree(root)
    if method is None:
        return {rel: file_hash(data, rel) for rel, data in sorted(tree.files.items())}
    return training_manifest(method, source, tree)["files"]


def code_fingerprint(method: str | None = None, root: Path = PROJECT_ROOT, source: str | None = None) -> str:
    """The fingerprint of the code that trains ``method`` (:func:`training_manifest`; every module
    for ``method=None``): equal exactly when what that code computes is, with or without git."""
    if method is None:
        return fingerprint({"files": code_files(None, root)})
    return fingerprint(training_manifest(method, source, working_tree(root)))


def evaluation_fingerprint(method: str, source: str | None = None, root: Path = PROJECT_ROOT) -> str:
    """The fingerprint of the code that scores ``method`` (:func:`evaluation_manifest`)."""
    return fingerprint(evaluation_manifest(method, source, working_tree(root)))


def changed_files(old: dict[str, str] | None, new: dict[str, str]) -> list[str]:
    """The files that differ between two manifests' ``files`` (added, removed or edited)."""
    if not old:
        return []
    return sorted(rel for rel in set(old) | set(new) if old.get(rel) != new.get(rel))


# --------------------------------------------------------------------------- committed or not


def _git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def dirty_files(root: Path = PROJECT_ROOT, files: list[str] | None = None) -> list[str] | None:
    """The ``.py`` files under ``root/lmcore`` that differ from ``HEAD`` (modified, staged, deleted,
    renamed, or untracked and not ignored), among ``files`` (relative paths, e.g. a run's closure)
    when given; ``None`` when git cannot tell (no git, not a repository). For the project's own
    run closures (``files`` given) the comparison is with this process's snapshot
    (:func:`working_tree`), the code it runs, not with the files on disk now."""
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


working_tree()  # the snapshot: this process's code, whatever is edited on disk later
