"""A run resolved once: :class:`lmcore.spec.RunSpec` holds the checked config, the parents'
specs and the evaluation settings that the run API takes."""
import pytest

from lmcore.errors import ConfigError
from lmcore.evaluation import RegressionOptions
from lmcore.experiments import method_settings
from lmcore.spec import RunSpec, resolve_config


def test_a_spec_resolves_its_parents_with_their_own_overrides_once():
    k30 = method_settings("c3").budget("smoke").variant("k30")
    spec = RunSpec.resolve("c3", "smoke", "k30", k30)
    assert (spec.method, spec.profile, spec.name) == ("c3", "smoke", "k30")
    assert set(spec.parents) == {"pairs", "flow"}
    pairs = spec.parents["pairs"]
    assert (pairs.method, pairs.name) == ("jakab", "k30")
    assert pairs.config == resolve_config("jakab", "smoke", {"method": {"num_landmarks": 30}})
    assert pairs.config["method"]["num_landmarks"] == spec.config["method"]["num_landmarks"] == 30
    assert spec.parents["flow"].parents == {}
    assert spec.eval_subsample == method_settings("c3").budget("smoke").eval_subsample == 8


def test_a_bad_parent_override_is_refused_when_the_child_resolves():
    with pytest.raises(ConfigError, match="unknown setting 'method.widht'"):
        RunSpec.resolve("c3", "smoke", "x", {"parents": {"flow": {"overrides": {"method": {"widht": 3}}}}})
    with pytest.raises(ConfigError, match="run name '../up'"):
        RunSpec.resolve("fse", "smoke", "../up")


def test_the_evaluation_settings_compare_as_a_record_reads_them_back():
    spec = RunSpec.resolve("fse", "smoke", few_shot={"sizes": (1, 5, None), "repeats": 2},
                           options=RegressionOptions(ridge=0.1))
    assert spec.evaluation["few_shot"] == {"sizes": [1, 5, None], "repeats": 2}  # JSON has no tuples
    assert spec.evaluation["options"]["ridge"] == 0.1
    assert RunSpec.resolve("fse", "smoke").evaluation["few_shot"] == {}


def test_a_parent_step_is_read_from_the_childs_config():
    spec = RunSpec.resolve("sanchez", "smoke", overrides={"parents": {"core": {"step": 6}}})
    assert spec.parent_step("core") == 6 and spec.parents["core"].method == "pose"
    assert RunSpec.resolve("sanchez", "smoke").parent_step("core") is None
