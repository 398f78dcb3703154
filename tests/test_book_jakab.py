"""Chapter 3's sections (:mod:`lmcore.book.jakab`): the runs it asks for, the verdicts it prints,
the tables' numbers, the figures' landmarks, and the "missing" message of each section."""
import matplotlib

matplotlib.use("Agg")

import math  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lmcore.book import jakab, papers  # noqa: E402
from lmcore.book.chapter import Chapter  # noqa: E402
from lmcore.experiments import FACE_FEW_SHOT  # noqa: E402
from lmcore.geometry.coords import normalized_to_pixels  # noqa: E402
from lmcore.training import load_references  # noqa: E402
from lmcore.training.run_record import RunRecord  # noqa: E402
from lmcore.experiments import method_settings


class FakeChapter:
    """What the sections read of a :class:`~lmcore.book.chapter.Chapter`; ``missing`` collects."""

    def __init__(self, profile="reference", images=None, mean_shape=10.0):
        self.profile, self.mean_shape, self.said = profile, mean_shape, []
        self.test_mtfl = type("Faces", (), {"images": images})()

    @property
    def target(self):
        return self.mean_shape / 2

    def missing(self, what):
        self.said.append(what)

    def compare_with_references(self, records):
        pass


class FakeModel:
    """A generator whose landmarks are fixed normalised points and whose rendering is its input."""

    def __init__(self, points):
        self.points = points  # (K, 2) in [-1, 1]

    def to_view(self, images):
        return images

    def swap(self, appearance, pose):
        n = len(pose)
        return {"appearance_view": appearance, "pose_view": pose, "generated": appearance,
                "points": self.points.expand(n, -1, -1)}


@pytest.fixture()
def shown(monkeypatch):
    """What the sections display, instead of displaying it; figures are closed, not shown."""
    out = []
    monkeypatch.setattr(jakab, "display", out.append)
    monkeypatch.setattr(plt, "show", lambda: plt.close("all"))
    return out


def _tuning(label, error):
    return RunRecord({"tuning_label": label, "metrics": {"tune": {"tune_val": {"mean": error}}}})


def _run(k, few_shot=True):
    curve = [{"n": 1, "mean": 20.0 + k, "std": 1.0}, {"n": 10, "mean": 10.0 + k, "std": 0.5}]
    metrics = {"few_shot": {"test_mtfl": curve, "test_aflw": curve}} if few_shot else {}
    return RunRecord({"run_name": f"run{k}", "method": "jakab", "profile": "smoke", "metrics": metrics,
                      "config": {"method": {"num_landmarks": k}}})


# --------------------------------------------------------------------------- runs asked for

def test_headline_runs_are_those_the_chapter_trained_before(monkeypatch):
    """The training profiles must ask for the same runs: ``k<K>`` with ``num_landmarks`` K and the
    face chapters' few-shot sizes, K = 10 first."""
    from lmcore.book import chapter as chapter_module

    calls = []
    def run_method(method, profile, name, overrides, few_shot=None):
        calls.append((method, profile, name, overrides, few_shot))
        return _run(overrides["method"]["num_landmarks"])

    monkeypatch.setattr(chapter_module, "run_method", run_method)
    runs = jakab.headline(Chapter("smoke", None, None, None, None, 0.0, 0.0))
    assert calls == [("jakab", "smoke", f"k{k}", {"method": {"num_landmarks": k}}, FACE_FEW_SHOT) for k in (10, 30)]
    assert list(runs) == [10, 30] == list(jakab.K_VALUES) and jakab.MAIN_K == 10
    assert runs[30].num_landmarks == 30


def test_headline_runs_leave_out_those_without_a_record():
    class Found(FakeChapter):
        def headline_runs(self, chapter):
            assert chapter == "03_jakab"
            return {"k30": "the K = 30 record"}

    assert jakab.headline(Found()) == {30: "the K = 30 record"}


