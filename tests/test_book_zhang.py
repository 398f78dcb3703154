"""Chapter 2's tables, figures and verdicts (lmcore.book.zhang)."""
from types import SimpleNamespace

import matplotlib
import pytest
import torch

from lmcore.book import papers, zhang
from lmcore.book.references import reference_record
from lmcore.experiments import EXPERIMENTS
from lmcore.training.run_record import RunRecord

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from lmcore.experiments import method_settings


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _record(name="r", k=10, profile="cpu", tune=None, forward=(5.0, 9.0), label=None, few_shot=None):
    """A run record with the errors the chapter's tables read (synthetic numbers)."""
    metrics = {metric: {"test_mtfl": {"mean": forward[0] + i}, "test_aflw": {"mean": forward[1] + i}}
               for i, metric in enumerate(("forward", "backward", "consistency"))}
    if tune is not None:
        metrics["tune"] = {"tune_val": {"mean": tune}}
    if few_shot is not None:
        metrics["few_shot"] = {"test_mtfl": few_shot}
    fields = {"method": "zhang", "run_name": name, "profile": profile, "steps": 100,
              "config": {"method": {"num_landmarks": k}, "train": {"batch_size": 8}}, "metrics": metrics}
    if label is not None:
        fields["tuning_label"] = label
    return RunRecord(fields, run_dir="/nonexistent")


# ------------------------------------------------------------------------------ runs and verdicts

def test_headline_runs_are_keyed_by_their_number_of_landmarks():
    asked = []

    def headline_runs(chapter_stem):
        asked.append(chapter_stem)
        return {"k30": "the K = 30 record", "k10": "the K = 10 record"}

    runs = zhang.headline_runs_by_k(SimpleNamespace(headline_runs=headline_runs))
    assert asked == ["02_zhang"]
    assert list(runs.items()) == [(10, "the K = 10 record"), (30, "the K = 30 record")]  # the experiment's order
    missing = zhang.headline_runs_by_k(SimpleNamespace(headline_runs=lambda stem: {"k30": "r"}))
    assert missing == {30: "r"}


def test_tuning_verdicts_name_the_best_setting_per_k_and_what_each_released_part_costs():
    records = [_record(k=10, tune=20.0, label=zhang.CODE_BALANCE_LABEL),
               _record(k=10, tune=12.5, label="K = 10, before the audit"),
               _record(k=10, tune=17.0, label=zhang.EARLIER_PART_LABEL.format(part="warps")),
               _record(k=30, tune=9.0, label="K = 30, the code's balance"),
               _record(k=30, tune=11.0, label="K = 30, before the audit")]
    lines = zhang.tuning_verdicts(records)
    assert lines == ["K = 10: lowest tune_val error: 'K = 10, the book's earlier settings' (12.50 %)",
                     "K = 30: lowest tune_val error: 'K = 30, the code's balance' (9.00 %)",
                     "K = 10, the code's warps cost +3.00 points of tune_val error against the earlier ones"]
    assert zhang.tuning_verdicts([]) == []


def test_tuning_verdicts_of_the_committed_sweep():
    from lmcore.book.reporting import reader_label, tuning_records

    records = tuning_records("zhang")
    by_label = {r["tuning_label"]: r.tune_error() for r in records}
    lines = zhang.tuning_verdicts(records)
    assert lines[0].startswith("K = 10: lowest tune_val error: ") and lines[1].startswith("K = 30: ")
    best10 = min((e, label) for label, e in by_label.items() if label.startswith("K = 10,"))
    assert f"'{reader_label(best10[1])}' ({best10[0]:.2f} %)" in lines[0]
    cost = by_label[zhang.CODE_BALANCE_LABEL] - by_label[zhang.EARLIER_PART_LABEL.format(part="decoder")]
    assert lines[3] == f"K = 10, the code's decoder cost {cost:+.2f} points of tune_val error against the earlier ones"


