"""The model zoo: trained detectors a user can load, beside the committed reference records.

    from lmcore.zoo import load_detector
    detector = load_detector("zhang/k10")
    landmarks = detector(images)          # B x 3 x 80 x 80 in [0, 1] -> B x K x 2 pixels
    points = detector.points(images)      # the 5 annotated points, by the protocol's regressor

It holds two kinds of model. A **face detector** (every landmark method) detects K landmarks and
regresses MTFL-80's 5 points from them. A **pose core** (``pose/core``, the supervised parent of
the Sanchez chapter) detects LSPET's 14 joints; it is in the zoo so that it can be trained further
in a later sitting (``--init-from pose/core``), and it is checked by its PCK@0.2 on LSPET val.

``results/<method>/<run>.safetensors`` holds a reference's trainable weights and buffers (never a
frozen network that is data, such as the perceptual loss's VGG16) and the protocol's linear
regressor from its K landmarks to MTFL-80's 5 points (fitted without an intercept on all of
``regressor_train``, the ridge chosen on ``tune_val``, exactly as the record's forward error).
The record holds the file's sha256 (``weights_sha256``); a file that differs is refused, and so is
a record whose config this ``lmcore`` can no longer build (one line naming the commit to check out).

:func:`export_weights` writes the file from the finished run a record came from: it re-detects the
test faces and refuses to write unless the record's forward error comes back (to 1e-6), and it
stores fp16 only where that moves test_mtfl's forward error by less than 0.01 (else fp32).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import LmbookError
from .methods.base import PCK_KEY
from .paths import RESULTS_DIR

WEIGHTS_SUFFIX = ".safetensors"
MODEL_PREFIX = "model."
REGRESSOR_KEY = "regressor.weight"
#: a file per reference and all of them together stay small (a test enforces both)
MAX_FILE_BYTES = 3 * 1024 * 1024
MAX_TOTAL_BYTES = 40 * 1024 * 1024
#: fp16 is kept only where it moves the record's test_mtfl forward error by less than this
FP16_TOLERANCE = 0.01
#: ... or a pose core's PCK@0.2 on LSPET val (a fraction) by less than this
FP16_PCK_TOLERANCE = 0.001
FACE, POSE = "face detector", "pose core"
#: the record's forward error must come back from the weights to within this (% of IOD)
REPRODUCE_TOLERANCE = 1e-6
#: chapter 6 re-detects every reference on the machine that builds the book: equal to the number
#: measured when the weights were written to 1e-6 on the same machine (measured: 0.0); other
#: thread counts or CPUs may reorder float sums, hence the margin
VERIFY_TOLERANCE = 1e-4
IMAGE_SIZE = 80  # MTFL-80's frame: the detectors were trained and scored on it


class ZooError(LmbookError):
    """A model of the zoo cannot be loaded (unknown, changed, or not buildable by this lmcore)."""


def record_path(name: str, root: Path | str | None = None) -> Path:
    return Path(root or RESULTS_DIR) / f"{name}.json"


def weights_path(name: str, root: Path | str | None = None) -> Path:
    return Path(root or RESULTS_DIR) / f"{name}{WEIGHTS_SUFFIX}"


def kind_of(record: dict) -> str | None:
    """:data:`FACE` for a record scored by the face protocol, :data:`POSE` for a pose core scored
    by PCK on LSPET val, None for neither (such a reference has no weights in the zoo)."""
    metrics = record.get("metrics", {})
    if "test_mtfl" in metrics.get("forward", {}):
        return FACE
    return POSE if PCK_KEY in metrics else None


def available(root: Path | str | None = None, kind: str | None = FACE) -> list[str]:
    """``method/run`` of every committed reference that has weights, of one ``kind`` (:data:`FACE`
    by default: what ``python -m lmcore.detect`` runs; :data:`POSE`; None for both)."""
    from .training.records import read_record

    root = Path(root or RESULTS_DIR)
    names = []
    for path in sorted(root.glob(f"*/*{WEIGHTS_SUFFIX}")):
        record_file = path.with_suffix(".json")
        if record_file.exists() and (kind is None or kind_of(read_record(record_file, check_digest=False)) == kind):
            names.append(f"{path.parent.name}/{path.stem}")
    return names


class Detector(nn.Module):
    """A trained reference as a plain module: ``forward(images) -> B x K x 2`` landmarks and
    :meth:`points` the 5 regressed points, both in pixel coordinates of the input images
    (``B x 3 x H x W`` floats in [0, 1], roughly centred face crops as MTFL-80's)."""

    def __init__(self, method: nn.Module, regressor: torch.Tensor | None, record: dict, name: str):
        super().__init__()
        self.method = method
        self.register_buffer("regressor", regressor)  # None for a pose core
        self.record = record
        self.name = name

    @property
    def num_landmarks(self) -> int:
        return self.method.num_landmarks

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from .geometry import normalized_to_pixels

        height, width = images.shape[-2:]
        return normalized_to_pixels(self.method.detect(images).cpu(), (width, height))

    @torch.no_grad()
    def points(self, images: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        """The 5 annotated points (eyes, nose, mouth corners) regressed from the landmarks,
        ``B x 5 x 2`` pixels. The regressor was fitted in MTFL-80's 80 px frame, so the
        landmarks are taken there and the points scaled back to the images' size."""
        if self.regressor is None:
            raise ZooError(f"{self.name} is a {POSE}: it has no regressor to the 5 face points")
        height, width = images.shape[-2:]
        scale = torch.tensor([IMAGE_SIZE / width, IMAGE_SIZE / height])
        landmarks = self(images) if landmarks is None else landmarks
        flat = (landmarks.cpu() * scale).reshape(len(landmarks), -1).double()
        return (flat @ self.regressor.double().cpu()).reshape(len(landmarks), -1, 2).float() / scale


def _trainable_state(method) -> dict:
    return {k: v.detach().cpu().contiguous() for k, v in method.state_dict().items()}


def _check_buildable(record: dict, name: str):
    from .methods import build_method

    commit = record.get("git_commit", "?")[:10]
    try:
        return build_method(record["method"], record["config"])
    except Exception as exc:  # a key or a module this lmcore no longer has
        raise ZooError(f"{name}: this lmcore can no longer build the model of its record "
                       f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); check out commit {commit}, "
                       "which trained it") from None


def load_detector(name: str, device=None, root: Path | str | None = None) -> Detector:
    """The committed reference ``method/run`` (e.g. ``"zhang/k10"``) as a ready :class:`Detector`
    in eval mode. Refuses a weights file whose sha256 differs from its record's."""
    from safetensors.torch import load_file

    from .files import file_sha256
    from .training.run_record import RunRecord

    import re

    json_path, weights = record_path(name, root), weights_path(name, root)
    if not re.fullmatch(r"[a-z0-9_]+/[A-Za-z0-9_-][A-Za-z0-9._-]*", name) or not json_path.exists() or not weights.exists():
        known = ", ".join(available(root, kind=None)) or "none yet"
        raise ZooError(f"no model '{name}' in the zoo (models with weights: {known})")
    record = RunRecord.from_file(json_path)
    expected = record.get("weights_sha256")
    if expected is None or file_sha256(weights) != expected:
        raise ZooError(f"{weights} is not the weights file of its record ({'the record names none' if expected is None else 'its sha256 differs from the record'}); "
                       "restore it from git, or export it again with tools/publish_weights.py")
    tensors = load_file(str(weights))
    regressor = tensors.pop(REGRESSOR_KEY, None)
    method = _check_buildable(record, name)
    state = {k[len(MODEL_PREFIX):]: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    try:
        method.load_state_dict(state)
    except RuntimeError as exc:
        raise ZooError(f"{name}: the weights do not fit the model this lmcore builds from the record "
                       f"({str(exc).splitlines()[0][:160]}); check out commit {record['git_commit'][:10]}") from None
    method.eval()
    method.to(device or torch.device("cpu"))
    return Detector(method, None if regressor is None else regressor.float(), dict(record), name)


def _detections(detect, source):
    from .evaluation import detect_all

    train, test = source.split("regressor_train"), source.split("test_mtfl")
    with torch.no_grad():
        return detect_all(detect, train.images), train.points, detect_all(detect, test.images), test.points


def _forward_and_regressor(detect, source, options):
    from .evaluation.protocol import choose_ridge, fit_linear_map, forward_error, regressor_count

    d_train, a_train, d_test, a_test = _detections(detect, source)
    choice = choose_ridge(d_train, a_train, options)
    error = forward_error(d_train, a_train, d_test, a_test, options, ridge_choice=choice)["mean"]
    n_used = regressor_count(len(a_train), options.regressor_fraction)
    fit = fit_linear_map(d_train[:n_used], a_train[:n_used], intercept=False, ridge=float(choice["ridge"]),
                         ridge_scale=options.ridge_scale)
    return error, torch.from_numpy(np.asarray(fit.weight, dtype=np.float64))


def export_weights(record_file: Path | str, dtype: str = "auto") -> dict:
    """Write ``results/<method>/<run>.safetensors`` for the committed reference ``record_file``
    from the finished run it came from (found by identity in the runs folder, its checkpoint's
    sha256 checked), and add the file's sha256 to the record. Returns what was measured."""
    from .data.sources import get_source
    from .evaluation import RegressionOptions
    from .training.run_record import RunRecord

    record_file = Path(record_file)
    record = RunRecord.from_file(record_file)
    name = f"{record.method}/{record.run_name}"
    if kind_of(record) == POSE:
        return _export_pose_core(record_file, record, dtype)
    forward = record["metrics"].get("forward", {}).get("test_mtfl")
    if forward is None:
        raise ZooError(f"{name}: its record has neither a forward error on test_mtfl nor a PCK on LSPET val: "
                       "the zoo holds face detectors and pose cores")
    options_recorded = forward.get("options", {})
    if options_recorded.get("intercept") or not options_recorded.get("ridge_choice"):
        raise ZooError(f"{name} was scored with an earlier protocol (an intercept or a fixed ridge): train it again")
    method = _published_run(record, record_file)
    source = get_source(record["config"]["data"]["source"])
    options = RegressionOptions()
    error32, regressor = _forward_and_regressor(method.detect, source, options)
    if abs(error32 - forward["mean"]) > REPRODUCE_TOLERANCE:
        raise ZooError(f"{name}: its weights give {error32:.6f} % on test_mtfl, its record {forward['mean']:.6f} %: "
                       "not written")
    state = _trainable_state(method)
    measured = {"test_mtfl_fp32": error32}
    if dtype in ("auto", "fp16"):
        method.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in state.items()})
        measured["test_mtfl_fp16"], _ = _forward_and_regressor(method.detect, source, options)
        if dtype == "fp16" or abs(measured["test_mtfl_fp16"] - error32) < FP16_TOLERANCE:
            dtype = "fp16"
    dtype = "fp16" if dtype == "fp16" else "fp32"
    tensors = {MODEL_PREFIX + k: (v.half() if dtype == "fp16" and v.is_floating_point() else v) for k, v in state.items()}
    tensors[REGRESSOR_KEY] = regressor.float()
    return _write_weights(record_file, record, tensors, dtype, measured)


