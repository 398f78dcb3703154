"""Fidelity tables: each chapter's design elements in the paper, in the authors' released code (with
its file:line) and in lmbook's ``paper`` and ``cpu`` profiles, with the reason for each departure.

A table is data (one :class:`Row` per element, one module per paper) rendered by the chapter
(:func:`fidelity_table`). A row that names a config key (``key="method.lambda_sep"``) shows the
value the profiles really resolve to, and :func:`fidelity_problems` (run by a test) checks that the
``paper`` profile holds the value the row says it follows: the released code's where code exists
(``follows="code"``), the paper's otherwise (``follows="paper"``). So the table cannot drift from
the configs. No training module imports this package: editing a row retrains nothing.
"""
from __future__ import annotations

import math
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
    and code are silent, or ``"departure"``: neither, ``why`` says why); key: the config key (``method.lambda_sep``) whose resolved value the lmbook columns
    show; value: the value the ``paper`` profile must hold for ``follows`` to be true (checked);
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
    for row in table.rows:
        if row.follows not in FOLLOWS:
            problems.append(f"{row.element}: follows must be one of {FOLLOWS}")
        if row.follows in ("departure", "choice") and not row.why:
            problems.append(f"{row.element}: a {row.follows} needs its reason")
        if row.follows == "code" and table.repository and not row.code_ref:
            problems.append(f"{row.element}: a row that follows the code needs the code's file:line")
        if row.key is None:
            continue
        try:
            actual = _lookup(resolved(table.method, "paper", row.variant), row.key)
            _lookup(resolved(table.method, "cpu", row.variant), row.key)
        except KeyError:
            problems.append(f"{row.element}: no config key '{row.key}'")
            continue
        if row.value is not None and not _same(actual, row.value):
            problems.append(f"{row.element}: the paper profile has {row.key} = {format_value(actual)}, "
                            f"the table says {format_value(row.value)}")
    return problems


def fidelity_table(table: FidelityTable):
    """The table as a chapter shows it (a pandas DataFrame, one row per element)."""
    import pandas as pd

    rows = []
    for row in table.rows:
        if row.key is not None:
            ours = format_value(_lookup(resolved(table.method, "paper", row.variant), row.key))
            cpu = format_value(_lookup(resolved(table.method, "cpu", row.variant), row.key))
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
