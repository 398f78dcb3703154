"""The comparison chapter's machinery: intervals, paired differences, error distributions,
rankings, re-scoring from detections under protocol variants, finding runs without training,
and the leaderboard files checked against the records."""
import json
import shutil

import numpy as np
import pytest
import torch

from lmcore.book import leaderboard
from lmcore.experiments import BOOK_RUNS, EXPERIMENTS
from lmcore.errors import LmbookError
from lmcore.training.records import write_record
from lmcore.config import deep_update
from lmcore.evaluation import (PROTOCOL_VARIANTS, Detections, RegressionOptions, bootstrap_interval,
                               cumulative_error_distribution, failure_rate, forward_error, kendall_tau,
                               mean_shape_error, normalised_errors, paired_difference, ranking, ranking_changes)
from lmcore.data import LandmarkSet
from lmcore.training import find_run, resolve_config, run_detections, run_method
from lmcore.training import runs as runs_module

from test_runs import NO_FEW_SHOT, TINY


# --------------------------------------------------------------------------- statistics


def test_the_bootstrap_interval_holds_the_mean_and_narrows_as_faces_grow():
    rng = np.random.default_rng(0)
    small, large = rng.gamma(2.0, 4.0, 100), rng.gamma(2.0, 4.0, 1600)
    low_s, high_s = bootstrap_interval(small)
    low_l, high_l = bootstrap_interval(large)
    assert low_s < small.mean() < high_s and low_l < large.mean() < high_l
    # the standard error falls as 1 / sqrt(N): 16 times the faces, a quarter of the width
    assert 3.0 < (high_s - low_s) / (high_l - low_l) < 5.0
    # and the 95 % interval is about +-1.96 standard errors
    se = large.std() / np.sqrt(large.size)
    assert (high_l - low_l) == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert bootstrap_interval(large) == bootstrap_interval(large)  # seeded: the same interval every build


def test_a_difference_between_training_runs_widens_the_interval_over_seeds():
    from lmcore.evaluation import paired_difference_over_seeds

    rng = np.random.default_rng(2)
    hard = rng.gamma(2.0, 5.0, 400)
    # A is 0.5 worse on average, but each of its runs lands 2 points off at random (a seed spread
    # larger than the gap): the faces alone would call it certain, the runs do not allow it
    a = np.stack([hard + 0.5 + shift for shift in (-2.0, 0.0, 2.5)]) + rng.normal(0, 0.1, (3, 400))
    b = np.stack([hard, hard + 0.05, hard - 0.05])
    over_seeds = paired_difference_over_seeds(a, b)
    assert over_seeds["difference"] == pytest.approx(a.mean() - b.mean())
    assert not over_seeds["certain"] and over_seeds["low"] < 0 < over_seeds["high"]
    assert paired_difference(a.mean(0), b.mean(0))["certain"]  # faces only: falsely certain
    steady = np.stack([hard + 0.5] * 3) + rng.normal(0, 0.1, (3, 400))
    assert paired_difference_over_seeds(steady, b)["certain"]
    with pytest.raises(ValueError, match="same faces"):
        paired_difference_over_seeds(a, b[:, :-1])


def test_a_paired_difference_is_certain_where_the_separate_intervals_overlap():
    rng = np.random.default_rng(1)
    hard = rng.gamma(2.0, 5.0, 500)  # the faces' difficulty dominates both detectors' errors
    a = hard + 0.4 + rng.normal(0, 0.1, 500)
    b = hard
    a_low, a_high = bootstrap_interval(a)
    b_low, b_high = bootstrap_interval(b)
    assert a_low < b_high  # the intervals overlap ...
    paired = paired_difference(a, b)
    assert paired["certain"] and paired["low"] > 0 and paired["difference"] == pytest.approx(0.4, abs=0.05)
    noise = hard + rng.normal(0, 0.5, 500)
    assert not paired_difference(noise, hard)["certain"]
    with pytest.raises(ValueError, match="same faces"):
        paired_difference(a, b[:-1])


def test_error_distribution_failure_rate_and_rankings():
    errors = [1.0, 2.0, 3.0, 4.0]
    assert cumulative_error_distribution(errors, [0.0, 2.5, 4.0]).tolist() == [0.0, 0.5, 1.0]
    assert failure_rate([5.0, 12.0, 20.0, 9.0]) == 0.5
    scores = {"a": 3.0, "b": 1.0, "c": 2.0}
    assert ranking(scores) == ["b", "c", "a"]
    assert kendall_tau(scores, {"a": 30, "b": 10, "c": 20}) == pytest.approx(1.0)
    assert kendall_tau(scores, {"a": 1, "b": 3, "c": 2}) == pytest.approx(-1.0)
    assert kendall_tau(scores, {"a": 3, "b": 2, "c": 1}) == pytest.approx(1 / 3)  # two of three pairs kept
    assert ranking_changes(scores, {"a": 3, "b": 2, "c": 1}) == [("b", "c")]
    assert ranking_changes(scores, scores) == []
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_interval([1.0, float("nan")])


