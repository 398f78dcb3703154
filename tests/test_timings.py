"""The README's timings are generated from the builds' own records (tools/timings.py)."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import timings  # noqa: E402


def test_readme_timings_are_the_committed_records():
    assert timings.main(["readme", "--check"]) == 0, "run: python tools/timings.py readme"


def _record(kind="book-reference", total=480.0, commit="0123456789abcdef"):
    return {"kind": kind, "phases_s": {"00_data": 10.0, "06_comparison": 200.0, "html": 30.0}, "total_s": total,
            "commit": commit, "caches": "cold", "device": {"cpu_count": 2}, "created": "2026-12-05 07:00"}


def test_table_shows_each_records_total_and_says_what_is_not_measured():
    table = timings.readme_table({"book-reference": _record()})
    row = next(line for line in table.splitlines() if line.startswith("| `make book` (default without"))
    assert "**8.0 min**" in row and "cold caches" in row and "0123456" in row and "06_comparison 3.3 min" in row
    assert "not measured yet" in next(line for line in table.splitlines() if line.startswith("| `make test`"))
    text = f"intro\n{timings.BEGIN}\nold\n{timings.END}\nrest\n"
    assert timings.readme_with_table(text, table) == f"intro\n{table}\nrest\n"


@pytest.mark.parametrize("change, message", [({"commit": "abc+dirty"}, "uncommitted"), ({"kind": "book-smoke"}, "unknown kind")])
def test_publish_refuses_a_dirty_or_unknown_build(tmp_path, monkeypatch, capsys, change, message):
    monkeypatch.setattr(timings, "RECORDS", tmp_path / "builds")
    path = tmp_path / "build-record.json"
    path.write_text(json.dumps({**_record(), **change}))
    assert timings.main(["publish", str(path)]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "builds").exists()


def test_a_record_holds_the_load_at_start_and_end_and_the_readme_says_it(tmp_path, monkeypatch):
    monkeypatch.setattr(timings, "load_average", lambda: [1.9, 1.5, 1.2])
    record = timings.write_record(tmp_path / "r.json", "book-reference", {"00_data": 1.0}, True, 0.0, [0.4, 0.3, 0.2])
    assert record["load"] == {"start": [0.4, 0.3, 0.2], "end": [1.9, 1.5, 1.2]}
    row = next(line for line in timings.readme_table({"book-reference": record}).splitlines()
               if line.startswith("| `make book` (default without"))
    assert "load 0.4 -> 1.9" in row
    old = next(line for line in timings.readme_table({"book-reference": _record()}).splitlines()
               if line.startswith("| `make book` (default without"))
    assert "load" not in old  # a record older than the field