def _write_weights(record_file: Path, record: dict, tensors: dict, dtype: str, measured: dict) -> dict:
    """The safetensors file beside the record, and its sha256, dtype and checks in the record."""
    from safetensors.torch import save_file

    from .files import file_sha256
    from .training.records import write_record

    name = f"{record['method']}/{record['run_name']}"
    target = weights_path(name, record_file.parent.parent)
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
    from .training.run_record import RunRecord
    from .training.runs import load_trained, run_directory

    run_dir = run_directory(record.method, record.profile, record.run_name, record["identity"])
    run = RunRecord.from_file(run_dir / "record.json", run_dir=run_dir)
    if run.get("checkpoint_sha256") != record.get("checkpoint_sha256"):
        raise ZooError(f"{run_dir} is not the run {record_file} was published from (another checkpoint)")
    return load_trained(run, device=torch.device("cpu"))


def _pck_val(method, source, record: dict) -> float:
    """PCK@0.2 on LSPET val, on the same people as the record's (a smoke run scores every n-th)."""
    return float(method.pck(source.split("val", every=record.get("data", {}).get("eval_subsample", 1)))["pck"])


def _export_pose_core(record_file: Path, record, dtype: str) -> dict:
    """:func:`export_weights` for a pose core: its PCK@0.2 on LSPET val must come back from the
    weights (to 1e-6); fp16 where that moves it by less than :data:`FP16_PCK_TOLERANCE`."""
    from .data.sources import get_source

    name = f"{record.method}/{record.run_name}"
    method = _published_run(record, record_file)
    source = get_source(record["config"]["data"]["source"])
    pck32 = _pck_val(method, source, record)
    if abs(pck32 - record["metrics"][PCK_KEY]["pck"]) > REPRODUCE_TOLERANCE:
        raise ZooError(f"{name}: its weights give PCK {pck32:.6f} on LSPET val, its record "
                       f"{record['metrics'][PCK_KEY]['pck']:.6f}: not written")
    state = _trainable_state(method)
    measured = {"pck_val_fp32": pck32}
    if dtype in ("auto", "fp16"):
        method.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in state.items()})
        measured["pck_val_fp16"] = _pck_val(method, source, record)
        if dtype == "fp16" or abs(measured["pck_val_fp16"] - pck32) < FP16_PCK_TOLERANCE:
            dtype = "fp16"
    dtype = "fp16" if dtype == "fp16" else "fp32"
    tensors = {MODEL_PREFIX + k: (v.half() if dtype == "fp16" and v.is_floating_point() else v) for k, v in state.items()}
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
    from .training.run_record import RunRecord

    record_file = Path(record_file)
    record_file.with_suffix(WEIGHTS_SUFFIX).unlink(missing_ok=True)
    record = RunRecord.from_file(record_file)
    forward = record["metrics"].get("forward", {}).get("test_mtfl")
    if kind_of(record) != POSE and (forward is None or not forward.get("options", {}).get("ridge_choice")):
        return None
    return export_weights(record_file)