def test_k_verdict_follows_the_tune_val_errors_and_draws_nothing_from_smoke_runs():
    better = {10: _record(tune=10.0), 30: _record(k=30, tune=9.5)}
    worse = {10: _record(tune=10.0), 30: _record(k=30, tune=10.5)}
    assert zhang.k_verdict(better, "cpu") == ("tune_val: K = 10 10.00 %, K = 30 9.50 % -> "
                                              "K = 30 is not worse than K = 10 [cpu]")
    assert "K = 30 is worse than K = 10 [paper]" in zhang.k_verdict(worse, "paper")
    assert "smoke profile" in zhang.k_verdict(worse, "smoke")


def test_reference_verdict_compares_the_committed_k10_and_k30_runs():
    references = zhang.references_beside_fse()
    zhang10, zhang30 = reference_record("zhang", "k10"), reference_record("zhang", "k30")
    expected = "not worse than" if zhang30.tune_error() <= zhang10.tune_error() else "worse than"
    verdict = zhang.reference_k_verdict(references)
    assert verdict == (f"references ({zhang10.steps} / {zhang30.steps} steps), tune_val: K = 10 "
                       f"{zhang10.tune_error():.2f} %, K = 30 {zhang30.tune_error():.2f} % -> "
                       f"K = 30 is {expected} K = 10")
    assert zhang.reference_k_verdict([r for r in references if r.method == "fse"]) is None  # chapter 1's are not judged
    assert zhang.reference_k_verdict([zhang10]) is None
    untuned = RunRecord({**zhang30, "metrics": {k: v for k, v in zhang30["metrics"].items() if k != "tune"}})
    assert zhang.reference_k_verdict([zhang10, untuned]) is None


# ------------------------------------------------------------------------------ tables

def test_table1_holds_the_records_errors_beside_the_papers():
    runs = {10: reference_record("zhang", "k10"), 30: reference_record("zhang", "k30")}
    table = zhang.table1(runs, "reference").data
    for k, record in runs.items():
        assert table.loc[k, "test_mtfl (%)"] == round(record.forward("test_mtfl"), 2)
        assert table.loc[k, "test_aflw (%)"] == round(record.forward("test_aflw"), 2)
        assert table.loc[k, "paper: AFLW"] == papers.ZHANG_TABLE1["rows"][k]["AFLW"]
    smoke = zhang.table1({10: _record(profile="smoke")}, "smoke").data
    assert smoke.loc[10, "test_mtfl (%)"] == "5.00 smoke" and smoke.loc[10, "paper: MAFL"] == 3.46


def test_mean_shape_line_rounds_the_yardstick():
    source = papers.ZHANG_TABLE1["source"]
    assert zhang.mean_shape_line(8.4567) == f"mean-shape baseline on test_mtfl: 8.46 % IOD; {source}"


def test_table1c_labels_each_ablation_run_and_quotes_the_papers_row():
    full = _record(name="k10", forward=(4.0, 8.0))  # the main run, reused as the full loss
    runs = {"full L": full, "w/o L_sep": _record(name="ablation-w-o-l-sep", forward=(6.0, 10.0))}
    table = zhang.table1c(runs, "cpu").data
    assert list(table.index) == ["full L", "w/o L_sep"]
    assert table[("forward", "test_mtfl")]["w/o L_sep"] == 6.0  # columns (metric, split)
    assert table[("backward", "test_aflw")]["full L"] == 9.0
    assert table[("paper: MAFL", "")]["w/o L_sep"] == papers.ZHANG_TABLE1["ablation"]["w/o sep"]
    assert set(zhang.PAPER_ABLATION) == set(zhang.ABLATIONS)


def test_tps_ratio_variants_set_the_budgets_fractions():
    for settings in ("smoke", "cpu", "paper"):
        ratios = method_settings("zhang").budget(settings).variants["tps_ratios"]
        variants = zhang.tps_ratio_variants(settings)
        assert list(variants) == list(ratios)
        assert [v["method"]["landmark_control_fraction"] for v in variants.values()] == list(ratios.values())


