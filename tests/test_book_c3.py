"""Chapter 5's tables, figures and verdicts (lmcore.book.c3): numbers are the records' numbers,
verdicts follow their inputs, and a missing run says so."""
import copy
from types import SimpleNamespace

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from lmcore.book import c3, papers  # noqa: E402
from lmcore.book.chapter import Chapter  # noqa: E402
from lmcore.book.reporting import SMOKE_NOTE, published_parent  # noqa: E402
from lmcore.data import LandmarkSet  # noqa: E402
from lmcore.errors import MissingDataError  # noqa: E402
from lmcore.evaluation.alignment import transfer_identity  # noqa: E402
from lmcore.experiments.c3 import ABLATION  # noqa: E402
from lmcore.models.flow import correlation_memory_bytes  # noqa: E402
from lmcore.training import load_references  # noqa: E402
from lmcore.training.run_record import RunRecord  # noqa: E402


def _chapter(profile="reference"):
    return Chapter(profile, None, None, None, None, 20.0, 24.0)


@pytest.fixture()
def shown(monkeypatch):
    """What the sections display, collected instead of shown."""
    collected = []
    monkeypatch.setattr(c3, "display", collected.append)
    return collected


def _record(method="c3", name="k10", k=10, forward=10.0, tune=None, steps=200, profile="cpu", **fields):
    metrics = {"forward": {"test_mtfl": {"mean": forward}, "test_aflw": {"mean": forward + 5}}}
    if tune is not None:
        metrics["tune"] = {"tune_val": {"mean": tune, "ci95": [tune - 0.5, tune + 0.5]}}
    return RunRecord({"method": method, "run_name": name, "profile": profile, "steps": steps, "metrics": metrics,
                      "config": {"method": {"num_landmarks": k}, "train": {"batch_size": 8}}, **fields})


@pytest.fixture(scope="module")
def references():
    return {r.run_name: r for r in load_references("c3")}


@pytest.fixture(scope="module")
def jakab_references():
    return {r.run_name: r for r in load_references("jakab")}


# ---------------------------------------------------------------- runs
def test_runs_are_keyed_by_their_landmarks_and_table1_pairs_each_c3_run_with_its_baseline():
    c3_10, c3_30 = _record(name="a", k=10), _record(name="b", k=30)
    jakab_10 = _record("jakab", "c", k=10)
    runs, baselines = c3.by_k({"a": c3_10, "b": c3_30}), c3.by_k({"c": jakab_10})
    assert runs == {10: c3_10, 30: c3_30} and baselines == {10: jakab_10}
    assert c3.table1_records(runs, baselines) == [jakab_10, c3_10, c3_30]  # at each K: baseline, then C3
    assert [c3.run_label(r) for r in (jakab_10, c3_30)] == ["paired baseline (Jakab), K = 10", "C3, K = 30"]


def test_table1_shows_the_records_errors_and_names_each_missing_run(shown, capsys, references, jakab_references):
    runs = {10: references["k10"]}
    baselines = {10: jakab_references["k10"], 30: jakab_references["k30"]}
    table = c3.show_table1(_chapter(), runs, baselines)
    assert table == [jakab_references["k10"], references["k10"], jakab_references["k30"]]
    provenance, protocol = shown
    assert list(provenance.index) == list(protocol.index) == [
        "paired baseline (Jakab), K = 10", "C3, K = 10", "paired baseline (Jakab), K = 30"]
    assert protocol[("forward", "test_mtfl")]["C3, K = 10"] == round(references["k10"].forward("test_mtfl"), 2)
    assert protocol[("backward", "test_aflw")]["paired baseline (Jakab), K = 30"] == round(
        jakab_references["k30"].backward("test_aflw"), 2)
    out = capsys.readouterr().out
    assert "Table 1's runs of C3 K = 30: not shown" in out and "the paired baseline K = 30" not in out
    assert "mean-shape baseline on test_mtfl: 20.0 % IOD; on test_aflw: 24.0" in out


# ---------------------------------------------------------------- verdicts
def test_the_papers_claim_follows_the_two_errors():
    paired = _record("jakab", forward=10.0, steps=3000)
    better = c3.paper_verdict("cpu", _record(forward=9.0, steps=1000), paired)
    assert better == ("K = 10: C3 9.00 vs its paired pre-training 10.00 on test_mtfl: C3 is better (-1.00 points; "
                      "C3 trained 1000 more steps on top of the pre-training's 3000)")
    worse = c3.paper_verdict("cpu", _record(forward=10.5), paired)
    assert "C3 is NOT better (+0.50 points" in worse
    assert c3.paper_verdict("smoke", _record(forward=9.0), paired) == SMOKE_NOTE


