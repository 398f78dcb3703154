"""The chapters' shape (issue 32): narrative + parameters + calls + figures, the logic in
``lmcore``; no chapter restates a headline run or a few-shot size that ``lmcore.experiments``
declares."""
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from build_book import chapters_from_toc  # noqa: E402

#: the largest share of a chapter's non-blank lines that may be code
MAX_CODE_SHARE = 0.40


def line_counts(source: str) -> dict[str, int]:
    """Non-blank lines in a jupytext py:percent chapter's code cells and markdown cells (the
    header block and the ``# %%`` markers themselves not counted)."""
    lines = source.splitlines()
    if lines and lines[0] == "# ---":
        lines = lines[lines.index("# ---", 1) + 1:]
    counts, kind = {"code": 0, "markdown": 0}, None
    for line in lines:
        if line.startswith("# %%"):
            kind = "markdown" if "[markdown]" in line else "code"
        elif line.strip() and kind:
            counts[kind] += 1
    return counts


def test_line_counts_tell_code_from_markdown():
    chapter = "# ---\n# jupyter: x\n# ---\n\n# %% [markdown]\n# # Title\n#\n# text\n\n# %%\nx = 1\n\ny = 2\n"
    assert line_counts(chapter) == {"code": 2, "markdown": 3}


@pytest.mark.parametrize("stem", chapters_from_toc())
def test_a_chapter_is_mostly_narrative(stem):
    counts = line_counts((ROOT / "book" / f"{stem}.py").read_text())
    share = counts["code"] / (counts["code"] + counts["markdown"])
    assert share <= MAX_CODE_SHARE, (f"{stem}: {share:.0%} of its lines are code ({counts}); move tables, figures "
                                     f"and analyses into lmcore/book/")


@pytest.mark.parametrize("stem", chapters_from_toc())
def test_a_chapter_restates_no_headline_run_or_few_shot_size(stem):
    source = (ROOT / "book" / f"{stem}.py").read_text()
    restated = [line for line in source.splitlines() if re.search(r"k30|K30|FEW_SHOT", line)]
    assert not restated, f"{stem} restates what lmcore.experiments declares: {restated}"


def shown_code_cells(source: str) -> list[str]:
    """The code cells of a jupytext py:percent chapter that the built page shows (not tagged
    ``hide-input``, ``remove-cell`` or ``parameters``)."""
    cells, current, shown = [], None, False
    for line in source.splitlines():
        if line.startswith("# %%"):
            if current is not None and shown:
                cells.append("\n".join(current).strip())
            hidden = any(tag in line for tag in ("hide-input", "remove-cell", "remove-input", "parameters"))
            current, shown = [], "[markdown]" not in line and not hidden
        elif current is not None:
            current.append(line)
    if current is not None and shown:
        cells.append("\n".join(current).strip())
    return [c for c in cells if c]


@pytest.mark.parametrize("stem", chapters_from_toc())
def test_no_shown_cell_is_plumbing(stem):
    """What the page check (tools/check_book.py) fails on in the built page, found in the source."""
    import check_book

    cells = shown_code_cells((ROOT / "book" / f"{stem}.py").read_text())
    plumbing = [(cell.splitlines()[0], check_book.plumbing(cell)) for cell in cells if check_book.plumbing(cell)]
    assert not plumbing, f"{stem}: hide these cells or move them into lmcore.book: {plumbing}"
