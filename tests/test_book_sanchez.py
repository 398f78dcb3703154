"""Chapter 4's tables, figures and verdicts (lmcore/book/sanchez.py): their numbers are the records'
numbers, their verdicts follow their inputs, a missing run gives the "missing" message, and the
chapter asks for the same runs (names, configs) it asked for when it built them itself."""
import numpy as np
import pandas as pd
import pytest

from lmcore.book import papers, sanchez
from lmcore.data.lspet import JOINT_NAMES
from lmcore.experiments import EXPERIMENTS
from lmcore.book import reporting
from lmcore.methods.base import LEARNING_CURVE_KEY
from lmcore.experiments.pose import PCK_AIM
from lmcore.methods.pose import PCK_KEY
from lmcore.methods.sanchez import MODES
from lmcore.training import load_references, resolve_config
from lmcore.training.run_record import RunRecord


def _record(name, forward=5.0, backward=6.0, consistency=1.0, steps=500, profile="cpu", method="sanchez", **extra):
    metrics = {m: {s: {"mean": v + (0.5 if s == "test_aflw" else 0.0)} for s in ("test_mtfl", "test_aflw")}
               for m, v in (("forward", forward), ("backward", backward), ("consistency", consistency))}
    return RunRecord({"run_name": name, "method": method, "profile": profile, "steps": steps, "metrics": metrics,
                      "config": {"method": {"num_landmarks": 10}}, **extra}, run_dir="/nowhere")


class FakeChapter:
    """What the sections read of a Chapter, with the runs it is asked for and what it says is missing."""

    def __init__(self, profile="smoke", records=None, headline=None, with_models=(), mean_shape=10.0):
        self.profile, self.trains = profile, profile != "reference"
        self.settings = "cpu" if profile == "reference" else profile
        self.records, self.headline, self.with_models = records or {}, headline or {}, set(with_models)
        self.mean_shape, self.calls, self.missed = mean_shape, [], []

    def run(self, method, name, overrides=None, few_shot=None):
        self.calls.append((method, name, overrides, few_shot))
        return self.records.get(name)

    def headline_runs(self, chapter, few_shot_curves=True):
        self.calls.append(("headline", chapter))
        return self.headline

    def has_model(self, record):
        return record is not None and record.run_name in self.with_models

    def missing(self, what):
        self.missed.append(what)


@pytest.fixture()
def shown(monkeypatch):
    """What the sections display, instead of displaying it."""
    out = []
    monkeypatch.setattr(sanchez, "display", out.append)
    return out


@pytest.fixture(scope="module")
def references():
    return {r.run_name: r for r in load_references("sanchez")}


# ------------------------------------------------------------------ the runs the chapter asks for
@pytest.mark.parametrize("profile", ["smoke", "cpu", "paper"])
def test_headline_runs_are_the_first_seeds_runs_with_an_unchanged_config(profile):
    """The headline run of a mode is the run the chapter trained as its seed-0 run (``overrides``
    with ``train.seed = 0``): the same resolved config, so the same identity and no retraining."""
    first = sanchez.seeds(profile)[0]
    for run in EXPERIMENTS[sanchez.CHAPTER].runs:
        mode = run.overrides["method"]["mode"]
        assert run.name == mode
        as_before = resolve_config("sanchez", profile, {"method": {"mode": mode}, "train": {"seed": first}})
        assert resolve_config("sanchez", profile, run.resolved_overrides(profile)) == as_before


def test_seed_runs_ask_for_the_headline_runs_then_the_later_seeds_by_name():
    seed1 = _record("proposed-seed1")
    chapter = FakeChapter("smoke", records={"proposed-seed1": seed1},
                          headline={"proposed": _record("proposed"), "scratch": _record("scratch")})
    runs = sanchez.seed_runs(chapter)
    later = sanchez.seeds("smoke")[1:]
    assert later  # the smoke profile trains a second seed
    assert chapter.calls[0] == ("headline", "04_sanchez")
    asked = {call[1]: call[2] for call in chapter.calls[1:]}
    assert asked == {f"{m}-seed{s}": {"method": {"mode": m}, "train": {"seed": s}} for m in MODES for s in later}
    assert all(call[3] is None for call in chapter.calls[1:])  # few-shot curves: the headline runs' only
    assert list(runs) == list(MODES)
    assert runs["proposed"] == {0: runs["proposed"][0], 1: seed1}
    assert runs["finetune"] == {}  # a missing run is left out
    assert list(sanchez.first_seed(runs, "smoke")) == ["proposed", "scratch"]


