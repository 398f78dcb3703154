"""Publishing a run as a reference loses nothing (issue 43, items 1, 2 and 6): everything is checked
before anything is written, new weights are written before the record that names them, smoke runs
are never references, a reference of another profile is replaced only when asked, and of two
publishers of one name the second learns that the first replaced the reference."""
import json
import subprocess
import sys

import pytest

from lmcore import zoo, zoo_export
from lmcore.paths import PROJECT_ROOT, RESULTS_DIR
from lmcore.training import PublishRefused
from lmcore.training.records import write_record
from lmcore.training.run_record import RunRecord


def _record(profile="cpu", name="k10", method="fse") -> RunRecord:
    return RunRecord({"method": method, "run_name": name, "profile": profile, "identity": "abc", "git_commit": "c0ffee",
                      "lmcore_dirty": False, "config": {"method": {}, "train": {}, "data": {"source": "mtfl80"}},
                      "device": {"type": "cpu"}, "wall_time_s": 1.0, "data": {}, "metrics": {"forward": {}}})


def _committed(root, profile="cpu"):
    """A committed reference with weights under ``root``: (record file, its bytes, weights bytes)."""
    path = root / "fse" / "k10.json"
    write_record(path, dict(_record(profile), weights_sha256="w"))
    weights = path.with_suffix(zoo.WEIGHTS_SUFFIX)
    weights.write_bytes(b"old weights")
    return path, path.read_bytes(), weights.read_bytes()


def _unchanged(path, text, weights):
    assert path.read_bytes() == text and path.with_suffix(zoo.WEIGHTS_SUFFIX).read_bytes() == weights


def test_a_smoke_run_is_never_published_and_the_committed_reference_stays(capsys):
    from lmcore import train as cli

    reference = RESULTS_DIR / "fse" / "k10.json"
    before = reference.read_bytes(), reference.with_suffix(zoo.WEIGHTS_SUFFIX).read_bytes()
    code = cli.main(["fse", "--profile", "smoke", "--name", "k10", "--set", "train.steps=2", "--publish"])
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1, err
    assert (reference.read_bytes(), reference.with_suffix(zoo.WEIGHTS_SUFFIX).read_bytes()) == before


def test_the_publishing_tool_refuses_the_smoke_profile():
    done = subprocess.run([sys.executable, "tools/publish_references.py", "--profile", "smoke", "fse:k10"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "smoke" in done.stderr


def test_a_smoke_record_is_refused_before_anything_is_written(tmp_path):
    path, text, weights = _committed(tmp_path)
    with pytest.raises(PublishRefused, match="smoke runs are never published"):
        zoo_export.publish(_record("smoke"), root=tmp_path)
    _unchanged(path, text, weights)


def test_a_reference_of_another_profile_is_replaced_only_when_asked(tmp_path, monkeypatch):
    path, text, weights = _committed(tmp_path, profile="cpu")
    monkeypatch.setattr(zoo_export, "weights_of", lambda record: None)  # a record the zoo holds no weights of
    with pytest.raises(PublishRefused, match="--replace-profile"):
        zoo_export.publish(_record("paper"), root=tmp_path)
    _unchanged(path, text, weights)
    published, done = zoo_export.publish(_record("paper"), root=tmp_path, replace_profile=True)
    assert json.loads(published.read_text())["profile"] == "paper" and done is None
    assert not path.with_suffix(zoo.WEIGHTS_SUFFIX).exists()  # they belonged to the record it replaced


def test_failing_weights_check_writes_nothing(tmp_path, monkeypatch):
    path, text, weights = _committed(tmp_path)

    def refuse(record):
        raise zoo.ZooError("its weights give 18.05 %, its record 18.36 %: nothing written")

    monkeypatch.setattr(zoo_export, "weights_of", refuse)
    with pytest.raises(zoo.ZooError):
        zoo_export.publish(_record(), root=tmp_path)
    _unchanged(path, text, weights)


def test_new_weights_are_written_before_the_record_that_names_them(tmp_path, monkeypatch):
    path, _, _ = _committed(tmp_path)
    order = []
    write = zoo_export._write_weights_file
    monkeypatch.setattr(zoo_export, "weights_of", lambda record: {"tensors": {}, "dtype": "fp16", "measured": {}})
    monkeypatch.setattr(zoo_export, "_write_weights_file", lambda *a: (order.append("weights"), write(*a))[1])
    monkeypatch.setattr(zoo_export, "write_record", lambda *a: order.append("record"))
    zoo_export.publish(_record(), root=tmp_path)
    assert order == ["weights", "record"]


def test_the_second_of_two_publishers_learns_that_the_first_replaced_the_reference(tmp_path, monkeypatch):
    path, _, _ = _committed(tmp_path)

    def first_publisher_meanwhile(record):  # another process publishes while this one checks its weights
        write_record(path, dict(_record(), identity="from-the-other-process"))
        return None

    monkeypatch.setattr(zoo_export, "weights_of", first_publisher_meanwhile)
    with pytest.raises(PublishRefused, match="published by another process"):
        zoo_export.publish(_record(), root=tmp_path)
    assert json.loads(path.read_text())["identity"] == "from-the-other-process"
