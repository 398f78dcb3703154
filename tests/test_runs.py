"""Runs keyed by content, parent runs, variants, the method contract, and refused inputs."""
import json
import os

import pytest
import torch

from lmcore.config import check_overrides, deep_update
from lmcore.errors import ConfigError, LmbookError, MissingDataError
from lmcore.evaluation import RegressionOptions
from lmcore.methods import REGISTRY, build_method
from lmcore.training import PublishRefused, RunBusyError, load_trained, publish_reference, resolve_config, run_method, run_variants
from lmcore.training import runs as runs_module
from lmcore.training.runs import run_directory, run_lock, variant_run_name
from lmcore.experiments import method_settings

TINY = {"method": {"num_landmarks": 4, "widths": [4, 6, 8, 8, 8], "view_size": 16, "padding": "same"},
        "train": {"resolution": 16, "batch_size": 4, "steps": 2, "checkpoint_every": 2, "eval_every": 0, "log_every": 1}}
NO_FEW_SHOT = {}


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("overrides, message", [
    ({"method": {"num_landmark": 30}}, r"unknown setting 'method\.num_landmark'; did you mean 'method\.num_landmarks'"),
    ({"trian": {"steps": 2}}, r"unknown setting 'trian'; did you mean 'train'"),
    ({"train": {"steps": "abc"}}, r"'train\.steps' must be an integer, got 'abc'"),
    ({"train": {"batch_size": 2.5}}, r"'train\.batch_size' must be an integer, got 2\.5"),
    ({"train": {"steps": 0}}, r"train\.steps"),
    ({"train": {"steps": -5}}, r"train\.steps"),
    ({"train": {"batch_size": 0}}, r"train\.batch_size"),
    ({"train": {"checkpoint_every": 0}}, r"train\.checkpoint_every"),
    ({"train": {"log_every": 0}}, r"train\.log_every"),
    ({"method": {"num_landmarks": 0}}, r"method\.num_landmarks' must be in \[1, 256\]"),
    ({"method": {"gamma": True}}, r"'method\.gamma' must be a number"),
    ({"train": {"lr_milestones": ["x"]}}, r"train\.lr_milestones"),
])
def test_bad_settings_are_refused_before_anything_runs(overrides, message, isolated_runs):
    with pytest.raises(ConfigError, match=message):
        run_method("fse", "smoke", name="bad", overrides=overrides)
    assert not isolated_runs.exists() or not any(isolated_runs.rglob("record.json"))


def test_numbers_written_as_integers_give_the_same_run():
    a = resolve_config("fse", "smoke", {"method": {"gamma": 10}})
    b = resolve_config("fse", "smoke", {"method": {"gamma": 10.0}})
    assert a == b and isinstance(a["method"]["gamma"], float)


def test_every_profile_config_is_complete_and_checks_against_itself():
    for name in REGISTRY:
        settings = method_settings(name)
        for profile in ("smoke", "cpu", "paper"):
            config = settings.default_config(profile)
            assert set(config) == {"data", "method", "train", "parents"}
            check_overrides(config, config)  # a full config is a valid set of overrides
            for variant in settings.budget(profile).variants:
                if variant == "tuning":  # {label: overrides}: each setting of the sweep must be valid
                    for change in settings.budget(profile).variant(variant).values():
                        check_overrides(config, change)
                elif variant not in ("tps_ratios", "core_steps", "seeds"):  # values, not overrides
                    check_overrides(config, settings.budget(profile).variant(variant))


def test_bad_run_names_cannot_leave_the_runs_folder():
    for name in ("../../x", "a/b", "", ".hidden", "x" * 200):
        with pytest.raises(ConfigError, match="run name"):
            run_directory("fse", "smoke", name, "0123456789")


def test_a_missing_data_root_is_an_error_not_a_fallback(monkeypatch, tmp_path):
    from lmcore.paths import find_dataset

    monkeypatch.setenv("LMBOOK_DATA_ROOT", str(tmp_path / "typo"))
    with pytest.raises(MissingDataError, match="LMBOOK_DATA_ROOT=.*typo is not a folder"):
        find_dataset("mtfl80", marker="new_training.txt")


