"""The page check's clipping test (tools/check_book.py) against pages with a known answer."""
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
check_book = pytest.importorskip("check_book")

pytestmark = pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")),
                                reason="headless Chromium is installed by make test (tools/run_tests.py)")

WIDE_TABLE = "<table><tr>" + "".join(f"<td>column_{i}_with_a_long_name</td>" for i in range(40)) + "</tr></table>"
LONG_LINE = "<div class='cell_output'><pre>" + "x" * 600 + "</pre></div>"


def clipped_on(body: str, with_book_css: bool) -> list:
    css = (ROOT / "book" / "_css" / "lmbook.css").read_text() if with_book_css else ""
    page = (f"<html><head><style>body {{ margin: 0 }} article {{ width: 600px; }} {css}</style></head>"
            f"<body><article>{body}</article></body></html>")
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "page.html").write_text(page)
        server, base = check_book.serve(Path(folder))
        driver = check_book.make_driver(str(Path(folder) / "profile"))
        try:
            driver.get(f"{base}/page.html")
            return driver.execute_script(check_book.CLIPPED_JS)
        finally:
            driver.quit()
            server.shutdown()


def test_a_wide_table_or_long_printed_line_is_clipped_without_the_books_style_and_not_with_it():
    without = clipped_on(WIDE_TABLE + LONG_LINE, with_book_css=False)
    assert [c.split(":")[0] for c in without] == ["table", "pre"]
    assert clipped_on(WIDE_TABLE + LONG_LINE, with_book_css=True) == []


def found_on(body: str) -> tuple[list, list]:
    """``(problems, stand-ins)`` the page check finds on a page holding ``body`` in a 600 px column
    with the book's style."""
    css = (ROOT / "book" / "_css" / "lmbook.css").read_text()
    page = (f"<html><head><meta charset='utf-8'><style>body {{ margin: 0 }} article {{ width: 600px; }} {css}"
            f"</style></head><body><article>{body}</article></body></html>")
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "page.html").write_text(page)
        server, base = check_book.serve(Path(folder))
        driver = check_book.make_driver(str(Path(folder) / "profile"))
        try:
            driver.get(f"{base}/page.html")
            return check_book.readability_problems(driver, "page"), driver.execute_script(check_book.STAND_INS_JS)
        finally:
            driver.quit()
            server.shutdown()


OUTPUT = "<div class='cell_output'><div class='output stream'><div class='highlight'><pre>{}</pre></div></div></div>"
SHOWN_CODE = "<div class='cell_input'><div class='highlight'><pre>{}</pre></div></div>"


def test_a_readable_page_passes_and_a_stand_in_is_counted_not_failed():
    from lmcore.book.tables import collapse, frame_html
    from lmcore.book.viz import StandIn
    import pandas as pd

    table = frame_html(collapse(pd.DataFrame({"run": ["k10", "k30"], "steps": [3000, None], "profile": ["cpu"] * 2}),
                                "Provenance"))
    body = ("<p>the <code>cpu</code> profile</p>" + table + OUTPUT.format("a short line")
            + SHOWN_CODE.format("runs = fse.table1_runs(chapter)") + StandIn("Table 4: not shown; `make book`")._repr_html_())
    problems, stand_ins = found_on(body)
    assert problems == []
    assert stand_ins == ["Table 4: not shown; make book"]


@pytest.mark.parametrize("body, kind", [
    ("<table><tr><td>imm/models/base_mo…</td></tr></table>", "cut cell"),
    ("<table><tr><td>a cell cut by pandas...</td></tr></table>", "cut cell"),
    ("<div class='highlight'><pre style='white-space: pre'>" + "x" * 400 + "</pre></div>", "cut cell"),
    ("<table class='lmbook-table'><tr>" + "".join(f"<td>column_{i}_with_a_long_name</td>" for i in range(40))
     + "</tr></table>", "wider than the text column"),
    ("<details class='lmbook-details'><summary>Provenance</summary><table><tr>"
     + "".join(f"<td>column_{i}_with_a_long_name</td>" for i in range(40)) + "</tr></table></details>",
     "wider than the text column"),
    ("<p>run `LMBOOK_PROFILE=cpu make book` to train it</p>", "literal backtick"),
    (OUTPUT.format("Table 4: not shown; `make book` trains it"), "literal backtick"),
    ("<table><tr><td>RAR</td><td>NaN</td></tr></table>", "NaN"),
    ("<table><tr><td>nan</td></tr></table>", "NaN"),
    (SHOWN_CODE.format("if runs:\n    show(runs)\nelse:\n    chapter.missing('x')"), "plumbing"),
    (SHOWN_CODE.format('n_pairs = 40 if chapter.profile == "smoke" else 500'), "plumbing"),
    (SHOWN_CODE.format("label = lambda r: r.run_name"), "plumbing"),
])
def test_the_page_check_fails_on_what_a_reader_cannot_read(body, kind):
    problems, _ = found_on(body)
    assert len(problems) == 1 and kind in problems[0], problems


def test_code_in_a_code_block_or_a_hidden_cell_is_not_a_backtick_or_plumbing():
    hidden = ("<details><summary>Show code</summary>" + SHOWN_CODE.format("if runs:\n    x = '`a`'") + "</details>")
    block = "<div class='highlight'><pre>echo `date`</pre></div>"
    assert found_on(hidden + block + "<p><code>`x`</code></p>") == ([], [])


def test_plumbing_patterns():
    assert check_book.plumbing("runs = fse.table1_runs(chapter)\nfse.show_runs(chapter, runs)") == []
    assert check_book.plumbing("from lmcore.book import fse") == ["an import"]
    assert check_book.plumbing("display(x)  # if needed") == []