# ------------------------------------------------------------------ the core
def test_core_lines_say_whether_the_aim_is_met():
    for pck, verdict in ((PCK_AIM + 0.01, "met ["), (PCK_AIM - 0.01, "not met [")):
        record = {"metrics": {PCK_KEY: {"pck": pck, "joints": 123}}}
        first, second = sanchez.core_lines(record, "cpu")
        assert f"{100 * pck:.1f} % (123 visible joints)" in first and verdict in second


def test_per_joint_table_is_the_records_pck_in_percent():
    core = next(r for r in load_references("pose") if r.run_name == "core")
    table = sanchez.per_joint_table(core)
    per_joint = dict(zip(JOINT_NAMES, core["metrics"][PCK_KEY]["per_joint"]))
    assert table.shape == (8, 3) and table.loc["knee", "left (%)"] == round(100 * per_joint["left knee"], 1)
    assert table.loc["neck", "centre (%)"] == round(100 * per_joint["neck"], 1)
    assert table.count().sum() == len(per_joint)  # every joint once


def test_committed_cores_each_have_a_line_with_their_pck():
    cores = load_references("pose")
    lines = sanchez.committed_core_lines(cores)
    assert len(lines) == len(cores)
    for line, r in zip(lines, cores):
        assert line.startswith(f"{r.run_name} [") and line.endswith(f"{100 * r['metrics'][PCK_KEY]['pck']:.1f} %")


def test_a_grown_core_is_judged_against_the_aim_along_its_lineage():
    grown = [r for r in load_references("pose") if r.get("ancestor")]
    assert grown
    for record in grown:
        line = sanchez.lineage_pck_line(record)
        met = record["metrics"][PCK_KEY]["pck"] >= PCK_AIM
        pace = reporting.steps_to_target(reporting.lineage_curve(record, PCK_KEY), PCK_AIM)
        assert ("is met" in line) == met
        assert ("at the pace" in line) == (not met and pace["per_1000_steps"] is not None)


def test_pck_curve_reads_the_cores_evaluations():
    record = RunRecord({"history": [{"step": 10, PCK_KEY: 0.25}, {"step": 20}, {"step": 30, PCK_KEY: 0.5}]})
    assert sanchez.pck_curve(record) == [(10, 25.0), (30, 50.0)]
    assert sanchez.pck_curve(None) == []


def test_parameter_share_table_counts_what_the_projections_leave_to_learn():
    table = sanchez.parameter_share_table("smoke", widths=(16,), num_landmarks=4)
    assert list(table.index) == ["width 16, projected = all", "width 16, projected = 3x3"]
    for _, row in table.iterrows():
        assert row["trainable share (%)"] == round(100 * row["trainable"] / row["network (folded)"], 1)
    # the code's "3x3" projects fewer convolutions (fewer matrices) and trains the others fully
    assert table.iloc[1]["projections"] < table.iloc[0]["projections"]
    assert table.iloc[1]["trainable"] > table.iloc[0]["trainable"]


def test_best_tuning_line_names_the_lowest_tune_val_error():
    records = [RunRecord({"tuning_label": label, "metrics": {"tune": {"tune_val": {"mean": v}}}})
               for label, v in (("a", 3.0), ("b", 2.5), ("c", 4.0))]
    assert sanchez.best_tuning_line(records) == "lowest tune_val error: 'b' (2.50 %)"


