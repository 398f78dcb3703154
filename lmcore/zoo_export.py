"""Writing the model zoo: a committed reference's weights, exported from the finished run it was
published from.

:func:`export_weights` re-detects the test faces (a pose core: LSPET val) with the run's weights
and refuses to write unless the record's number comes back (to 1e-6); it stores fp16 only where
that moves test_mtfl's forward error by less than 0.01 (a pose core's PCK by less than 0.001),
else fp32. :func:`publish_weights` follows a reference that is (re-)published. Reading the zoo is
:mod:`lmcore.zoo`'s, which the run API imports; this module imports the run API (finished runs).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from . import zoo
from .data.sources import get_source
from .evaluation import RegressionOptions
from .files import file_sha256
from .training.records import write_record
from .training.run_record import RunRecord
from .training.runs import load_trained, run_directory

def export_weights(record_file: Path | str, dtype: str = "auto") -> dict:
    """Write ``results/<method>/<run>.safetensors`` for the committed reference ``record_file``
    from the finished run it came from (found by identity in the runs folder, its checkpoint's
    sha256 checked), and add the file's sha256 to the record. Returns what was measured."""
    record_file = Path(record_file)
    record = RunRecord.from_file(record_file)
    name = f"{record.method}/{record.run_name}"
    if zoo.kind_of(record) == zoo.POSE:
        return _export_pose_core(record_file, record, dtype)
    forward = record["metrics"].get("forward", {}).get("test_mtfl")
    if forward is None:
        raise zoo.ZooError(f"{name}: its record has neither a forward error on test_mtfl nor a PCK on LSPET val: "
                       "the zoo holds face detectors and pose cores")
    options_recorded = forward.get("options", {})
    if options_recorded.get("intercept") or not options_recorded.get("ridge_choice"):
        raise zoo.ZooError(f"{name} was scored with an earlier protocol (an intercept or a fixed ridge): train it again")
    method = _published_run(record, record_file)
    source = get_source(record["config"]["data"]["source"])
    options = RegressionOptions()
    error32, regressor = zoo.forward_and_regressor(method.detect, source, options)
    if abs(error32 - forward["mean"]) > zoo.REPRODUCE_TOLERANCE:
        raise zoo.ZooError(f"{name}: its weights give {error32:.6f} % on test_mtfl, its record {forward['mean']:.6f} %: "
                       "not written")
    state = zoo.trainable_state(method)
    measured = {"test_mtfl_fp32": error32}
    if dtype in ("auto", "fp16"):
        method.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in state.items()})
        measured["test_mtfl_fp16"], _ = zoo.forward_and_regressor(method.detect, source, options)
        if dtype == "fp16" or abs(measured["test_mtfl_fp16"] - error32) < zoo.FP16_TOLERANCE:
            dtype = "fp16"
    dtype = "fp16" if dtype == "fp16" else "fp32"
    tensors = {zoo.MODEL_PREFIX + k: (v.half() if dtype == "fp16" and v.is_floating_point() else v) for k, v in state.items()}
    tensors[zoo.REGRESSOR_KEY] = regressor.float()
    return _write_weights(record_file, record, tensors, dtype, measured)


def _write_weights(record_file: Path, record: dict, tensors: dict, dtype: str, measured: dict) -> dict:
    """The safetensors file beside the record, and its sha256, dtype and checks in the record."""
    name = f"{record['method']}/{record['run_name']}"
    target = zoo.weights_path(name, record_file.parent.parent)
    tmp = target.with_name(target.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"record": f"{name}.json", "identity": record["identity"], "dtype": dtype,
                                           "measured": json.dumps(measured)})
    tmp.chmod(0o644)
    tmp.replace(target)
    updated = dict(record)
    updated.update({"weights_sha256": file_sha256(target), "weights_dtype": dtype, "weights_check": measured})
    write_record(record_file, updated)
    return {"name": name, "dtype": dtype, "bytes": target.stat().st_size, **measured}


def _published_run(record, record_file: Path):
    """The trained method of the finished run a reference was published from (found by identity in
    the runs folder), refused where that run's checkpoint is not the one the record names."""
    run_dir = run_directory(record.method, record.profile, record.run_name, record["identity"])
    run = RunRecord.from_file(run_dir / "record.json", run_dir=run_dir)
    if run.get("checkpoint_sha256") != record.get("checkpoint_sha256"):
        raise zoo.ZooError(f"{run_dir} is not the run {record_file} was published from (another checkpoint)")
    return load_trained(run, device=torch.device("cpu"))


def _export_pose_core(record_file: Path, record, dtype: str) -> dict:
    """:func:`export_weights` for a pose core: its PCK@0.2 on LSPET val must come back from the
    weights (to 1e-6); fp16 where that moves it by less than :data:`zoo.FP16_PCK_TOLERANCE`."""
    name = f"{record.method}/{record.run_name}"
    method = _published_run(record, record_file)
    source = get_source(record["config"]["data"]["source"])
    pck32 = zoo.pck_val(method, source, record)
    if abs(pck32 - record["metrics"][zoo.PCK_KEY]["pck"]) > zoo.REPRODUCE_TOLERANCE:
        raise zoo.ZooError(f"{name}: its weights give PCK {pck32:.6f} on LSPET val, its record "
                       f"{record['metrics'][zoo.PCK_KEY]['pck']:.6f}: not written")
    state = zoo.trainable_state(method)
    measured = {"pck_val_fp32": pck32}
    if dtype in ("auto", "fp16"):
        method.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in state.items()})
        measured["pck_val_fp16"] = zoo.pck_val(method, source, record)
        if dtype == "fp16" or abs(measured["pck_val_fp16"] - pck32) < zoo.FP16_PCK_TOLERANCE:
            dtype = "fp16"
    dtype = "fp16" if dtype == "fp16" else "fp32"
    tensors = {zoo.MODEL_PREFIX + k: (v.half() if dtype == "fp16" and v.is_floating_point() else v) for k, v in state.items()}
    return _write_weights(record_file, record, tensors, dtype, measured)


def check_summary(done: dict) -> str:
    """What :func:`export_weights` measured, in words: the score that came back from the weights
    (and in fp16, where that was measured)."""
    if "pck_val_fp32" in done:
        fp16 = f" (fp16: {100 * done['pck_val_fp16']:.2f} %)" if "pck_val_fp16" in done else ""
        return f"PCK@0.2 on LSPET val {100 * done['pck_val_fp32']:.2f} % from the weights{fp16}"
    fp16 = f" (fp16: {done['test_mtfl_fp16']:.4f} %)" if "test_mtfl_fp16" in done else ""
    return f"test_mtfl {done['test_mtfl_fp32']:.4f} % from the weights{fp16}"


def publish_weights(record_file: Path | str) -> dict | None:
    """After a reference is (re-)published: remove its earlier weights file, which belonged to the
    record it replaced, and export the new one where the zoo can hold it (a face detector scored
    by the current protocol, or a pose core). Returns what :func:`export_weights` measured, or None with nothing
    written when the reference is not a face detector."""
    record_file = Path(record_file)
    record_file.with_suffix(zoo.WEIGHTS_SUFFIX).unlink(missing_ok=True)
    record = RunRecord.from_file(record_file)
    forward = record["metrics"].get("forward", {}).get("test_mtfl")
    if zoo.kind_of(record) != zoo.POSE and (forward is None or not forward.get("options", {}).get("ridge_choice")):
        return None
    return export_weights(record_file)