def test_ablation_asks_for_the_two_losses_over_the_budgets_ablation_config(monkeypatch):
    from lmcore.book import chapter as chapter_module

    calls = []
    monkeypatch.setattr(chapter_module, "run_variants", lambda method, profile, variants, **kw:
                        calls.append((method, profile, variants, kw)) or {"pixel (MSE)": "a record"})
    smoke = Chapter("smoke", None, None, None, None, 0.0, 0.0)
    main = _run(10)
    assert jakab.ablation(smoke, main) == {"pixel (MSE)": "a record"}
    method, profile, variants, kw = calls[0]
    assert (method, profile) == ("jakab", "smoke")
    assert variants == {"perceptual (VGG16)": {}, "pixel (MSE)": {"method": {"loss": "pixel"}}}
    jakab_settings = method_settings("jakab")
    assert kw["base"] == jakab_settings.ablation_config("smoke", jakab_settings.default_config("smoke"))
    assert kw["prefix"] == "ablation" and kw["reuse"] == [main]
    jakab.ablation(smoke, None)
    assert calls[1][3]["reuse"] == []


# --------------------------------------------------------------------------- verdicts and tables

def test_tuning_verdict_names_the_lowest_error_and_its_margin_over_the_earlier_settings():
    lines = jakab.tuning_verdict([_tuning("before the audit", 13.25), _tuning("new", 12.0), _tuning("other", 14.0)])
    assert lines[0] == "lowest tune_val error: 'new' (12.00 %)"
    assert lines[1].startswith("its margin over the earlier settings: 1.25 points")
    assert jakab.tuning_verdict([_tuning("before the audit", 11.0), _tuning("new", 12.0)]) == [
        "lowest tune_val error: 'the book's earlier settings' (11.00 %)"]  # no margin over itself
    assert len(jakab.tuning_verdict([_tuning("a", 2.0), _tuning("b", 1.0)])) == 1  # no earlier settings swept
    assert jakab.tuning_verdict([]) == []


def test_tuning_verdict_of_the_committed_sweep_names_its_lowest_record():
    from lmcore.book.reporting import tuning_records

    records = tuning_records("jakab")
    best = min(records, key=lambda r: r.tune_error())
    expected = f"lowest tune_val error: '{best['tuning_label']}' ({best.tune_error():.2f} %)"
    assert jakab.tuning_verdict(records)[0] == expected


def test_papers_table_quotes_the_papers():
    table = jakab.papers_table()
    for k, row in papers.JAKAB["rows"].items():
        assert table.loc["forward MAFL", f"K = {k}"] == row["MAFL"]
        assert table.loc["forward AFLW", f"K = {k}"] == row["AFLW"]
    scratch = papers.JAKAB["sanchez_scratch"]
    for metric in ("forward", "backward", "consistency"):
        assert table.loc[f"{metric} AFLW", "Sanchez 'Scratch', K = 10"] == scratch[metric]["AFLW"]
    assert math.isnan(table.loc["backward MAFL", "K = 10"])  # Jakab et al. report forward errors only
    assert list(table.index)[:2] == ["forward MAFL", "forward AFLW"]


def test_runs_section_shows_the_records_numbers_and_names_the_missing_k(shown, capsys):
    k10 = next(r for r in load_references("jakab") if r.run_name == "k10")
    chapter = FakeChapter()
    source = type("Criterion", (), {"source": "the weights' source"})()
    jakab.show_runs(chapter, {10: k10}, {10: type("Model", (), {"criterion": source})()})
    assert capsys.readouterr().out == "VGG16 weights: the weights' source\n"
    provenance, protocol = shown
    assert protocol[("forward", "test_mtfl")]["K = 10"] == round(k10["metrics"]["forward"]["test_mtfl"]["mean"], 2)
    assert provenance.loc["k10", "steps"] == k10.steps
    assert chapter.said == ["The runs of K = 30"]


def test_runs_section_without_runs_shows_nothing_but_what_is_missing(shown, capsys):
    chapter = FakeChapter()
    jakab.show_runs(chapter, {}, {})
    assert shown == [] and capsys.readouterr().out == ""
    assert chapter.said == ["The runs of K = 10, 30"]


