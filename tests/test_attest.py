"""Attestation instead of retraining (issue 42): a record whose code changed but computes the same is
re-keyed with its evidence; one whose probes differ is labelled; every committed record is current,
attested or labelled."""
import pytest

from lmcore import attest
from lmcore.training import run_method
from lmcore.training import runs as runs_module
from lmcore.training.attestation import EARLY_STEPS, SCHEDULE_STEPS, probe_requests, schedule_config
from lmcore.training.records import write_record
from lmcore.training.run_record import RunRecord

TINY = {"method": {"num_landmarks": 4, "widths": [4, 6, 8, 8, 8], "view_size": 16, "padding": "same"},
        "train": {"resolution": 16, "batch_size": 4, "steps": 2, "checkpoint_every": 2, "eval_every": 0, "log_every": 1,
                  "lr_milestones": []}}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny cpu-profile run, which records its probes (trained once for the module)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LMBOOK_RUNS", str(tmp_path_factory.mktemp("runs")))
        patch.setenv("LMBOOK_PROGRESS", "0")
        record = run_method("fse", "cpu", name="tiny", overrides=TINY, progress=False)
    assert record["attestation"]["probes"]["early"]["steps"] == 2  # min(EARLY_STEPS, its steps)
    return dict(record)


@pytest.fixture()
def committed(tiny_run, tmp_path):
    """The tiny run committed under a results folder of its own."""
    path = tmp_path / "results" / "fse" / "tiny.json"
    write_record(path, tiny_run)
    return path


def test_a_record_is_current_until_its_code_changes(committed, monkeypatch):
    published = attest.published_records(committed.parents[1])
    assert attest.state_of(committed, RunRecord.from_file(committed), published).state == "current"
    monkeypatch.setattr(runs_module, "code_fingerprint", lambda method=None, **kw: "edited")
    assert attest.state_of(committed, RunRecord.from_file(committed), published).state == "stale"


def test_the_same_computation_is_rekeyed_with_its_evidence(committed, monkeypatch):
    before = RunRecord.from_file(committed)
    monkeypatch.setattr(runs_module, "code_fingerprint", lambda method=None, **kw: "refactored")
    found = attest.attest(committed, attest.published_records(committed.parents[1]), "c0ffee", log=lambda *a: None)
    assert found.state == "attested", found.detail
    after = RunRecord.from_file(committed)
    evidence = after["attested"][-1]
    assert evidence["from_identity"] == before["identity"] and evidence["to_identity"] == after["identity"] != before["identity"]
    assert evidence["against"] == "its own probes" and evidence["git_commit"] == "c0ffee"
    assert evidence["probes"]["early"] == before["attestation"]["probes"]["early"]
    assert after["metrics"] == before["metrics"]  # the numbers are the run's: nothing was retrained


def test_other_weights_under_todays_code_label_the_record(committed, monkeypatch):
    monkeypatch.setattr(runs_module, "code_fingerprint", lambda method=None, **kw: "numerics changed")
    monkeypatch.setattr(attest, "run_probes_here", lambda requests: {
        name: {"steps": r["steps"], "weights_sha256": "0" * 64} for name, r in requests.items()})
    found = attest.attest(committed, attest.published_records(committed.parents[1]), "c0ffee", log=lambda *a: None)
    assert found.state == "changed" and "early probe" in found.detail
    assert RunRecord.from_file(committed)[attest.VERDICT_KEY]["state"] == "changed"


def test_the_schedule_probe_puts_every_milestone_inside_it():
    from lmcore.experiments import method_settings

    config = method_settings("zhang").default_config("cpu")
    short = schedule_config("zhang", config)
    assert short["train"]["steps"] == SCHEDULE_STEPS
    assert all(0 < m < SCHEDULE_STEPS for m in short["train"]["lr_milestones"])
    assert all(0 < s < SCHEDULE_STEPS for s in short["method"]["recon_increase_steps"])
    requests = probe_requests("zhang", config, {}, threads=1)
    assert requests["early"]["steps"] == EARLY_STEPS and requests["early"]["config"] == config
    jakab = method_settings("jakab").default_config("cpu")  # no step-counted setting: no schedule probe
    assert set(probe_requests("jakab", jakab, {}, threads=1)) == {"early"}


def test_every_committed_record_is_current_attested_or_labelled():
    """After a code change, ``python -m lmcore.attest --attest`` re-keys what computes the same and
    labels the rest: no committed record may be left stale."""
    stale = [f"{s.path.relative_to(s.path.parents[2])}: {s.detail}" for s in attest.states() if s.state == "stale"]
    assert not stale, "stale records (run: python -m lmcore.attest --attest):\n" + "\n".join(stale)


def test_a_retrain_with_every_number_equal_carries_the_references_identities(tiny_run):
    """A reference retrained under today's code (e.g. with a setting added later spelled out, which
    moves the identity) that gives every number again answers to the old identities too; one whose
    numbers differ is another run."""
    old = dict(tiny_run, identity="0ld1dent17", attested=[{"from_identity": "older", "to_identity": "0ld1dent17"}])
    new = dict(tiny_run, history=[dict(point, forward_tune_val=1.0, wall_time_s=9.0) for point in tiny_run["history"]])
    carried = attest.carry_identities(new, old)
    assert attest.known_identities(carried) == {tiny_run["identity"], "0ld1dent17", "older"}
    assert carried["attested"][-1]["against"].startswith("a full retrain")
    off = dict(new, metrics={**new["metrics"], "forward": {}})
    with pytest.raises(attest.LmbookError, match="numbers differ"):
        attest.carry_identities(off, old)
    curve_off = dict(new, history=[dict(point, loss=point.get("loss", 0) + 1) for point in tiny_run["history"]])
    assert attest.retrained_alike(curve_off, old) is None
