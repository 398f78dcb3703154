"""The sections every chapter shows (settings, tuning sweep, fidelity table, committed references),
written once in :class:`lmcore.book.chapter.Chapter`."""
import pandas as pd

from lmcore.book.chapter import Chapter
from lmcore.experiments import method_settings


def _chapter(profile):
    return Chapter(profile, None, None, None, None, 0.0, 0.0)


def _shown(monkeypatch):
    """Collect what a section displays instead of printing it."""
    import lmcore.book.chapter as chapter_module

    shown = []
    monkeypatch.setattr(chapter_module, "display", shown.append)
    return shown


def test_settings_are_those_the_references_trained_with_in_the_reference_profile(monkeypatch):
    shown = _shown(monkeypatch)
    configs = _chapter("reference").show_settings("jakab")
    assert configs == {"jakab": method_settings("jakab").default_config("cpu")}
    method_table, train_table, *drift = shown
    assert list(method_table.columns) == ["method"] and list(train_table.columns) == ["train"]
    assert drift  # the references' settings beside today's: the same, or every key that differs
    assert train_table.loc["steps", "train"] == configs["jakab"]["train"]["steps"]
    smoke = _chapter("smoke").show_settings("jakab")["jakab"]
    assert smoke["train"]["steps"] != configs["jakab"]["train"]["steps"]  # the profile is the chapter's


def test_settings_of_two_methods_show_each_method_then_their_training_side_by_side(monkeypatch):
    shown = _shown(monkeypatch)
    configs = _chapter("smoke").show_settings("c3", "c3_flow")
    assert set(configs) == {"c3", "c3_flow"}
    c3_method, flow_method, train, *drift = shown
    assert list(c3_method.columns) == ["c3 method"] and list(c3_method.index) == list(configs["c3"]["method"])
    assert list(flow_method.columns) == ["c3_flow method"]
    assert list(train.columns) == ["c3 train", "c3_flow train"]
    assert train.loc["steps", "c3_flow train"] == configs["c3_flow"]["train"]["steps"]
    assert list(train.index[:len(configs["c3"]["train"])]) == list(configs["c3"]["train"])  # the config's order


def test_a_reference_trained_otherwise_is_shown_beside_todays_settings(monkeypatch):
    """Settings drift is never hidden: each differing key beside the settings (issue 42)."""
    import lmcore.book.chapter as chapter_module
    from lmcore.training.run_record import RunRecord

    shown = _shown(monkeypatch)
    reference = chapter_module.reference_record("zhang", "k10")
    edited = RunRecord(dict(reference, config={**reference["config"], "method": {
        **reference["config"]["method"], "lambda_conc": 100.0}}), path=reference.path)
    monkeypatch.setattr(chapter_module, "reference_record", lambda method, name: edited if name == "k10" else None)
    _chapter("reference").show_drift("zhang")
    tables = [item for item in shown if isinstance(item, pd.DataFrame)]
    assert tables and ("zhang/k10", "method.lambda_conc") in tables[0].index
    assert list(tables[0].loc[("zhang/k10", "method.lambda_conc")]) == ["100.0", repr(reference["config"]["method"]["lambda_conc"])]


def test_tuning_section_shows_the_sweep_or_says_how_to_make_one(monkeypatch, capsys):
    shown = _shown(monkeypatch)
    records = _chapter("reference").show_tuning("zhang")
    assert records and isinstance(shown[0], pd.DataFrame) and len(shown[0]) == len(records)
    assert _chapter("reference").show_tuning("no_such_method") == []
    assert "tools/tune_settings.py no_such_method --publish" in capsys.readouterr().out


def test_fidelity_section_names_the_released_code_only_where_there_is_some(monkeypatch):
    shown = _shown(monkeypatch)
    _chapter("reference").show_fidelity("zhang")
    zhang = shown[-1].data
    assert "Released code: " in zhang and 'href="https://github.com/YutingZhang/lmdis-rep/blob/' in zhang
    assert "`" not in zhang and "…" not in zhang  # whole cells, code as code
    _chapter("reference").show_fidelity("fse")  # Thewlis et al. released none
    assert "Released code" not in shown[-1].data and "the released code" not in shown[-1].data


def test_settings_are_shown_collapsed_and_references_with_their_provenance_collapsed(monkeypatch):
    from lmcore.book.tables import MARK

    shown = _shown(monkeypatch)
    _chapter("reference").show_settings("fse")
    assert all(frame.attrs[MARK]["collapse"].endswith("(the cpu profile, which the references trained with)")
               for frame in shown[:2])
    shown.clear()
    _chapter("reference").show_references("jakab")
    protocol, provenance = shown
    assert MARK not in protocol.attrs and provenance.attrs[MARK]["collapse"].startswith("Provenance of ")