# --------------------------------------------------------------------------- re-scoring from detections


def _sets(n_train=200, n_test=80, seed=0):
    """Faces with known labels and a detector whose K = 4 points are a linear map of them plus noise."""
    rng = np.random.default_rng(seed)

    def make(n, name):
        centre = rng.uniform(30, 50, (n, 1, 2))
        shape = np.array([[-10, -8], [10, -8], [0, 2], [-8, 10], [8, 10]], dtype=np.float64)
        points = centre + shape * rng.uniform(0.8, 1.2, (n, 1, 1)) + rng.normal(0, 1.0, (n, 5, 2))
        return LandmarkSet(name, [f"{name}/{i}.jpg" for i in range(n)], torch.zeros(n, 3, 4, 4, dtype=torch.uint8),
                           torch.tensor(points, dtype=torch.float32))

    train, test = make(n_train, "train"), make(n_test, "test")
    mix = rng.normal(0, 0.3, (10, 8))

    def detect(s):
        flat = s.points.double().numpy().reshape(len(s), 10) @ mix
        return torch.tensor(flat.reshape(len(s), 4, 2) + rng.normal(0, 0.5, (len(s), 4, 2)), dtype=torch.float32)

    return Detections(train, detect(train), {"test": test}, {"test": detect(test)})


def test_per_face_errors_are_the_recorded_mean_split_by_face():
    d = _sets()
    result = d.error("test", per_image=True)
    assert result["per_image"].shape == (80,)
    assert result["per_image"].mean() == pytest.approx(result["mean"], rel=1e-12)
    assert result["ci95"][0] < result["mean"] < result["ci95"][1]
    truth = d.test_sets["test"].points.numpy()
    assert normalised_errors(result["predicted"], truth).mean(1) == pytest.approx(result["per_image"])
    direct = forward_error(d.regressor_points, d.regressor_set.points, d.test_points["test"], truth)
    assert direct["mean"] == pytest.approx(result["mean"])  # the same fit as the protocol's


def test_protocol_variants_are_recorded_and_change_what_they_say():
    d = _sets()
    book = d.error("test", options=PROTOCOL_VARIANTS["book"])
    imm = d.error("test", options=PROTOCOL_VARIANTS["IMM regressor set"])
    assert imm["options"]["regressor_images"] == 180 and book["options"]["regressor_images"] == 200
    box = d.error("test", options=PROTOCOL_VARIANTS["box normaliser"], per_image=True)
    eyes = d.error("test", options=PROTOCOL_VARIANTS["book"], per_image=True)
    truth = d.test_sets["test"].points.numpy()
    iod = np.linalg.norm(truth[:, 0] - truth[:, 1], axis=-1)
    diagonal = np.linalg.norm(truth.max(1) - truth.min(1), axis=-1)
    # the same predictions measured against another distance (the ridge is tuned per normaliser:
    # compare the least-squares fits, whose predictions cannot depend on it)
    ls_box = d.error("test", options=RegressionOptions(ridge=0.0, normaliser="box"), per_image=True)
    ls_eyes = d.error("test", options=RegressionOptions(ridge=0.0), per_image=True)
    assert ls_box["per_image"] == pytest.approx(ls_eyes["per_image"] * iod / diagonal)
    assert box["options"]["normaliser"] == "box" and eyes["options"]["normaliser"] == "eyes"
    sanchez = d.error("test", options=PROTOCOL_VARIANTS["Sanchez ridge"])
    assert sanchez["options"]["intercept"] and sanchez["options"]["ridge_scale"] == "max_entry"
    few = d.error("test", options=PROTOCOL_VARIANTS["n = 100"])
    assert len(few["repeats"]) == 10 and few["options"]["train_size"] == 100


def test_a_direct_detector_and_the_mean_shape_are_scored_as_the_protocol_defines():
    d = _sets()
    truth = d.test_sets["test"].points
    exact = Detections(d.regressor_set, d.regressor_set.points, d.test_sets, {"test": truth + 0.5}, kind="direct")
    assert exact.error("test")["mean"] == pytest.approx(normalised_errors(truth + 0.5, truth).mean())
    with pytest.raises(ValueError, match="no backward error"):
        exact.error("test", "backward")
    shape = Detections.mean_shape(d.regressor_set, d.test_sets)
    expected = mean_shape_error(d.regressor_set.points, truth)["mean"]
    assert shape.error("test")["mean"] == pytest.approx(expected)
    assert shape.error("test", options=PROTOCOL_VARIANTS["book"])["mean"] == pytest.approx(expected)