def ancestor_of(name: str, method: str, root: Path | str | None = None) -> dict:
    """What a run started with ``train.init_from = name`` records as its ancestor: the reference,
    its weights' sha256, and the steps of its whole lineage (its own and its ancestors'). Raises
    :class:`~lmcore.errors.ConfigError` when there is no such model or it is another method's."""
    from .errors import ConfigError
    from .training.run_record import RunRecord

    json_path, weights = record_path(name, root), weights_path(name, root)
    if not json_path.exists() or not weights.exists():
        raise ConfigError(f"setting 'train.init_from': no model '{name}' in the zoo (models with weights: "
                          f"{', '.join(available(root, kind=None)) or 'none yet'})")
    record = RunRecord.from_file(json_path)
    if record.method != method:
        raise ConfigError(f"setting 'train.init_from': {name} is a {record.method} model, this run trains {method}")
    before = (record.get("ancestor") or {}).get("lineage_steps", 0)
    return {"name": name, "weights_sha256": record.get("weights_sha256"), "steps": record.get("steps"),
            "lineage_steps": before + int(record.get("steps") or 0), "git_commit": record.get("git_commit")}


def load_initial_weights(method_model, name: str, root: Path | str | None = None) -> None:
    """Load the zoo model ``name``'s weights into ``method_model`` (a freshly built method of the
    same config), refusing a file whose sha256 differs from its record or weights that do not fit."""
    from .errors import ConfigError

    detector = load_detector(name, root=root)
    try:
        method_model.load_state_dict(detector.method.state_dict())
    except RuntimeError as exc:
        raise ConfigError(f"setting 'train.init_from': the weights of {name} do not fit this run's model "
                          f"({str(exc).splitlines()[0][:160]}); give it the same architecture settings") from None