# ------------------------------------------------------------------ Table 1 and the orderings
def test_seed_table_is_each_seeds_mean_error():
    errors = {"proposed": {0: np.array([1.0, 2.0]), 1: np.array([3.0, 5.0])}, "scratch": {0: np.array([2.0, 2.0])}}
    table = sanchez.seed_table(errors, "smoke")
    assert table.loc["proposed", "seed 0"] == 1.5 and table.loc["proposed", "seed 1"] == 4.0
    assert pd.isna(table.loc["scratch", "seed 1"]) and set(table["profile"]) == {"smoke"}


def test_seed_ordering_needs_every_modes_weights(shown, capsys):
    chapter = FakeChapter("smoke", with_models=())
    runs = {m: {0: _record(m)} for m in MODES}
    sanchez.show_seed_ordering(chapter, runs, {m: r[0] for m, r in runs.items()}, None, {"test_mtfl": None})
    assert chapter.missed == ["The order of the modes over their seeds (every mode's weights)"] and shown == []
    assert "epoch-1 core" in capsys.readouterr().out  # the paper's own weak-core case is said in any profile


def test_table1_holds_the_runs_and_the_papers_numbers(references):
    runs = {m: references[m] for m in MODES}
    table = sanchez.table1(runs, [], "reference").data
    for mode, r in runs.items():
        assert table.loc[f"sanchez {mode}", "test_mtfl (%)"] == round(r.forward("test_mtfl"), 2)
        paper = papers.SANCHEZ["table1"][mode]
        paper_row = table.loc[f"paper: {mode}", ["test_mtfl (%)", "test_aflw (%)"]]
        assert paper_row.tolist() == [paper["MAFL"], paper["AFLW"]]
    assert "mean shape" not in table.columns


def test_mean_shape_verdict_follows_the_error():
    lines = sanchez.mean_shape_lines({"proposed": _record("proposed", forward=4.0),
                                      "scratch": _record("scratch", forward=12.0)}, 10.0, "cpu")
    assert lines == ["proposed [cpu, 500 steps]: 4.00 % on test_mtfl, below the mean shape",
                     "scratch [cpu, 500 steps]: 12.00 % on test_mtfl, NOT below the mean shape"]


def test_ordering_lines_say_whether_the_order_is_the_papers():
    runs = {"scratch": _record("scratch", forward=9.0, backward=1.0), "proposed": _record("proposed", forward=3.0),
            "finetune": _record("finetune", forward=4.0)}
    summary = sanchez.ordering_summary(runs)
    assert summary.loc["scratch", "forward test_aflw"] == 9.5
    lines = dict(line.split(": ", 1) for line in sanchez.ordering_lines(summary))
    assert lines["forward test_mtfl"] == "proposed < finetune < scratch (as the paper)"
    assert lines["backward test_mtfl"] == "scratch < proposed < finetune (not the paper's order)"


# ------------------------------------------------------------------ Tables 2, 3 and the authors' protocol
class FakeDetections:
    """Errors that name what they were asked for: the direction, the size, the regressor's options."""

    def curve(self, split, sizes, direction="forward"):
        return [{"mean": (100 if direction == "backward" else 0) + (n or 5000) / 1000 + 0.001} for n in sizes]

    def error(self, split, direction, options=None):
        return {"mean": (1.0 if direction == "forward" else 2.0) + (0.5 if options is sanchez.AUTHORS else 0.0)}


def test_table2_is_each_curve_by_direction_split_and_mode():
    table = sanchez.table2({"proposed": FakeDetections()}, ["test_mtfl"])
    assert list(table.columns) == [1, 10, 100, 1000, "all"]
    assert table.loc[("forward", "test_mtfl", "proposed"), 1000] == 1.0
    assert table.loc[("backward", "test_mtfl", "proposed"), "all"] == 105.0
    assert sanchez.table2({}, ["test_mtfl"]) is None


def test_paper_table2_keeps_the_sizes_shown():
    table = sanchez.paper_table2()
    assert list(table.columns) == [1, 10, 100, 1000, "all"]  # 5, 500 and 5000 are left out
    paper = papers.SANCHEZ["table2"]["backward"]["AFLW"]["proposed"]
    assert table.loc[("backward", "AFLW", "proposed"), "all"] == paper[None]