def test_saved_detections_are_read_back_only_for_the_same_faces(tmp_path):
    d = _sets()
    d.save(tmp_path / "d.pt")
    back = Detections.load(tmp_path / "d.pt", d.regressor_set, d.test_sets)
    assert back is not None and torch.equal(back.test_points["test"], d.test_points["test"])
    other = _sets(n_test=79)
    assert Detections.load(tmp_path / "d.pt", d.regressor_set, other.test_sets) is None
    (tmp_path / "bad.pt").write_bytes(b"not a file torch wrote")
    assert Detections.load(tmp_path / "bad.pt", d.regressor_set, d.test_sets) is None


# --------------------------------------------------------------------------- runs found, not trained


def test_find_run_finds_the_finished_run_and_never_trains(isolated_runs, monkeypatch):
    assert find_run("fse", "smoke", "tiny", TINY) is None
    assert not isolated_runs.exists() or not any(isolated_runs.rglob("record.json"))
    record = run_method("fse", "smoke", name="tiny", overrides=TINY, few_shot=NO_FEW_SHOT)
    found = find_run("fse", "smoke", "tiny", TINY)
    assert found is not None and found["identity"] == record["identity"] and found.run_dir == record.run_dir
    assert find_run("fse", "smoke", "tiny", deep_update(TINY, {"train": {"steps": 4}})) is None
    monkeypatch.setattr(runs_module, "code_fingerprint", lambda method=None, **kw: "changed-code")
    assert find_run("fse", "smoke", "tiny", TINY) is None  # stale: the code that trained it changed


def test_a_child_is_not_found_when_its_parent_is_stale(isolated_runs, fse_with_parents):
    parent = {"core": {"method": "fse", "name": "core", "overrides": TINY}}
    child_overrides = deep_update(TINY, {"parents": parent})
    run_method("fse", "smoke", name="child", overrides=child_overrides, few_shot=NO_FEW_SHOT)
    assert find_run("fse", "smoke", "child", child_overrides) is not None
    core = find_run("fse", "smoke", "core", TINY)
    shutil.rmtree(core.run_dir)
    assert find_run("fse", "smoke", "child", child_overrides) is None


def test_run_detections_are_kept_and_reused_without_the_network(isolated_runs, mtfl, monkeypatch):
    record = run_method("fse", "smoke", name="tiny", overrides=TINY, few_shot=NO_FEW_SHOT)
    regressor, tests = mtfl.split("regressor_train", every=40), {"test_mtfl": mtfl.split("test_mtfl", every=40)}
    first = run_detections(record, regressor, tests)
    assert list(record.run_dir.glob("detections-*.pt"))
    monkeypatch.setattr(runs_module, "load_trained", lambda *a, **k: pytest.fail("detected again"))
    again = run_detections(record, regressor, tests)
    assert torch.equal(again.test_points["test_mtfl"], first.test_points["test_mtfl"])
    # the same numbers as the run's own evaluation would give on these faces
    assert again.error("test_mtfl")["mean"] == pytest.approx(first.error("test_mtfl")["mean"])


# --------------------------------------------------------------------------- the leaderboard


def test_every_book_run_resolves_to_its_number_of_landmarks():
    for run in BOOK_RUNS:
        for profile in ("smoke", "cpu", "paper"):
            config = resolve_config(run.method, profile, run.resolved_overrides(profile))
            if run.num_landmarks is not None:
                assert config["method"]["num_landmarks"] == run.num_landmarks, (run, profile)


def test_the_committed_leaderboard_agrees_with_the_records():
    assert leaderboard.check_leaderboard() == [], "regenerate with: python -m lmcore.book.leaderboard"


def test_the_leaderboard_check_fails_when_a_record_changes(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(leaderboard.RESULTS_DIR, results)
    leaderboard.write_leaderboard(results)
    assert leaderboard.check_leaderboard(results) == []
    path = results / "fse" / "k10.json"
    record = json.loads(path.read_text())
    record["metrics"]["forward"]["test_mtfl"]["mean"] += 1.0
    path.write_text(json.dumps(record))  # edited by hand: its digest no longer matches
    with pytest.raises(LmbookError, match="changed after it was written"):
        leaderboard.check_leaderboard(results)
    write_record(path, record)  # re-published with other numbers: the board must follow
    assert leaderboard.check_leaderboard(results) == ["leaderboard.csv disagrees with the run records",
                                                      "leaderboard.json disagrees with the run records"]
    rows = {r["run"]: r for r in json.loads(leaderboard.leaderboard_files(results)[results / "leaderboard.json"])["rows"]}
    assert rows["fse/k10"]["forward test_mtfl"] == pytest.approx(record["metrics"]["forward"]["test_mtfl"]["mean"], abs=1e-3)


def test_the_leaderboard_tool_reports_missing_data_in_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("LMBOOK_DATA_ROOT", str(tmp_path / "typo"))
    assert leaderboard.main(["--check"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("lmcore.book.leaderboard: ") and "typo is not a folder" in err and "\n" not in err
