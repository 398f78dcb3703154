"""Reliability of the training loop and run records: interrupted writes, corrupt files, temp files
of killed processes, resume settings, config validation, code provenance.

Every test uses a toy method of a few dozen parameters (the whole file runs in a few seconds).
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lmcore.training import TrainConfig, read_record, train
from lmcore.training import checkpoint

CPU = torch.device("cpu")


class Toy(torch.nn.Module):
    """A linear read-out of 8 x 8 images with dropout (global RNG) and a target drawn from the
    loop's generator, so an inexact resume of any random state changes the weights."""

    name = "toy"

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.linspace(-0.1, 0.1, 3 * 8 * 8).view(1, 3, 8, 8))
        self.bias = torch.nn.Parameter(torch.zeros(1))

    def forward(self, images, generator, step):
        features = F.dropout(images * self.weight, 0.2, training=self.training)
        pred = features.sum((1, 2, 3)) + self.bias
        target = torch.rand(len(images), generator=generator, device=images.device)
        fit = ((pred - target) ** 2).mean()
        return {"loss": fit + 0.01 * self.weight.square().sum(), "fit": fit}


def _images(n=16):
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, 3, 8, 8, generator=g) * 255).to(torch.uint8)


def _cfg(**changes):
    values = {"steps": 8, "batch_size": 4, "lr": 0.05, "resolution": 8, "checkpoint_every": 2, "log_every": 2}
    values.update(changes)
    return TrainConfig.from_dict(values)


def _train(run_dir, cfg, **kwargs):
    model = Toy()
    result = train(model, _images(), cfg, run_dir, CPU, progress=False, **kwargs)
    return model, result


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------- 1. kept checkpoint copies


