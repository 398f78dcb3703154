"""Tables as the built page shows them: whole, wrapped, within the text column.

* :func:`frame_html`: a DataFrame as HTML with every cell whole (pandas cuts cells at 50
  characters with "…" by default), a missing value as "–", and text between backticks as code;
  :func:`use_book_tables` makes it how a chapter displays every DataFrame and Styler. A frame
  marked by :func:`collapse` (provenance, raw configs) is shown in a collapsed block with what
  every row shares said once; one marked by :func:`explain_missing` says under it why a cell is "–".
* :func:`fold_shared`: the columns every row shares, taken out of a table to be said once.
* :func:`collapsed`: a ``<details>`` block (plain HTML: it opens and closes without a kernel or
  any script), for provenance and raw configs a reader opens when wanted.
* :func:`fidelity_html`: a fidelity table (:mod:`lmcore.experiments.fidelity`) with each
  file:line citation linked to the authors' repository at that line.

The page check (``tools/check_book.py``) fails on a cut cell, a literal backtick, a "NaN" or a table
wider than the column, so what this module does is tested on every built page.
"""
from __future__ import annotations

import html
import re
from typing import Sequence

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from ..experiments.fidelity import REPOSITORIES, FidelityTable, citations, profile_values

#: what a missing value reads as in a table (the page check fails on "NaN")
MISSING = "–"
#: the class of every table this module writes (book/_css/lmbook.css wraps its cells)
TABLE_CLASS = "lmbook-table"
_CODE = re.compile(r"`([^`]+)`")


def text_html(text) -> str:
    """``text`` escaped for HTML, with each ```code``` span as ``<code>``."""
    return _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", html.escape(str(text), quote=False))


def _is_missing(value) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or an array: not a missing scalar
        return False


def _cell(value) -> str:
    if _is_missing(value):
        return MISSING
    if isinstance(value, (float, np.floating)):
        return f"{value:g}" if abs(value) >= 1e-4 or value == 0 else f"{value:.2e}"
    return str(value)


#: the key of ``DataFrame.attrs`` under which :func:`collapse` and :func:`explain_missing` mark a frame
MARK = "lmbook"


def fold(frame: pd.DataFrame) -> pd.DataFrame:
    """Mark ``frame`` to be shown with the columns every row shares said once above it (not
    collapsed); returns ``frame``."""
    frame.attrs[MARK] = {**frame.attrs.get(MARK, {}), "fold": True}
    return frame


def collapse(frame: pd.DataFrame, summary: str, fold: bool = True) -> pd.DataFrame:
    """Mark ``frame`` to be shown in a collapsed block titled ``summary`` (and, with ``fold``, with
    the columns every row shares said once above it); returns ``frame`` (still a DataFrame, for
    tests and further use)."""
    frame.attrs[MARK] = {**frame.attrs.get(MARK, {}), "collapse": summary, "fold": fold}
    return frame


def explain_missing(frame: pd.DataFrame, why: str) -> pd.DataFrame:
    """Mark ``frame`` to say under it, where a cell is missing, what "–" means there (``why``)."""
    frame.attrs[MARK] = {**frame.attrs.get(MARK, {}), "missing": why}
    return frame


def _has_missing(frame: pd.DataFrame) -> bool:
    """Whether a cell, or a label of the index, is missing."""
    labels = [v for label in frame.index for v in (label if isinstance(label, tuple) else (label,))]
    return (bool(frame.map(_is_missing).to_numpy().any()) if frame.size else False) or any(map(_is_missing, labels))


def _header(column) -> str:
    """A column name as a header: a tuple's parts joined by spaces (``("forward", "test_mtfl")`` ->
    ``forward test_mtfl``)."""
    return " ".join(str(c) for c in column if c != "") if isinstance(column, tuple) else column


_CELL = re.compile(r"(<t[hd][^>]*>)([^<]+)(</t[hd]>)")
_NUMBER = re.compile(r"\s*[-+]?[\d.,]+(e[-+]?\d+)?\s*")