# --------------------------------------------------------------------------- content-keyed runs


def test_runs_are_reused_by_content_and_retrained_when_code_or_data_change(isolated_runs, monkeypatch):
    first = run_method("fse", "smoke", name="tiny", overrides=TINY, few_shot=NO_FEW_SHOT)
    assert first.checkpoint is not None and first["identity"]
    assert first["data"]["fingerprint"] and first["code_fingerprint"]
    again = run_method("fse", "smoke", name="tiny", overrides=TINY, few_shot=NO_FEW_SHOT)
    assert again["created"] == first["created"]  # reused: identity unchanged

    monkeypatch.setattr(runs_module, "git_commit", lambda: "another-commit")  # a commit outside lmcore/
    assert run_method("fse", "smoke", name="tiny", overrides=TINY, few_shot=NO_FEW_SHOT)["created"] == first["created"]

    monkeypatch.setattr(runs_module, "code_fingerprint", lambda method=None, **kw: "changed-code")
    retrained = run_method("fse", "smoke", name="tiny", overrides=TINY, few_shot=NO_FEW_SHOT)
    assert retrained["identity"] != first["identity"] and retrained["resumed_from_step"] == 0

    source = runs_module.get_source("mtfl80")
    monkeypatch.setattr(type(source), "fingerprint", lambda self: "other-data")
    on_other_data = run_method("fse", "smoke", name="tiny", overrides=TINY, few_shot=NO_FEW_SHOT)
    assert on_other_data["identity"] != retrained["identity"]
    assert on_other_data["data"]["fingerprint"] == "other-data"


def test_a_record_without_its_checkpoint_refuses_another_evaluation(isolated_runs):
    record = run_method("fse", "smoke", name="tiny", overrides=TINY, few_shot=NO_FEW_SHOT)
    record.checkpoint.unlink()
    with pytest.raises(LmbookError, match="checkpoint is gone, so it cannot be re-evaluated; rerun with --force"):
        run_method("fse", "smoke", name="tiny", overrides=TINY, few_shot=NO_FEW_SHOT,
                   options=RegressionOptions(intercept=True, ridge=0.0))


def test_another_evaluation_is_computed_from_the_checkpoint(isolated_runs):
    record = run_method("fse", "smoke", name="tiny", overrides=TINY, few_shot=NO_FEW_SHOT)
    other = run_method("fse", "smoke", name="tiny", overrides=TINY, few_shot=NO_FEW_SHOT,
                       options=RegressionOptions(intercept=True, ridge=0.0))
    assert other["created"] == record["created"]  # not retrained
    assert other.metric("forward", "test_mtfl")["options"]["intercept"] is True
    assert record.metric("forward", "test_mtfl")["options"]["intercept"] is False
    on_disk = json.loads((other.run_dir / "record.json").read_text())
    assert on_disk["evaluation"]["options"]["intercept"] is True


def test_a_second_process_on_the_same_run_is_refused(isolated_runs):
    config = resolve_config("fse", "smoke", TINY)
    identity = runs_module.config_hash(runs_module.run_identity("fse", "smoke", config))
    with run_lock(run_directory("fse", "smoke", "tiny", identity)):
        with pytest.raises(RunBusyError, match=f"in use by process {os.getpid()}"):
            run_method("fse", "smoke", name="tiny", overrides=TINY, force=True)


def test_parent_runs_are_trained_first_and_are_part_of_the_identity(isolated_runs, fse_with_parents):
    parent = {"core": {"method": "fse", "name": "core", "overrides": TINY}}
    child = run_method("fse", "smoke", name="child", overrides=deep_update(TINY, {"parents": parent}),
                       few_shot=NO_FEW_SHOT)
    core = run_method("fse", "smoke", name="core", overrides=TINY)
    assert child["parents"]["core"]["identity"] == core["identity"]
    other_parent = deep_update(parent, {"core": {"overrides": {"train": {"steps": 4}}}})
    child2 = run_method("fse", "smoke", name="child", overrides=deep_update(TINY, {"parents": other_parent}),
                        few_shot=NO_FEW_SHOT)
    assert child2["identity"] != child["identity"]
    assert child2["parents"]["core"]["identity"] != core["identity"]


