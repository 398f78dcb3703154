"""Tables and verdicts built from run records."""
import pytest

from lmcore.book import reporting
from lmcore.config import deep_update
from lmcore.experiments import method_settings
from lmcore.methods import get_method


def _record(name, error, steps=100):
    return {"run_name": name, "profile": "cpu", "steps": steps,
            "metrics": {"forward": {"test_mtfl": {"mean": error}}}}


def test_a_reference_below_the_target_meets_it_and_one_above_says_by_how_much():
    lines = reporting.target_verdicts([_record("good", 9.99), _record("bad", 12.5, 7000)], target=10.7)
    assert lines[0] == "good [cpu, 100 steps]: 9.99 % on test_mtfl, meets the target of 10.70 %"
    assert lines[1] == "bad [cpu, 7000 steps]: 12.50 % on test_mtfl, misses by 1.80 points the target of 10.70 %"
    # the target itself is not below the target
    assert "misses by 0.00" in reporting.target_verdicts([_record("edge", 10.7)], target=10.7)[0]


def _tuned(label, tune, test):
    record = _record(label.lower(), test)
    record["metrics"]["tune"] = {"tune_val": {"mean": tune, "ci95": [tune - 0.5, tune + 0.5]}}
    record.update(tuning_label=label, wall_time_s=120.0, git_commit="abc", device={"name": "cpu"},
                  config={"method": {"num_landmarks": 10}, "train": {"batch_size": 16}})
    return record


def test_a_tuning_table_ranks_settings_by_tune_val_and_never_shows_a_test_error():
    table = reporting.tuning_table([_tuned("wide", 15.4, 9.0), _tuned("central", 11.8, 11.5)])
    assert list(table.index) == ["central", "wide"]  # by tune_val, although "wide" is better on test
    assert list(table["tune_val forward (%)"]) == [11.8, 15.4]
    assert not any("test" in str(column) for column in table.columns)
    table = reporting.protocol_table([_tuned("central", 11.8, 11.5), _record("old", 12.0)])
    column = list(table[("forward", "tune_val")])
    assert column[0] == 11.8 and column[1] != column[1]  # older records have no tune_val (NaN)


def test_a_pose_cores_sweep_ranks_by_pck_with_the_highest_first():
    def core(label, pck):
        record = _record(label, 0.0)
        record["metrics"] = {"pck_val": {"pck": pck}}
        record.update(tuning_label=label, wall_time_s=60.0, git_commit="abc", device={"name": "cpu"},
                      config={"method": {"num_landmarks": 14}, "train": {"batch_size": 16}})
        return record

    table = reporting.tuning_table([core("narrow", 0.2), core("wide", 0.31), core("heavy", 0.25)])
    assert list(table.index) == ["wide", "heavy", "narrow"]
    assert list(table["LSPET val PCK@0.2 (%)"]) == [31.0, 25.0, 20.0]
    assert "tune_val forward (%)" not in table.columns


def test_the_committed_tuning_records_are_the_methods_sweeps():
    """Every committed tuning record names a setting of its method's sweep, with its config, and
    carries a tune_val error: the chapters' tuning tables show code and records that agree."""
    from lmcore.training.runs import resolve_config

    for method in ("fse", "zhang", "jakab", "c3", "pose", "sanchez"):
        sweep = method_settings(method).budget("cpu").variant("tuning")
        records = reporting.tuning_records(method)
        assert records, method
        for record in records:
            label = record["tuning_label"]
            refresh = f"the sweep changed: python tools/tune_settings.py {method} --only {label!r} --publish"
            assert label in sweep, f"{method}: '{label}' is no row of the sweep any more; {refresh}"
            assert record.tuning_score() is not None
            expected = resolve_config(method, "cpu", deep_update(method_settings(method).tuning_config("cpu"), sweep[label]))
            added = getattr(get_method(method), "SETTINGS_ADDED_LATER", {})  # with the behaviour the sweep had
            want = {k: v for k, v in expected["method"].items()
                    if k in record.config["method"] or k not in added or added[k] != v}
            assert record.config["method"] == want, f"{method} '{label}': {refresh}"
            assert record.config["train"]["batch_size"] == expected["train"]["batch_size"], f"{method} '{label}': {refresh}"
            assert record.config["train"]["lr"] == expected["train"]["lr"], f"{method} '{label}': {refresh}"