def _breakable_headers(body: str) -> str:
    """Cells that may wrap after ``_`` and ``/`` (``saved_for_backward_mb``, ``channels_last``), and
    numbers that never wrap: no header is wider than its column, and no number is cut in two."""
    def cell(m):
        opening, text, closing = m.groups()
        if _NUMBER.fullmatch(text):
            return opening[:-1] + ' class="lmbook-number">' + text + closing if opening in ("<td>", "<th>") \
                else m.group(0)
        return opening + text.replace("_", "_<wbr>").replace("/", "/<wbr>") + closing
    return _CELL.sub(cell, body)


def _table_html(frame: pd.DataFrame) -> str:
    shown = frame.copy()
    if not isinstance(shown.columns, pd.MultiIndex):
        shown.columns = [_header(c) for c in shown.columns]
    names = shown.index.names
    shown.index = shown.index.map(lambda label: tuple(MISSING if _is_missing(v) else v for v in label)
                                  if isinstance(label, tuple) else MISSING if _is_missing(label) else label)
    shown.index.names = names
    for column in shown.columns:  # pandas writes a missing value of a text column as "None"
        if shown[column].dtype == object:
            shown[column] = shown[column].map(lambda v: MISSING if _is_missing(v) else v)
    with pd.option_context("display.max_colwidth", None):  # numbers formatted per column, as pandas shows them
        body = shown.to_html(border=0, escape=True, classes=TABLE_CLASS, na_rep=MISSING)
    return _breakable_headers(_CODE.sub(lambda m: f"<code>{m.group(1)}</code>", body))


def missing_note(why: str) -> str:
    return f'<p class="lmbook-note">{MISSING}: {text_html(why)}</p>'


def frame_html(frame: pd.DataFrame) -> str:
    """``frame`` as an HTML table: every cell whole, a missing value as :data:`MISSING`, backticks
    as code, the book's table class (wrapped cells); as :func:`collapse` and :func:`explain_missing`
    marked it."""
    mark = frame.attrs.get(MARK, {})
    shown, shared = fold_shared(frame) if mark.get("fold") else (frame, {})
    body = shared_line(shared) + _table_html(shown)
    if mark.get("missing") and _has_missing(shown):
        body += missing_note(mark["missing"])
    return collapsed(mark["collapse"], body) if mark.get("collapse") else body


def styler_html(styler: Styler) -> str:
    """A pandas ``Styler`` (shaded paper cells, :func:`lmcore.book.reporting.separated`) as HTML with
    the book's table class, backticks as code and missing values as :data:`MISSING`."""
    styler = (styler.set_table_attributes(f'class="{TABLE_CLASS}"')
              .format_index(_header, axis="columns")  # a tuple label as words
              .format_index(lambda v: MISSING if _is_missing(v) else v, axis="index"))
    body = styler.to_html()
    body = _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", body).replace(">nan<", f">{MISSING}<")
    body = _breakable_headers(body)
    why = styler.data.attrs.get(MARK, {}).get("missing")
    return body + (missing_note(why) if why and _has_missing(styler.data) else "")