def test_a_stand_in_is_a_box_the_page_check_finds_and_plain_text_outside_a_notebook(capsys):
    from lmcore.book.viz import STAND_IN_CLASS

    _chapter("reference").missing("Table 4")
    out = capsys.readouterr().out
    assert out.startswith("Table 4: not shown in the reference profile") and "`LMBOOK_PROFILE=cpu make book`" in out
    from lmcore.book.viz import StandIn

    box = StandIn(out.strip())._repr_html_()
    assert f'class="{STAND_IN_CLASS}"' in box and "<code>LMBOOK_PROFILE=cpu make book</code>" in box


def test_references_section_lists_the_committed_runs(monkeypatch, capsys):
    shown = _shown(monkeypatch)
    records = _chapter("reference").show_references("jakab")
    assert "k10" in {r.run_name for r in records} and len(shown) == 2
    assert _chapter("reference").show_references("no_such_method") == []
    assert "no committed reference runs under results/no_such_method/" in capsys.readouterr().out


def test_headline_runs_are_those_of_the_leaderboard_with_their_budget_variant(monkeypatch):
    """A chapter trains its headline runs with exactly the overrides the leaderboard finds them by
    (so chapter 6 reuses them), at the few-shot sizes its experiment states."""
    from lmcore.book import chapter as chapter_module
    from lmcore.experiments import BOOK_RUNS, EXPERIMENTS

    calls = []
    monkeypatch.setattr(chapter_module, "run_method", lambda method, profile, name, overrides, few_shot=None:
                        calls.append((method, profile, name, overrides, few_shot)) or f"{method}/{name}")
    runs = _chapter("smoke").headline_runs("02_zhang")
    assert runs == {"k10": "zhang/k10", "k30": "zhang/k30"}
    k30 = calls[1]
    assert k30[3] == method_settings("zhang").budget("smoke").variant("k30") and k30[3]  # the K = 30 settings
    assert k30[4] == EXPERIMENTS["02_zhang"].few_shot
    assert {r.key for r in BOOK_RUNS if r.chapter == "02_zhang"} == {"zhang/k10", "zhang/k30"}


def test_chapters_sharing_a_run_evaluate_it_at_the_same_few_shot_sizes():
    """C3's chapter evaluates Jakab's runs as its baselines: one few-shot setting for the run."""
    from lmcore.experiments import EXPERIMENTS

    assert EXPERIMENTS["05_c3"].few_shot == EXPERIMENTS["03_jakab"].few_shot
    keys = [r.key for e in EXPERIMENTS.values() for r in e.runs]
    assert len(keys) == len(set(keys))  # a headline run belongs to one chapter


def test_reference_profile_headline_runs_leave_out_what_is_not_committed(monkeypatch):
    from lmcore.book import chapter as chapter_module

    monkeypatch.setattr(chapter_module, "reference_record", lambda method, name: None if name == "k30" else name)
    monkeypatch.setattr(chapter_module, "has_weights", lambda record: False)  # no few-shot curve to measure
    assert _chapter("reference").headline_runs("03_jakab") == {"k10": "k10"}


def test_training_snapshots_show_a_slider_or_say_why_not(monkeypatch, capsys):
    import torch

    from lmcore.data import LandmarkSet
    from lmcore.training import load_references

    shown = _shown(monkeypatch)
    faces = LandmarkSet("faces", [f"{i}" for i in range(6)], (torch.rand(6, 3, 16, 16) * 255).to(torch.uint8),
                        torch.zeros(6, 5, 2))
    chapter = Chapter("reference", None, faces, None, None, 0.0, 0.0)
    k10 = next(r for r in load_references("jakab") if r.run_name == "k10")
    assert k10.snapshots()
    chapter.show_training_snapshots(k10, 10, count=2)
    assert len(shown) == 1 and type(shown[0]).__name__ == "VBox"
    chapter.show_training_snapshots(None, 30)
    assert "The landmarks through training (the K = 30 run's snapshots)" in capsys.readouterr().out and len(shown) == 1


def _documented(x, y=2):
    """A docstring the excerpt leaves out.

    Over two lines."""
    total = x + y  # the body stays
    return total


def _undocumented(x):
    return x


def test_code_excerpt_quotes_a_function_without_its_docstring():
    from lmcore.book.viz import code_excerpt

    excerpt = code_excerpt(_documented)
    assert excerpt.startswith("def _documented(x, y=2):\n") and "docstring" not in excerpt
    assert "    total = x + y  # the body stays\n    return total\n" in excerpt
    assert code_excerpt(_undocumented) == "def _undocumented(x):\n    return x\n"
