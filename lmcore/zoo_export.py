"""Writing the model zoo: a finished run published as a reference, with its weights.

:func:`publish` is how a run becomes a reference (``python -m lmcore.train --publish`` and
``tools/publish_references.py``). It checks everything before it writes anything
(:func:`lmcore.training.runs.check_publishable`: committed code, never a smoke run, never over a
reference of another profile unless asked; then the weights, :func:`weights_of`), writes the new
weights before the record that names them, and holds a lock on the results folder while it
writes, so that of two publishers of the same name the second learns that the first replaced
the reference since it started, instead of both printing success.

:func:`weights_of` re-detects the test faces (a pose core: LSPET val) with the run's weights and
refuses unless the record's number comes back (to 1e-6); it stores fp16 only where that moves
test_mtfl's forward error by less than 0.01 (a pose core's PCK by less than 0.001), else fp32.
Reading the zoo is :mod:`lmcore.zoo`'s, which the run API imports; this module imports the run API
(finished runs).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

import torch
from safetensors.torch import save_file

from . import zoo
from .data.sources import get_source
from .evaluation import RegressionOptions
from .files import file_sha256
from .paths import RESULTS_DIR
from .training.records import record_digest, write_record
from .training.run_record import RunRecord
from .training.runs import PublishRefused, check_publishable, load_trained, run_directory

def weights_of(record: RunRecord, method=None, dtype: str = "auto") -> dict | None:
    """The zoo's weights of a finished run (``record`` from its run folder; ``method``: its trained
    model, loaded from the checkpoint when None), checked against the record's own number:
    ``{"tensors", "dtype", "measured"}``, or None for a run the zoo does not hold (a face detector
    scored by an earlier protocol, or neither a face detector nor a pose core). Writes nothing."""
    name = f"{record.method}/{record.run_name}"
    direct = zoo.is_direct(record)
    if zoo.kind_of(record) != zoo.POSE and not direct:
        forward = record["metrics"].get("forward", {}).get("test_mtfl")
        if forward is None or not forward.get("options", {}).get("ridge_choice") or forward["options"].get("intercept"):
            return None
    if zoo.kind_of(record) != zoo.POSE and (record.get("data") or {}).get("eval_subsample", 1) != 1:
        raise zoo.ZooError(f"{name} was scored on every {record['data']['eval_subsample']}th test face; the zoo's check "
                           "scores all of them: only runs scored on every face are published with weights")
    method = method if method is not None else load_trained(record, device=torch.device("cpu"))
    source = get_source(record["config"]["data"]["source"])
    state = {k: v.clone() for k, v in zoo.trainable_state(method).items()}  # not views: fp16 is tried in place
    regressor = None
    if zoo.kind_of(record) == zoo.POSE:
        key, recorded, tolerance = "pck_val", record["metrics"][zoo.PCK_KEY]["pck"], zoo.FP16_PCK_TOLERANCE

        def score() -> float:
            return zoo.pck_val(method, source, record)

        measured = {"pck_val_fp32": score()}
    elif direct:  # the points are its landmarks: the identity as the regressor
        key, recorded, tolerance = "test_mtfl", record["metrics"]["forward"]["test_mtfl"]["mean"], zoo.FP16_TOLERANCE
        normaliser = record["metrics"]["forward"]["test_mtfl"]["options"].get("normaliser", "eyes")

        def score() -> float:
            return zoo.direct_error(method.detect, source, normaliser)

        measured = {"test_mtfl_fp32": score()}
        regressor = torch.eye(2 * method.num_landmarks, dtype=torch.float64)
    else:
        key, recorded, tolerance = "test_mtfl", record["metrics"]["forward"]["test_mtfl"]["mean"], zoo.FP16_TOLERANCE

        def score() -> float:
            return zoo.forward_and_regressor(method.detect, source, RegressionOptions())[0]

        error32, regressor = zoo.forward_and_regressor(method.detect, source, RegressionOptions())
        measured = {"test_mtfl_fp32": error32}
    if abs(measured[f"{key}_fp32"] - recorded) > zoo.REPRODUCE_TOLERANCE:
        raise zoo.ZooError(f"{name}: its weights give {measured[f'{key}_fp32']:.6f} ({key}), its record {recorded:.6f}: "
                           "nothing written")
    if dtype in ("auto", "fp16"):
        method.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in state.items()})
        measured[f"{key}_fp16"] = score()
        method.load_state_dict(state)
        if dtype == "fp16" or abs(measured[f"{key}_fp16"] - measured[f"{key}_fp32"]) < tolerance:
            dtype = "fp16"
    dtype = "fp16" if dtype == "fp16" else "fp32"
    tensors = {zoo.MODEL_PREFIX + k: (v.half() if dtype == "fp16" and v.is_floating_point() else v) for k, v in state.items()}
    if regressor is not None:
        tensors[zoo.REGRESSOR_KEY] = regressor.float()
    return {"tensors": tensors, "dtype": dtype, "measured": measured}


def publish(record: RunRecord, root: Path | str = RESULTS_DIR, replace_profile: bool = False,
            with_weights: bool = True) -> tuple[Path, dict | None]:
    """Publish the finished run ``record`` as ``<root>/<method>/<run>.json`` with its zoo weights
    ``.safetensors`` beside it (see the module docstring; ``with_weights=False``: the record alone,
    for a run whose tables need its numbers only, an ablation row, so that the zoo's size cap holds):
    ``(record path, what the weights check measured or None)``. Raises
    :class:`~lmcore.training.PublishRefused` or :class:`~lmcore.zoo.ZooError` with nothing written."""
    target = check_publishable(record, root, replace_profile)
    seen = _published_digest(target)
    weights = weights_of(record) if with_weights else None  # the slow part, before the lock
    with _publish_lock(Path(root)):
        if _published_digest(target) != seen:
            raise PublishRefused(f"{target.name} under {target.parent} was published by another process while this "
                                 "one checked its weights; nothing written: look at it, then publish again to replace it")
        check_publishable(record, root, replace_profile)
        payload = dict(record)
        for key in ("weights_sha256", "weights_dtype", "weights_check"):
            payload.pop(key, None)
        stale_weights = target.with_suffix(zoo.WEIGHTS_SUFFIX)
        if weights is not None:
            written = _write_weights_file(target, record, weights)
            payload.update({"weights_sha256": file_sha256(written), "weights_dtype": weights["dtype"],
                            "weights_check": weights["measured"]})
        write_record(target, payload)
        if weights is None:
            stale_weights.unlink(missing_ok=True)  # they belonged to the record just replaced
    done = None if weights is None else {"name": f"{record.method}/{record.run_name}", "dtype": weights["dtype"],
                                         "bytes": target.with_suffix(zoo.WEIGHTS_SUFFIX).stat().st_size,
                                         **weights["measured"]}
    return target, done


def _published_digest(path: Path) -> str | None:
    """The digest of the reference at ``path`` now (None: none there)."""
    try:
        return record_digest(json.loads(path.read_text()))
    except (OSError, ValueError, AttributeError):
        return None


@contextlib.contextmanager
def _publish_lock(root: Path):
    """Hold ``<root>/.publish.lock`` while a reference and its weights are written (a second
    publisher waits for the first)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".publish.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_weights_file(record_file: Path, record: dict, weights: dict) -> Path:
    """The safetensors file beside ``record_file``, written to a temp file and renamed over the old
    one (the old one stays whole until then)."""
    target = record_file.with_suffix(zoo.WEIGHTS_SUFFIX)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        save_file(weights["tensors"], str(tmp), metadata={"record": f"{record['method']}/{record['run_name']}.json",
                                                          "identity": record["identity"], "dtype": weights["dtype"],
                                                          "measured": json.dumps(weights["measured"])})
        tmp.chmod(0o644)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def export_weights(record_file: Path | str, dtype: str = "auto") -> dict:
    """Write ``results/<method>/<run>.safetensors`` for the committed reference ``record_file``
    from the finished run it came from (found by identity in the runs folder, its checkpoint's
    sha256 checked), and add the file's sha256 to the record. Returns what was measured."""
    record_file = Path(record_file)
    record = RunRecord.from_file(record_file)
    name = f"{record.method}/{record.run_name}"
    if zoo.kind_of(record) != zoo.POSE and record["metrics"].get("forward", {}).get("test_mtfl") is None:
        raise zoo.ZooError(f"{name}: its record has neither a forward error on test_mtfl nor a PCK on LSPET val: "
                           "the zoo holds face detectors and pose cores")
    weights = weights_of(record, _published_run(record, record_file), dtype)
    if weights is None:
        raise zoo.ZooError(f"{name} was scored with an earlier protocol (an intercept or a fixed ridge): train it again")
    written = _write_weights_file(record_file, record, weights)
    updated = dict(record)
    updated.update({"weights_sha256": file_sha256(written), "weights_dtype": weights["dtype"],
                    "weights_check": weights["measured"]})
    write_record(record_file, updated)
    return {"name": name, "dtype": weights["dtype"], "bytes": written.stat().st_size, **weights["measured"]}


def _published_run(record, record_file: Path):
    """The trained method of the finished run a reference was published from (found by identity in
    the runs folder), refused where that run's checkpoint is not the one the record names."""
    run_dir = run_directory(record.method, record.profile, record.run_name, record["identity"])
    run = RunRecord.from_file(run_dir / "record.json", run_dir=run_dir)
    if run.get("checkpoint_sha256") != record.get("checkpoint_sha256"):
        raise zoo.ZooError(f"{run_dir} is not the run {record_file} was published from (another checkpoint)")
    return load_trained(run, device=torch.device("cpu"))


def check_summary(done: dict) -> str:
    """What :func:`export_weights` measured, in words: the score that came back from the weights
    (and in fp16, where that was measured)."""
    if "pck_val_fp32" in done:
        fp16 = f" (fp16: {100 * done['pck_val_fp16']:.2f} %)" if "pck_val_fp16" in done else ""
        return f"PCK@0.2 on LSPET val {100 * done['pck_val_fp32']:.2f} % from the weights{fp16}"
    fp16 = f" (fp16: {done['test_mtfl_fp16']:.4f} %)" if "test_mtfl_fp16" in done else ""
    return f"test_mtfl {done['test_mtfl_fp32']:.4f} % from the weights{fp16}"