def use_book_tables() -> None:
    """Make the running notebook display every DataFrame and Styler by :func:`frame_html` and
    :func:`styler_html` (nothing outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the book
        return
    shell = get_ipython()
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["text/html"]
    formatter.for_type(pd.DataFrame, frame_html)
    formatter.for_type(Styler, styler_html)


def fold_shared(frame: pd.DataFrame, keep: Sequence = ()) -> tuple[pd.DataFrame, dict]:
    """``(frame without the columns every row holds the same value in, {column: that value})``:
    what each row repeats is said once. ``keep``: columns never folded. A one-row table is kept."""
    if len(frame) < 2:
        return frame, {}
    shared = {}
    for column in frame.columns:
        values = frame[column].map(_cell)
        if column not in keep and values.nunique() == 1:
            shared[column] = values.iloc[0]
    return frame.drop(columns=list(shared)), shared


def shared_line(shared: dict) -> str:
    """``{column: value}`` as one HTML line: ``every row: profile cpu; device AMD EPYC``."""
    if not shared:
        return ""
    parts = "; ".join(f"{text_html(_label(k))} <b>{text_html(v)}</b>" for k, v in shared.items())
    return f'<p class="lmbook-shared">Every row: {parts}.</p>'


def _label(column) -> str:
    return " ".join(str(c) for c in column if c) if isinstance(column, tuple) else str(column)


def code_html(source: str) -> str:
    """Source code as a page shows it: a ``<pre><code>`` block (wrapped, never cut, its backticks
    code's own)."""
    return f'<pre class="lmbook-code"><code>{html.escape(source.rstrip())}</code></pre>'


def collapsed(summary: str, *parts: str, open_: bool = False) -> str:
    """A ``<details>`` block titled ``summary`` holding the HTML ``parts`` (closed unless ``open_``)."""
    return (f'<details class="lmbook-details"{" open" if open_ else ""}><summary>{text_html(summary)}</summary>'
            + "".join(parts) + "</details>")


# ----------------------------------------------------------------------------------- fidelity tables
FOLLOWS = {"code": "follows the code", "paper": "follows the paper", "choice": "lmbook's choice (both silent)",
           "departure": "departs from both"}


def _breakable(text: str) -> str:
    """Escaped ``text`` that may wrap after each ``/`` (long repository paths)."""
    return html.escape(text).replace("/", "/<wbr>")


def citation_html(table: FidelityTable, code_ref: str) -> str:
    """A ``code_ref`` with each cited file and line range linked to the authors' repository."""
    return "".join(f'<a href="{url}">{_breakable(text)}</a>' if url else html.escape(text)
                   for text, url in citations(table, code_ref))


def _lmbook_cell(table: FidelityTable, row) -> str:
    if row.key is not None:
        paper, cpu = profile_values(table, row)
        where = f" ({row.variant})" if row.variant else ""
        key = f"<code>{html.escape(row.key)}</code>{html.escape(where)}"
        values = (f"{key} = {text_html(paper)} in both profiles" if paper == cpu else
                  f"{key} = {text_html(paper)}; <i>cpu</i>: {text_html(cpu)}")
    else:
        cpu = row.lmbook if row.lmbook_cpu is None else row.lmbook_cpu
        values = text_html(row.lmbook) + ("" if cpu == row.lmbook else f"; <i>cpu</i>: {text_html(cpu)}")
    why = f'<div class="lmbook-why">{text_html(row.why)}</div>' if row.why else ""
    return f'<span class="lmbook-follows lmbook-follows-{row.follows}">{FOLLOWS[row.follows]}</span> {values}{why}'


def fidelity_html(table: FidelityTable) -> str:
    """The fidelity table as HTML: element, the paper, the released code (its text and the cited
    lines, linked), and lmbook's ``paper`` profile (what it follows, the value, the ``cpu``
    profile's where it differs, and why). Without released code the code column is left out."""
    with_code = table.repository is not None or any(r.code is not None for r in table.rows)
    head = ["element", "the paper", *(["the released code"] if with_code else []), "lmbook (paper profile; cpu)"]
    rows = []
    for row in table.rows:
        cells = [f"<th>{text_html(row.element)}</th>", f"<td>{text_html(row.paper)}</td>"]
        if with_code:
            code = "no code released" if row.code is None else text_html(row.code)
            cite = f'<div class="lmbook-cite">{citation_html(table, row.code_ref)}</div>' if row.code_ref else ""
            cells.append(f"<td>{code}{cite}</td>")
        cells.append(f"<td>{_lmbook_cell(table, row)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
    shares = (14, 22, 32, 32) if with_code else (18, 41, 41)  # % of the column; fixed, so no cell widens it
    columns = "".join(f'<col style="width: {share}%">' for share in shares)
    return (f'<table class="{TABLE_CLASS} lmbook-fidelity" style="table-layout: fixed; width: 100%">'
            f"<colgroup>{columns}</colgroup><thead>{header}</thead><tbody>" + "".join(rows) + "</tbody></table>")


def repository_line(table: FidelityTable) -> str:
    """Where the released code is, linked (empty where none was released)."""
    if not table.repository:
        return ""
    repository = REPOSITORIES[table.repository]
    url = f"https://github.com/{repository.name}/tree/{repository.commit}"
    return (f'<p>Released code: <a href="{url}">{html.escape(repository.name)}</a> at commit '
            f"<code>{html.escape(table.commit)}</code>; each file:line below links to that line.</p>")
