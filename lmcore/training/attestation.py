"""Attestation: showing that today's code computes what the code that trained a run computed,
without retraining it.

A run's training identity holds the fingerprint of its code (:mod:`lmcore.training.code_identity`).
When a real code change moves that fingerprint (a refactor, a file split, a renamed variable) the
run looks stale, although its weights may be exactly those today's code would train. Its
**probes** tell (:mod:`lmcore.training.probe`):

* ``early``: the run's own config trained for :data:`EARLY_STEPS` steps;
* ``schedule``: the config with every step-counted setting (learning-rate milestones and warm-up,
  the method's ``step_settings`` such as Zhang's growing reconstruction weight) squeezed into
  :data:`SCHEDULE_STEPS` steps (:func:`schedule_config`), so that the code acting after a
  milestone runs too; runs with no such setting have no schedule probe.

Each probe starts from the run's seed with its parents freshly initialised (each parent is attested
by its own probes) and gives the sha256 of the weights it ends with. Runs of the ``cpu`` and
``paper`` profiles record their probes when they train on a CPU (:func:`probes_for_run`). To attest
a run under today's code (``python -m lmcore.attest``), the probes are run again with the run's
thread count and compared with the recorded ones, or, for a record trained before probes existed
(or on another CPU model), with the same probes run now under the code of the commit that trained
it (:func:`run_probes_at_commit`). Bit-identical weights re-key the record to today's identity,
and the record keeps the evidence; different weights mean the change altered what the run
computes. What the probes do not reach is said where it is shown: a code path that only acts
after :data:`EARLY_STEPS` steps for a reason other than a step-counted setting.
"""
from __future__ import annotations

import json
import os
import shutil
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import torch

from ..methods import get_method
from ..paths import PROJECT_ROOT, cache_root, data_root
from ..profiles import select_device
from .probe import run_probe
from .records import describe_device

#: steps of the early probe: enough for Adam's moments and BatchNorm's statistics to be used
EARLY_STEPS = 50
#: steps of the schedule probe, every milestone inside them
SCHEDULE_STEPS = 40
#: the profiles whose runs record their probes (a smoke run is never a reference)
PROBED_PROFILES = ("cpu", "paper")


def schedule_config(method: str, config: dict) -> dict | None:
    """``config`` shortened to :data:`SCHEDULE_STEPS` steps with its learning-rate milestones,
    warm-up and the method's step-counted settings keeping their fraction of the schedule (each
    at least step 1, so that every phase is reached); None when the run has no step-counted
    setting inside its steps (the early probe then covers what the schedule would)."""
    cls = get_method(method)
    train = config["train"]
    steps = int(train["steps"])
    counted = list(train.get("lr_milestones") or []) + [train.get("warmup_steps") or 0]
    for key in cls.step_settings:
        value = config["method"].get(key)
        counted += list(value) if isinstance(value, (list, tuple)) else [value or 0]
    if steps <= SCHEDULE_STEPS or not any(0 < int(v) < steps for v in counted):
        return None
    short = cls.shortened_config(config, SCHEDULE_STEPS)
    if train.get("warmup_steps"):
        short["train"]["warmup_steps"] = max(1, round(train["warmup_steps"] * SCHEDULE_STEPS / steps))
    return short


def probe_requests(method: str, config: dict, parents: dict, threads: int) -> dict[str, dict]:
    """``{"early": request, "schedule": request}`` (:mod:`lmcore.training.probe`) for a run of
    ``method`` with ``config``; ``parents`` is ``{role: {"method", "config", "parents"}}``."""
    requests = {"early": {"method": method, "config": config, "parents": parents, "threads": threads,
                          "steps": min(EARLY_STEPS, int(config["train"]["steps"]))}}
    short = schedule_config(method, config)
    if short is not None:
        requests["schedule"] = {"method": method, "config": short, "parents": parents, "threads": threads,
                                "steps": SCHEDULE_STEPS}
    return requests


