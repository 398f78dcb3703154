"""Chapter 6's analysis (lmcore.book.comparison): which runs it finds, the check of re-scored
errors against the records, the leaderboard's rows, paired verdicts, failure rates, the
disagreement spread, ranking changes under protocol variants and the references' weights check,
on small synthetic detectors and the committed records."""
import numpy as np
import pandas as pd
import pytest
import torch

from lmcore.book import comparison
from lmcore.book.chapter import Chapter
from lmcore.book.comparison import BOOK, MEAN_SHAPE, RescoreMismatch, Scores
from lmcore.book.leaderboard import committed_references, paper_numbers
from lmcore.book.reporting import SMOKE_NOTE
from lmcore.data import LandmarkSet
from lmcore.evaluation import Detections
from lmcore.experiments import BOOK_RUNS, EXPERIMENTS
from lmcore.training import RunRecord

ZHANG_K10 = EXPERIMENTS["02_zhang"].run("k10")
FSE_K10 = EXPERIMENTS["01_fse"].run("k10")
SUPERVISED = EXPERIMENTS["00_data_and_protocol"].runs[0]


def _chapter(profile):
    return Chapter(profile, None, None, None, None, 0.0, 0.0)


def _faces(n, name, rng):
    """``n`` faces whose 5 labelled points are a mean shape, scaled and moved, plus noise."""
    centre = rng.uniform(30, 50, (n, 1, 2))
    shape = np.array([[-10, -8], [10, -8], [0, 2], [-8, 10], [8, 10]], dtype=np.float64)
    points = centre + shape * rng.uniform(0.8, 1.2, (n, 1, 1)) + rng.normal(0, 1.0, (n, 5, 2))
    return LandmarkSet(name, [f"{name}/{i}.jpg" for i in range(n)], torch.zeros(n, 3, 4, 4, dtype=torch.uint8),
                       torch.tensor(points, dtype=torch.float32))


def _detections(noise, seed=0, n_train=200, n_test=60):
    """A detector whose K = 4 points are a fixed linear map of the labels plus ``noise`` pixels,
    on a regressor set and both test splits (the same faces for every ``noise``)."""
    faces = np.random.default_rng(0)
    train = _faces(n_train, "train", faces)
    tests = {split: _faces(n_test, split, faces) for split in comparison.SPLITS}
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(0).normal(0, 0.3, (10, 8))

    def detect(s):
        flat = s.points.double().numpy().reshape(len(s), 10) @ mix
        return torch.tensor(flat.reshape(len(s), 4, 2) + rng.normal(0, noise, (len(s), 4, 2)), dtype=torch.float32)

    return Detections(train, detect(train), tests, {split: detect(s) for split, s in tests.items()})


def _record(scored: dict, run, reference=False, **fields):
    """A finished run's record holding ``scored``'s errors ({(direction, split): result}) as its own,
    scored by the book's protocol."""
    metrics = {}
    for (direction, split), result in scored.items():
        metrics.setdefault(direction, {})[split] = {"mean": result["mean"]}
    metrics["consistency"] = {"test_mtfl": {"mean": 1.234}, "test_aflw": {"mean": 2.345}}
    record = {"method": run.method, "run_name": run.name, "profile": "cpu", "metrics": metrics,
              "evaluation": {"options": BOOK.as_dict()}, "steps": 100, "wall_time_s": 120.0,
              "device": {"type": "cpu", "name": "test cpu"}, "git_commit": "0123456789abcdef", **fields}
    return RunRecord(record) if reference else RunRecord(record, run_dir="/nowhere")


def _scores(noises: dict, records=True) -> Scores:
    """Scores of one synthetic detector per ``{run: noise}``, each with a record of its own numbers."""
    detections = {comparison.run_label(run): _detections(noise, seed=i) for i, (run, noise) in enumerate(noises.items())}
    some = next(iter(detections.values()))
    detections[MEAN_SHAPE] = Detections.mean_shape(some.regressor_set, some.test_sets)
    scores = Scores.of({comparison.run_label(run): run for run in noises}, {}, detections)
    if records:
        scores.records = {name: _record(scores.results[name], run) for name, run in scores.runs.items()}
    return scores


def _results(per_face: dict) -> Scores:
    """Scores made of given per-face forward errors ``{label: N}`` on both test splits."""
    results = {name: {("forward", split): {"mean": float(np.mean(errors)), "per_image": np.asarray(errors)}
                      for split in comparison.SPLITS} for name, errors in per_face.items()}
    return Scores({}, {}, {}, results)


