"""The speed appendix's tables (lmcore.book.speed), from the committed CPU bench record."""
import json

import pytest

from lmcore.book import speed
from lmcore.book.references import TRAIN_COMMAND
from lmcore.paths import RESULTS_DIR


@pytest.fixture
def record():
    return json.loads((RESULTS_DIR / "bench" / "cpu.json").read_text())


def test_shares_are_each_parts_time_over_the_plain_steps_time(record):
    plain = [r for r in record["rows"] if not r["variant"]]
    assert len(plain) < len(record["rows"])  # the record also times --options variants, which the shares leave out
    shares = speed.share_table(record)
    assert len(shares) == len(plain)
    first, row = shares.iloc[0], plain[0]
    assert first["warps, pairs"] == pytest.approx(row["warps_ms"] / row["step_ms"])
    assert first["backward + update"] == pytest.approx(row["backward_update_ms"] / row["step_ms"])
    assert (shares[list(speed.STEP_PARTS)].sum(axis=1) <= 1.05).all()  # the parts do not exceed the step


def test_projection_ends_each_profile_with_its_sums(record):
    table = speed.projection_table(record)
    for profile, entries in record["projection"].items():
        rows = table[table["profile"] == profile]
        total = rows[rows["chapter"] == "all"].iloc[0]
        assert total["steps"] == sum(e["steps"] for e in entries)
        assert total["hours of training"] == round(sum(e["hours"] for e in entries), 1)
        assert len(rows) == len(entries) + 1


def test_the_reference_profile_shows_the_committed_cpu_record_and_says_how_to_measure(record):
    shown, source = speed.appendix_record(False, "reference", None)
    assert shown["device"]["type"] == "cpu" and shown["rows"] == record["rows"]
    assert "nothing is timed here" in source and TRAIN_COMMAND in source


def test_step_table_has_one_row_per_timed_step(record):
    table = speed.step_table(record)
    assert len(table) == len(record["rows"]) and list(table["ms / step"]) == [r["step_ms"] for r in record["rows"]]
    assert speed.provenance_table([dict(record, path="results/bench/cpu.json")]).iloc[0]["record"] == "results/bench/cpu.json"
