"""Fidelity tables: each chapter's design elements in the paper, in the authors' released code (with
its file:line) and in lmbook's ``paper`` and ``cpu`` profiles, with the reason for each departure.

A table is data (one :class:`Row` per element, one module per paper) rendered by the chapter
(:func:`fidelity_table`). A row that names a config key (``key="method.lambda_sep"``) shows the
value the profiles really resolve to, and :func:`fidelity_problems` (run by a test) checks that the
``paper`` profile holds the value the row says it follows: the released code's where code exists
(``follows="code"``), the paper's otherwise (``follows="paper"``). So the table cannot drift from
the configs. No training module imports this package: editing a row retrains nothing.

Each ``code_ref`` cites files of the authors' repository (:data:`REPOSITORIES`: its full commit and
the paths of the files the tables cite), by path or by a unique ending of it
(``keypoint_encoder.py:254-257``); :func:`citations` resolves them, so a chapter can link each
citation to the repository at that line (:mod:`lmcore.book.tables`), and :func:`fidelity_problems`
reports one that resolves to no file.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ...config import deep_update
from .. import method_settings

FOLLOWS = ("code", "paper", "choice", "departure")


@dataclass(frozen=True)
class Row:
    """One design element.

    element: what it is; paper: the paper's value or words; code: the released code's (``None``:
    no code was released); code_ref: ``file:line`` in the authors' repository; follows: what the
    ``paper`` profile reproduces (``"code"``, ``"paper"``, ``"choice"``: lmbook's where the paper
    and code are silent, or ``"departure"``: neither, ``why`` says why); key: the config key
    (``method.lambda_sep``) whose resolved value the lmbook columns show; value: the value the
    ``paper`` profile holds, which the text claims (checked; a row with a key must give it);
    variant: the budget variant (``"k30"``) whose config the row is about; lmbook: the lmbook
    column's text where no key says it; why: the reason for a departure, or a note.
    """

    element: str
    paper: str
    code: str | None = None
    code_ref: str = ""
    follows: str = "code"
    key: str | None = None
    value: Any = None
    variant: str | None = None
    lmbook: str = ""
    lmbook_cpu: str | None = None
    why: str = ""


@dataclass(frozen=True)
class FidelityTable:
    """A method's fidelity table: its rows, the method whose configs they describe, and where the
    released code is (``repository`` at ``commit``; None where no code was released)."""

    method: str
    rows: tuple[Row, ...]
    repository: str | None = None
    commit: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Repository:
    """An authors' repository the fidelity tables cite: ``owner/name`` on GitHub, the full commit
    that the file:line citations are to (read from a clone of it), and the paths of the files they
    cite; ``aliases`` maps a short name the tables use (``-10.py``) to its path."""

    name: str
    commit: str
    files: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...] = ()

    def path(self, cited: str) -> str | None:
        """The path of a cited file: an alias, a path, or the one path ending with ``/cited`` (None:
        none or several)."""
        alias = dict(self.aliases).get(cited)
        if alias or cited in self.files:
            return alias or cited
        found = [f for f in self.files if f.endswith("/" + cited)]
        return found[0] if len(found) == 1 else None

    def url(self, path: str, lines: str | None = None) -> str:
        """The GitHub address of ``path`` at the commit, at ``lines`` (``"54"`` or ``"54-59"``)."""
        anchor = "" if not lines else "#L" + "-L".join(lines.split("-"))
        return f"https://github.com/{self.name}/blob/{self.commit}/{path}{anchor}"


#: the repositories the tables cite (commits and paths checked against clones of them, 2026-12-07)
REPOSITORIES = {r.name: r for r in (
    Repository("YutingZhang/lmdis-rep", "2d3830ea08ccf808d305852a84483bc9bb04d4e3", (
        "exp-ae-celeba-mafl-10.py", "exp-ae-celeba-mafl-30.py", "model/model.py", "model/options.py",
        "net_modules/auto_struct/generic_encoder.py", "net_modules/auto_struct/generic_structure_encoder.py",
        "net_modules/auto_struct/keypoint_decoder.py", "net_modules/auto_struct/keypoint_encoder.py",
        "net_modules/hourglass.py", "net_modules/keypoints_2d.py",
        "net_modules/spatial_transformer.py", "net_modules/tps_stn.py", "nets/data/celeba_mafl_100x100_80x80.py",
        "nets/decoder/general_80x80.py", "nets/distribution/gaussian_fixedvar.py",
        "nets/distribution/gaussian_fixedvar_in_01.py", "nets/encoder/general_80x80.py",
        "runner/train_pipeline_traindef.py"),
        aliases=(("-10.py", "exp-ae-celeba-mafl-10.py"), ("-30.py", "exp-ae-celeba-mafl-30.py"))),
    Repository("tomasjakab/imm", "0fee6b24466a5657d66099694f98036c3279b245", (
        "README.md", "configs/experiments/celeba-10pts.yaml", "imm/datasets/celeba_dataset.py",
        "imm/datasets/impair_dataset.py", "imm/datasets/tps_dataset.py", "imm/models/base_model.py",
        "imm/models/imm_model.py", "imm/models/selfsup/build_vgg16.py", "imm/models/selfsup/vgg16.py",
        "imm/tf_utils/nn_utils.py", "imm/train/cnn_train_multi.py", "imm/utils/tps_sampler.py", "requirements.txt",
        "scripts/train.py")),
    Repository("ESanchezLozano/SAIC-Unsupervised-landmark-detection-NeurIPS2019",
               "f85093f60f2c9202facf839dba2419be8f0e0b45", (
                   "MTFAN.py", "README.md", "Train_options.py", "affine_all_epochs.py", "databases.py",
                   "extract_data.py", "model.py", "test.py", "train.py", "utils.py")),
)}

#: a cited file (``imm/models/imm_model.py``, ``-10.py``) or a line range (``54-59``) in a code_ref
_CITATION = re.compile(r"(?P<file>[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.(?:py|yaml|md|txt|sh))|(?P<lines>\b\d+(?:-\d+)?\b)")


def citations(table: "FidelityTable", code_ref: str) -> list[tuple[str, str | None]]:
    """``code_ref`` cut into ``(text, address)`` pieces: each cited file and each line range after
    it with the GitHub address of that file at those lines, the words between with None. A
    ``code_ref`` may start with the repository it cites (``"tomasjakab/imm imm/..."``, the C3 table's
    rows from Jakab's code); otherwise it cites ``table.repository``. A file that resolves to no
    path of the repository gets None (:func:`fidelity_problems` reports it)."""
    name = table.repository
    for other in REPOSITORIES:
        if code_ref.startswith(other + " "):
            name, code_ref = other, code_ref[len(other) + 1:]
    repository = REPOSITORIES.get(name)
    pieces, path, at = [], None, 0
    for match in _CITATION.finditer(code_ref):
        if match.start() > at:
            pieces.append((code_ref[at:match.start()], None))
        text = match.group(0)
        if match.group("file"):
            path = repository.path(text) if repository else None
            pieces.append((text, repository.url(path) if path else None))
        else:
            pieces.append((text, repository.url(path, text) if path else None))
        at = match.end()
    if at < len(code_ref):
        pieces.append((code_ref[at:], None))
    return pieces


def _lookup(config: dict, key: str):
    node = config
    for part in key.split("."):
        node = node[part]
    return node


def resolved(method: str, profile: str, variant: str | None = None) -> dict:
    """The config a chapter's run of ``method`` in ``profile`` resolves to (with the variant)."""
    settings = method_settings(method)
    config = settings.default_config(profile)
    return deep_update(config, settings.budget(profile).variant(variant)) if variant else config


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def format_value(value) -> str:
    """A config value as the table shows it (floats to 4 significant digits)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def fidelity_problems(table: FidelityTable) -> list[str]:
    """Rows whose claim does not hold in the resolved configs (empty: the table is true)."""
    problems = []
    repository = REPOSITORIES.get(table.repository)
    if table.repository and not (repository and table.commit and repository.commit.startswith(table.commit)):
        problems.append(f"{table.repository} at {table.commit}: not a commit of lmcore.experiments.fidelity.REPOSITORIES")
    for row in table.rows:
        if row.follows not in FOLLOWS:
            problems.append(f"{row.element}: follows must be one of {FOLLOWS}")
        if row.follows in ("departure", "choice") and not row.why:
            problems.append(f"{row.element}: a {row.follows} needs its reason")
        if row.follows == "code" and table.repository and not row.code_ref:
            problems.append(f"{row.element}: a row that follows the code needs the code's file:line")
        unresolved = [text for text, url in citations(table, row.code_ref) if url is None and _CITATION.fullmatch(text)]
        if unresolved:
            problems.append(f"{row.element}: cites {', '.join(unresolved)}, which no file of the repository resolves")
        if row.key is None:
            continue
        try:
            actual = _lookup(resolved(table.method, "paper", row.variant), row.key)
            _lookup(resolved(table.method, "cpu", row.variant), row.key)
        except KeyError:
            problems.append(f"{row.element}: no config key '{row.key}'")
            continue
        if row.value is None:
            problems.append(f"{row.element}: a row that names {row.key} must give the value the paper profile holds")
        elif not _same(actual, row.value):
            problems.append(f"{row.element}: the paper profile has {row.key} = {format_value(actual)}, "
                            f"the table says {format_value(row.value)}")
    return problems


def profile_values(table: FidelityTable, row: Row) -> tuple[str, str]:
    """The value of ``row.key`` that the ``paper`` and the ``cpu`` profile resolve to, as shown."""
    return (format_value(_lookup(resolved(table.method, "paper", row.variant), row.key)),
            format_value(_lookup(resolved(table.method, "cpu", row.variant), row.key)))


def fidelity_table(table: FidelityTable):
    """The table as a chapter shows it (a pandas DataFrame, one row per element)."""
    import pandas as pd

    rows = []
    for row in table.rows:
        if row.key is not None:
            ours, cpu = profile_values(table, row)
            where = f" ({row.variant})" if row.variant else ""
            ours, cpu = f"`{row.key}`{where} = {ours}", f"{cpu}"
        else:
            ours, cpu = row.lmbook, row.lmbook if row.lmbook_cpu is None else row.lmbook_cpu
        code = "no code released" if row.code is None else row.code + (f" ({row.code_ref})" if row.code_ref else "")
        follows = {"code": "the code", "paper": "the paper", "choice": "lmbook's choice (silent)",
                   "departure": "departs"}[row.follows]
        rows.append({"element": row.element, "paper": row.paper, "released code (file:line)": code,
                     "lmbook paper": ours, "lmbook cpu": cpu, "paper profile follows": follows, "why": row.why})
    return pd.DataFrame(rows).set_index("element")