def _fd_path(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name file descriptors")
def test_an_interrupted_kept_copy_leaves_no_partial_file_and_is_rewritten_on_resume(tmp_path, monkeypatch):
    cfg = _cfg(steps=4, keep_every=2)
    _train(tmp_path / "whole", cfg)

    real_fsync = os.fsync

    def killed_while_copying(fd):
        if "checkpoint-0000002.pt" in _fd_path(fd):
            raise KeyboardInterrupt  # stands for the process being killed during the copy
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", killed_while_copying)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "run", cfg)
    monkeypatch.setattr(os, "fsync", real_fsync)
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt"]  # no partial copy, no temp file

    _train(run, cfg)  # resumes at step 2, where the copy was lost
    assert sorted(p.name for p in run.glob("checkpoint-*.pt")) == ["checkpoint-0000002.pt", "checkpoint-0000004.pt"]
    for name in ("checkpoint-0000002.pt", "checkpoint-0000004.pt"):
        assert _same_weights(_weights(run / name), _weights(tmp_path / "whole" / name)), name


def test_truncated_kept_copies_are_removed_or_rewritten_on_resume(tmp_path, capsys):
    cfg = _cfg(steps=8, keep_every=2)
    _train(tmp_path / "whole", cfg)
    run = tmp_path / "run"
    _, first = _train(run, cfg, stop_after=6)
    assert first.steps == 6
    four, six = run / "checkpoint-0000004.pt", run / "checkpoint-0000006.pt"
    four.write_bytes(four.read_bytes()[: four.stat().st_size // 2])  # a copy killed half way
    six.write_bytes(b"")  # killed right after it was created
    capsys.readouterr()

    _, second = _train(run, cfg)
    out = capsys.readouterr().out
    assert second.resumed_from == 6 and second.steps == 8
    assert f"removed the truncated kept checkpoint {four}" in out and "step 4 cannot be re-created" in out
    assert f"removed the truncated kept checkpoint {six}" in out and "written again from checkpoint.pt" in out
    kept = sorted(p.name for p in run.glob("checkpoint-*.pt"))
    assert kept == ["checkpoint-0000002.pt", "checkpoint-0000006.pt", "checkpoint-0000008.pt"]
    for name in kept:
        assert _same_weights(_weights(run / name), _weights(tmp_path / "whole" / name)), name


# --------------------------------------------------------------------------- 2. corrupt files, fsync


def test_a_truncated_checkpoint_is_a_clear_error_naming_the_file(tmp_path):
    from lmcore.errors import CorruptCheckpointError, LmbookError

    cfg = _cfg()
    _train(tmp_path, cfg, stop_after=2)
    ckpt = tmp_path / "checkpoint.pt"
    for content in (ckpt.read_bytes()[:300], b""):
        ckpt.write_bytes(content)
        with pytest.raises(CorruptCheckpointError) as info:
            _train(tmp_path, cfg)
        message = str(info.value)
        assert isinstance(info.value, LmbookError)
        assert str(ckpt) in message and "delete it" in message and "--force" in message
        assert len(message.splitlines()) == 1
        with pytest.raises(CorruptCheckpointError, match="--force"):
            checkpoint.load_checkpoint(ckpt)


def test_a_truncated_or_foreign_record_is_a_clear_error_naming_the_file(tmp_path):
    from lmcore.errors import CorruptRecordError

    from lmcore.training.records import write_record

    path = tmp_path / "record.json"
    write_record(path, {"method": "fse", "profile": "smoke", "config": {"method": {}, "train": {}}, "git_commit": "x",
                        "device": {}, "wall_time_s": 1.0, "data": {}, "metrics": {}})
    full = path.read_text()
    assert read_record(path)["method"] == "fse"
    for broken in (full[: len(full) // 2], "", "[1, 2]", '{"method": "fse"}'):
        path.write_text(broken)
        with pytest.raises(CorruptRecordError) as info:
            read_record(path)
        assert isinstance(info.value, ValueError)
        assert str(path) in str(info.value) and "--force" in str(info.value)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name file descriptors")
def test_checkpoints_are_fsynced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", _fd_path(fd)))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    _train(tmp_path, _cfg(steps=2))
    ckpt, tmp = str(tmp_path / "checkpoint.pt"), str(tmp_path / f".checkpoint.pt.tmp{os.getpid()}")
    renames = [i for i, e in enumerate(events) if e == ("replace", tmp, ckpt)]
    assert renames, events
    for i in renames:
        assert events[i - 1] == ("fsync", tmp)  # the data reached the disk before the rename
        assert events[i + 1] == ("fsync", str(tmp_path))  # and the rename itself after it


# --------------------------------------------------------------------------- 3. temp files of killed processes


def test_temp_files_of_killed_processes_are_removed_and_those_of_live_ones_kept(tmp_path, capsys):
    dead, live = _dead_pid(), os.getppid()
    stale = [tmp_path / f".checkpoint.pt.tmp{dead}", tmp_path / f".record.json.tmp{dead}",
             tmp_path / f".checkpoint-0000100.pt.tmp{dead}"]
    kept = [tmp_path / f".checkpoint.pt.tmp{live}", tmp_path / f".record.json.tmp{os.getpid()}",
            tmp_path / "notes.tmp1", tmp_path / f".checkpoint.pt.tmp{dead}x"]
    for path in stale + kept:
        path.write_bytes(b"half a file")
    _train(tmp_path, _cfg(steps=2))
    assert not [p for p in stale if p.exists()]
    assert all(p.exists() for p in kept)
    assert "removed 3 temp file(s)" in capsys.readouterr().out


# --------------------------------------------------------------------------- 5. resume settings


def test_a_resume_under_another_thread_count_is_reported(tmp_path, capsys, monkeypatch):
    cfg = _cfg()
    threads = torch.get_num_threads()
    _, first = _train(tmp_path, cfg, stop_after=3)
    assert first.resumed_with is None
    _, same = _train(tmp_path, cfg, stop_after=2)  # resumed under the same settings: nothing to say
    assert "bit-identical" not in capsys.readouterr().out
    assert same.resumed_with["same_settings"] is True and same.resumed_with["written_with"]["threads"] == threads

    monkeypatch.setattr(torch, "get_num_threads", lambda: threads + 3)
    _, other = _train(tmp_path, cfg)
    out = capsys.readouterr().out
    assert f"resuming step 5 of {tmp_path} with {threads + 3} thread(s); it was written with {threads} thread(s)" in out
    assert "will not be bit-identical" in out and len([ln for ln in out.splitlines() if "bit-identical" in ln]) == 1
    info = other.resumed_with
    assert info["step"] == 5 and info["threads"] == threads + 3 and info["device"] == "cpu"
    assert info["written_with"] == {"threads": threads, "device": "cpu", "world_size": 1}
    assert info["same_settings"] is False
    assert [(s["from_step"], s["threads"]) for s in info["segments"]] == [(0, threads), (5, threads + 3)]
    json.dumps(info)  # fit for the record

    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    _, finished = _train(tmp_path, cfg)  # the finished run still says it was mixed
    assert finished.steps == 8 and finished.resumed_with["same_settings"] is False


def test_a_resume_between_log_points_gives_the_uninterrupted_learning_curve(tmp_path):
    cfg = _cfg(steps=9, checkpoint_every=3, log_every=2)
    whole_model, whole = _train(tmp_path / "a", cfg)
    _train(tmp_path / "b", cfg, stop_after=3)  # step 3: one loss of the interval 3..4 is pending
    _train(tmp_path / "b", cfg, stop_after=2)  # step 5
    model, resumed = _train(tmp_path / "b", cfg)
    assert resumed.resumed_from == 5

    def curve(history):
        return [{k: v for k, v in entry.items() if k != "wall_time_s"} for entry in history]

    assert [e["step"] for e in resumed.history] == [2, 4, 6, 8, 9]
    assert curve(resumed.history) == curve(whole.history)
    assert _same_weights(model.state_dict(), whole_model.state_dict())


# --------------------------------------------------------------------------- 6. config validation


@pytest.mark.parametrize("key, value, allowed", [
    ("steps", "abc", "an integer in [1, 100000000]"),
    ("steps", 0, "an integer in [1, 100000000]"),
    ("steps", True, "an integer in [1, 100000000]"),
    ("steps", 10**9, "an integer in [1, 100000000]"),
    ("batch_size", 2.5, "an integer in [1, 65536]"),
    ("checkpoint_every", 0, "an integer >= 1"),
    ("log_every", -1, "an integer >= 1"),
    ("eval_every", -1, "an integer >= 0"),
    ("keep_every", None, "an integer >= 0"),
    ("warmup_steps", 1.0, "an integer >= 0"),
    ("resolution", 4, "an integer in [8, 1024]"),
    ("resolution", 100000, "an integer in [8, 1024]"),
    ("seed", -1, "an integer >= 0"),
    ("seed", False, "an integer >= 0"),
    ("lr", 0, "a number in (0, 10]"),
    ("lr", "1e-3", "a number in (0, 10]"),
    ("lr", float("nan"), "a number in (0, 10]"),
    ("lr", 1e38, "a number in (0, 10]"),  # issue 43: overflowed inside torch's optimiser
    ("lr_gamma", -0.1, "a number in (0, 10]"),
    ("lr_gamma", 1e38, "a number in (0, 10]"),
    ("weight_decay", -1e-4, "a number >= 0"),
    ("grad_clip", 0.0, "null (no clipping) or a number > 0"),
    ("optimizer", "sgd", "'adam' or 'adamw'"),
    ("betas", [0.9], "two numbers in [0, 1)"),
    ("lr_milestones", [0], "a list of integer steps in [1, 100]"),
    ("lr_milestones", [50, 101], "a list of integer steps in [1, 100]"),
    ("lr_milestones", [50.5], "a list of integer steps in [1, 100]"),
    ("lr_milestones", 50, "a list of integer steps in [1, 100]"),
])
def test_bad_training_settings_are_config_errors_naming_key_value_and_what_is_allowed(key, value, allowed):
    from lmcore.errors import ConfigError, LmbookError

    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"steps": 100, key: value})
    message = str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, LmbookError)
    assert f"'train.{key}'" in message and allowed in message and f"got {value!r}" in message
    assert len(message.splitlines()) == 1


def test_an_unknown_training_setting_suggests_the_known_one():
    from lmcore.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unknown setting 'train\.stpes'; did you mean 'train\.steps'\?"):
        TrainConfig.from_dict({"stpes": 10})


def test_every_shipped_profile_passes_validation_and_good_values_are_kept():
    from lmcore.experiments import SETTINGS

    for settings in SETTINGS.values():
        for profile in settings.profiles:
            TrainConfig.from_dict(settings.default_config(profile)["train"])
    cfg = TrainConfig.from_dict({"steps": 10, "lr": 1, "grad_clip": 2, "lr_milestones": [10], "betas": [0.5, 0.9]})
    assert (cfg.lr, cfg.grad_clip, cfg.lr_milestones, cfg.betas) == (1, 2, (10,), (0.5, 0.9))


def test_train_refuses_a_config_built_with_bad_values(tmp_path):
    from lmcore.errors import ConfigError

    with pytest.raises(ConfigError, match="'train.batch_size'"):
        train(Toy(), _images(), TrainConfig(steps=2, batch_size=0, resolution=8), tmp_path, CPU, progress=False)
    assert not (tmp_path / "checkpoint.pt").exists()


# --------------------------------------------------------------------------- 7. code provenance


def _copy_project(tmp_path) -> Path:
    from lmcore.paths import PROJECT_ROOT

    root = tmp_path / "copy"
    shutil.copytree(Path(PROJECT_ROOT) / "lmcore", root / "lmcore",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (root / "tools").mkdir()
    (root / "tools" / "build.py").write_text("print('x')\n")
    return root


def test_code_fingerprint_follows_the_lmcore_sources_only(tmp_path):
    from lmcore.training.code_identity import code_fingerprint

    root = _copy_project(tmp_path)
    base = code_fingerprint("fse", root)
    assert len(base) == 16 and int(base, 16) >= 0
    (root / "tools" / "build.py").write_text("print('y')\n")  # outside lmcore/
    (root / "lmcore" / "notes.txt").write_text("not python\n")
    (root / "lmcore" / "__pycache__").mkdir(exist_ok=True)
    (root / "lmcore" / "__pycache__" / "stray.py").write_text("x = 1\n")
    (root / "lmcore" / "new_module.py").write_text("")  # imported by nothing
    assert code_fingerprint("fse", root) == base
    for presentation in sorted((root / "lmcore" / "book").rglob("*.py")):  # the book's layer never trains
        presentation.write_bytes(presentation.read_bytes() + b"\nQUOTED = [1, 2]\n")
    (root / "lmcore" / "book" / "new_table.py").write_text("ROWS = []\n")
    assert code_fingerprint("fse", root) == base
    warps = root / "lmcore" / "geometry" / "warps.py"  # computed by every warp FSE draws
    original = warps.read_bytes()
    warps.write_bytes(original + b"\nSCALE = 2\n")
    assert code_fingerprint("fse", root) != base
    warps.write_bytes(original)
    assert code_fingerprint("fse", root) == base


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_lmcore_is_dirty_sees_python_changes_under_lmcore_only(tmp_path, monkeypatch):
    from lmcore.training.code_identity import lmcore_is_dirty

    repo = tmp_path / "repo"
    (repo / "lmcore" / "sub").mkdir(parents=True)
    (repo / "lmcore" / "sub" / "a.py").write_text("a = 1\n")
    (repo / "README.md").write_text("readme\n")
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t", GIT_CONFIG_NOSYSTEM="1", HOME=str(tmp_path))

    def git(*args):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "init")
    assert lmcore_is_dirty(repo) is False
    (repo / "README.md").write_text("changed\n")  # outside lmcore/
    (repo / "other.py").write_text("x = 1\n")
    (repo / "lmcore" / "notes.txt").write_text("not python\n")
    assert lmcore_is_dirty(repo) is False
    (repo / "lmcore" / "book").mkdir()
    (repo / "lmcore" / "book" / "papers.py").write_text("QUOTED = 1\n")  # a file no run imports
    assert lmcore_is_dirty(repo, files=["lmcore/sub/a.py"]) is False
    (repo / "lmcore" / "book" / "papers.py").unlink()
    (repo / "lmcore" / "sub" / "new.py").write_text("b = 2\n")  # untracked
    assert lmcore_is_dirty(repo) is True
    (repo / "lmcore" / "sub" / "new.py").unlink()
    (repo / "lmcore" / "sub" / "a.py").write_text("a = 2\n")  # modified
    assert lmcore_is_dirty(repo) is True
    (repo / "lmcore" / "sub" / "a.py").write_text("a = 1\n")  # back to the committed bytes
    assert lmcore_is_dirty(repo) is False
    git("mv", "lmcore/sub/a.py", "lmcore/sub/b.py")  # a staged rename
    assert lmcore_is_dirty(repo) is True
    plain = tmp_path / "not_a_repo"
    (plain / "lmcore").mkdir(parents=True)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert lmcore_is_dirty(plain) is None
