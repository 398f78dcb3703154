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


# --------------------------------------------------------------------------- issue 43


@pytest.mark.parametrize("parents", [{"x": 1}, {"x": {"method": "fse", "name": "extra"}}])
def test_a_method_without_parents_refuses_any_parent_role(parents):
    """``--set parents.x=1`` was a TypeError, and a parent given to FSE trained that extra run."""
    with pytest.raises(ConfigError, match=r"unknown setting 'parents\.x': fse trains from no parent run") as info:
        RunSpec.resolve("fse", "smoke", overrides={"parents": parents})
    assert len(str(info.value).splitlines()) == 1


def test_a_parent_role_of_a_method_with_parents_is_checked_by_name():
    with pytest.raises(ConfigError, match=r"unknown setting 'parents\.x'.*known here: core"):
        RunSpec.resolve("sanchez", "smoke", overrides={"parents": {"x": 1}})
    with pytest.raises(ConfigError, match=r"'parents\.core' must be a group of settings, got 1"):
        RunSpec.resolve("sanchez", "smoke", overrides={"parents": {"core": 1}})


def test_a_pose_run_never_trains_on_the_split_it_is_scored_on():
    """``pose --set data.split=val`` trained on LSPET's val and then reported its PCK there."""
    with pytest.raises(ConfigError, match=r"'data\.split' is 'val', the split lspet128 runs are scored on.*\(train\)"):
        RunSpec.resolve("pose", "smoke", overrides={"data": {"split": "val"}})
    assert RunSpec.resolve("pose", "smoke").config["data"] == {"source": "lspet128", "split": "train"}


def test_the_learning_rate_has_an_upper_bound():
    """``train.lr=1e38`` overflowed inside torch's optimiser."""
    with pytest.raises(ConfigError, match=r"'train\.lr' must be a number in \(0, 10\], got 1e\+38"):
        RunSpec.resolve("fse", "smoke", overrides={"train": {"lr": 1e38}})


def test_a_run_name_with_a_newline_is_one_line():
    with pytest.raises(ConfigError) as info:
        RunSpec.resolve("fse", "smoke", "a\nb")
    assert str(info.value).startswith("run name 'a\\nb' must be") and len(str(info.value).splitlines()) == 1
