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
    if "parts_ms" in row:  # the whole iteration's parts, as fractions of their sum
        assert speed.share_parts(shares) == list(speed.ITERATION_PARTS)
        assert first["warps"] == pytest.approx(row["parts_ms"]["warps"] / sum(row["parts_ms"].values()))
        assert shares[list(speed.ITERATION_PARTS)].sum(axis=1).round(6).eq(1).all()
    else:  # a record from before parts_ms: the step's four parts, as fractions of the step
        assert speed.share_parts(shares) == list(speed.STEP_PARTS)
        assert first["warps, pairs"] == pytest.approx(row["warps_ms"] / row["step_ms"])
        assert first["backward + update"] == pytest.approx(row["backward_update_ms"] / row["step_ms"])
        assert (shares[list(speed.STEP_PARTS)].sum(axis=1) <= 1.05).all()  # the parts do not exceed the step


def test_the_iteration_parts_are_used_where_every_row_has_them(record):
    rows = [dict(r, parts_ms={part: 1.0 for part in speed.ITERATION_PARTS}) for r in record["rows"]]
    shares = speed.share_table(dict(record, rows=rows))
    assert speed.share_parts(shares) == list(speed.ITERATION_PARTS)
    assert shares["backward"].eq(1 / len(speed.ITERATION_PARTS)).all()


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


def _against_record(record):
    row = {"case": "FSE", "before": {"step_ms": 150.0}, "after": {"step_ms": 100.0}, "speedup": 1.5,
           "speedup_per_round": [1.4, 1.6], "also": [{"train": {"precision": "bf16"}, "step_ms": 60.0, "speedup": 2.5}]}
    return dict(record, against={"commit": "20bc9da" + "0" * 33, "profile": "cpu", "threads": 2, "rounds": 2,
                                 "steps_timed": 3, "rows": [row], "load": {"start": [0.5], "end": [0.7]}})


def test_the_before_and_after_table_shows_both_sides_their_ratio_and_each_setting(record):
    table = speed.against_table(_against_record(record))
    row = table.iloc[0]
    assert row["before (20bc9da), ms"] == 150.0 and row["after, ms"] == 100.0 and row["speedup"] == 1.5
    assert row["speedup per round"] == "1.40, 1.60"
    assert row["after, precision=bf16, ms"] == 60.0 and row["speedup, precision=bf16"] == 2.5
    assert "1.50x to 1.50x" in speed.against_summary(_against_record(record))
    assert speed.against_table(dict(record, against=None)) is None


def test_make_tests_times_come_from_their_build_records_with_the_load(tmp_path):
    idle = {"kind": "test", "phases_s": {"pytest": 200.0, "smoke chapters and book": 300.0}, "total_s": 540.0,
            "commit": "abc", "caches": "cold", "device": {"name": "AMD EPYC"}, "created": "2026-12-08 00:00",
            "load": {"start": [0.2, 0.1, 0.1], "end": [1.9, 1.5, 1.0]}}
    (tmp_path / "test.json").write_text(json.dumps(idle))
    table = speed.build_times_table({"idle": tmp_path / "test.json", "beside a training run": tmp_path / "none.json"})
    assert list(table["make test"]) == ["idle", "beside a training run"]
    first = table.iloc[0]
    assert first["minutes"] == 9.0 and first["pytest (s)"] == 200.0 and first["load at start"] == 0.2
    assert table.iloc[1]["minutes"] == "not measured"


def test_the_authors_table_gives_each_steps_ratio_to_the_authors():
    table = speed.authors_table({"step_ms": {"authors": 300.0, "lmbook": 150.0}, "runs_ms": {"authors": [300.0],
                                                                                             "lmbook": [150.0]}})
    assert list(table["authors' step / this step"]) == [1.0, 2.0]


def test_the_parts_come_from_the_newest_record_that_has_them(record):
    old = dict(record, rows=[{k: v for k, v in r.items() if k != "parts_ms"} for r in record["rows"]])
    cut = dict(record, created="2099-01-01", rows=[dict(r, parts_ms={p: 1.0 for p in speed.ITERATION_PARTS})
                                                   for r in record["rows"]])
    other_device = dict(cut, device=dict(record["device"], type="cuda"))
    assert speed.parts_record(old, [old, other_device, cut]) is cut
    assert speed.parts_record(old, [old, other_device]) is old  # none cut on this device: the record itself
    assert speed.parts_record(cut, [old]) is cut


def test_the_comparison_is_the_newest_record_holding_one(record):
    assert speed.against_record([dict(record, against=None)]) is None
    newer = _against_record(dict(record, created="2099-01-01"))
    assert speed.against_record([_against_record(record), newer, record]) is newer
