"""The command line refuses a user's mistakes with one line and a non-zero exit, no traceback."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--set", "method.num_landmarks=4", "--set", "method.widths=[4,6,8,8,8]", "--set", "method.view_size=16",
        "--set", "method.padding=same", "--set", "train.resolution=16", "--set", "train.batch_size=4",
        "--set", "train.steps=2", "--set", "train.checkpoint_every=2", "--set", "train.eval_every=0"]


def _train(*args, runs: Path, env_extra=None):
    env = dict(os.environ, LMBOOK_RUNS=str(runs), LMBOOK_PROGRESS="0", OMP_NUM_THREADS="1", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "lmcore.train", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("args, message", [
    (["fse", "--profile", "smoke", "--set", "method.num_landmark=30"], "did you mean 'method.num_landmarks'"),
    (["fse", "--profile", "smoke", "--set", "trian.steps=2"], "unknown setting 'trian'"),
    (["fse", "--profile", "smoke", "--set", "train.steps=abc"], "'train.steps' must be an integer, got 'abc'"),
    (["fse", "--profile", "smoke", "--set", "train.batch_size=2.5"], "must be an integer, got 2.5"),
    (["fse", "--profile", "smoke", "--set", "train.steps=0"], "train.steps"),
    (["fse", "--profile", "smoke", "--set", "method.num_landmarks=0"], "method.num_landmarks"),
    (["fse", "--profile", "smoke", "--set", "train.steps"], "expected KEY=VALUE"),
    (["fse", "--profile", "smoke", "--name", "../../x"], "run name '../../x'"),
    (["fse", "--profile", "laptop"], "invalid choice: 'laptop'"),
    (["fsee"], "invalid choice: 'fsee'"),
    # issue 43
    (["fse", "--profile", "smoke", "--name", "a\nb"], "run name 'a\\nb' must be"),  # was two lines
    (["--from-record", "results/fse"], "--from-record: results/fse is a folder"),  # was IsADirectoryError
    (["pose", "--profile", "smoke", "--set", "data.split=val"], "'data.split' is 'val', the split lspet128 runs are "
                                                                 "scored on"),  # was trained and scored on val
])
def test_user_errors_are_one_line_and_exit_2(args, message, tmp_path):
    done = _train(*args, runs=tmp_path / "runs")
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert message in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("record.json"))


def test_a_bad_profile_in_the_environment_is_one_line(tmp_path):
    done = _train("fse", runs=tmp_path / "runs", env_extra={"LMBOOK_PROFILE": "fast"})
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "environment variable LMBOOK_PROFILE must be smoke, reference, cpu or paper" in done.stderr
    assert "got 'fast'" in done.stderr


def test_a_missing_data_root_names_itself(tmp_path):
    done = _train("fse", "--profile", "smoke", *TINY, runs=tmp_path / "runs",
                  env_extra={"LMBOOK_DATA_ROOT": str(tmp_path / "nowhere")})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "LMBOOK_DATA_ROOT" in done.stderr and "nowhere is not a folder" in done.stderr


def test_a_folder_named_checkpoint_pt_is_one_line(tmp_path):
    """A folder where an interrupted run's checkpoint belongs was an IsADirectoryError (issue 43, item 10)."""
    runs = tmp_path / "runs"
    done = _train("fse", "--profile", "smoke", "--name", "tiny", *TINY, runs=runs)
    assert done.returncode == 0, done.stderr
    record = next(runs.rglob("record.json"))
    record.unlink()
    (record.parent / "checkpoint.pt").unlink()
    (record.parent / "checkpoint.pt").mkdir()
    again = _train("fse", "--profile", "smoke", "--name", "tiny", *TINY, runs=runs)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{record.parent / 'checkpoint.pt'} is a folder, not a checkpoint" in lines[0]
    assert (record.parent / "checkpoint.pt").is_dir()  # nothing deleted


def test_show_prints_the_resolved_config(tmp_path):
    done = _train("fse", "--profile", "smoke", "--set", "method.num_landmarks=7", "--show", "--json",
                  runs=tmp_path / "runs")
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    assert config["method"]["num_landmarks"] == 7 and config["data"]["source"] == "mtfl80"


def test_a_truncated_record_is_named_with_the_way_forward(tmp_path):
    runs = tmp_path / "runs"
    done = _train("fse", "--profile", "smoke", "--name", "tiny", *TINY, runs=runs)
    assert done.returncode == 0, done.stderr
    record = next(runs.rglob("record.json"))
    record.write_text(record.read_text()[:200])
    again = _train("fse", "--profile", "smoke", "--name", "tiny", *TINY, runs=runs)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert str(record) in again.stderr and "--force" in again.stderr
    forced = _train("fse", "--profile", "smoke", "--name", "tiny", "--force", *TINY, runs=runs)
    assert forced.returncode == 0, forced.stderr
    assert json.loads(record.read_text())["steps"] == 2


def test_the_summary_line_names_the_score_each_kind_of_run_is_judged_by():
    from lmcore.train import summary_line
    from lmcore.training.run_record import RunRecord

    base = {"method": "x", "profile": "cpu", "run_name": "r", "steps": 10, "wall_time_s": 60.0, "device": {"name": "cpu"}}
    face = RunRecord({**base, "metrics": {"forward": {"test_mtfl": {"mean": 12.345}}}}, path="r.json")
    pose = RunRecord({**base, "metrics": {"pck_val": {"pck": 0.3094}}}, path="r.json")
    core = RunRecord({**base, "metrics": {"direct_error_test_mtfl": 7.5}}, path="r.json")
    shoes = RunRecord({**base, "metrics": {}}, path="r.json")
    assert "forward error % IOD: test_mtfl 12.35" in summary_line(face)
    assert "LSPET val PCK@0.2 (%): 30.94" in summary_line(pose) and "IOD" not in summary_line(pose)
    assert "direct_error_test_mtfl 7.50" in summary_line(core)
    assert "no score" in summary_line(shoes)


def test_show_gives_every_setting_its_allowed_range(capsys):
    from lmcore import train as cli

    assert cli.main(["fse", "--profile", "cpu", "--show"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("method.num_landmarks = 10") and line.endswith("# in [1, 256]") for line in lines)
    assert any(line.startswith("train.optimizer = \"adam\"") and "'adam' or 'adamw'" in line for line in lines)


def test_help_says_a_word_on_every_method_and_gives_examples(capsys):
    from lmcore import train as cli
    from lmcore.methods import REGISTRY
    from lmcore.train_help import METHODS

    assert set(METHODS) == set(REGISTRY)
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    assert all(f"  {name} " in text for name in REGISTRY) and "examples:" in text and "--from-record" in text


def test_a_setting_outside_its_group_is_refused_with_the_key_it_may_mean(capsys):
    from lmcore import train as cli

    assert cli.main(["fse", "--profile", "smoke", "--set", "num_landmarks=30", "--show"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "did you mean 'method.num_landmarks'?" in err


def test_the_books_reference_profile_trains_in_cpu_and_says_so(monkeypatch, capsys):
    from lmcore import train as cli

    monkeypatch.setenv("LMBOOK_PROFILE", "reference")
    assert cli.main(["fse", "--show"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("# fse in the cpu profile") and "LMBOOK_PROFILE=reference" in captured.err


@pytest.mark.parametrize("seconds, words", [(2.44, "2.4 s"), (90, "1.5 min"), (5400, "1.5 h")])
def test_a_runs_duration_is_never_zero_minutes(seconds, words):
    from lmcore.train_help import duration

    assert duration(seconds) == words
