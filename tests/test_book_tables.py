"""The book's tables (lmcore.book.tables): whole cells, "–" for a missing value with a note, code
for backticks, what every row shares said once, collapsed blocks, and fidelity citations linked to
the authors' repositories at their lines."""
import math

import pandas as pd
import pytest

from lmcore.book import tables
from lmcore.experiments.fidelity import REPOSITORIES, citations, fidelity_problems
from lmcore.experiments.fidelity import c3 as c3_table
from lmcore.experiments.fidelity import sanchez as sanchez_table
from lmcore.experiments.fidelity import zhang as zhang_table


def test_a_long_cell_is_whole_a_missing_value_a_dash_and_backticks_code():
    frame = pd.DataFrame({"a": [1.5, math.nan], "b": ["`method.widths` = [20, 48]", "x" * 120], "c": ["y", None]})
    html = tables.frame_html(frame)
    assert "x" * 120 in html and "…" not in html and "..." not in html
    assert "<code>method.widths</code> = [20, 48]" in html and "`" not in html
    assert "NaN" not in html and "None" not in html and html.count(f">{tables.MISSING}<") == 2
    assert 'class="dataframe lmbook-table"' in html


def test_a_note_says_why_a_cell_is_missing_only_where_one_is():
    frame = tables.explain_missing(pd.DataFrame({"AFLW": [7.2, math.nan]}), "the paper quotes none")
    assert tables.frame_html(frame).endswith(f'<p class="lmbook-note">{tables.MISSING}: the paper quotes none</p>')
    whole = tables.explain_missing(pd.DataFrame({"AFLW": [7.2]}), "the paper quotes none")
    assert "lmbook-note" not in tables.frame_html(whole)


def test_what_every_row_shares_is_said_once_in_a_collapsed_block():
    frame = pd.DataFrame({"run": ["k10", "k30"], "profile": ["cpu", "cpu"], "steps": [3000, 2000]}).set_index("run")
    rest, shared = tables.fold_shared(frame)
    assert list(rest.columns) == ["steps"] and shared == {"profile": "cpu"}
    html = tables.frame_html(tables.collapse(frame, "Provenance"))
    assert html.startswith('<details class="lmbook-details"><summary>Provenance</summary>')
    assert "Every row: profile <b>cpu</b>." in html and "<th>profile</th>" not in html
    assert tables.fold_shared(frame.iloc[:1])[1] == {}  # one row: nothing to fold


def test_every_citation_resolves_to_a_file_of_the_cited_repository_at_its_commit():
    for table in (zhang_table.TABLE, sanchez_table.TABLE, c3_table.TABLE):
        assert fidelity_problems(table) == []
        for row in table.rows:
            pieces = citations(table, row.code_ref)
            assert "".join(text for text, _ in pieces) in row.code_ref  # nothing dropped but a repository prefix
    repo = REPOSITORIES["YutingZhang/lmdis-rep"]
    assert len(repo.commit) == 40 and repo.commit.startswith(zhang_table.TABLE.commit)
    pieces = citations(zhang_table.TABLE, "-10.py:57; net_modules/tps_stn.py:189 (solve) against :102-103")
    links = [url for _, url in pieces if url]
    base = f"https://github.com/YutingZhang/lmdis-rep/blob/{repo.commit}/"
    assert links == [base + "exp-ae-celeba-mafl-10.py", base + "exp-ae-celeba-mafl-10.py#L57",
                     base + "net_modules/tps_stn.py", base + "net_modules/tps_stn.py#L189",
                     base + "net_modules/tps_stn.py#L102-L103"]


def test_a_c3_row_cites_jakabs_code_by_naming_its_repository():
    row = next(r for r in c3_table.TABLE.rows if r.code_ref)
    links = [url for _, url in citations(c3_table.TABLE, row.code_ref) if url]
    assert links and all(url.startswith("https://github.com/tomasjakab/imm/blob/0fee6b2") for url in links)


def test_a_citation_of_no_file_is_a_problem():
    import dataclasses

    row = dataclasses.replace(zhang_table.ROWS[0], code_ref="no_such_file.py:12")
    problems = fidelity_problems(dataclasses.replace(zhang_table.TABLE, rows=(row,)))
    assert any("no_such_file.py" in p for p in problems)


@pytest.mark.parametrize("table", [zhang_table.TABLE, sanchez_table.TABLE, c3_table.TABLE], ids=lambda t: t.method)
def test_the_fidelity_table_is_whole_with_code_as_code(table):
    html = tables.fidelity_html(table)
    assert "`" not in html and "…" not in html and html.count("<tr>") == len(table.rows) + 1
    assert ("the released code" in html) == (table.repository is not None or any(r.code for r in table.rows))