def test_table2_section_says_when_there_are_no_detections(shown):
    chapter = FakeChapter("reference")
    sanchez.show_table2(chapter, {}, ["test_mtfl"])
    assert chapter.missed == ["Table 2, the errors against the number of labelled images"]
    assert shown[-1].equals(sanchez.paper_table2())  # the paper's table is shown in any case


def test_table3_is_the_sorted_consistency_of_each_landmark(references):
    runs = {m: references[m] for m in MODES}
    table = sanchez.table3(runs)
    c = references["finetune"].metric("consistency", "test_aflw")
    assert table.loc[("test_aflw", "finetune")].tolist() == [round(v, 2) for v in c["sorted"]] + [round(c["mean"], 2)]
    assert list(table.columns)[-1] == "mean" and sanchez.table3({}) is None
    assert sanchez.paper_table3().loc[("MAFL", "scratch"), "mean"] == papers.SANCHEZ["table3"]["MAFL"]["scratch"][-1]


def test_authors_protocol_is_scored_with_the_authors_regressor():
    table = sanchez.authors_protocol_table({"proposed": FakeDetections()}, ["test_mtfl"])
    row = table.loc[("proposed", "test_mtfl", "backward")]
    assert row.tolist() == [2.0, 2.5]
    assert sanchez.authors_protocol_table({}, ["test_mtfl"]) is None


# ------------------------------------------------------------------ Tables 4-5
def test_a_reference_cores_earlier_steps_have_no_pck():
    core = RunRecord({"run_name": "core", "steps": 9000})  # a committed reference: no run folder
    quality = {"core at step 1000": RunRecord({**_record("a"), "config": {"parents": {"core": {"step": 1000}}}}),
               "final core": RunRecord({**_record("b", forward=3.0), "config": {"parents": {"core": {"step": None}}}})}

    class Early:
        def pck(self, people):
            return {"pck": 0.4567}

    table = sanchez.core_quality_table(FakeChapter("reference"), quality, core, Early(), people=None)
    assert pd.isna(table.loc["core at step 1000", "core PCK@0.2 (%)"])
    assert table.loc["final core", "core PCK@0.2 (%)"] == 45.7 and table.loc["final core", "core step"] == 9000
    assert table.loc["final core", "forward test_aflw"] == 3.5


def test_paper_core_quality_is_the_papers():
    table = sanchez.paper_core_quality()
    assert table.loc["epoch 10"].tolist() == list(papers.SANCHEZ["core_quality"][10])


# ------------------------------------------------------------------ the committed references
def test_references_by_mode_are_the_seeds_only(references):
    by_mode = sanchez.references_by_mode(references.values())
    assert [r.run_name for r in by_mode["proposed"]] == ["proposed", "proposed-seed1", "proposed-seed2"]
    assert sanchez.equal_length(by_mode)
    assert not sanchez.equal_length({**by_mode, "scratch": []})
    shorter = {**by_mode, "finetune": [_record("finetune", steps=by_mode["finetune"][0].steps + 1)]}
    assert not sanchez.equal_length(shorter)


def test_reference_seed_table_labels_each_seed():
    by_mode = {"proposed": [_record("proposed"), _record("proposed-seed1")]}
    table = sanchez.reference_seed_table(by_mode, {"proposed": np.array([[1.0, 3.0], [4.0, 4.0]])})
    assert table.loc["proposed"].to_dict() == {"seed0": 2.0, "seed1": 4.0}


def test_longest_continuation_is_the_deepest_lineage(references):
    longest = sanchez.longest_continuation(references.values())
    grown = [r for r in references.values() if r.run_name.startswith("proposed-long")]
    assert longest.run_name == max(grown, key=lambda r: r["ancestor"]["lineage_steps"]).run_name
    assert sanchez.longest_continuation([references["proposed"]]) is None