def test_a_parent_evaluated_otherwise_is_reused_as_it_is(isolated_runs, monkeypatch, fse_with_parents):
    import lmcore.training.runs as runs

    core = run_method("fse", "smoke", name="core", overrides=TINY, few_shot={"sizes": [5], "repeats": 2})
    monkeypatch.setattr(runs, "_reevaluate", lambda *a, **k: pytest.fail("a parent run was re-evaluated"))
    parent = {"core": {"method": "fse", "name": "core", "overrides": TINY}}
    child = run_method("fse", "smoke", name="child", overrides=deep_update(TINY, {"parents": parent}),
                       few_shot=NO_FEW_SHOT)
    assert child["parents"]["core"]["identity"] == core["identity"]
    again = run_method("fse", "smoke", name="core", overrides=TINY, few_shot={"sizes": [5], "repeats": 2})
    assert again["evaluation"] == core["evaluation"]  # its own evaluation, kept


def test_variants_equal_to_a_given_run_reuse_it(isolated_runs):
    main = run_method("fse", "smoke", name="tiny", overrides=TINY, few_shot=NO_FEW_SHOT)
    variants = run_variants("fse", "smoke", {"same as main": {}, "no diversity": {"method": {"diversity": "none"}}},
                            base=TINY, prefix="ablation", reuse=[main], few_shot=NO_FEW_SHOT)
    assert variants["same as main"] is main
    assert variants["no diversity"].run_name == "ablation-no-diversity"
    assert variants["no diversity"].config["method"]["diversity"] == "none"
    # the name a chapter looks a variant's reference up by is the one the run was given
    assert variant_run_name("ablation", "no diversity") == variants["no diversity"].run_name


def test_variant_run_names_are_slugs():
    assert variant_run_name("ablation", "neither (paired baseline)") == "ablation-neither-paired-baseline"
    assert variant_run_name("tune", "cycle 1, inv 100, equiv 10 (kept)") == "tune-cycle-1-inv-100-equiv-10-kept"
    assert variant_run_name("v", "!!!") == "v-default"
    assert len(variant_run_name("v", "x" * 200)) == 80


def test_publishing_refuses_uncommitted_or_unknown_code(isolated_runs, tmp_path, monkeypatch):
    record = run_method("fse", "smoke", name="tiny", overrides=TINY, few_shot=NO_FEW_SHOT)
    record["lmcore_dirty"] = True
    with pytest.raises(PublishRefused, match="uncommitted lmcore code"):
        publish_reference(record, root=tmp_path)
    record["lmcore_dirty"], record["git_commit"] = None, "unknown"
    with pytest.raises(PublishRefused, match="no known git commit"):
        publish_reference(record, root=tmp_path)
    record["lmcore_dirty"], record["git_commit"] = False, "abc123+dirty"  # only files outside lmcore/ changed
    with pytest.raises(PublishRefused, match="smoke runs are never published"):
        publish_reference(record, root=tmp_path)
    record["profile"] = "cpu"
    path = publish_reference(record, root=tmp_path)
    assert json.loads(path.read_text())["run_name"] == "tiny"


# --------------------------------------------------------------------------- the method contract


def test_frozen_weights_are_left_out_of_checkpoints_and_restored():
    config = deep_update(method_settings("jakab").default_config("smoke"), {"method": {"num_landmarks": 4}})
    model = build_method("jakab", config)
    state = model.state_dict()
    assert not any(k.startswith("criterion.vgg.body.") for k in state)
    assert any(k.startswith("model.") for k in state)
    vgg_before = model.criterion.vgg.body[0].weight.clone()
    other = build_method("jakab", config)
    other.load_state_dict(state)  # strict: the frozen weights come from the fetched file
    assert torch.equal(other.criterion.vgg.body[0].weight, vgg_before)


def test_training_code_does_not_probe_methods():
    """The loop and the run API read the declared contract, never getattr/hasattr."""
    from pathlib import Path

    for path in (Path(runs_module.__file__).parent).glob("*.py"):
        text = path.read_text()
        assert "hasattr(" not in text, path
        assert "getattr(method" not in text and "getattr(model" not in text and "getattr(cls" not in text, path