# --------------------------------------------------------------------------- runs


def test_a_run_is_named_by_its_label_and_k():
    assert comparison.run_label(ZHANG_K10) == "Zhang K=10"
    assert comparison.run_label(SUPERVISED) == SUPERVISED.label == "supervised (direct)"


def test_the_reference_profile_uses_the_committed_references_with_weights():
    references = committed_references()
    found = comparison.find_runs(_chapter("reference"), references)
    assert list(found) == list(BOOK_RUNS)
    assert found[ZHANG_K10]["run_name"] == "k10"  # results/zhang/k10.safetensors exists
    fse_k30 = EXPERIMENTS["01_fse"].run("k30")
    assert fse_k30 in references and found[fse_k30] is None  # a record without weights: nothing to detect
    table = comparison.runs_table(found, _chapter("reference"), references)
    assert table.loc["Zhang K=10", "in this reference build"] == "yes"
    assert table.loc["FSE K=30", "in this reference build"] == "no: the reference has no weights"
    assert table.loc["FSE K=30", "committed reference"] == "results/fse/k30.json"


def test_a_missing_run_says_which_chapter_trains_it_or_that_no_reference_exists():
    found = {FSE_K10: None, ZHANG_K10: None}
    smoke = comparison.runs_table(found, _chapter("smoke"), references={})
    assert smoke.loc["FSE K=10", "in this smoke build"] == "no: run book/01_fse.py (smoke)"
    assert smoke.loc["Zhang K=10", "committed reference"] == "-"
    reference = comparison.runs_table(found, _chapter("reference"), references={})
    assert reference.loc["FSE K=10", "in this reference build"] == "no: no committed reference"


# --------------------------------------------------------------------------- scores and the check


def test_every_detector_is_scored_forward_and_only_regressed_ones_backward():
    scores = _scores({FSE_K10: 0.5})
    assert set(scores.results["FSE K=10"]) == {(d, s) for d in ("forward", "backward") for s in comparison.SPLITS}
    assert set(scores.results[MEAN_SHAPE]) == {("forward", s) for s in comparison.SPLITS}
    result = scores.results["FSE K=10"][("forward", "test_aflw")]
    assert result["per_image"].shape == (60,) and result["predicted"].shape == (60, 5, 2)
    assert scores.per_face("FSE K=10", "test_aflw").mean() == pytest.approx(result["mean"])
    assert scores.order("test_mtfl") == ["FSE K=10", MEAN_SHAPE]  # a detector beats the mean shape


def test_re_scored_errors_must_be_the_recorded_ones():
    scores = _scores({FSE_K10: 0.5, ZHANG_K10: 2.0})
    line = comparison.check_against_records(scores, "cpu")
    assert line.startswith("8 recorded errors re-scored from the detections")  # 2 runs x 2 directions x 2 splits
    scores.records["Zhang K=10"]["metrics"]["backward"]["test_aflw"]["mean"] += 0.01
    with pytest.raises(RescoreMismatch, match=r"differ from the records by up to 0.01 % of IOD") as error:
        comparison.check_against_records(scores, "cpu")
    assert "Zhang K=10" in str(error.value) and "backward test_aflw" in str(error.value)


def test_records_of_another_protocol_are_not_checked():
    scores = _scores({FSE_K10: 0.5})
    scores.records["FSE K=10"]["evaluation"] = {"options": {**BOOK.as_dict(), "intercept": True}}
    scores.records["FSE K=10"]["metrics"]["forward"]["test_mtfl"]["mean"] += 5.0  # not this protocol's number
    assert comparison.recorded_and_rescored(scores).empty
    assert comparison.check_against_records(scores, "smoke") == (
        "no run of this smoke build to check: the method chapters have not run in this profile")


def test_a_reference_with_fp16_weights_is_held_to_the_number_measured_from_them():
    scores = _scores({ZHANG_K10: 0.5})
    result = scores.results["Zhang K=10"]
    reference = _record(result, ZHANG_K10, reference=True, weights_dtype="fp16",
                        weights_check={"test_mtfl_fp16": result[("forward", "test_mtfl")]["mean"]})
    reference["metrics"]["forward"]["test_mtfl"]["mean"] += 0.005  # the fp32 number: fp16 moved it a little
    scores.records["Zhang K=10"] = reference
    check = comparison.recorded_and_rescored(scores)
    assert check[["run", "error"]].values.tolist() == [["Zhang K=10", "forward test_mtfl"]]
    assert comparison.check_against_records(scores, "reference").startswith("1 recorded errors")
    reference["weights_check"]["test_mtfl_fp16"] += 0.001
    with pytest.raises(RescoreMismatch):
        comparison.check_against_records(scores, "reference")