def test_continuation_pace_is_said_only_while_the_bar_is_not_reached(references):
    from lmcore import zoo

    longest = sanchez.longest_continuation(references.values())
    error = longest.forward("test_mtfl")
    assert sanchez.continuation_pace_line(longest, target=error + 1) is None  # reached
    pace = reporting.steps_to_target(reporting.lineage_curve(longest, LEARNING_CURVE_KEY), 0.0)
    line = sanchez.continuation_pace_line(longest, target=0.0)
    assert (line is None) == (pace["per_1000_steps"] is None)
    if line is not None:
        steps = sum(int(r.get("steps") or 0) for r in zoo.lineage(longest))
        assert f"{error:.2f} % on test_mtfl after {steps:,} steps in all" in line
        assert f"({pace['per_1000_steps']:+.2f} points per 1,000 steps)" in line


def test_committed_references_are_judged_against_the_bar(monkeypatch, shown, capsys, references):
    class Chapter(FakeChapter):
        target = 100.0  # every reference meets it

        def show_references(self, method):
            return list(references.values())

    ordered = []
    monkeypatch.setattr(sanchez, "show_reference_ordering", lambda chapter, refs: ordered.append(len(refs)))
    monkeypatch.setattr(sanchez.plt, "show", lambda: None)
    sanchez.show_references(Chapter("reference"))
    out = capsys.readouterr().out
    assert all(f"{name} [" in out for name in references) and out.count("meets the target") == len(references)
    assert ordered == [len(references)]
    assert "at the pace" not in out  # the continuation has reached a bar of 100 %


def test_no_committed_references_show_nothing_more(monkeypatch, capsys):
    chapter = FakeChapter("reference")
    chapter.show_references = lambda method: []
    monkeypatch.setattr(sanchez, "show_reference_ordering", lambda *a: pytest.fail("nothing to order"))
    sanchez.show_references(chapter)
    assert capsys.readouterr().out == ""


# ------------------------------------------------------------------ the folded detector
class _Pose:
    def __init__(self, shift):
        self.detector = lambda images: images.mean(dim=(1, 2, 3))[:, None, None].expand(-1, 2, 2) * 0 + shift


class _Adapted:
    """A proposed model whose points come from ``model.pose.detector``; folding shifts them by ``error``."""

    def __init__(self, error):
        from types import SimpleNamespace

        self.model, self.error = SimpleNamespace(pose=_Pose(0.0)), error

    def detect(self, images):
        return self.model.pose.detector(images)

    def folded_detector(self):
        return _Pose(self.error).detector


def test_folding_check_reports_how_far_the_folded_points_move():
    import torch

    images = torch.zeros(5, 3, 8, 8, dtype=torch.uint8)
    timings, difference = sanchez.folding_check(_Adapted(error=0.25), images, timed=False)
    assert set(timings) == {"projected (as trained)", "folded"} and "detect 5 faces (s)" in timings["folded"]
    assert difference == pytest.approx(0.25 * 8 / 2)  # normalised [-1, 1] -> pixels of an 8 px image
    assert sanchez.folding_check(_Adapted(error=0.0), images, timed=True)[1] == 0.0


def test_step_costs_come_from_the_committed_bench_record_in_the_reference_profile(shown):
    chapter = FakeChapter("reference")
    sanchez.show_step_costs(chapter, models={})
    source, costs = shown
    assert "python -m lmcore.bench" in source.data and "results/bench/" in source.data
    assert list(costs.index) == ["proposed", "finetune", "scratch"] and costs.loc["proposed", "time / proposed"] == 1.0
    assert chapter.missed == ["The folded detector (the proposed mode's model)"]


def test_the_committed_cores_checks_measure_only_the_parent_core_again():
    from lmcore.book.tables import MARK
    from lmcore.training import load_references

    cores = load_references("pose")
    table = sanchez.core_checks(cores, {sanchez.PARENT_CORE: {"from the weights": 0.3}})
    assert table.loc[sanchez.PARENT_CORE, "measured in this build (%)"] == 30.0
    assert table.drop(index=sanchez.PARENT_CORE)["measured in this build (%)"].isna().all()
    assert "parent of every adaptation" in table.attrs[MARK]["missing"]
