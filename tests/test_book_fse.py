"""Chapter 1's tables, figures and sections (lmcore.book.fse), checked against the committed
records under results/ and small synthetic ones."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lmcore.book import fse, papers, reporting  # noqa: E402
from lmcore.book.chapter import Chapter  # noqa: E402
from lmcore.data import LandmarkSet  # noqa: E402
from lmcore.training import load_references  # noqa: E402
from lmcore.training.run_record import RunRecord  # noqa: E402
from lmcore.experiments import method_settings

# what the chapter asked for before its runs were declared in lmcore.experiments: the training
# profiles must keep asking for exactly these (a different name, override or few-shot size would
# train or evaluate another run)
CHAPTER_RUNS_BEFORE = [("fse", f"k{k}", {"method": {"num_landmarks": k}},
                        {"sizes": [1, 5, 10, 20, 100, 1000, None], "repeats": 10}) for k in (10, 30, 50)]


class RecordingChapter(Chapter):
    """A chapter whose runs are given, and which records what it was asked to train."""

    def __init__(self, profile="cpu", records=None, faces=None):
        faces = faces or _faces(4)
        super().__init__(profile, None, faces, faces, faces, 21.41, 30.0)
        self.records, self.asked, self.variant_calls = records or {}, [], []

    def run(self, method, name="default", overrides=None, few_shot=None, **kwargs):
        self.asked.append((method, name, overrides, few_shot))
        return self.records.get(name)

    def variants(self, method, variants, base=None, prefix="variant", reuse=(), **kwargs):
        self.variant_calls.append({"method": method, "variants": variants, "base": base, "prefix": prefix,
                                   "reuse": list(reuse)})
        return {}


def _faces(n, size=80):
    points = torch.full((n, 5, 2), 40.0)
    return LandmarkSet("test_mtfl", [f"face{i}" for i in range(n)], torch.zeros(n, 3, size, size, dtype=torch.uint8),
                       points)


def _references():
    return {r.num_landmarks: r for r in load_references("fse")}


def _with_few_shot(record, curve):
    """A copy of ``record`` carrying ``curve`` as its few-shot curve on both test splits."""
    fields = dict(record)
    fields["metrics"] = {**record["metrics"], "few_shot": {"test_mtfl": curve, "test_aflw": curve}}
    return RunRecord(fields)


CURVE = [{"n": 1, "mean": 15.123, "std": 2.345}, {"n": 10, "mean": 12.0, "std": 1.0},
         {"n": 1000, "mean": 10.456, "std": 0.1}, {"n": 6696, "mean": 10.2, "std": 0.0}]


@pytest.fixture()
def shown(monkeypatch):
    """What the sections display, collected instead of shown; figures closed afterwards."""
    collected = []
    monkeypatch.setattr(fse, "display", collected.append)
    yield collected
    plt.close("all")


# ------------------------------------------------------------------ the runs

def test_table1_runs_ask_for_the_same_runs_as_the_chapter_did_and_key_them_by_k():
    references = _references()
    chapter = RecordingChapter(records={"k10": references[10], "k50": references[50]})  # no k30
    runs = fse.table1_runs(chapter)
    assert chapter.asked == CHAPTER_RUNS_BEFORE
    assert list(runs) == [10, 50] and runs[50] is references[50]


def test_a_missing_run_is_named_and_the_others_shown(shown, capsys):
    references = _references()
    fse.show_runs(RecordingChapter(), {10: references[10], 50: references[50]})
    assert list(shown[0].index) == ["k10", "k50"]  # the provenance table
    assert "The runs of K = 30: not shown" in capsys.readouterr().out
    fse.show_runs(RecordingChapter(), references)
    assert "not shown" not in capsys.readouterr().out


# ------------------------------------------------------------------ Table 1

def test_table1_shows_each_records_errors_and_the_papers_beside_them():
    references = _references()
    runs = {10: _with_few_shot(references[10], CURVE), 30: references[30]}
    table = fse.table1(runs)
    assert list(table.index) == [10, 30]
    for k, record in runs.items():
        assert table.loc[k, "test_mtfl, all"] == round(record.forward("test_mtfl"), 2)
        assert table.loc[k, "test_aflw, all"] == round(record.forward("test_aflw"), 2)
        mafl, celeba = papers.FSE_TABLE1["rows"][k]
        assert (table.loc[k, "paper: MAFL, regressor on MAFL"], table.loc[k, "paper: MAFL, regressor on CelebA"]) \
            == (mafl, celeba)
    assert table.loc[10, "test_mtfl, n=1000"] == 10.46  # the curve's n = 1000 mean, rounded
    assert table.loc[30, "test_mtfl, n=1000"] is None or np.isnan(table.loc[30, "test_mtfl, n=1000"])


def test_table1_says_why_n1000_is_partly_empty_and_what_is_missing(shown, capsys):
    references = _references()
    chapter = RecordingChapter(profile="reference")
    fse.show_table1(chapter, {10: _with_few_shot(references[10], CURVE)})
    out = capsys.readouterr().out
    assert "n=1000: measured only" not in out and "mean-shape baseline on test_mtfl: 21.41 % IOD" in out
    fse.show_table1(chapter, {10: references[10]})
    assert "n=1000: measured only for the runs with a few-shot curve" in capsys.readouterr().out
    shown.clear()
    fse.show_table1(chapter, {})
    out = capsys.readouterr().out
    assert not shown and "Table 1, the forward errors: not shown in the reference profile" in out
    assert "mean-shape baseline" in out  # the yardstick is shown either way


# ------------------------------------------------------------------ Table 4

def test_table4_puts_the_papers_value_beside_ours_at_the_same_n_and_at_the_full_set():
    table = fse.table4(CURVE, full_size=6696)
    paper = papers.FSE_TABLE4["rows"]
    assert list(table.index) == [1, 10, 1000, 6696]
    assert (table.loc[1, "mean"], table.loc[1, "std"]) == (15.12, 2.35)
    assert table.loc[1, "paper (MAFL)"] == paper[1] and table.loc[10, "paper (MAFL)"] == paper[10]
    assert table.loc[6696, "paper (MAFL)"] == paper[fse.PAPER_FULL_N]  # our full set beside the paper's
    assert np.isnan(table.loc[1000, "paper (MAFL)"])  # the paper has no n = 1000
    assert fse.PAPER_FULL_N not in fse.paper_few_shot_curve()


def test_without_the_k30_curve_table4_is_missing_and_the_other_curves_are_drawn(shown, capsys, monkeypatch):
    drawn = []
    monkeypatch.setattr(fse.viz, "few_shot_plot", lambda curves, **kwargs: drawn.append(curves))
    references = _references()
    chapter = RecordingChapter(profile="reference")
    fse.show_table4(chapter, {10: _with_few_shot(references[10], CURVE), 30: references[30]})
    assert "Table 4, the few-shot curve of K = 30" in capsys.readouterr().out and not shown
    assert list(drawn[-1]) == ["K = 10, test_mtfl [reference]", "K = 10, test_aflw [reference]"]
    fse.show_table4(chapter, {30: _with_few_shot(references[30], CURVE)})
    assert "not shown" not in capsys.readouterr().out and len(shown) == 1
    assert list(drawn[-1]) == ["K = 30, test_mtfl [reference]", "K = 30, test_aflw [reference]"]


# ------------------------------------------------------------------ how far a landmark reaches

def test_map_span_of_the_earlier_setting_is_the_box_the_chapter_names_and_wider_views_reach_further():
    spans = fse.map_spans(reporting.tuning_records("fse"))
    assert spans["unpadded, 70 % view (before)"] == fse.EARLIER_BOX
    whole = spans["unpadded, whole frame"]
    assert whole[0] < fse.EARLIER_BOX[0] and whole[1] > fse.EARLIER_BOX[1]
    config = method_settings("fse").default_config("cpu")
    low, high = fse.map_span(config)
    assert low + high == pytest.approx(80)  # centred in the frame
    wider = {**config, "method": {**config["method"], "view_crop": 1.0}}
    assert fse.map_span(wider)[0] < low


def test_reach_table_gives_each_setting_its_own_span_although_ranked_by_tune_val():
    records = reporting.tuning_records("fse")
    spans = fse.map_spans(records)
    table = fse.reach_table(records, spans)
    assert table.columns[1] == "maps span (frame px)"
    assert list(table.index) != list(spans)  # ranked, not in file order
    for label in table.index:
        assert table.loc[label, "maps span (frame px)"] == spans[label]


def test_outside_box_flags_the_faces_with_any_point_outside():
    points = torch.full((3, 5, 2), 40.0)
    points[1, 2, 0] = 24.9  # one coordinate left of the box
    points[2, 4, 1] = 55.0  # on its edge: inside
    assert fse.outside_box(points, 25, 55).tolist() == [False, True, False]


# ------------------------------------------------------------------ figures and sections

def test_contribution_table_names_the_annotated_points_and_rounds():
    table = fse.contribution_table(np.array([[0.123, 0.5, 0.0, 0.25, 0.1], [0.877, 0.5, 1.0, 0.75, 0.9]]))
    assert list(table.index) == ["landmark 0", "landmark 1"]
    assert list(table.columns) == ["left eye", "right eye", "nose", "left mouth", "right mouth"]
    assert table.loc["landmark 0", "left eye"] == 0.12


def test_consistency_figure_draws_each_runs_sorted_errors():
    references = _references()
    fig = fse.consistency_figure(references, "reference")
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == [f"K = {k}" for k in references]
    for line, record in zip(lines, references.values()):
        assert list(line.get_ydata()) == list(record.metric("consistency", "test_mtfl")["sorted"])
    plt.close(fig)


def test_pair_figure_shows_the_image_and_its_two_warps():
    config = method_settings("fse").default_config("cpu")
    fig = fse.pair_figure(config, torch.zeros(2, 3, 80, 80, dtype=torch.uint8))
    assert len(fig.axes) == 6 and fig.axes[0].get_title() == "I"
    plt.close(fig)


def test_learning_curves_add_this_executions_k10_run_only_when_the_build_trains(monkeypatch):
    drawn = []
    monkeypatch.setattr(fse.viz, "learning_curves", lambda records, **kwargs: drawn.append(records))
    monkeypatch.setattr(fse.plt, "show", lambda: None)
    references = list(_references().values())
    fresh = RunRecord(dict(references[0]), run_dir=".")  # a run of this machine
    fse.show_learning_curves(RecordingChapter(profile="reference"), references, {10: references[0]})
    fse.show_learning_curves(RecordingChapter(profile="cpu"), references, {10: fresh})
    fse.show_learning_curves(RecordingChapter(profile="cpu"), [], {10: fresh})  # no references: nothing
    assert drawn == [references, references + [fresh]]


def test_ablations_train_at_the_ablation_budget_reusing_the_k10_run(shown, capsys):
    references = _references()
    chapter = RecordingChapter(profile="cpu")
    variants = {"default": {}, "no diversity loss": {"method": {"diversity": "none"}}}
    assert fse.ablation_runs(chapter, variants, {10: references[10], 30: references[30]}) == {}
    call = chapter.variant_calls[0]
    assert call["variants"] is variants and call["prefix"] == "ablation" and call["reuse"] == [references[10]]
    assert call["base"] == method_settings("fse").ablation_config("cpu")
    fse.ablation_runs(chapter, variants, {30: references[30]})
    assert chapter.variant_calls[1]["reuse"] == []
    fse.show_ablations(chapter, {})
    assert "The ablations: not shown" in capsys.readouterr().out
    fse.show_ablations(chapter, {"default": references[10], "no diversity loss": references[30]})
    assert list(shown[0].index) == ["default", "no diversity loss"]
    assert "ablation runs: {'default': 3000, 'no diversity loss': 3000} steps" in capsys.readouterr().out


def test_sections_without_a_run_or_model_say_so(shown, capsys):
    chapter = RecordingChapter(profile="reference")
    fse.show_protocol(chapter, {})
    fse.show_under_warps(chapter, {})
    fse.show_across_faces(chapter, {})
    fse.show_regression_on_faces(chapter, {}, {})
    fse.show_regressor_graph(chapter, {}, {})
    out = capsys.readouterr().out
    for what in ("The backward and consistency errors", "Figure 3, K = 10 under warps", "Figure 3, K = 30 under warps",
                 "Figures 4-5, K = 10 across faces", "Figure 6, the five points regressed from K = 30",
                 "Figure 7, what the regressor uses (the K = 10 model)"):
        assert f"{what}" in out
    assert not shown


def test_protocol_section_labels_runs_by_k(shown):
    references = _references()
    fse.show_protocol(RecordingChapter(profile="reference"), references)
    assert list(shown[0].index) == ["K = 10", "K = 30", "K = 50"]
    assert shown[0][("forward", "test_mtfl")]["K = 30"] == round(references[30].forward("test_mtfl"), 2)


def test_reach_section_shows_the_sweep_and_the_share_outside_or_how_to_make_a_sweep(shown, capsys, monkeypatch):
    faces = _faces(4)
    faces.points[1, 0, 0] = 60.0  # one face of four with a point right of the earlier box
    chapter = RecordingChapter(profile="reference", faces=faces)
    assert fse.show_reach(chapter) is None  # the chapter's last line: nothing echoed below the figure
    assert shown[0].columns[1] == "maps span (frame px)"
    assert "25 % of test_aflw faces have a labelled point outside [25, 55] px" in capsys.readouterr().out
    monkeypatch.setattr(fse.reporting, "tuning_records", lambda method: [])
    fse.show_reach(chapter)
    assert "no committed tuning records under results/tuning/fse/" in capsys.readouterr().out and len(shown) == 1