def test_a_verdict_without_its_two_runs_is_missing(capsys):
    runs = {10: _record(forward=9.0), 30: _record(k=30, forward=9.0)}
    c3.show_paper_verdicts(_chapter("cpu"), runs, {10: _record("jakab", forward=8.0)})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("K = 10: C3 9.00 vs its paired pre-training 8.00") and "NOT better" in out[0]
    assert out[1].startswith("The verdict at K = 30: not shown: this cpu build has no run for it")


def _tuned(label, tune, width=1.0):
    record = _record(name=label, tune=tune, tuning_label=label, wall_time_s=60.0, git_commit="abc",
                     device={"name": "cpu"})
    record["metrics"]["tune"]["tune_val"]["ci95"] = [tune - width / 2, tune + width / 2]
    return record


def test_the_kept_weights_stay_while_the_best_is_within_their_interval():
    inside = c3.tuning_verdict([_tuned("kept one (kept)", 10.3), _tuned("other", 10.0)])
    assert inside == ("best on tune_val: other; the kept weights are 0.30 points behind it, inside the kept run's "
                      "own 95 % interval (half-width 0.50)")
    outside = c3.tuning_verdict([_tuned("kept one (kept)", 11.0), _tuned("other", 10.0)])
    assert outside == "best on tune_val: other, 1.00 points better than the kept weights: outside their 95 % interval"
    assert "best on tune_val: kept one (kept); the kept weights are 0.00" in c3.tuning_verdict(
        [_tuned("kept one (kept)", 9.0), _tuned("other", 10.0)])


def test_the_committed_sweep_names_its_best_setting():
    from lmcore.book.reporting import tuning_records, tuning_table

    records = tuning_records("c3")
    best = tuning_table(records)["tune_val forward (%)"].idxmin()
    assert c3.tuning_verdict(records).startswith(f"best on tune_val: {best}")


def test_the_flow_runs_end_point_errors_are_its_records_and_its_verdict_follows_them():
    flow = load_references("c3_flow")[0]
    split, epe = next(iter(flow["metrics"]["flow_epe_cells"].items()))
    table = c3.flow_epe_table(flow)
    assert table.loc[split, "filtered"] == round(epe["filtered"], 3)
    assert table.loc[split, "raw_correlation"] == round(epe["raw_correlation"], 3)
    better = "better" if epe["filtered"] < epe["raw_correlation"] else "NOT better"
    assert c3.flow_verdict(flow).startswith(f"after {flow.steps} steps the learnt filter is {better} than")
    synthetic = RunRecord({"steps": 5, "metrics": {"flow_epe_cells": {"tune_val": {"filtered": 0.4,
                                                                                  "raw_correlation": 0.6}}}})
    assert c3.flow_verdict(synthetic) == ("after 5 steps the learnt filter is better than the raw correlation on "
                                          "synthetic pairs of tune_val faces (0.40 vs 0.60 cells)")


def test_a_missing_flow_run_says_so(capsys, shown):
    c3.show_flow_run(_chapter(), None)
    assert "The flow run's end-point errors (c3_flow/flow): not shown in the reference profile" in capsys.readouterr().out
    assert shown == []


def test_the_correlations_memory_grows_with_the_square_of_the_maps_area():
    table = c3.correlation_memory_table((8, 16))
    assert table.loc[8, "correlation_mb_per_pair"] == round(correlation_memory_bytes(8) / 2 ** 20, 3)
    assert correlation_memory_bytes(16) == 16 * correlation_memory_bytes(8)


def test_the_reference_profile_times_no_correlation(capsys, shown):
    c3.show_correlation_costs(_chapter())
    assert "not measured in the reference profile" in capsys.readouterr().out
    assert list(shown[0].index) == [8, 12, 16] and "step_ms" not in shown[0].columns


# ---------------------------------------------------------------- Table 2
def _ablation(test_errors, tune_errors=None, profile="cpu"):
    tune_errors = tune_errors or test_errors
    return {label: _record(name=label, forward=test, tune=tune, profile=profile)
            for (label, test), tune in zip(test_errors.items(), tune_errors.values())}


