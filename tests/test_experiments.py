"""The experiments layer: every method's settings stated once in ``lmcore/experiments``, none in a
method module, and what that layer gives a run reaches it only through the run's config (and its
evaluation settings), which is what keys the run."""
import ast
import importlib
from pathlib import Path

import pytest

from lmcore.errors import ConfigError
from lmcore.experiments import EXPERIMENTS, MODULES, SETTINGS, Budget, method_settings
from lmcore.methods import REGISTRY, get_method
from lmcore.paths import PROJECT_ROOT
from lmcore.training import resolve_config, run_method

METHODS_DIR = PROJECT_ROOT / "lmcore" / "methods"
TINY_FSE = {"method": {"num_landmarks": 4, "widths": [4, 6, 8, 8, 8], "view_size": 16, "padding": "same"},
            "train": {"resolution": 16, "batch_size": 4, "steps": 2, "checkpoint_every": 2, "eval_every": 0,
                      "log_every": 1}}


def test_every_registered_method_has_complete_settings_declared_once():
    assert set(SETTINGS) == set(REGISTRY)
    for name, settings in SETTINGS.items():
        assert settings.method == name and settings.problems() == [], settings.problems()
        for profile in ("smoke", "cpu", "paper"):
            config = settings.default_config(profile)
            assert set(config) == {"data", "method", "train", "parents"}
            assert config["data"]["source"] == get_method(name).data_source


def test_a_method_without_settings_or_an_unknown_one_is_one_clear_error():
    with pytest.raises(ConfigError, match="unknown method 'nope'; choose one of"):
        method_settings("nope")
    with pytest.raises(ConfigError, match="has no profile 'gpu'"):
        method_settings("fse").default_config("gpu")


def test_a_declaration_that_misses_a_profile_says_so():
    from lmcore.experiments.base import MethodSettings

    broken = MethodSettings("fse", {"smoke": {}}, {"gpu": Budget()})
    problems = broken.problems()
    assert any("expected ['cpu', 'paper', 'smoke']" in p for p in problems)
    assert any("unknown profile 'gpu'" in p for p in problems)


def test_the_experiments_package_finds_every_module_it_holds():
    on_disk = {p.stem for p in (PROJECT_ROOT / "lmcore" / "experiments").glob("*.py")} - {"__init__", "base"}
    assert {m.__name__.rsplit(".", 1)[1] for m in MODULES} == on_disk
    assert list(EXPERIMENTS) == sorted(EXPERIMENTS)  # the book's order


def _method_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every ``from ... import`` in a method module, relative ones resolved."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1:
                module = f"lmcore.methods.{module}"
            elif node.level == 2:
                module = f"lmcore.{module}"
            found.append((module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
    return found


def test_no_method_module_holds_or_imports_a_profile():
    for path in sorted(METHODS_DIR.glob("*.py")):
        for module, names in _method_imports(path):
            assert not module.startswith("lmcore.experiments"), (path.name, module)
            sibling = module.startswith("lmcore.methods.") and module not in ("lmcore.methods.base",)
            if sibling:  # another method's classes (C3 and Sanchez build on Jakab), never its settings
                imported = importlib.import_module(module)
                assert all(isinstance(getattr(imported, n), type) for n in names), (path.name, module, names)
        tree = ast.parse(path.read_text())
        for node in tree.body:
            targets = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
            value = getattr(node, "value", None)
            if isinstance(value, ast.Dict):  # a module-level dict keyed by profile names is a profile table
                keys = {k.value for k in value.keys if isinstance(k, ast.Constant)}
                assert not keys & {"smoke", "cpu", "paper"}, (path.name, targets)


def test_a_parent_that_does_not_share_the_childs_networks_is_refused_before_training():
    with pytest.raises(ConfigError, match=r"'parents\.pairs' \(jakab/k10\) differs from this run in "
                                          r"method\.view_size \(32 vs 48\)"):
        resolve_config("c3", "smoke", {"method": {"view_size": 48}})
    with pytest.raises(ConfigError, match=r"'parents\.flow' \(c3_flow/flow\) differs from this run in method\.view_size"):
        resolve_config("c3", "smoke", {"parents": {"flow": {"overrides": {"method": {"view_size": 48}}}}})
    both = {"method": {"view_size": 48}, "parents": {"pairs": {"overrides": {"method": {"view_size": 48}}},
                                                     "flow": {"overrides": {"method": {"view_size": 48}}}}}
    assert resolve_config("c3", "smoke", both)["method"]["view_size"] == 48


def test_a_budget_whose_evaluation_subsample_changes_re_evaluates_the_finished_run(isolated_runs, monkeypatch):
    first = run_method("fse", "smoke", name="sub", overrides=TINY_FSE)
    assert first["data"]["eval_subsample"] == 8
    again = run_method("fse", "smoke", name="sub", overrides=TINY_FSE)
    assert again.reused and again["metrics"] == first["metrics"]
    settings = method_settings("fse")
    monkeypatch.setitem(settings.budgets, "smoke", Budget(eval_subsample=16))
    changed = run_method("fse", "smoke", name="sub", overrides=TINY_FSE)
    assert changed.run_dir == first.run_dir and changed["created"] == first["created"]  # not retrained
    assert changed["data"]["eval_subsample"] == 16
    regressor_faces = [r["metrics"]["forward"]["test_mtfl"]["options"]["regressor_images"] for r in (first, changed)]
    assert regressor_faces[1] < regressor_faces[0]  # every 16th face, not every 8th