# --------------------------------------------------------------------------- tables


def test_the_leaderboard_shows_the_scores_and_the_records_best_first():
    scores = _scores({FSE_K10: 3.0, ZHANG_K10: 0.3})
    board = comparison.leaderboard_rows(scores)
    assert list(board.index) == scores.order("test_mtfl") == ["Zhang K=10", "FSE K=10", MEAN_SHAPE]
    forward = scores.results["Zhang K=10"][("forward", "test_aflw")]
    low, high = forward["ci95"]
    assert board.loc["Zhang K=10", "forward test_aflw [95% CI]"] == f"{forward['mean']:.2f} [{low:.2f}, {high:.2f}]"
    assert board.loc["Zhang K=10", "consistency test_aflw"] == 2.35  # the record's, rounded
    assert board.loc["Zhang K=10", "paper: MAFL"] == paper_numbers("zhang", 10)[0]
    assert board.loc["Zhang K=10", "steps"] == 100 and board.loc["Zhang K=10", "training min"] == 2.0
    assert board.loc["Zhang K=10", "git commit"] == "0123456789"
    shape = board.loc[MEAN_SHAPE]
    assert pd.isna(shape["backward test_mtfl [95% CI]"]) and shape["profile"] == "-"
    scores.records["FSE K=10"]["profile"] = "smoke"  # a smoke run's numbers carry the word
    shown = comparison.leaderboard_table(scores, "cpu").data
    assert shown.loc["FSE K=10", "forward test_mtfl [95% CI]"].endswith("] smoke")
    assert not shown.loc["Zhang K=10", "forward test_mtfl [95% CI]"].endswith("smoke")


def test_a_difference_is_called_real_only_when_its_paired_interval_excludes_zero(monkeypatch, capsys):
    rng = np.random.default_rng(3)
    hard = rng.gamma(2.0, 5.0, 400)
    scores = _results({"worse": hard + 1.0 + rng.normal(0, 0.1, 400), "best": hard,
                       "same": hard + rng.normal(0, 0.5, 400)})
    pairs = comparison.paired_differences(scores)
    assert set(pairs["best"]) == {"best"}
    assert pairs.loc[("test_mtfl", "worse"), "real?"] == "yes"
    assert pairs.loc[("test_mtfl", "worse"), "difference (points of IOD)"] == pytest.approx(1.0, abs=0.05)
    assert pairs.loc[("test_aflw", "same"), "real?"] == "no: the interval holds 0"
    assert comparison.paired_differences(_results({"alone": hard})) is None
    shown = []
    monkeypatch.setattr(comparison, "display", shown.append)
    comparison.show_paired_differences(scores, "smoke")
    assert "real?" not in shown[0].data.columns and SMOKE_NOTE in capsys.readouterr().out
    comparison.show_paired_differences(_results({"alone": hard}), "cpu")
    assert "nothing to compare" in capsys.readouterr().out


def test_failure_rate_and_per_landmark_tables():
    scores = _results({"a": [5.0, 12.0, 20.0, 9.0], "b": [1.0, 2.0, 3.0, 11.0]})
    rates = comparison.failure_rates(scores)
    assert rates.loc["a", "failure rate test_mtfl (%)"] == 50.0 and rates.loc["b", "failure rate test_aflw (%)"] == 25.0
    scores = _scores({FSE_K10: 0.5})
    points = comparison.per_landmark_errors(scores, "test_aflw")
    assert list(points.columns) == list(comparison.POINTS)
    per_point = scores.results["FSE K=10"][("forward", "test_aflw")]["per_point"]
    assert points.loc["FSE K=10"].tolist() == [round(float(v), 2) for v in per_point]


def test_the_disagreement_spread_is_the_methods_distance_to_their_average_in_iod():
    labels = np.zeros((3, 5, 2))
    labels[:, 1, 0] = [20.0, 40.0, 10.0]  # the eyes 20, 40 and 10 pixels apart
    same = np.broadcast_to(labels, (2, 3, 5, 2)).copy()
    assert comparison.disagreement(same, labels) == pytest.approx([0, 0, 0])
    apart = same.copy()
    apart[0, :, :, 0] += 2.0  # one method 2 px to the right, the other 2 px to the left: 2 px from their average
    apart[1, :, :, 0] -= 2.0
    assert comparison.disagreement(apart, labels) == pytest.approx([10.0, 5.0, 20.0])


