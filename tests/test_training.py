"""The training loop: exact resume, NaN guard, run records, reuse, DDP through torchrun."""
import json
import os
import subprocess
import sys

import pytest
import torch

from lmcore.errors import TrainingDiverged
from lmcore.methods import build_method
from lmcore.config import deep_update
from lmcore.methods.base import LandmarkMethod
from lmcore.training import TrainConfig, read_record, run_method, train
from lmcore.training.records import REQUIRED_KEYS
from lmcore.experiments import method_settings

TINY_FSE = {"method": {"num_landmarks": 4, "widths": [4, 6, 8, 8, 8], "view_size": 16, "padding": "same"},
            "train": {"resolution": 16, "batch_size": 4, "steps": 8, "checkpoint_every": 2, "eval_every": 0,
                      "log_every": 2}}


def _tiny_images(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 24, 24, generator=g) * 255).to(torch.uint8)


def _fse(config_overrides=None):
    config = deep_update(deep_update(method_settings("fse").default_config("smoke"), TINY_FSE), config_overrides)
    return build_method("fse", config), config


def test_a_resumed_run_ends_with_the_same_weights_and_curve_as_an_uninterrupted_one(tmp_path):
    images = _tiny_images()
    model_a, config = _fse()
    cfg = TrainConfig.from_dict(config["train"])
    whole = train(model_a, images, cfg, tmp_path / "a", torch.device("cpu"), identity=config, progress=False)

    model_b, _ = _fse()
    first = train(model_b, images, cfg, tmp_path / "b", torch.device("cpu"), identity=config, progress=False, stop_after=3)
    assert first.steps == 3
    model_c, _ = _fse()  # a fresh process would rebuild the model from scratch
    second = train(model_c, images, cfg, tmp_path / "b", torch.device("cpu"), identity=config, progress=False)
    assert second.resumed_from == 3 and second.steps == 8
    for (name, a), (_, c) in zip(model_a.state_dict().items(), model_c.state_dict().items()):
        assert torch.equal(a, c), name
    # interrupted at step 3, between two log points (log_every 2): the loss of step 3 belongs to
    # the entry of step 4, so the learning curve matches only if that pending sum was checkpointed
    curve = [{k: v for k, v in e.items() if k != "wall_time_s"} for e in second.history]
    assert [e["step"] for e in curve] == [2, 4, 6, 8]
    assert curve == [{k: v for k, v in e.items() if k != "wall_time_s"} for e in whole.history]


def test_resuming_with_another_config_is_refused(tmp_path):
    images = _tiny_images()
    model, config = _fse()
    cfg = TrainConfig.from_dict(config["train"])
    train(model, images, cfg, tmp_path, torch.device("cpu"), identity=config, progress=False, stop_after=2)
    other, other_config = _fse({"method": {"gamma": 1.0}})
    with pytest.raises(RuntimeError, match="another configuration"):
        train(other, images, cfg, tmp_path, torch.device("cpu"), identity=other_config, progress=False)


class _ExplodesAtStep5(LandmarkMethod):
    name = "explodes"

    def __init__(self):
        super().__init__({"method": {"num_landmarks": 1}, "train": {"resolution": 8}})
        self.weight = torch.nn.Parameter(torch.ones(3))

    def forward(self, images, generator, step):
        loss = (self.weight * images.mean((0, 2, 3))).sum()
        if step >= 5:
            loss = loss * float("nan")
        return {"loss": loss}


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    model = _ExplodesAtStep5()
    cfg = TrainConfig(steps=20, batch_size=2, lr=0.1, resolution=8, checkpoint_every=2, log_every=1)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 5.*step 4\) is kept"):
        train(model, _tiny_images(8), cfg, tmp_path, torch.device("cpu"), progress=False)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["step"] == 4
    assert torch.isfinite(state["model"]["weight"]).all()


def test_unknown_training_settings_are_named():
    from lmcore.errors import ConfigError

    with pytest.raises(ConfigError, match=r"'train\.learning_rate'.*known: .*\blr\b"):
        TrainConfig.from_dict({"learning_rate": 1.0})
    with pytest.raises(ValueError, match=r"did you mean 'train\.batch_size'"):
        TrainConfig.from_dict({"batchsize": 4})


def test_run_method_writes_a_complete_record_and_reuses_it(isolated_runs):
    overrides = deep_update(TINY_FSE, {"train": {"steps": 4}})
    record = run_method("fse", "smoke", name="tiny", overrides=overrides, progress=False)
    for key in REQUIRED_KEYS:
        assert key in record
    assert set(record["metrics"]) == {"forward", "backward", "consistency", "tune"}
    assert record.tune_error() == record["metrics"]["tune"]["tune_val"]["mean"] > 0
    assert set(record["metrics"]["forward"]) == {"test_mtfl", "test_aflw"}
    assert record["metrics"]["forward"]["test_mtfl"]["options"]["intercept"] is False  # the book's protocol
    assert record["profile"] == "smoke" and record["device"]["type"] == "cpu"
    on_disk = read_record(record.run_dir / "record.json")
    assert on_disk["config"] == record["config"]
    again = run_method("fse", "smoke", name="tiny", overrides=overrides, progress=False)
    assert again["created"] == record["created"]  # reused, not retrained


@pytest.mark.slow
def test_training_under_torchrun_uses_ddp_and_writes_one_record(isolated_runs, tmp_path):
    overrides = ["--set", "train.steps=4", "--set", "train.resolution=16", "--set", "method.num_landmarks=4", "--set", "method.view_size=16", "--set", "method.padding=same",
                 "--set", "train.eval_every=0"]
    env = dict(os.environ, LMBOOK_PROGRESS="0", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "lmcore.train", "fse", "--profile", "smoke", "--name", "ddp", *overrides]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    records = list(isolated_runs.glob("smoke/fse/ddp-*/record.json"))
    assert len(records) == 1
    assert json.loads(records[0].read_text())["device"]["type"] == "cpu"


def test_a_record_made_by_other_code_is_retrained_not_relabelled(isolated_runs, monkeypatch):
    from lmcore.training import runs as runs_module

    overrides = deep_update(TINY_FSE, {"train": {"steps": 3}})
    monkeypatch.setattr(runs_module, "code_fingerprint", lambda method=None, **kw: "code-a")
    first = run_method("fse", "smoke", name="stale", overrides=overrides, progress=False)
    monkeypatch.setattr(runs_module, "code_fingerprint", lambda method=None, **kw: "code-b")
    second = run_method("fse", "smoke", name="stale", overrides=overrides, progress=False)
    assert first["code_fingerprint"] == "code-a" and second["code_fingerprint"] == "code-b"
    assert second["resumed_from_step"] == 0 and second["steps"] == 3  # trained again by the new code