def test_ablation_rows_are_its_labels_or_it_is_missing(shown):
    records = {"perceptual (VGG16)": _run(10), "pixel (MSE)": _run(10)}
    records["pixel (MSE)"]["metrics"] = {"forward": {"test_mtfl": {"mean": 7.123}}}
    jakab.show_ablation(FakeChapter(), records)
    assert list(shown[0].index) == ["perceptual (VGG16)", "pixel (MSE)"]
    assert shown[0][("forward", "test_mtfl")]["pixel (MSE)"] == 7.12
    chapter = FakeChapter()
    jakab.show_ablation(chapter, {})
    assert chapter.said == ["The ablation, perceptual against pixel loss"]


# --------------------------------------------------------------------------- curves

def test_few_shot_curves_are_the_records_and_a_run_without_one_is_named(shown):
    runs = {10: _run(10), 30: _run(30, few_shot=False)}
    curves = jakab.few_shot_curves(runs, "smoke")
    assert list(curves) == ["K = 10, test_mtfl [smoke]", "K = 10, test_aflw [smoke]"]
    assert curves["K = 10, test_mtfl [smoke]"] is runs[10]["metrics"]["few_shot"]["test_mtfl"]
    chapter = FakeChapter("smoke")
    jakab.show_few_shot(chapter, runs)
    assert chapter.said == ["The few-shot curves of K = 30 (measured from a model's weights)"]
    chapter = FakeChapter("smoke")
    jakab.show_few_shot(chapter, {10: _run(10), 30: _run(30)})
    assert chapter.said == []


def test_reference_curves_draw_the_target_and_the_verdicts_follow_it(shown, capsys):
    references = load_references("jakab")
    ax = jakab.reference_curves(references, mean_shape=12.0, target=6.0)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines["target: half the mean shape"].get_ydata()) == {6.0}
    assert set(lines["mean shape"].get_ydata()) == {12.0}
    plt.close("all")
    for mean_shape in (0.1, 1000.0):  # every reference misses, then meets, the target
        jakab.show_reference_curves(FakeChapter(mean_shape=mean_shape), references)
        out = capsys.readouterr().out.splitlines()
        assert len(out) == len(references)
        assert all(("misses" in line) == (mean_shape < 1) for line in out)
    jakab.show_reference_curves(FakeChapter(), [])
    assert capsys.readouterr().out == ""


# --------------------------------------------------------------------------- figures of the generator

def test_figures_draw_the_landmarks_at_their_pixels_and_render_every_pair(shown):
    points = torch.tensor([[-0.5, 0.0], [0.5, 0.5]])
    images = torch.rand(3, 3, 16, 16)
    expected = normalized_to_pixels(points, 16).numpy()
    fig = jakab.reconstruction_figure(FakeModel(points), images, "title")
    assert fig.axes[0].collections[0].get_offsets().tolist() == expected.tolist()  # the first target's points
    assert len(fig.axes) == 2 * 3
    fig = jakab.swap_grid_figure(FakeModel(points), images, "title")
    assert len(fig.axes) == 4 * 4 and fig.axes[1].collections[0].get_offsets().tolist() == expected.tolist()
    plt.close("all")
    pngs = jakab.face_swap_pngs(FakeModel(points), images)
    assert len(pngs) == 3 and all(len(row) == 3 for row in pngs)
    assert all(png.startswith(b"\x89PNG") for row in pngs for png in row)


def test_face_swap_names_the_faces_it_renders(shown, monkeypatch):
    chapter = FakeChapter(images=(torch.rand(30, 3, 16, 16) * 255).to(torch.uint8))
    captured = {}
    monkeypatch.setattr(jakab.viz, "pair_stack", lambda pngs, rows, cols, **kw:
                        captured.update(pngs=pngs, rows=rows) or "widget")
    jakab.show_face_swap(chapter, FakeModel(torch.zeros(1, 2)))
    assert captured["rows"] == [f"test_mtfl face {i}" for i in range(20, 26)] and shown == ["widget"]
    assert len(captured["pngs"]) == 6


def test_sections_without_a_model_or_snapshots_say_so(shown):
    chapter = FakeChapter()
    jakab.show_reconstructions(chapter, None)
    jakab.show_face_swap(chapter, None)
    assert chapter.said == ["Reconstructions and disentanglement (the K = 10 model)",
                            "The face-swap widget (the K = 10 model)"]
    assert shown == []