def test_table2_carries_the_papers_column_and_the_verdicts_follow_the_errors():
    rows = _ablation({"neither (paired baseline)": 11.0, "cycle": 10.0, "flow": 10.5, "cycle + flow": 9.5})
    frame = c3.ablation_frame(rows)
    assert list(frame[("paper", "MAFL")]) == [papers.C3["ablation"][label] for label in rows]
    assert frame[("forward", "test_mtfl")]["cycle"] == 10.0
    lines = c3.ablation_verdicts(frame)
    assert lines[0].startswith("best on tune_val: cycle + flow;")
    assert lines[1] == "order on test_mtfl, best first: cycle + flow < cycle < flow < neither (paired baseline)"
    assert lines[2].startswith("as in the paper, cycle + flow is best on test_mtfl (9.50 %")
    # chosen on tune_val, reported on test: the two may disagree
    rows = _ablation({"neither (paired baseline)": 9.0, "cycle": 10.0, "flow": 10.5, "cycle + flow": 9.5},
                     {"neither (paired baseline)": 11.0, "cycle": 10.8, "flow": 10.5, "cycle + flow": 12.0})
    lines = c3.ablation_verdicts(c3.ablation_frame(rows))
    assert lines[0].startswith("best on tune_val: flow;")
    assert lines[2].startswith("unlike the paper, neither (paired baseline) is best on test_mtfl (9.00 %) and "
                               "cycle + flow scores 9.50 %")


def test_table2_names_its_missing_rows_and_draws_no_verdict_from_smoke(capsys, shown):
    chapter = _chapter("cpu")
    c3.show_ablation(chapter, {})
    assert "Table 2, the ablation cycle x flow: not shown" in capsys.readouterr().out and shown == []
    rows = _ablation({"neither (paired baseline)": 11.0, "cycle": 10.0})
    c3.show_ablation(chapter, rows)
    out = capsys.readouterr().out
    assert "Table 2's rows flow, cycle + flow: not shown" in out and "best on tune_val" not in out
    c3.show_ablation(chapter, _ablation({label: 10.0 for label in ABLATION}, profile="smoke"))
    assert capsys.readouterr().out.strip() == SMOKE_NOTE
    assert "smoke" in shown[-1].data[("forward", "test_mtfl")]["cycle"]  # no smoke number stands bare


def test_the_references_hold_table2_where_its_four_rows_start_alike(references):
    families = dict(c3.reference_ablations(list(references.values())))
    rows = families["k10"]
    assert rows["cycle + flow"] is references["k10"] and rows["cycle"] is references["ablation-cycle"]
    assert families["k10-long"]["flow"] is references["k10-long-ablation-flow"]
    # a row trained longer, or one that is not committed, leaves the family out
    longer = copy.deepcopy(references["ablation-flow"])
    longer["steps"] += 1
    changed = [longer if r.run_name == "ablation-flow" else r for r in references.values()]
    assert "k10" not in dict(c3.reference_ablations(changed))
    decayed = copy.deepcopy(references["ablation-flow"])  # another learning-rate schedule: not comparable
    decayed["config"]["train"]["lr_gamma"] = 0.5
    changed = [decayed if r.run_name == "ablation-flow" else r for r in references.values()]
    assert "k10" not in dict(c3.reference_ablations(changed))
    without = [r for r in references.values() if r.run_name != "k10-long-ablation-cycle"]
    assert set(dict(c3.reference_ablations(without))) == {"k10"}


def test_the_change_from_the_pretraining_is_the_difference_of_the_two_records(references):
    record = references["k10"]
    pretraining = published_parent(record, "pairs")
    assert pretraining is not None and pretraining.method == "jakab"
    line = c3.pretraining_change(record, pretraining)
    change = record.forward("test_mtfl") - pretraining.forward("test_mtfl")
    low, high = pretraining["metrics"]["tune"]["tune_val"]["ci95"]
    assert line.startswith(f"C3's steps change the forward error on test_mtfl by {change:+.2f} points")
    assert line.endswith(f"+-{(high - low) / 2:.2f} points wide")


# ---------------------------------------------------------------- Table 3, figures
def _faces(n=6, size=16):
    points = torch.tensor([[4.0, 5.0], [11.0, 5.0], [8.0, 8.0], [5.0, 12.0], [11.0, 12.0]]).expand(n, 5, 2)
    return LandmarkSet("faces", [f"face{i}" for i in range(n)], torch.zeros(n, 3, size, size, dtype=torch.uint8),
                       points.clone())


def test_the_alignment_table_scores_each_transfer_on_each_test_set():
    def shifted(points_a, images_a=None, images_b=None):
        return points_a + 0.5  # a quarter of the image away: no point within 0.1 of the IOD

    table = c3.alignment_table({"identity": transfer_identity, "shifted": shifted},
                               {"one": _faces(), "two": _faces(5)}, n_pairs=8)
    # every face has the same labels: the identity carries each point exactly onto B's
    assert table.loc["identity", ("one", "PCK@0.1 IOD")] == 100.0 and table.loc["identity", ("two", "PCK@0.1 box")] == 100.0
    assert table.loc["shifted", ("one", "PCK@0.1 IOD")] == 0.0