def test_every_headline_reference_trained_with_the_settings_its_chapter_shows():
    """A chapter shows today's cpu settings beside its headline references: a reference trained
    otherwise is drift, and this names every drifted key and the command that refreshes it."""
    from lmcore.book.drift import refresh_command, settings_drift
    from lmcore.experiments import BOOK_RUNS
    from lmcore.paths import RESULTS_DIR
    from lmcore.training.run_record import RunRecord

    drifted = []
    for run in BOOK_RUNS:
        path = RESULTS_DIR / run.method / f"{run.name}.json"
        if path.exists():
            rows = settings_drift(RunRecord.from_file(path), run.resolved_overrides("cpu"))
            if rows:
                keys = ", ".join(f"{r['setting']} ({r['reference']!r} vs {r['today']!r})" for r in rows[:4])
                drifted.append(f"{run.key}: {keys}{' ...' if len(rows) > 4 else ''}; refresh: {refresh_command(run)}")
    assert not drifted, "\n".join(drifted)


def _provenance(name, parents=None):
    record = _record(name, 12.0)
    record.update(method="c3", wall_time_s=60.0, git_commit="abc", device={"name": "cpu"}, created="2026-11-24T12:00")
    if parents is not None:
        record["parents"] = parents
    return record


def test_the_provenance_table_names_the_parent_runs_only_where_there_are_some():
    assert "parent runs" not in reporting.provenance_table([_provenance("plain")]).columns
    with_parents = _provenance("child", {"pairs": {"method": "jakab", "run_name": "k10-long", "step": None},
                                         "core": {"method": "pose", "run_name": "core", "step": 2000}})
    table = reporting.provenance_table([_provenance("plain"), with_parents])
    assert list(table["parent runs"]) == ["", "pairs: jakab/k10-long; core: pose/core at step 2000"]


def test_a_parent_is_found_among_the_references_only_when_it_is_the_same_run(tmp_path):
    import json

    from lmcore.training.records import write_record

    write_record(tmp_path / "jakab" / "k10-long.json", {**_provenance("k10-long"), "identity": "aaa",
                                                         "config": {"method": {}, "train": {}}, "data": {}})
    child = _provenance("child", {"pairs": {"method": "jakab", "run_name": "k10-long", "identity": "aaa"},
                                  "flow": {"method": "c3_flow", "run_name": "flow", "identity": "fff"}})
    assert reporting.published_parent(child, "pairs", root=tmp_path)["identity"] == "aaa"
    assert reporting.published_parent(child, "flow", root=tmp_path) is None  # never published
    child["parents"]["pairs"]["identity"] = "bbb"  # the parent was retrained since
    assert reporting.published_parent(child, "pairs", root=tmp_path) is None
    assert reporting.published_parent(_provenance("orphan"), "pairs", root=tmp_path) is None


def test_an_ordering_is_stated_only_where_its_steps_outlast_the_runs_spread():
    import numpy as np

    rng = np.random.default_rng(0)
    hard = rng.gamma(2.0, 5.0, 300)
    per_face = {"proposed": np.stack([hard + s for s in (0.0, 0.1, -0.1)]),
                "finetune": np.stack([hard + 3 + s for s in (0.0, 0.1, -0.1)]),
                "scratch": np.stack([hard + 3.3 + s for s in (-2.5, 0.0, 2.5)])}  # its seeds spread 5 points
    table, lines = reporting.ordering_verdicts(per_face, expected=("proposed", "finetune", "scratch"))
    assert table.loc["proposed − finetune", "verdict"] == "proposed lower"
    assert table.loc["finetune − scratch", "verdict"] == "within the spread"
    assert "not separated beyond the runs' spread: finetune and scratch" in lines[0]
    assert lines[1].endswith("not established")
    per_face["scratch"] = np.stack([hard + 6] * 3)
    _, lines = reporting.ordering_verdicts(per_face, expected=("proposed", "finetune", "scratch"))
    assert lines == ["order (every step certain): proposed < finetune < scratch",
                     "expected order proposed < finetune < scratch: reproduced"]


def test_separated_marks_every_smoke_number_and_shades_the_papers_cells():
    import pandas as pd

    frame = pd.DataFrame({"profile": ["smoke", "cpu"], "test_mtfl (%)": [20.891, 9.5], "steps": [16, 2000],
                          "paper: MAFL": [7.95, 7.95]}, index=["k10", "k10 reference"])
    styler = reporting.separated(frame, "smoke", paper_columns=["paper: MAFL"])
    shown = styler.data
    assert shown.at["k10", "test_mtfl (%)"] == "20.89 smoke" and shown.at["k10", "steps"] == "16 smoke"
    assert shown.at["k10 reference", "test_mtfl (%)"] == 9.5  # a cpu reference keeps its number
    assert shown.at["k10", "paper: MAFL"] == 7.95  # the paper's number is never relabelled
    html = styler.to_html()
    assert "font-style: italic" in html and "20.89 smoke" in html and "9.50" in html
    # paper rows instead of columns; numbers in text ("mean [low, high]") of the result columns
    rows = pd.DataFrame({"forward": ["12.30 [11.0, 13.6]", 7.95]}, index=["ours", "paper: C3"])
    shown = reporting.separated(rows, "smoke", paper_rows=["paper: C3"], result_columns=["forward"]).data
    assert shown.at["ours", "forward"] == "12.30 [11.0, 13.6] smoke" and shown.at["paper: C3", "forward"] == 7.95