# --------------------------------------------------------------------------- protocol variants


def test_variant_scores_are_the_detections_scored_under_each_variant():
    scores = _scores({FSE_K10: 0.5}, records=False)
    found = comparison.variant_scores(scores)
    assert found["test_mtfl"]["book"]["FSE K=10"] == pytest.approx(scores.mean("FSE K=10", "test_mtfl"))
    assert found["test_aflw"]["box normaliser"]["FSE K=10"] < found["test_aflw"]["book"]["FSE K=10"]  # box > IOD
    assert set(found["test_aflw"]["intercept"]) == {"FSE K=10", MEAN_SHAPE}


def test_ranking_changes_name_the_pairs_a_variant_swaps():
    book = {"a": 1.0, "b": 2.0, "c": 3.0}
    found = {split: {"book": book, "swap": {"a": 1.0, "b": 3.5, "c": 3.0}, "same": {"a": 0.5, "b": 0.6, "c": 0.7}}
             for split in comparison.SPLITS}
    changes = comparison.ranking_changes_table(found)
    assert changes.loc[("test_mtfl", "swap"), "pairs swapped"] == "c now ahead of b"
    assert changes.loc[("test_mtfl", "swap"), "Kendall tau"] == pytest.approx(0.333)
    assert changes.loc[("test_aflw", "same"), "pairs swapped"] == "none"
    assert changes.loc[("test_aflw", "same"), "first place"] == "a"
    lines = comparison.ranking_verdicts(changes).splitlines()
    assert lines == [f"* On {split}, **swap** changes the ranking: c now ahead of b (τ = 0.333)." for split in comparison.SPLITS]
    unchanged = comparison.ranking_changes_table({split: {"book": book, "same": book} for split in comparison.SPLITS})
    assert comparison.ranking_verdicts(unchanged) == "No variant changes the ranking of these runs on either test split."
    alone = comparison.ranking_changes_table({split: {"book": {"a": 1.0}, "same": {"a": 2.0}} for split in comparison.SPLITS})
    assert alone["Kendall tau"].isna().all()


def test_smoke_rankings_show_the_first_place_only(monkeypatch, capsys):
    shown = []
    monkeypatch.setattr(comparison, "display", shown.append)
    found = {split: {"book": {"a": 1.0, "b": 2.0}, "swap": {"a": 3.0, "b": 2.0}} for split in comparison.SPLITS}
    comparison.show_ranking_changes(found, "smoke")
    assert SMOKE_NOTE in capsys.readouterr().out and len(shown) == 1
    assert list(shown[0].columns) == ["first place"] and shown[0]["first place"].tolist() == ["b (smoke)"] * 2
    shown.clear()
    comparison.show_ranking_changes(found, "cpu")
    assert "Kendall tau" in shown[0].columns and "**swap** changes the ranking" in shown[1].data


# --------------------------------------------------------------------------- references


def test_a_reference_whose_weights_no_longer_give_its_number_stops_the_chapter():
    verified = pd.DataFrame([{"model": "zhang/k10", "from the weights": 10.0072, "when written": 10.0072,
                              "record": 10.0065, "difference": 0.0}])
    assert comparison.check_verified(verified).startswith("1 reference(s) re-detected from their weights")
    with pytest.raises(RescoreMismatch, match="no longer give its number"):
        comparison.check_verified(verified.assign(difference=1e-3))
    with pytest.raises(RescoreMismatch, match="zhang/k10"):
        comparison.check_verified(verified.assign(record=10.02))  # the record moved away from its weights


def test_the_committed_leaderboard_is_shown_as_written():
    table = comparison.committed_leaderboard("reference").data
    written = pd.read_csv(comparison.RESULTS_DIR / "leaderboard.csv")
    assert len(table) == len(written)
    row = written[(written["method"] == "Zhang") & (written["K"] == 10)].iloc[0]
    assert table.loc[("Zhang", 10), "forward test_mtfl"] == row["forward test_mtfl"]
    assert table.loc[("mean shape", pd.NA), "record"] == "computed from MTFL-80's labels"