def _model(flow=False):
    return SimpleNamespace(detect=lambda images: torch.zeros(len(images), 10, 2), transfer=lambda **kw: kw["points_a"],
                           flow_run=object() if flow else None)


def test_table3_uses_the_flow_only_where_the_c3_run_carries_it(capsys):
    chapter = _chapter()
    transfers = c3.alignment_transfers(chapter, {10: _model(), 30: _model()}, {10: _model()})
    assert list(transfers) == ["identity", "landmarks, paired baseline K = 10", "landmarks, C3 K = 10",
                               "landmarks, C3 K = 30"]
    assert "Table 3's transfers through the flow module (c3_flow/flow): not shown" in capsys.readouterr().out
    with_flow = {10: _model(flow=True)}
    transfers = c3.alignment_transfers(chapter, with_flow, {})
    assert transfers["flow module (C3)"] is with_flow[10].transfer
    out = capsys.readouterr().out
    assert "through the paired baseline's landmarks, C3 K = 30's landmarks: not shown" in out
    assert c3.flow_model({30: _model(flow=True)}) is None  # the flow is the main K's


def test_without_pf_pascal_its_table_is_skipped(monkeypatch, capsys, shown):
    def not_prepared(split):
        raise MissingDataError("run data_scripts/fetch_pf_pascal.py")

    monkeypatch.setattr(c3, "load_pf_pascal", not_prepared)
    c3.show_pf_pascal(_chapter(), {10: _model(flow=True)})
    assert capsys.readouterr().out.startswith("PF-PASCAL is not prepared on this machine, so this table is skipped: run")
    assert shown == []


def test_figures_that_need_a_model_or_the_flow_say_what_is_missing(capsys):
    chapter = _chapter()
    c3.figure3(chapter, {10: _model()}, {10: _model()}, torch.tensor([[0, 1]]))
    c3.figure4(chapter, {30: _model()})
    c3.two_face_widget(chapter, {})
    out = capsys.readouterr().out
    assert "Figure 3's faces (the flow module, c3_flow/flow): not shown" in out
    assert "Figure 4, disentanglement (C3 K = 10's decoder): not shown" in out
    assert "The two-face widget (C3 K = 10's decoder and flow): not shown" in out


def test_carried_points_are_crosses_over_bs_own_dots():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    own, carried = torch.tensor([[2.0, 3.0], [5.0, 6.0]]), torch.tensor([[7.0, 1.0], [4.0, 4.0]])
    c3.show_carried(ax, torch.zeros(3, 8, 8), own, carried.numpy(), title="t")
    dots, crosses = ax.collections
    assert dots.get_offsets().tolist() == own.tolist() and crosses.get_offsets().tolist() == carried.tolist()
    plt.close(fig)


def test_the_reference_profile_shows_the_committed_bench_records_c3_steps():
    from lmcore import bench

    record = next(r for r in bench.load_bench_records() if r["device"]["type"] == "cpu")
    costs = c3.committed_step_costs(record)
    assert list(costs.index) == ["cycle + flow (C3)", "the flow module's pre-training (c3_flow)"]
    assert (costs["step_ms"] > 0).all()


def test_the_ablation_step_costs_are_measured_once_per_code_and_machine(tmp_path, monkeypatch):
    """The reference profile times Table 2's rows on this machine once; a later build reuses them
    until C3's code changes."""
    import torch

    from lmcore.book import c3 as book_c3

    calls = []

    def fake_step_cost(method, profile, overrides, steps, warmup, device):
        calls.append(overrides["method"])
        return {"step_ms": 100.0 + len(calls), "images_per_s": 1.0, "batch_size": 8, "saved_for_backward_mb": 1.0,
                "trainable": 1, "device": "cpu", "threads": 1}

    monkeypatch.setenv("LMBOOK_RUNS", str(tmp_path))
    monkeypatch.setattr(book_c3, "run_step_cost", fake_step_cost)
    first = book_c3.ablation_step_costs("cpu", torch.device("cpu"))
    assert len(calls) == len(book_c3.ABLATION) and first.loc["neither (paired baseline)", "time / paired"] == 1.0
    again = book_c3.ablation_step_costs("cpu", torch.device("cpu"))
    assert len(calls) == len(book_c3.ABLATION) and again["step_ms"].tolist() == first["step_ms"].tolist()
    monkeypatch.setattr(book_c3, "code_fingerprint", lambda method: "another")  # C3's code changed: measured again
    book_c3.ablation_step_costs("cpu", torch.device("cpu"))
    assert len(calls) == 2 * len(book_c3.ABLATION)
