"""Every environment variable lmbook reads is read and checked by lmcore/env.py: a fixed set of
values per variable, one line for anything else (issue 43: LMBOOK_RETRAIN=false deleted a
finished run, a stray RANK=1 trained without the lock and wrote no record, LMBOOK_DEVICE=bogus and
LMBOOK_PROFILE=bogus make book were tracebacks)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lmcore import env
from lmcore import train as cli
from lmcore.errors import ConfigError
from lmcore.profiles import select_device
from lmcore.training import run_method

ROOT = Path(__file__).resolve().parent.parent
TINY = {"method": {"num_landmarks": 4, "widths": [4, 6, 8, 8, 8], "view_size": 16, "padding": "same"},
        "train": {"resolution": 16, "batch_size": 4, "steps": 2, "checkpoint_every": 2, "eval_every": 0, "log_every": 1}}
TINY_ARGS = ["--set", "method.num_landmarks=4", "--set", "method.widths=[4,6,8,8,8]", "--set", "method.view_size=16",
             "--set", "method.padding=same", "--set", "train.resolution=16", "--set", "train.batch_size=4",
             "--set", "train.steps=2", "--set", "train.checkpoint_every=2", "--set", "train.eval_every=0"]
#: what torchrun sets in each process it starts
TORCHRUN = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


@pytest.fixture(autouse=True)
def no_torchrun(monkeypatch):
    for name in env.TORCHRUN:
        monkeypatch.delenv(name, raising=False)


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --------------------------------------------------------------------------- a fixed set of values per variable


@pytest.mark.parametrize("value, retrain", [("", False), ("0", False), ("1", True)])
def test_retrain_takes_0_or_1(monkeypatch, value, retrain):
    monkeypatch.setenv("LMBOOK_RETRAIN", value)
    assert env.retrain() is retrain


@pytest.mark.parametrize("name, value", [
    ("LMBOOK_RETRAIN", "false"), ("LMBOOK_RETRAIN", "true"), ("LMBOOK_RETRAIN", "yes"), ("LMBOOK_RETRAIN", "2"),
    ("LMBOOK_PROGRESS", "off"), ("LMBOOK_DEBUG", "true"), ("LMBOOK_PROFILE", "bogus"), ("LMBOOK_PROFILE", "CPU"),
    ("LMBOOK_DEVICE", "bogus"), ("LMBOOK_DEVICE", "gpu"), ("LMBOOK_CACHES", "hot"),
    ("LMBOOK_STARTED_AT", "yesterday"), ("LMBOOK_PYTHON", "/no/such/python"),
])
def test_a_value_outside_a_variables_set_is_one_line_naming_it(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(env.EnvironmentSettingError) as info:
        env.check_environment()
    message = str(info.value)
    assert len(message.splitlines()) == 1 and f"environment variable {name} must be" in message
    assert repr(value) in message and isinstance(info.value, ConfigError)


def test_the_shipped_values_pass(monkeypatch):
    for name, value in {"LMBOOK_PROFILE": "reference", "LMBOOK_DEVICE": "cpu", "LMBOOK_RETRAIN": "0",
                        "LMBOOK_PROGRESS": "0", "LMBOOK_DEBUG": "1", "LMBOOK_CACHES": "cold",
                        "LMBOOK_STARTED_AT": "1767225600.25", "LMBOOK_PYTHON": sys.executable}.items():
        monkeypatch.setenv(name, value)
    env.check_environment()
    assert env.profile() == "reference" and env.device() == "cpu" and not env.retrain() and not env.progress()
    assert env.debug() and env.caches() == "cold" and env.started_at() == 1767225600.25


def test_retrain_false_keeps_a_finished_run(isolated_runs, monkeypatch):
    """LMBOOK_RETRAIN=false deleted the finished run and trained it again (issue 43, item 3)."""
    record = run_method("fse", "smoke", name="kept", overrides=TINY)
    before = (record.run_dir / "record.json").read_bytes()
    monkeypatch.setenv("LMBOOK_RETRAIN", "false")
    with pytest.raises(ConfigError, match=r"LMBOOK_RETRAIN must be 1 \(retrain\), or 0 or unset .*got 'false'"):
        run_method("fse", "smoke", name="kept", overrides=TINY)
    assert (record.run_dir / "record.json").read_bytes() == before


# --------------------------------------------------------------------------- torchrun's variables


@pytest.mark.parametrize("stray", [{"RANK": "1"}, {"WORLD_SIZE": "2"}, {"RANK": "1", "WORLD_SIZE": "2"},
                                   {"LOCAL_RANK": "0"}])
def test_a_stray_rank_or_world_size_without_torchrun_is_refused(monkeypatch, stray):
    for name, value in stray.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(env.EnvironmentSettingError) as info:
        env.torchrun_rank()
    message = str(info.value)
    assert len(message.splitlines()) == 1 and "without torchrun" in message and "MASTER_ADDR" in message


@pytest.mark.parametrize("values, says", [({"RANK": "2", "WORLD_SIZE": "2"}, "0 <= RANK < WORLD_SIZE"),
                                          ({"RANK": "one"}, "RANK must be a whole number")])
def test_torchrun_values_that_are_no_ranks_are_refused(monkeypatch, values, says):
    for name, value in {**TORCHRUN, **values}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(env.EnvironmentSettingError, match=re.escape(says)):
        env.torchrun_group()


def test_torchruns_own_variables_give_the_rank(monkeypatch):
    assert env.torchrun_group() == (0, 1)
    for name, value in {**TORCHRUN, "RANK": "1", "WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)
    assert env.torchrun_group() == (1, 2) and env.torchrun_rank() == 1


def test_a_stray_rank_trains_nothing_and_says_so(isolated_runs, monkeypatch, capsys):
    """RANK=1 without torchrun trained without the lock, wrote no record or summary and exited 0
    (issue 43, item 5); WORLD_SIZE=2 was a ValueError (item 12)."""
    for stray in ({"RANK": "1"}, {"WORLD_SIZE": "2"}):
        with monkeypatch.context() as patched:
            for name, value in stray.items():
                patched.setenv(name, value)
            assert cli.main(["fse", "--profile", "smoke", "--name", "stray", *TINY_ARGS]) == 2
        line = _one_line(capsys.readouterr().err)
        assert line.startswith("python -m lmcore.train: error: ") and "without torchrun" in line
    assert not isolated_runs.exists() or not any(isolated_runs.rglob("checkpoint.pt"))
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(env.EnvironmentSettingError):  # the run API refuses it too
        run_method("fse", "smoke", name="stray", overrides=TINY)


# --------------------------------------------------------------------------- devices


@pytest.mark.parametrize("value", ["bogus", "cuda:x", "cpu "])
def test_a_device_name_torch_does_not_know_is_one_line(isolated_runs, monkeypatch, capsys, value):
    monkeypatch.setenv("LMBOOK_DEVICE", value)
    assert cli.main(["fse", "--profile", "smoke", "--name", "device", *TINY_ARGS]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "environment variable LMBOOK_DEVICE must be cpu, cuda, cuda:<n> or mps" in line


def test_cuda_without_a_gpu_is_one_line(isolated_runs, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("LMBOOK_DEVICE", "cuda")
    with pytest.raises(ConfigError, match="PyTorch sees no GPU"):
        select_device()
    assert cli.main(["fse", "--profile", "smoke", "--name", "device", *TINY_ARGS]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "device 'cuda' (from $LMBOOK_DEVICE): PyTorch sees no GPU on this machine" in line
    assert not isolated_runs.exists() or not any(isolated_runs.rglob("checkpoint.pt"))


# --------------------------------------------------------------------------- folders


def test_a_folder_variable_naming_a_file_is_one_line(tmp_path, monkeypatch):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for name in env.FOLDERS:
        with monkeypatch.context() as patched:
            patched.setenv(name, str(a_file))
            with pytest.raises(env.EnvironmentSettingError, match=f"{name}=.*a-file is a file, not a folder"):
                env.folder(name)
    monkeypatch.setenv("LMBOOK_CACHE", str(tmp_path / "not-yet"))  # a folder made when first written
    assert env.folder("LMBOOK_CACHE") == tmp_path / "not-yet"


# --------------------------------------------------------------------------- make book


def _run(command, **variables):
    environment = {k: v for k, v in os.environ.items() if k not in env.TORCHRUN}
    return subprocess.run(command, cwd=ROOT, env={**environment, "OMP_NUM_THREADS": "1", **variables},
                          capture_output=True, text=True, timeout=300)


def test_a_bogus_book_profile_is_one_line_and_exit_2():
    """``LMBOOK_PROFILE=bogus make book`` printed a ConfigError traceback (issue 43, item 13)."""
    for command in (["bash", "tools/lmbook", "book"], [sys.executable, "tools/build_book.py"]):
        done = _run(command, LMBOOK_PROFILE="bogus", LMBOOK_PYTHON=sys.executable)
        assert done.returncode == 2, done.stderr
        line = _one_line(done.stderr)
        assert line.startswith("[lmbook] error: environment variable LMBOOK_PROFILE must be smoke, reference, cpu or paper")
        assert "'bogus'" in line and done.stdout == ""


def test_python_m_lmcore_env_lists_every_variable():
    done = _run([sys.executable, "-m", "lmcore.env"], LMBOOK_RETRAIN="1")
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()] == list(env.VARIABLES)
    assert re.search(r"^LMBOOK_RETRAIN +1 ", done.stdout, re.M)


# --------------------------------------------------------------------------- one module reads them


#: a read of an LMBOOK_* variable in Python (an assignment, ``os.environ["LMBOOK_X"] = ...``, is no read)
READ = re.compile(r"""(environ\.get\(|getenv\(|environ\[)\s*["']LMBOOK_\w+["']""")


def _sources():
    for folder in ("lmcore", "tools", "data_scripts"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and (path.suffix == ".py" or path.name == "lmbook") and "__pycache__" not in path.parts:
                yield path


def test_no_module_but_lmcore_env_reads_an_lmbook_variable():
    readers = []
    for path in _sources():
        if path == ROOT / "lmcore" / "env.py" or path.suffix != ".py":  # tools/lmbook: the shell, before Python
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = READ.search(line)
            if match and not re.search(r"environ\[[^\]]+\]\s*=(?!=)", line):
                readers.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert readers == []


def test_every_lmbook_variable_is_declared_and_on_the_appendix_page():
    named = set()
    for path in [*_sources(), *(ROOT / "book").glob("*.md"), ROOT / "README.md", ROOT / "Makefile"]:
        named |= set(re.findall(r"\b(LMBOOK_[A-Z_]*[A-Z])\b", path.read_text()))
    assert named - set(env.VARIABLES) == set()
    page = (ROOT / "book" / "using_environment.md").read_text()
    listed = set(re.findall(r"^\| `(LMBOOK_\w+)`", page, re.M))
    assert listed == set(env.VARIABLES)
    assert all(f"`{name}`" in page for name in env.TORCHRUN)
