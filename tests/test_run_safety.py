"""A finished run is never lost, a record is never wrong about its weights, and nothing is
written outside the project (the hostile-user cases of issue 29)."""
import json
import shutil
import sys
from pathlib import Path

import pytest

from lmcore.errors import CorruptCheckpointError, CorruptRecordError, LmbookError
from lmcore.paths import PROJECT_ROOT, RESULTS_DIR
from lmcore.training import PublishRefused, load_trained, publish_reference, run_method
from lmcore.training import runs as runs_module
from lmcore.training.code_identity import closure, code_files, code_fingerprint, training_roots, working_tree
from lmcore.training.records import DIGEST_KEY, read_record, write_record
from lmcore.training.run_record import RunRecord

TINY = {"method": {"num_landmarks": 4, "widths": [4, 6, 8, 8, 8], "view_size": 16, "padding": "same"},
        "train": {"resolution": 16, "batch_size": 4, "steps": 2, "checkpoint_every": 2, "eval_every": 0, "log_every": 1}}


def _copy_lmcore(tmp_path) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(PROJECT_ROOT / "lmcore", root / "lmcore", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return root


def _append(path: Path, text: str = "\nEDITED = 1  # an edit of what the module computes\n") -> None:
    path.write_bytes(path.read_bytes() + text.encode())


def _closure(method: str, root: Path | None = None) -> set[str]:
    tree = working_tree(root) if root is not None else working_tree()
    return set(closure(tree, training_roots(tree, method, "mtfl80")[0]))


# --------------------------------------------------------------------------- which code a run depends on


def test_a_run_is_keyed_by_the_modules_its_method_imports(tmp_path):
    root = _copy_lmcore(tmp_path)
    before = {m: code_fingerprint(m, root) for m in ("fse", "jakab", "c3")}
    _append(root / "lmcore" / "losses" / "c3.py")  # C3's loss: FSE and Jakab never import it
    after = {m: code_fingerprint(m, root) for m in ("fse", "jakab", "c3")}
    assert after["fse"] == before["fse"] and after["jakab"] == before["jakab"] and after["c3"] != before["c3"]
    _append(root / "lmcore" / "methods" / "jakab.py")  # C3 builds on Jakab's generator: both change
    again = {m: code_fingerprint(m, root) for m in ("fse", "jakab", "c3")}
    assert again["fse"] == before["fse"] and again["jakab"] != after["jakab"] and again["c3"] != after["c3"]
    _append(root / "lmcore" / "training" / "loop.py")  # the loop trains every method
    assert all(code_fingerprint(m, root) != again[m] for m in again)


def test_a_settings_edit_changes_no_code_fingerprint_but_the_configs_it_changes(tmp_path):
    root = _copy_lmcore(tmp_path)
    before = {m: code_fingerprint(m, root) for m in ("fse", "jakab", "c3", "sanchez")}
    _append(root / "lmcore" / "experiments" / "jakab.py")  # a profile's settings reach a run as its config
    _append(root / "lmcore" / "experiments" / "base.py")
    assert {m: code_fingerprint(m, root) for m in before} == before
    smoke = runs_module.resolve_config("jakab", "smoke")
    k12 = runs_module.resolve_config("jakab", "smoke", {"method": {"num_landmarks": 12}})
    assert runs_module.config_hash(runs_module.run_identity("jakab", "smoke", smoke)) != runs_module.config_hash(
        runs_module.run_identity("jakab", "smoke", k12))


def test_presentation_storage_and_protocol_modules_are_not_part_of_any_training_closure():
    for method in ("fse", "zhang", "jakab", "c3", "sanchez", "pose", "supervised"):
        files = _closure(method)
        assert f"lmcore/methods/{'c3' if method.startswith('c3') else method}.py" in files
        # the loop, what builds a run and the method registry's seeding train every method
        assert {"lmcore/training/loop.py", "lmcore/training/trainee.py", "lmcore/methods/__init__.py"} <= files
        # the book's layer, the experiments' declarations and the protocol, as whole folders whatever files they gain
        outside = sorted(f for f in files if f.startswith(("lmcore/book/", "lmcore/experiments/", "lmcore/evaluation/")))
        assert not outside, (method, outside)
        for never in ("lmcore/bench.py", "lmcore/__init__.py", "lmcore/zoo.py", "lmcore/files.py",
                      "lmcore/training/records.py", "lmcore/training/runs.py", "lmcore/training/code_identity.py"):
            assert never not in files, (method, never)
    assert "lmcore/losses/c3.py" not in _closure("fse")
    # the face methods' data source is MTFL-80's module, not LSPET's parser (a split data registry)
    assert "lmcore/data/lspet.py" not in _closure("zhang") and "lmcore/data/mtfl.py" in _closure("zhang")


def test_imports_inside_functions_count(tmp_path):
    root = _copy_lmcore(tmp_path)
    pkg = root / "lmcore" / "geometry"
    (pkg / "extra_helper.py").write_text("VALUE = 1\n")
    before = code_fingerprint("fse", root)
    _append(pkg / "extra_helper.py")
    assert code_fingerprint("fse", root) == before  # nobody imports it yet
    _append(root / "lmcore" / "losses" / "fse.py", "\n\ndef _late():\n    from ..geometry import extra_helper\n")
    assert "lmcore/geometry/extra_helper.py" in _closure("fse", root)


# --------------------------------------------------------------------------- a finished run is kept


def test_a_code_change_trains_a_new_run_and_keeps_the_finished_one(isolated_runs, monkeypatch, capsys):
    first = run_method("fse", "smoke", name="base", overrides=TINY)
    manifest = dict(first["code_files"])
    manifest["lmcore/losses/fse.py"] = "0" * 16
    with monkeypatch.context() as edited:
        edited.setattr(runs_module, "code_fingerprint", lambda method=None, **kw: "changed")
        edited.setattr(runs_module, "code_files", lambda method=None, **kw: manifest)
        second = run_method("fse", "smoke", name="base", overrides=TINY)
    line = capsys.readouterr().out
    assert "its code changed (lmcore/losses/fse.py)" in line and "is kept" in line
    assert second.run_dir != first.run_dir and second["identity"] != first["identity"]
    assert (first.run_dir / "record.json").exists() and first.checkpoint is not None
    # the edit reverted: the first run is found again, nothing retrained
    again = run_method("fse", "smoke", name="base", overrides=TINY)
    assert again.run_dir == first.run_dir and again["created"] == first["created"] and again.reused


def test_publish_is_refused_before_training_when_the_code_is_uncommitted(isolated_runs, monkeypatch, capsys):
    from lmcore import train as cli
    from lmcore.training import code_identity

    monkeypatch.setattr(code_identity, "dirty_files", lambda root=None, files=None: ["lmcore/losses/fse.py"])
    monkeypatch.setattr(runs_module, "_train", lambda *a, **k: pytest.fail("trained before refusing"))
    code = cli.main(["fse", "--profile", "smoke", "--name", "base", "--set", "train.steps=2", "--publish"])
    err = capsys.readouterr().err
    assert code == 1 and "refused before training" in err and "lmcore/losses/fse.py" in err
    assert not isolated_runs.exists() or not any(isolated_runs.rglob("record.json"))


def test_a_foreign_checkpoint_is_never_deleted(isolated_runs):
    donor = run_method("fse", "smoke", name="donor", overrides={**TINY, "train": {**TINY["train"], "seed": 3}})
    identity = runs_module.config_hash(runs_module.run_identity("fse", "smoke", runs_module.resolve_config(
        "fse", "smoke", TINY)))
    folder = runs_module.run_directory("fse", "smoke", "victim", identity)
    folder.mkdir(parents=True)
    shutil.copy(donor.run_dir / "checkpoint.pt", folder / "checkpoint.pt")  # an interrupted run, foreign weights
    (folder / "notes.txt").write_text("mine\n")
    with pytest.raises(LmbookError, match="is not a checkpoint of fse/victim"):
        run_method("fse", "smoke", name="victim", overrides=TINY)
    assert (folder / "notes.txt").read_text() == "mine\n" and (folder / "checkpoint.pt").exists()


def test_failed_runs_leave_no_empty_folder_and_finished_runs_no_lock(isolated_runs, monkeypatch):
    record = run_method("fse", "smoke", name="tidy", overrides=TINY)
    assert not list(record.run_dir.parent.glob(".*.lock"))
    monkeypatch.setattr(runs_module, "get_source", lambda name: (_ for _ in ()).throw(LmbookError("no data")))
    with pytest.raises(LmbookError, match="no data"):
        run_method("fse", "smoke", name="fails", overrides=TINY)
    assert not list(record.run_dir.parent.glob("fails-*"))


@pytest.mark.skipif(sys.platform != "linux" or __import__("os").geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_runs_folder_is_one_line(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    runs.mkdir()
    runs.chmod(0o500)
    monkeypatch.setenv("LMBOOK_RUNS", str(runs))
    try:
        with pytest.raises(LmbookError, match="set LMBOOK_RUNS to a writable folder"):
            run_method("fse", "smoke", name="x", overrides=TINY)
    finally:
        runs.chmod(0o700)


def test_runs_folder_that_is_a_file_is_one_line(tmp_path, monkeypatch):
    target = tmp_path / "a-file"
    target.write_text("")
    monkeypatch.setenv("LMBOOK_RUNS", str(target))
    with pytest.raises(LmbookError, match="set LMBOOK_RUNS to a writable folder"):
        run_method("fse", "smoke", name="x", overrides=TINY)


# --------------------------------------------------------------------------- a record is right about its weights


def test_evaluation_refuses_a_checkpoint_the_record_was_not_made_with(isolated_runs):
    from lmcore.evaluation import RegressionOptions

    a = run_method("fse", "smoke", name="a", overrides=TINY)
    b = run_method("fse", "smoke", name="b", overrides={**TINY, "train": {**TINY["train"], "seed": 3}})
    shutil.copy(b.run_dir / "checkpoint.pt", a.run_dir / "checkpoint.pt")  # same architecture, other weights
    with pytest.raises(CorruptCheckpointError, match="not the checkpoint fse/a was evaluated with"):
        run_method("fse", "smoke", name="a", overrides=TINY, options=RegressionOptions(intercept=True))
    with pytest.raises(CorruptCheckpointError):
        load_trained(a)


def test_a_checkpoint_of_another_method_is_one_line(isolated_runs):
    a = run_method("fse", "smoke", name="a", overrides=TINY)
    record = dict(a)
    record["checkpoint_sha256"] = None  # even where no digest was recorded, a wrong state is one line
    with pytest.raises(CorruptCheckpointError):
        load_trained(RunRecord(record, run_dir=a.run_dir))


def test_hand_edited_records_are_refused(isolated_runs):
    record = run_method("fse", "smoke", name="edited", overrides=TINY)
    path = record.run_dir / "record.json"
    data = json.loads(path.read_text())
    data["metrics"]["forward"]["test_mtfl"]["mean"] = 1.0
    path.write_text(json.dumps(data))
    with pytest.raises(CorruptRecordError, match="changed after it was written"):
        run_method("fse", "smoke", name="edited", overrides=TINY)
    data["metrics"] = [1, 2]
    path.write_text(json.dumps(data))
    with pytest.raises(CorruptRecordError, match="'metrics' must be a group"):
        read_record(path)


def test_every_committed_reference_is_a_valid_record_with_its_digest():
    records = [p for p in RESULTS_DIR.rglob("*.json")  # not run records: the bench's and builds' (at any depth)
               if not {"bench", "builds"} & set(p.relative_to(RESULTS_DIR).parts[:-1]) and not p.name.startswith("leaderboard")]
    assert len(records) > 20
    for path in records:
        record = read_record(path)  # schema and digest
        text = path.read_text()
        assert '"/work' not in text and '"/home' not in text and '"/root' not in text, path  # no machine paths
        assert all("run_dir" not in p for p in (record.get("parents") or {}).values()), path


def test_write_record_round_trips_and_detects_any_change(tmp_path):
    record = {"method": "fse", "profile": "smoke", "config": {"method": {}, "train": {}}, "git_commit": "x",
              "device": {}, "wall_time_s": 1.0, "data": {}, "metrics": {"forward": {"t": {"mean": 2.0}}}}
    written = write_record(tmp_path / "r.json", record)
    assert read_record(tmp_path / "r.json")[DIGEST_KEY] == written[DIGEST_KEY]
    for key, value in (("wall_time_s", 2.0), ("git_commit", "y")):
        changed = dict(written, **{key: value})
        (tmp_path / "r.json").write_text(json.dumps(changed))
        with pytest.raises(CorruptRecordError):
            read_record(tmp_path / "r.json")


# --------------------------------------------------------------------------- nothing is written outside the project


@pytest.mark.parametrize("name", ["../../../../elsewhere/x", "a/b", "x\n", ""])
def test_publishing_cannot_leave_results(isolated_runs, tmp_path, name):
    record = run_method("fse", "smoke", name="ok", overrides=TINY)
    crafted = RunRecord(dict(record, run_name=name, lmcore_dirty=False, git_commit="abc"))
    with pytest.raises(PublishRefused):
        publish_reference(crafted, root=tmp_path / "results")
    assert not (tmp_path / "elsewhere").exists()


def test_records_hold_no_absolute_paths_and_parents_are_found_by_identity(isolated_runs, fse_with_parents):
    parent = {"core": {"method": "fse", "name": "core", "overrides": TINY}}
    child = run_method("fse", "smoke", name="child", overrides={**TINY, "parents": parent})
    text = (child.run_dir / "record.json").read_text()
    assert str(PROJECT_ROOT.parent) not in text and str(isolated_runs) not in text
    assert "run_dir" not in json.dumps(child["parents"])
    assert load_trained(child) is not None  # the parent located by method, name and identity


def test_run_names_must_match_whole(isolated_runs):
    from lmcore.errors import ConfigError

    with pytest.raises(ConfigError, match="run name"):
        run_method("fse", "smoke", name="x\n", overrides=TINY)


# --------------------------------------------------------------------------- publish_references picks the exact run


def test_publish_references_matches_the_exact_name_and_the_current_identity(isolated_runs, tmp_path, monkeypatch):
    sys.path.insert(0, str(PROJECT_ROOT / "tools"))
    import publish_references

    base = run_method("fse", "smoke", name="base", overrides=TINY)
    run_method("fse", "smoke", name="base-long", overrides={**TINY, "train": {**TINY["train"], "steps": 3}})
    assert publish_references.choose("fse:base", "smoke").run_dir == base.run_dir
    with monkeypatch.context() as edited:
        edited.setattr(runs_module, "code_fingerprint", lambda method=None, **kw: "changed")
        with pytest.raises(LmbookError, match="no finished run of that name is current"):
            publish_references.choose("fse:base", "smoke")
        chosen = publish_references.choose(f"fse:base@{base['identity']}", "smoke")
    assert chosen.run_dir == base.run_dir


# --------------------------------------------------------------------------- every setting has a range


def test_every_setting_of_every_profile_declares_its_range():
    from lmcore.config import unranged_keys
    from lmcore.experiments import method_settings
    from lmcore.methods import REGISTRY, get_method

    for name in REGISTRY:
        cls = get_method(name)
        for profile in ("smoke", "cpu", "paper"):
            config = method_settings(name).default_config(profile)
            assert unranged_keys(config["method"], cls.ranges) == [], (name, profile)
            cls.check_config(config)  # each profile's own values are within their ranges


@pytest.mark.parametrize("assignment, message", [
    ("method.gamma=-10", r"'method\.gamma' must be in \[0, 1e\+06\], got -10"),
    ("method.gamma=NaN", r"'method\.gamma' must be a finite number"),
    ("method.num_landmarks=100000", r"'method\.num_landmarks' must be in \[1, 256\]"),
    ("train.resolution=100000", r"'train\.resolution' must be an integer in \[8, 1024\]"),
    ("data.split=test_mtfl", r"'data\.split' is the test split 'test_mtfl'"),
    ("data.split=nosuch", r"'data\.split' must be a split of 'mtfl80'"),
    ("method.widths=[]", r"'method\.widths' must be a list of 5 items"),
    ("method.kernel_sizes=[0,5,3,3,3,1]", r"'method\.kernel_sizes' must be a list of items each in \[1, 15\]"),
    ("method.alignment=bogus", r"'method\.alignment' must be one of 'probability', 'landmark'"),
])
def test_impossible_values_are_one_line_and_exit_2(assignment, message, capsys):
    import re

    from lmcore import train as cli

    assert cli.main(["fse", "--profile", "smoke", "--set", assignment, "--show"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err


def test_a_process_keys_its_runs_by_the_code_it_read_at_start(monkeypatch):
    """The snapshot (code_identity.sources), not the files on disk later, says what a run ran: an
    edit during a long sweep neither relabels its later runs nor makes them look uncommitted."""
    from lmcore.training import code_identity

    snapshot = code_identity.sources()
    assert snapshot is code_identity.sources()  # read once per process
    before = code_fingerprint("fse")
    monkeypatch.setitem(code_identity._WORKING, "lmcore/losses/fse.py", snapshot["lmcore/losses/fse.py"] + b"\nX = 1\n")
    assert code_fingerprint("fse") != before
    assert "lmcore/losses/fse.py" in code_identity.dirty_files(files=list(code_files("fse")))
