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