def test_table5_holds_each_ratios_errors_beside_the_papers():
    runs = {"10:0": _record(forward=(5.0, 9.0)), "7:3": _record(forward=(4.5, 8.123))}
    table = zhang.table5(runs, "cpu").data
    assert table.index.name == "grid:landmark" and list(table.index) == ["10:0", "7:3"]
    assert table.loc["7:3", "test_aflw (%)"] == 8.12
    assert table.loc["7:3", "paper: CelebA-regressor MAFL"] == papers.ZHANG_TABLE1["tps_ratio"]["7:3"]


def test_few_shot_curves_are_each_runs_test_mtfl_curve():
    curve = [{"n": 1, "mean": 20.0, "std": 1.0}]
    curves = zhang.few_shot_curves({10: _record(few_shot=curve)}, "cpu")
    assert curves == {"K = 10, test_mtfl [cpu]": curve}


# ------------------------------------------------------------------------------ references

def test_references_beside_fse_are_chapter_1s_runs_of_the_same_names():
    references = zhang.references_beside_fse()
    names = {run.name for run in EXPERIMENTS["02_zhang"].runs}
    fse = [r for r in references if r.method == "fse"]
    assert {r.run_name for r in fse} == names  # chapter 1's K = 50 run is left out
    assert references[0].method == "zhang" and references[-1].method == "fse"
    assert zhang.method_and_run(references[0]) == f"zhang {references[0].run_name}"


def test_references_section_says_when_there_are_none(monkeypatch, capsys):
    shown = []
    monkeypatch.setattr(zhang, "display", shown.append)
    monkeypatch.setattr(zhang, "references_beside_fse", lambda: [RunRecord({**_record(name="k10"), "method": "fse"})])
    zhang.show_references_beside_fse(SimpleNamespace(mean_shape=8.0))
    assert capsys.readouterr().out == "no committed reference runs under results/zhang/\n" and not shown


def test_references_section_shows_the_tables_and_the_verdict(monkeypatch, capsys):
    shown = []
    monkeypatch.setattr(zhang, "display", shown.append)
    records = zhang.show_references_beside_fse(SimpleNamespace(mean_shape=8.0))
    protocol, provenance = shown
    assert list(protocol.index) == [zhang.method_and_run(r) for r in records] == list(provenance.index)
    assert capsys.readouterr().out == zhang.reference_k_verdict(records) + "\n"


# ------------------------------------------------------------------------------ figures

class FakeAutoencoder:
    """Stands in for a trained Zhang model: landmarks are fixed, the decoding is the view, and
    every decoding's landmarks are kept."""

    num_landmarks = 3

    def __init__(self, size=16):
        self.size = size
        self.decoded_at = []
        self.model = SimpleNamespace(detection_maps=lambda view: torch.rand(len(view), self.num_landmarks + 1, 8, 8))

    def to_view(self, images):
        return images

    def detect(self, images):
        return torch.zeros(len(images), self.num_landmarks, 2)

    def reconstruct(self, images, points=None):
        own = images.mean((1, 2, 3))[:, None, None].expand(-1, self.num_landmarks, 2) - 0.5
        if points is not None:
            self.decoded_at.append(points.clone())
        view = images[..., :self.size, :self.size]
        return {"points": own if points is None else points, "view": view, "reconstruction": view}


def _face(value, size=16):
    return torch.full((1, 3, size, size), value)


def test_shown_checkpoints_are_at_most_four_evenly_spaced_then_the_final_weights():
    assert zhang.shown_checkpoints([]) == []
    assert zhang.shown_checkpoints([100, 200]) == [100, 200, None]
    assert zhang.shown_checkpoints(list(range(100, 1100, 100))) == [100, 300, 500, 700, None]