def verify(name: str, root: Path | str | None = None) -> dict:
    """Re-detect MTFL-80's regressor_train and test_mtfl with the committed weights of ``name`` and
    score them by the protocol (a pose core: LSPET val, scored by PCK@0.2): returns the forward error, the record's, and the one measured from
    the stored weights when they were written (fp16 weights give that one, within
    :data:`FP16_TOLERANCE` of the record's)."""
    from .data.sources import get_source
    from .evaluation import RegressionOptions

    detector = load_detector(name, root=root)
    record = detector.record
    source = get_source(record["config"]["data"]["source"])
    if kind_of(record) == POSE:  # PCK as a fraction
        pck = _pck_val(detector.method, source, record)
        check = record["weights_check"]
        stored = check["pck_val_fp16"] if record["weights_dtype"] == "fp16" else check["pck_val_fp32"]
        return {"model": name, "dtype": record["weights_dtype"], "score": "PCK@0.2 LSPET val", "from the weights": pck,
                "when written": stored, "record": record["metrics"][PCK_KEY]["pck"], "difference": abs(pck - stored)}
    error, _ = _forward_and_regressor(detector.method.detect, source, RegressionOptions())
    check = record["weights_check"]
    stored = check["test_mtfl_fp16"] if record["weights_dtype"] == "fp16" else check["test_mtfl_fp32"]
    return {"model": name, "dtype": record["weights_dtype"], "score": "forward test_mtfl (% IOD)", "from the weights": error,
            "when written": stored, "record": record["metrics"]["forward"]["test_mtfl"]["mean"],
            "difference": abs(error - stored)}


def per_face_errors(name: str, split: str = "test_mtfl", root: Path | str | None = None) -> np.ndarray:
    """Each face's forward error on ``split`` (``N``, % of IOD) from the face detector ``name``'s
    committed weights and regressor: what a comparison over training runs resamples
    (:func:`lmcore.reporting.ordering_verdicts`) when the runs themselves are not on this machine."""
    from .data.sources import get_source
    from .evaluation import normalised_errors

    detector = load_detector(name, root=root)
    test = get_source(detector.record["config"]["data"]["source"]).split(split)
    images = test.images.float() / 255.0
    points = torch.cat([detector.points(images[i:i + 512]) for i in range(0, len(images), 512)])
    return normalised_errors(points.numpy(), test.points.numpy()).mean(1)


def lineage(record: dict, root: Path | str | None = None) -> list[dict]:
    """``record`` preceded by the committed references it was started from (``train.init_from``,
    recursively), oldest first; a missing ancestor's record ends the chain."""
    from .training.records import read_record

    chain = [record]
    seen = set()
    while (chain[0].get("ancestor") or {}).get("name") and chain[0]["ancestor"]["name"] not in seen:
        name = chain[0]["ancestor"]["name"]
        seen.add(name)
        path = record_path(name, root)
        if not path.exists():
            break
        chain.insert(0, read_record(path))
    return chain
