"""Runs: train a method in a profile, evaluate it, record everything; reuse what is unchanged.

:func:`run_method` is what chapters call; it resolves a :class:`~lmcore.spec.RunSpec` once and hands
it to :func:`run_spec`, which the command line calls with the spec it resolved. A run lives in
``runs/<profile>/<method>/<name>-<config hash>/`` with ``checkpoint.pt`` and ``record.json``.

A run is **keyed by what it computes** (:mod:`lmcore.training.code_identity`). Its **training
identity** keys its folder and checkpoint: the method, the profile, the resolved config, the code
that trains it (what the files of its training closure compute: a comment, a docstring or a
reformatting changes nothing), its data (label files and decoded images) and the identities of its
parent runs. Its **evaluation identity** keys its numbers: the training identity, the protocol's
code and the evaluation settings. Calling :func:`run_method` again returns the finished record
while both are unchanged, re-scores it from its checkpoint when only the evaluation identity
changed (a protocol edit costs minutes, not a retraining), resumes from the checkpoint when the run
was interrupted, and trains from scratch otherwise (or with ``force=True`` / ``$LMBOOK_RETRAIN=1``).
Records still carry the git commit, and whether ``lmcore/`` differed from it; such a record
cannot be published as a reference. Runs of the ``cpu`` and ``paper`` profiles also record their
attestation probes (:mod:`lmcore.training.attestation`), with which a later code change that
computes the same is shown to, without retraining.

A run holds a lock while it trains: a second process asking for the same run stops with a
message instead of overwriting it (or deleting it under ``force``).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from .. import env
from ..config import TrainConfig, deep_update
from ..data.sources import get_source
from ..errors import ConfigError, CorruptCheckpointError, CorruptRecordError, LmbookError
from ..evaluation import Detections, RegressionOptions
from ..evaluation.rescore import faces_key
from ..files import file_sha256
from ..methods import build_method, get_method
from ..paths import RESULTS_DIR, display_path, runs_root
from ..profiles import PROFILES, resolve_profile, select_device
from ..spec import RUN_NAME, RunSpec, check_run_name, resolve_config  # noqa: F401 (resolve_config: the run API's)
from ..zoo import ancestor_of
from .attestation import probes_for_run
from .checkpoint import load_checkpoint
from .code_identity import SCHEME, changed_files, code_files, code_fingerprint, evaluation_manifest, fingerprint, lmcore_is_dirty
from .trainee import build_trainee, train_trainee
from .records import RECORD_ADVICE, config_hash, describe_device, git_commit, now_iso, write_record
from .run_record import RunRecord

class RunBusyError(LmbookError):
    """Another process is training the same run."""


class PublishRefused(LmbookError):
    """A record that cannot be a reference (uncommitted or unknown code, or no git commit)."""


# --------------------------------------------------------------------------- configuration


def parent_records(spec: RunSpec, progress: bool | None = None) -> dict[str, RunRecord]:
    """The parent runs of ``spec``, each trained or reused first (``{role: record}``). A parent
    with a ``step`` is adopted at that kept checkpoint (an early core, Sanchez's Tables 4-5): the
    step must be one the parent run keeps (its ``train.keep_every``)."""
    records = {}
    for role, parent in spec.parents.items():
        # a parent is reused as it was evaluated: its metrics are not what the child needs
        record = run_spec(parent, progress=progress, reevaluate=False)
        step = spec.parent_step(role)
        if step is not None and step != record.steps:
            kept = [s for s, _ in record.kept_checkpoints()]
            if step not in kept:
                raise ConfigError(f"parent run 'parents.{role}' ({parent.method}/{parent.name}) keeps checkpoints at "
                                  f"steps {kept or 'none'} and ends at {record.steps}; 'parents.{role}.step' = {step} "
                                  "is none of them")
        records[role] = record
    return records


def _parent_step(config: dict, role: str, record: RunRecord) -> int | None:
    """The kept checkpoint of a parent to adopt (None: its final weights)."""
    step = (config.get("parents", {}).get(role) or {}).get("step")
    return None if step is None or step == record.steps else step


def build_with_parents(method: str, config: dict, parents: dict[str, RunRecord], init_weights: bool = True):
    """The method of ``config``, freshly initialised, with its trained parents adopted (each at
    the kept checkpoint its ``step`` names) and, with ``init_weights``, its ``train.init_from``
    weights (:func:`lmcore.training.trainee.build_trainee`)."""
    models = {role: load_trained(r, step=_parent_step(config, role, r)) for role, r in parents.items()}
    return build_trainee(method, config, models, init_weights=init_weights)


def run_identity(method: str, profile: str, config: dict, parents: dict[str, RunRecord] | None = None,
                 init_sha256: str | None = None) -> dict:
    """What a run's weights depend on (its training identity): equal identities give equal runs
    (up to thread counts). Its code is what its training closure computes
    (:mod:`lmcore.training.code_identity`), its data the label files and decoded images; with
    ``train.init_from``, the sha256 of the weights it starts from (``init_sha256``, default: the
    zoo's file now)."""
    source_name = config["data"]["source"]
    identity = {
        "scheme": SCHEME,
        "method": method, "profile": profile, "config": config,
        "code": code_fingerprint(method, source=source_name),
        "data": get_source(source_name).fingerprint(),
        "parents": {role: r["identity"] for role, r in (parents or {}).items()},  # (the step is in config)
    }
    if config["train"].get("init_from"):  # the weights it starts from, not only their name
        identity["init"] = init_sha256 or ancestor_of(config["train"]["init_from"], method)["weights_sha256"]
    return identity


def evaluation_identity(identity_hash: str, spec: RunSpec) -> dict:
    """What a run's numbers depend on besides its weights: the protocol's code (the evaluation
    closure and every method's evaluation functions), the evaluation settings and the subsample
    of the test sets. A change here re-scores the checkpoint; it never retrains."""
    return {"run": identity_hash, "code": evaluation_code(spec.method, spec.config["data"]["source"])["fingerprint"],
            "evaluation": spec.evaluation, "eval_subsample": spec.eval_subsample}


def evaluation_code(method: str, source: str) -> dict:
    """``{"fingerprint", "files", "functions"}`` of the code that scores ``method`` on ``source``."""
    manifest = evaluation_manifest(method, source)
    return {"fingerprint": fingerprint(manifest), **manifest}


def run_directory(method: str, profile: str, name: str, identity_hash: str) -> Path:
    """The run's folder, ``runs/<profile>/<method>/<name>-<identity hash>``: one per identity, so a
    run of the same name and config trained on other code, data or parents never replaces it."""
    check_run_name(name)
    if profile not in PROFILES or not re.fullmatch(r"[a-z0-9_]+", method) or not re.fullmatch(r"[0-9a-f]+", identity_hash):
        raise ConfigError(f"no run folder for method '{method}', profile '{profile}', identity '{identity_hash}'")
    return runs_root() / profile / method / f"{name}-{identity_hash}"


@contextmanager
def run_lock(run_dir: Path):
    """Hold ``.<run folder>.lock`` while a run trains; another holder means another process. The
    lock file is removed when the run is done (removed while still held, and a process that
    locked a removed file tries again, so two processes never both hold it)."""
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LmbookError(f"cannot create the runs folder {run_dir.parent} ({exc.strerror}); set LMBOOK_RUNS to a "
                          "writable folder") from None
    lock_path = run_dir.with_name(f".{run_dir.name}.lock")
    for _ in range(5):
        try:
            handle = open(lock_path, "a+")
        except OSError as exc:
            raise LmbookError(f"cannot write in the runs folder {run_dir.parent} ({exc.strerror}); set LMBOOK_RUNS "
                              "to a writable folder") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunBusyError(f"run {run_dir} is in use by {holder}; wait for it to finish, or choose another --name")
        try:
            current = os.stat(lock_path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(handle.fileno()).st_ino:
            break
        handle.close()  # the holder removed this file as we opened it: lock the new one
    else:
        raise RunBusyError(f"run {run_dir} keeps changing hands; try again")
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()}")
    handle.flush()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock_path.unlink()
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _saved_identity(checkpoint: Path) -> str | None:
    return load_checkpoint(checkpoint).get("identity")


# --------------------------------------------------------------------------- training


def run_method(method: str, profile: str | None = None, name: str = "default", overrides: dict | None = None,
               force: bool | None = None, progress: bool | None = None,
               options: RegressionOptions = RegressionOptions(), few_shot: dict | None = None,
               reevaluate: bool = True) -> RunRecord:
    """Train (or reuse) a run and return its record.

    ``overrides`` are merged into the profile's config (e.g. ``{"method": {"num_landmarks": 30}}``)
    and checked (:class:`ConfigError` for an unknown key, a wrong type or an impossible value).
    ``few_shot`` (``{"sizes": [1, 5, None], "repeats": 10}``) adds few-shot forward errors to the
    metrics; a finished run asked for another evaluation is re-evaluated from its checkpoint,
    not retrained (and refused with a message when its checkpoint is gone; ``reevaluate=False``
    returns it as it was evaluated, as parent runs are). Under ``torchrun``
    the ranks other than 0 train and return an empty record.

    A finished run is never deleted: a run of the same name and config whose code, data or parents
    changed is trained in a folder of its own (one line says what changed), and the old one stays.
    ``force`` retrains the run of the current identity only.
    """
    return run_spec(RunSpec.resolve(method, profile, name, overrides, options, few_shot), force, progress, reevaluate)


def run_spec(spec: RunSpec, force: bool | None = None, progress: bool | None = None,
             reevaluate: bool = True) -> RunRecord:
    """Train (or reuse) the run of a resolved :class:`~lmcore.spec.RunSpec` (see :func:`run_method`)."""
    if force is None:
        force = env.retrain()
    if progress is None:  # executed notebooks (papermill) set LMBOOK_PROGRESS=0: no progress widgets saved
        progress = env.progress()
    method, profile, name, config = spec.method, spec.profile, spec.name, spec.config
    parents = parent_records(spec, progress)
    identity = run_identity(method, profile, config, parents)
    identity_hash = config_hash(identity)
    run_dir = run_directory(method, profile, name, identity_hash)
    rank = env.torchrun_rank()  # a stray RANK or WORLD_SIZE without torchrun is refused
    if rank != 0:  # torchrun: rank 0 alone decides, writes and evaluates
        _train(spec, run_dir, parents, identity, progress)
        return RunRecord({})
    with run_lock(run_dir):
        record_path = run_dir / "record.json"
        if force and run_dir.exists():
            shutil.rmtree(run_dir)
        if record_path.exists():
            record = RunRecord.from_file(record_path, run_dir=run_dir)
            if record.get("identity") != identity_hash:
                raise CorruptRecordError(f"{record_path} is the record of another run (identity {record.get('identity')}, "
                                         f"its folder says {identity_hash}): {RECORD_ADVICE}")
            if record.get("lmcore_dirty") and lmcore_is_dirty(files=list(record.get("code_files") or [])) is False:
                # trained from uncommitted code whose content has since been committed unchanged
                record["git_commit"], record["lmcore_dirty"] = git_commit(), False
                record = RunRecord(write_record(record_path, record), run_dir=run_dir, path=record_path)
            if reevaluate and record.get("evaluation_identity") != config_hash(evaluation_identity(identity_hash, spec)):
                record = _reevaluate(record, spec)
            record.reused = True
            return record
        checkpoint = run_dir / "checkpoint.pt"
        if checkpoint.exists():
            saved = _saved_identity(checkpoint)
            if saved != identity_hash:  # never delete what this run did not write
                raise LmbookError(f"{checkpoint} is not a checkpoint of {method}/{name} (it was written for identity "
                                  f"{saved}, this run is {identity_hash}); move it away, or rerun with --force "
                                  "(LMBOOK_RETRAIN=1) to delete the folder and train again")
        else:
            _announce_new_identity(method, profile, name, config, identity, run_dir)
        try:
            return _train(spec, run_dir, parents, identity, progress)
        finally:
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # only when the run failed before writing anything


def _earlier_runs(method: str, profile: str, name: str, config: dict, except_dir: Path) -> list[RunRecord]:
    """Finished runs of the same name and config under other identities (newest first)."""
    found = []
    for path in (runs_root() / profile / method).glob(f"{name}-*/record.json"):
        if path.parent == except_dir:
            continue
        try:
            record = RunRecord.from_file(path, run_dir=path.parent, check_digest=False)
        except LmbookError:
            continue
        if record.run_name == name and record.get("config") == config:
            found.append(record)
    return sorted(found, key=lambda r: r.get("created", ""), reverse=True)


def _announce_new_identity(method: str, profile: str, name: str, config: dict, identity: dict, run_dir: Path) -> None:
    """One line when a finished run of this name and config exists under another identity: what
    changed (code files, data, parents), that it is kept, and where the new run goes."""
    earlier = _earlier_runs(method, profile, name, config, run_dir)
    if not earlier:
        return
    old = earlier[0]
    reasons = []
    if old.get("code_fingerprint") != identity["code"]:
        files = changed_files(old.get("code_files"), code_files(method))
        reasons.append("its code changed (" + (", ".join(files[:6]) + (" ..." if len(files) > 6 else "")
                                               if files else "files not recorded by that run") + ")")
    if old.get("data", {}).get("fingerprint") != identity["data"]:
        reasons.append("its training data changed")
    if {r: p.get("identity") for r, p in (old.get("parents") or {}).items()} != identity["parents"]:
        reasons.append("its parent runs changed")
    why = "; ".join(reasons) or "its identity changed"
    print(f"{method}/{name} [{profile}]: {why}; the finished run {display_path(old.run_dir)} is kept, and a new "
          f"one is trained in {display_path(run_dir)}", flush=True)


def find_run(method: str, profile: str | None = None, name: str = "default", overrides: dict | None = None,
             evaluated: bool = True) -> RunRecord | None:
    """The finished run :func:`run_method` would return for these arguments, found without
    training or evaluating anything: None when it was never trained, is unfinished, or is stale
    (its identity, parents' included, differs from what the current code, data and config give;
    with ``evaluated``, also when its numbers were scored by other protocol code or settings)."""
    return find_spec(RunSpec.resolve(method, profile, name, overrides), evaluated=evaluated)


def find_spec(spec: RunSpec, evaluated: bool = True) -> RunRecord | None:
    """:func:`find_run` for a resolved :class:`~lmcore.spec.RunSpec`; with ``evaluated``, a run whose
    numbers are stale (scored by other protocol code or settings) is None too (:func:`run_spec`
    re-scores it from its checkpoint)."""
    parents = {}
    for role, parent_spec in spec.parents.items():
        parent = find_spec(parent_spec, evaluated=False)
        if parent is None:
            return None
        parents[role] = parent
    identity_hash = config_hash(run_identity(spec.method, spec.profile, spec.config, parents))
    run_dir = run_directory(spec.method, spec.profile, spec.name, identity_hash)
    record_path = run_dir / "record.json"
    if not record_path.exists():
        return None
    record = RunRecord.from_file(record_path, run_dir=run_dir)
    if record.get("identity") != identity_hash:
        return None
    if evaluated and record.get("evaluation_identity") != config_hash(evaluation_identity(identity_hash, spec)):
        return None
    return record


def run_detections(record: RunRecord, regressor_set, test_sets: dict, cache: bool = True):
    """A run's landmarks on a labelled regressor set and test sets (:class:`Detections`), from its
    final checkpoint: one detection pass, kept in the run folder (``cache``) for these exact
    faces, so re-scoring a run under other protocol options or statistics costs no network pass.
    A supervised detector (its forward error recorded as ``direct``) gives ``kind="direct"``."""
    options = next(iter(record.get("metrics", {}).get("forward", {}).values()), {}).get("options", {})
    kind = "direct" if options.get("direct") else "regressed"
    key = config_hash({"identity": record.get("identity"), "regressor": faces_key(regressor_set),
                       "tests": {n: faces_key(s) for n, s in sorted(test_sets.items())}})
    path = None if record.run_dir is None else record.run_dir / f"detections-{key}.pt"
    if cache and path is not None and path.exists():
        found = Detections.load(path, regressor_set, test_sets)
        if found is not None:
            return found
    model = for_inference(load_trained(record))  # as the run's own evaluation detected, to float rounding
    detections = Detections.of(model.detect, regressor_set, test_sets, kind=kind)
    if cache and path is not None:
        detections.save(path)
    return detections


def _train(spec: RunSpec, run_dir: Path, parents: dict[str, RunRecord], identity: dict, progress: bool) -> RunRecord:
    method, profile, name, config = spec.method, spec.profile, spec.name, spec.config
    cls = get_method(method)
    device = select_device()
    cfg = TrainConfig.from_dict(config["train"])
    source_name = config["data"]["source"]
    source = get_source(source_name)
    subsample = spec.eval_subsample
    files = code_files(method, source=source_name)
    scoring = evaluation_code(method, source_name)
    commit, dirty = git_commit(), lmcore_is_dirty(files=sorted(set(files) | set(scoring["files"])))
    rank = env.torchrun_rank()
    # before the run builds its model: the probes seed and train models of their own
    probes = probes_for_run(spec, run_dir) if rank == 0 else None
    ancestor = ancestor_of(cfg.init_from, method) if cfg.init_from else None
    model = build_with_parents(method, config, parents)
    evaluate = model.learning_curve(source, subsample) if cfg.eval_every else None
    started = time.perf_counter()
    result, train_set = train_trainee(model, method, config, run_dir, device, evaluate=evaluate, identity=identity,
                                      progress=progress, meta={"git_commit": commit}, name=f"{method}/{name}")
    if rank != 0:
        return RunRecord({})
    eval_start = time.perf_counter()
    if progress:
        print(f"{method}/{name}: evaluating ({cls.evaluation_summary})", flush=True)
    metrics = for_inference(model).evaluate(source, spec.options, spec.few_shot, subsample)
    if progress:
        print(f"{method}/{name}: evaluated in {time.perf_counter() - eval_start:.0f} s", flush=True)
    identity_hash = config_hash(identity)
    record = {
        "method": method,
        "profile": profile,
        "config": config,
        "git_commit": commit,
        "lmcore_dirty": dirty,
        "identity_scheme": SCHEME,
        "code_fingerprint": identity["code"],
        "code_files": files,
        "identity": identity_hash,
        "evaluation_identity": config_hash(evaluation_identity(identity_hash, spec)),
        "evaluation_code": scoring,
        "parents": {role: {"method": r.method, "run_name": r.run_name, "identity": r["identity"],
                           "step": _parent_step(config, role, r)}
                    for role, r in parents.items()},
        "checkpoint_sha256": file_sha256(run_dir / "checkpoint.pt"),
        "kept_checkpoint_sha256": {str(step): file_sha256(path) for step, path in RunRecord({}, run_dir=run_dir).kept_checkpoints()},
        "device": describe_device(device),
        "wall_time_s": round(result.wall_time_s, 1),
        "data": {"source": config["data"]["source"], "split": config["data"]["split"], "n_train": len(train_set),
                 "fingerprint": identity["data"], "root": display_path(source.root),
                 "eval_subsample": subsample},
        "metrics": metrics,
        "evaluation": spec.evaluation,
        "history": result.history,
        "run_name": name,
        "created": now_iso(),
        "eval_time_s": round(time.perf_counter() - eval_start, 1),
        "session_time_s": round(time.perf_counter() - started, 1),
        "resumed_from_step": result.resumed_from,
        "resumed_with": result.resumed_with,
        "steps": result.steps,
    }
    if probes:
        record["attestation"] = probes
    if ancestor:  # the reference it started from, and how many steps its lineage already had
        record["ancestor"] = ancestor
    return RunRecord(write_record(run_dir / "record.json", record), run_dir=run_dir)


def for_inference(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` (whose training is over) with its weights in channels-last layout on a CPU: the
    final evaluation's detections then take 0.6-0.85x as long on the 2-core machine for every
    method, Zhang's included (whose training it slows); outputs agree to float rounding."""
    if next(model.parameters()).device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    return model


def _reevaluate(record: RunRecord, spec: RunSpec) -> RunRecord:
    """The record's metrics recomputed from its checkpoint with other evaluation settings."""
    if record.checkpoint is None:
        raise LmbookError(f"{record.path} was evaluated with other settings ({record.get('evaluation')}) and its "
                          f"checkpoint is gone, so it cannot be re-evaluated; rerun with --force (or "
                          f"LMBOOK_RETRAIN=1) to train it again")
    model = for_inference(load_trained(record))
    source_name = record.config["data"]["source"]
    record["metrics"] = model.evaluate(get_source(source_name), spec.options, spec.few_shot, spec.eval_subsample)
    record["evaluation"], record["data"]["eval_subsample"] = spec.evaluation, spec.eval_subsample
    record["evaluation_identity"] = config_hash(evaluation_identity(record["identity"], spec))
    record["evaluation_code"] = evaluation_code(record.method, source_name)
    record["evaluated"] = {"git_commit": git_commit(), "created": now_iso()}
    return RunRecord(write_record(record.run_dir / "record.json", record), run_dir=record.run_dir)


def run_variants(method: str, profile: str | None, variants: dict[str, dict], base: dict | None = None,
                 prefix: str = "variant", reuse: list[RunRecord] = (), **kwargs) -> dict[str, RunRecord]:
    """Train (or reuse) one run per labelled variant: ``{label: overrides}`` merged over ``base``.

    A variant whose resolved config equals that of a record in ``reuse`` (e.g. a chapter's main
    run) is that record, not a second run. Run names are ``<prefix>-<label as a slug>``.
    """
    profile = resolve_profile(profile)
    out = {}
    for label, change in variants.items():
        overrides = deep_update(base or {}, change)
        config = resolve_config(method, profile, overrides)
        same = [r for r in reuse if r.method == method and r.config == config]
        if same:
            out[label] = same[0]
            continue
        out[label] = run_method(method, profile, variant_run_name(prefix, label), overrides, **kwargs)
    return out


def variant_run_name(prefix: str, label: str) -> str:
    """The run name :func:`run_variants` gives a variant: ``<prefix>-<label as a slug>`` (at most
    80 characters), e.g. ``ablation-neither-paired-baseline`` for ``"neither (paired baseline)"``."""
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "default"
    return f"{prefix}-{slug}"[:80]


# --------------------------------------------------------------------------- trained models and references


def load_trained(record: RunRecord, device: torch.device | None = None, step: int | None = None):
    """Rebuild the method of a run record and load its final checkpoint (or the kept copy at
    ``step``), in eval mode; parent runs are loaded first where the method adopts them.

    The checkpoint must be the one the record was written with (its sha256 is in the record): a
    checkpoint copied in from another run, or rewritten since, is refused with a message."""
    if record.run_dir is None:
        raise LmbookError(f"run {record.method}/{record.run_name} is a committed reference: it carries no weights; "
                          "train it with lmcore.training.run_method or python -m lmcore.train")
    ckpt = record.run_dir / ("checkpoint.pt" if step is None else f"checkpoint-{step:07d}.pt")
    if not ckpt.exists():
        raise LmbookError(f"{ckpt} is missing; rerun the experiment with --force (or LMBOOK_RETRAIN=1)")
    expected = record.get("checkpoint_sha256") if step is None else (record.get("kept_checkpoint_sha256") or {}).get(str(step))
    if expected is None or file_sha256(ckpt) != expected:
        raise CorruptCheckpointError(
            f"{ckpt} is not the checkpoint {record.method}/{record.run_name} was evaluated with (its sha256 "
            f"{'is not in the record' if expected is None else 'differs from the one in the record'}); "
            "rerun with --force (LMBOOK_RETRAIN=1) to train the run again")
    model = build_method(record.method, record.config)
    parents = record.get("parents") or {}
    if parents:
        model.adopt_parents({role: load_trained(parent_record(record, role), step=p.get("step"))
                             for role, p in parents.items()})
    state = load_checkpoint(ckpt)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as exc:
        raise CorruptCheckpointError(f"{ckpt} does not hold the weights of {record.method} with this config "
                                     f"({str(exc).splitlines()[0][:160]}); rerun with --force to train it again") from None
    model.to(device or select_device())
    model.eval()
    return model


def parent_record(record: RunRecord, role: str) -> RunRecord:
    """The finished run a record's parent ``role`` names (by method, name and identity, in the
    record's profile), from the runs folder."""
    p = record["parents"][role]
    run_dir = run_directory(p["method"], record.profile, p["run_name"], p["identity"])
    path = run_dir / "record.json"
    if not path.exists():
        raise LmbookError(f"the parent run {p['method']}/{p['run_name']} of {record.method}/{record.run_name} "
                          f"({display_path(run_dir)}) is gone; rerun the experiment to train it again")
    return RunRecord.from_file(path, run_dir=run_dir)


def load_references(method: str, root: Path = RESULTS_DIR) -> list[RunRecord]:
    """The committed reference run records of ``method`` (``results/<method>/*.json``), sorted by name."""
    folder = root / method
    if not folder.is_dir():
        return []
    return [RunRecord.from_file(p) for p in sorted(folder.glob("*.json"))]


def publish_reference(record: RunRecord, root: Path = RESULTS_DIR, replace_profile: bool = False) -> Path:
    """Copy a run record (no checkpoint) into ``results/<method>/<run name>.json`` (a reference; a
    tuning sweep's record under another ``root``). The zoo's weights follow with
    :func:`lmcore.zoo_export.publish`, which checks everything before writing either file.

    Refuses (:class:`PublishRefused`, before writing anything) what :func:`check_publishable`
    refuses.
    """
    path = check_publishable(record, root, replace_profile)
    write_record(path, record)
    return path


def check_publishable(record: RunRecord, root: Path = RESULTS_DIR, replace_profile: bool = False) -> Path:
    """The path ``record`` would be published at, or :class:`PublishRefused` for a record made from
    ``lmcore`` code that differed from its git commit, or with no known commit (a reference must
    name the code that made it); a ``smoke`` record (its numbers are meaningless: never a
    reference); a method or run name that would put the file anywhere but ``<root>/<method>/``; and
    a record that would replace one of another profile, unless ``replace_profile``."""
    commit = record.get("git_commit") or "unknown"
    # older records have no lmcore_dirty field: then any uncommitted change counts
    dirty = record.get("lmcore_dirty", commit.endswith("+dirty"))
    if commit == "unknown" or dirty is None:
        raise PublishRefused(f"run {record.method}/{record.run_name} has no known git commit; train it in a git "
                             "checkout of lmbook, then publish")
    if dirty:
        raise PublishRefused(f"run {record.method}/{record.run_name} was trained from uncommitted lmcore code "
                             f"(commit {commit}); commit, retrain (the run is reused if nothing changed), then publish")
    if record.get("profile") == "smoke":
        raise PublishRefused(f"run {record.method}/{record.run_name} is a smoke run (seconds of training, numbers "
                             "meaningless): smoke runs are never published; train it in the cpu or paper profile")
    method, name = str(record.method), str(record.run_name)
    if not re.fullmatch(r"[a-z0-9_]+", method) or not RUN_NAME.fullmatch(name) or ".." in name:
        raise PublishRefused(f"run '{method}/{name}' is not a method and run name that can be published")
    root = Path(root).resolve()
    path = (root / method / f"{name}.json").resolve()
    if path.parent.parent != root:
        raise PublishRefused(f"run '{method}/{name}' would be published outside {root}")
    if path.is_file() and not replace_profile:
        try:
            existing = RunRecord.from_file(path)
        except LmbookError:
            existing = None  # a damaged reference is replaced
        if existing is not None and existing.profile != record.profile:
            raise PublishRefused(f"{display_path(path)} is a reference of the {existing.profile} profile; this run is "
                                 f"{record.profile}: publish it under another --name, or pass --replace-profile to "
                                 "replace it")
    return path