def test_detection_maps_show_every_channel_of_each_kept_checkpoint_or_the_final_weights():
    model = FakeAutoencoder()
    record = _record(k=model.num_landmarks)
    loaded = []
    chapter = SimpleNamespace(profile="cpu", model=lambda r, step=None: loaded.append(step) or model)
    fig = zhang.detection_maps_figure(chapter, record, model, _face(0.5))
    assert len(fig.axes) == model.num_landmarks + 1 and loaded == []  # no kept checkpoints: the final model
    assert "at the end of training (3 landmarks" in fig._suptitle.get_text()
    record.kept_checkpoints = lambda: [(50, None), (100, None)]
    fig = zhang.detection_maps_figure(chapter, record, model, _face(0.5))
    assert loaded == [50, 100, None] and len(fig.axes) == 3 * (model.num_landmarks + 1)
    assert [fig.axes[row * 4].get_title(loc="left") for row in range(3)] == ["step 50", "step 100", "step 100"]


def test_interpolated_points_run_from_the_first_shape_to_the_second():
    start, end = torch.zeros(1, 2, 2), torch.ones(1, 2, 2)
    points = zhang.interpolated_points(start, end, [0.0, 0.25, 1.0])
    assert torch.equal(points[0], start) and torch.equal(points[2], end) and torch.allclose(points[1], end / 4)


def test_strip_decodes_face_a_at_shapes_moving_towards_face_bs():
    model = FakeAutoencoder()
    a, b = _face(0.2), _face(0.8)
    fig = zhang.moved_landmarks_strip(model, a, b, "cpu", alphas=(0.0, 0.5, 1.0))
    points_a, points_b = model.reconstruct(a)["points"], model.reconstruct(b)["points"]
    assert len(model.decoded_at) == 3
    assert torch.allclose(model.decoded_at[0], points_a) and torch.allclose(model.decoded_at[2], points_b)
    assert torch.allclose(model.decoded_at[1], (points_a + points_b) / 2)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["face A", "A's descriptors, 0.00 of B's shape", "A's descriptors, 0.50 of B's shape",
                      "A's descriptors, 1.00 of B's shape", "face B"]
    assert fig._suptitle.get_text() == "Decoding with moved landmarks (K = 3) [cpu]"


def test_manipulation_tool_decodes_with_the_chosen_landmark_moved():
    model = FakeAutoencoder()
    face = _face(0.3)
    tool = zhang.manipulation_tool(model, face, "cpu")
    controls = tool.children[1]
    landmark, dx, dy = controls.children[:3]
    assert landmark.max == model.num_landmarks - 1 and "cpu profile" in tool.children[0].value
    own = model.reconstruct(face)["points"]
    assert torch.allclose(model.decoded_at[-1], own)  # drawn once, nothing moved
    landmark.value, dx.value = 2, 0.1
    moved = model.decoded_at[-1]
    assert torch.allclose(moved[0, 2], own[0, 2] + torch.tensor([0.1, 0.0]))
    assert torch.allclose(moved[0, :2], own[0, :2])


def test_mnist_figures_show_two_examples_of_each_digit_and_the_morphs():
    from lmcore.data.registry_sets import mnist_path

    if not mnist_path().exists():
        pytest.skip("MNIST not fetched (data_scripts/fetch_mnist.py)")
    model = FakeAutoencoder(size=56)
    fig19, fig20 = zhang.mnist_figures(model, "smoke", pairs=((2, 9), (1, 7)))
    assert len(fig19.axes) == 20
    assert fig19._suptitle.get_text() == "Fig. 19: 3 landmarks on all ten digits, one model [smoke]"
    assert len(fig20.axes) == 2 * 7 and "[(2, 9), (1, 7)]" in fig20._suptitle.get_text()
    assert len(model.decoded_at) == 2 * 7


def test_padded_mnist_is_each_digit_in_a_56_px_frame():
    from lmcore.data.registry_sets import mnist_path

    if not mnist_path().exists():
        pytest.skip("MNIST not fetched (data_scripts/fetch_mnist.py)")
    images, labels = zhang.padded_mnist()
    assert images.shape[1:] == (1, 56, 56) and len(labels) == len(images)
    assert float(images.max()) <= 1.0 and float(images[..., :14, :].abs().sum()) == 0.0  # the padding is background