def spec_parents(spec) -> dict:
    """A :class:`~lmcore.spec.RunSpec`'s parents as probe requests describe them."""
    return {role: {"method": p.method, "config": p.config, "parents": spec_parents(p)} for role, p in spec.parents.items()}


def run_probes_here(requests: dict[str, dict]) -> dict[str, dict]:
    """The probes under the code this process runs (the thread count restored afterwards)."""
    threads = torch.get_num_threads()
    try:
        return {name: run_probe(request) for name, request in requests.items()}
    finally:
        torch.set_num_threads(threads)


def probe_evidence(requests: dict[str, dict], results: dict[str, dict]) -> dict:
    """What a record keeps of its probes: the machine they ran on and each probe's digest."""
    device = describe_device(torch.device("cpu"))
    threads = next(iter(requests.values()))["threads"]
    return {"threads": threads, "cpu": device["cpu"], "torch": device["torch"],
            "probes": {name: {"steps": r["steps"], "weights_sha256": r["weights_sha256"]} for name, r in results.items()}}


def probes_for_run(spec, run_dir: Path) -> dict | None:
    """The probes a run of ``spec`` records (None for a smoke run or one on a GPU), run before it
    trains and kept in ``run_dir/probes.json`` so that a resumed run does not run them again."""
    if spec.profile not in PROBED_PROFILES or select_device().type != "cpu":
        return None
    requests = probe_requests(spec.method, spec.config, spec_parents(spec), torch.get_num_threads())
    kept = Path(run_dir) / "probes.json"
    if kept.exists():
        try:
            saved = json.loads(kept.read_text())
            if saved.get("requests") == json.loads(json.dumps(requests)):
                return saved["evidence"]
        except (OSError, ValueError, AttributeError):
            pass  # unreadable: probe again
    evidence = probe_evidence(requests, run_probes_here(requests))
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(json.dumps({"requests": requests, "evidence": evidence}))
    return evidence


# --------------------------------------------------------------------------- the code of a commit


def commit_checkout(commit: str) -> Path:
    """A folder holding the ``lmcore`` package of ``commit`` (from ``git archive``, kept under the
    cache folder), beside a link to ``../shared`` so that its data is found as the project's is."""
    base = cache_root() / "attest-trees"
    tree = base / commit
    if not (tree / "lmcore" / "__init__.py").exists():
        try:
            archive = subprocess.run(["git", "archive", "--format=tar", commit, "lmcore"], cwd=PROJECT_ROOT,
                                     capture_output=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            raise LookupError(f"git cannot give the code of commit {commit}") from exc
        partial = base / f".{commit}.tmp{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(partial, filter="data")
        shutil.rmtree(tree, ignore_errors=True)
        partial.rename(tree)
    shared = base / "shared"
    if not shared.exists():
        shared.symlink_to(PROJECT_ROOT.parent / "shared", target_is_directory=True)
    return tree


def run_probes_at_commit(commit: str, requests: dict[str, dict]) -> dict[str, dict]:
    """The probes under the code of git ``commit``, in a process of their own (the probe script
    runs under any version of lmcore; the data, weights and decoded-image caches are this
    project's)."""
    tree = commit_checkout(commit)
    names = list(requests)
    env = dict(os.environ, LMBOOK_DATA_ROOT=str(data_root()), LMBOOK_CACHE=str(cache_root()), LMBOOK_PROGRESS="0",
               PYTHONHASHSEED="0")
    env.pop("PYTHONPATH", None)
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("probe.py")), str(tree)],
                          input=json.dumps([requests[n] for n in names]), capture_output=True, text=True, env=env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the probes under the code of commit {commit} failed: {last}")
    try:
        return dict(zip(names, json.loads(done.stdout)))
    except ValueError:
        raise RuntimeError(f"the probes under the code of commit {commit} answered no JSON: "
                           f"{(done.stdout.strip().splitlines() or ['nothing'])[-1][:120]}") from None