def test_verdict_is_withheld_in_the_smoke_profile_only():
    assert reporting.verdict("cpu", "C3 is better") == "C3 is better"
    assert reporting.verdict("paper", "C3 is better") == "C3 is better"
    assert reporting.verdict("smoke", "C3 is better") == reporting.SMOKE_NOTE


def test_steps_to_target_follows_the_last_points_pace_and_refuses_a_curve_moving_away():
    falling = [(1000, 20.0), (2000, 18.0), (3000, 16.0), (4000, 14.0)]  # -2 points per 1,000 steps
    estimate = reporting.steps_to_target(falling, target=10.0)
    assert estimate["per_1000_steps"] == pytest.approx(-2.0) and estimate["steps_left"] == 2000
    rising = [(0, 0.30), (2000, 0.32), (4000, 0.34)]  # a PCK towards 0.40
    assert reporting.steps_to_target(rising, target=0.40)["steps_left"] == 6000
    assert reporting.steps_to_target([(0, 12.0), (1000, 12.5)], target=10.0)["steps_left"] is None
    assert reporting.steps_to_target([(0, 12.0)], target=10.0)["steps_left"] is None


def test_a_lineage_curve_counts_each_runs_steps_after_its_ancestors(tmp_path):
    from lmcore.training.records import write_record
    from lmcore.training.run_record import RunRecord
    from lmcore.paths import RESULTS_DIR

    (tmp_path / "jakab").mkdir()
    reference = RunRecord.from_file(RESULTS_DIR / "jakab" / "k10.json")
    base = {"run_name": "base", "steps": 500, "history": [{"step": 250, "pck_val": 0.1}, {"step": 500, "pck_val": 0.2}]}
    write_record(tmp_path / "jakab" / "base.json", {**dict(reference), **base})
    grown = {"run_name": "grown", "steps": 300, "history": [{"step": 300, "pck_val": 0.25}],
             "ancestor": {"name": "jakab/base"}}
    assert reporting.lineage_curve(grown, "pck_val", tmp_path) == [(250, 0.1), (500, 0.2), (800, 0.25)]


def test_reference_comparison_checks_a_same_config_run_against_the_references_interval(tmp_path):
    import copy

    from lmcore.book.references import reference_record
    from lmcore.book.reporting import config_differences, reference_comparison
    from lmcore.training.run_record import RunRecord

    reference = reference_record("zhang", "k10")
    low, high = reference.metric("forward", "test_mtfl")["ci95"]

    def fresh(error, **train):
        fields = copy.deepcopy(dict(reference))
        fields["config"]["train"].update(train)
        fields["metrics"]["forward"]["test_mtfl"]["mean"] = error
        return RunRecord(fields, run_dir=tmp_path)  # a run of this machine, not a reference

    same = fresh((low + high) / 2, log_every=7)  # bookkeeping only: the same training
    outside = fresh(high + 1.0)
    longer = fresh(low, steps=reference.steps + 1)
    table = reference_comparison([same, outside, longer, reference, None])
    assert len(table) == 3  # the reference itself and None are not compared
    verdicts = list(table["verdict"])
    assert verdicts[0].startswith("same config: within") and verdicts[1].startswith("same config: OUTSIDE")
    assert verdicts[2] == "different config (train.steps): not comparable"
    assert config_differences({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}, "d": 0}) == ["a.c", "d"]
    assert reference_comparison([RunRecord(dict(reference, run_name="no-such-run"), run_dir=tmp_path)]) is None


def test_separated_tables_have_the_same_html_in_two_builds():
    import pandas as pd

    frame = pd.DataFrame({"test_mtfl (%)": [12.345, 9.8]}, index=["ours", "paper: x"])
    first = reporting.separated(frame, "cpu", paper_rows=["paper: x"]).to_html()
    assert first == reporting.separated(frame.copy(), "cpu", paper_rows=["paper: x"]).to_html()
    other = reporting.separated(frame * 2, "cpu", paper_rows=["paper: x"]).to_html()
    assert other.split('id="T_')[1][:10] != first.split('id="T_')[1][:10]  # another table, another id
