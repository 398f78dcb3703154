"""The model zoo: trained detectors a user can load, beside the committed reference records.

    from lmcore.zoo import load, load_detector
    faces = load("zhang/k10")("photo.jpg")  # every face of a photo: box, landmarks, 5 points (lmcore.faces)
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
A detector is built without what only training uses (:data:`DETECTION_ONLY_SETTINGS`): the
perceptual loss's VGG16, which is fetched data, is neither needed nor loaded to detect.

:func:`lmcore.zoo_export.export_weights` writes the file from the finished run a record came from.
This module only reads the zoo, so that the run API, which starts runs from zoo weights
(``train.init_from``), imports it without importing itself back.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from .data.sources import get_source
from .errors import ConfigError, LmbookError, MissingDataError
from .evaluation import RegressionOptions, detect_all, normalised_errors
from .evaluation.protocol import choose_ridge, fit_linear_map, forward_error, regressor_count
from .faces import PhotoDetector
from .files import file_sha256
from .geometry import normalized_to_pixels
from .methods import build_method
from .methods.base import PCK_KEY
from .paths import RESULTS_DIR
from .training.records import read_record
from .training.run_record import RunRecord

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
#: method settings under which a zoo model is built to detect: ``loss = "pixel"`` builds no
#: criterion, so neither the perceptual loss's ImageNet VGG16 (fetched data) nor Sanchez's is
#: loaded; ``detect`` never touches the criterion, so the landmarks are the same
DETECTION_ONLY_SETTINGS = {"loss": "pixel"}
#: weights of the training-only parts that a detector built so has no place for (the perceptual
#: loss's running normalisers)
TRAINING_ONLY_PREFIXES = ("criterion.",)


class ZooError(LmbookError):
    """A model of the zoo cannot be loaded (unknown, changed, or not buildable by this lmcore)."""


def record_path(name: str, root: Path | str | None = None) -> Path:
    return Path(root or RESULTS_DIR) / f"{name}.json"


def weights_path(name: str, root: Path | str | None = None) -> Path:
    return Path(root or RESULTS_DIR) / f"{name}{WEIGHTS_SUFFIX}"


def refuse_folders(name: str, *paths: Path) -> None:
    """A :class:`ZooError` in one line when a file of the model ``name`` (its record, its weights)
    is a folder."""
    for path in paths:
        if path.is_dir():
            raise ZooError(f"{path} is a folder, not a file of the model '{name}': move it away and restore the "
                           f"file from git (git checkout -- {path})")


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


def trainable_state(method) -> dict:
    return {k: v.detach().cpu().contiguous() for k, v in method.state_dict().items()}


def detection_config(config: dict) -> dict:
    """``config`` with :data:`DETECTION_ONLY_SETTINGS` wherever the method has those settings."""
    detection = copy.deepcopy(config)
    for key, value in DETECTION_ONLY_SETTINGS.items():
        if key in detection["method"]:
            detection["method"][key] = value
    return detection


def check_buildable(record: dict, name: str, config: dict | None = None):
    """The method of ``record`` built from ``config`` (default: the record's own). Missing data
    (fetched weights, a data set) is re-raised as what it is; anything else means this lmcore
    cannot build the record's model any more."""
    commit = record.get("git_commit", "?")[:10]
    try:
        return build_method(record["method"], record["config"] if config is None else config)
    except MissingDataError:
        raise
    except Exception as exc:  # a key or a module this lmcore no longer has
        raise ZooError(f"{name}: this lmcore can no longer build the model of its record "
                       f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); check out commit {commit}, "
                       "which trained it") from None


def read_weights(name: str, root: Path | str | None = None) -> tuple[RunRecord, dict[str, torch.Tensor]]:
    """The record of ``method/run`` and its weights file's tensors, float32 (the regressor
    under :data:`REGRESSOR_KEY`, the model's own keys without :data:`MODEL_PREFIX`). Refuses an
    unknown name and a weights file whose sha256 differs from its record's."""
    json_path, weights = record_path(name, root), weights_path(name, root)
    refuse_folders(name, json_path, weights)
    if not re.fullmatch(r"[a-z0-9_]+/[A-Za-z0-9_-][A-Za-z0-9._-]*", name) or not json_path.exists() or not weights.exists():
        known = ", ".join(available(root, kind=None)) or "none yet"
        raise ZooError(f"no model '{name}' in the zoo (models with weights: {known})")
    record = RunRecord.from_file(json_path)
    expected = record.get("weights_sha256")
    if expected is None or file_sha256(weights) != expected:
        raise ZooError(f"{weights} is not the weights file of its record ({'the record names none' if expected is None else 'its sha256 differs from the record'}); "
                       "restore it from git, or export it again with tools/publish_weights.py")
    tensors = {}
    for key, value in load_file(str(weights)).items():
        value = value.float() if value.is_floating_point() else value
        tensors[key if key == REGRESSOR_KEY else key[len(MODEL_PREFIX):]] = value
    return record, tensors


def load_detector(name: str, device=None, root: Path | str | None = None) -> Detector:
    """The committed reference ``method/run`` (e.g. ``"zhang/k10"``) as a ready :class:`Detector`
    in eval mode, built without its training-only parts (:func:`detection_config`). Refuses a
    weights file whose sha256 differs from its record's."""
    record, state = read_weights(name, root)
    regressor = state.pop(REGRESSOR_KEY, None)
    method = loaded_method(record, state, name, detection_config(record["config"]), device)
    return Detector(method, regressor, dict(record), name)


def load_model(name: str, device=None, root: Path | str | None = None):
    """The committed reference ``method/run``'s whole method as it trained, in eval mode: with
    its training-only parts (the perceptual loss's VGG16, whose fetched weights it then needs), for
    what shows them; :func:`load_detector` to detect."""
    record, state = read_weights(name, root)
    state.pop(REGRESSOR_KEY, None)
    return loaded_method(record, state, name, record["config"], device)


def loaded_method(record: dict, state: dict, name: str, config: dict, device=None):
    """The method of ``record`` built from ``config`` with the weights ``state``, in eval mode on
    ``device``; weights of training-only parts that ``config`` does not build are left out."""
    method = check_buildable(record, name, config)
    wanted = method.state_dict().keys()
    state = {k: v for k, v in state.items() if k in wanted or not k.startswith(TRAINING_ONLY_PREFIXES)}
    try:
        method.load_state_dict(state)
    except RuntimeError as exc:
        raise ZooError(f"{name}: the weights do not fit the model this lmcore builds from the record "
                       f"({str(exc).splitlines()[0][:160]}); check out commit {record['git_commit'][:10]}") from None
    method.eval()
    return method.to(device or torch.device("cpu"))


def load(name: str, device=None, root: Path | str | None = None) -> PhotoDetector:
    """The face detector ``method/run`` ready for photos: call it with a path, a PIL image or an
    array and it finds every face and returns each one's landmarks and 5 points in the photo's
    pixels (:class:`lmcore.faces.PhotoDetector`)."""
    detector = load_detector(name, device, root)
    if detector.regressor is None:
        raise ZooError(f"{name} is a {POSE} (LSPET's 14 joints), not a face detector; "
                       f"the face detectors: {', '.join(available(root)) or 'none yet'}")
    return PhotoDetector(detector)


def detections_for_regressor(detect, source):
    train, test = source.split("regressor_train"), source.split("test_mtfl")
    with torch.no_grad():
        return detect_all(detect, train.images), train.points, detect_all(detect, test.images), test.points


def forward_and_regressor(detect, source, options):
    d_train, a_train, d_test, a_test = detections_for_regressor(detect, source)
    choice = choose_ridge(d_train, a_train, options)
    error = forward_error(d_train, a_train, d_test, a_test, options, ridge_choice=choice)["mean"]
    n_used = regressor_count(len(a_train), options.regressor_fraction)
    fit = fit_linear_map(d_train[:n_used], a_train[:n_used], intercept=False, ridge=float(choice["ridge"]),
                         ridge_scale=options.ridge_scale)
    return error, torch.from_numpy(np.asarray(fit.weight, dtype=np.float64))


def is_direct(record: dict) -> bool:
    """Whether ``record`` is a supervised detector of the 5 annotated points themselves (its forward
    error recorded as ``direct``): its zoo regressor is the identity, the points are its landmarks."""
    return bool(record.get("metrics", {}).get("forward", {}).get("test_mtfl", {}).get("options", {}).get("direct"))


def direct_error(detect, source, normaliser: str = "eyes") -> float:
    """A supervised detector's forward error on test_mtfl, its points scored as they are (as the
    record's ``direct`` error, :mod:`lmcore.evaluation.rescore`)."""
    test = source.split("test_mtfl")
    with torch.no_grad():
        points = detect_all(detect, test.images)
    return float(normalised_errors(points, test.points, normaliser=normaliser).mean())


def pck_val(method, source, record: dict) -> float:
    """PCK@0.2 on LSPET val, on the same people as the record's (a smoke run scores every n-th)."""
    return float(method.pck(source.split("val", every=record.get("data", {}).get("eval_subsample", 1)))["pck"])


def ancestor_of(name: str, method: str, root: Path | str | None = None) -> dict:
    """What a run started with ``train.init_from = name`` records as its ancestor: the reference,
    its weights' sha256, and the steps and training time of its whole lineage (its own and its
    ancestors'). Raises
    :class:`~lmcore.errors.ConfigError` when there is no such model or it is another method's."""
    json_path, weights = record_path(name, root), weights_path(name, root)
    refuse_folders(name, json_path, weights)
    if not json_path.exists() or not weights.exists():
        raise ConfigError(f"setting 'train.init_from': no model '{name}' in the zoo (models with weights: "
                          f"{', '.join(available(root, kind=None)) or 'none yet'})")
    record = RunRecord.from_file(json_path)
    if record.method != method:
        raise ConfigError(f"setting 'train.init_from': {name} is a {record.method} model, this run trains {method}")
    before = record.get("ancestor") or {}
    return {"name": name, "weights_sha256": record.get("weights_sha256"), "steps": record.get("steps"),
            "lineage_steps": before.get("lineage_steps", 0) + int(record.get("steps") or 0),
            # training time of the whole lineage (records from before lineages kept it count their own)
            "lineage_wall_time_s": round(before.get("lineage_wall_time_s", 0.0) + float(record.get("wall_time_s") or 0.0), 1),
            "git_commit": record.get("git_commit")}


def load_initial_weights(method_model, name: str, root: Path | str | None = None) -> None:
    """Load the zoo model ``name``'s weights into ``method_model`` (a freshly built method of the
    same config), refusing a file whose sha256 differs from its record or weights that do not fit."""
    _, state = read_weights(name, root)
    state.pop(REGRESSOR_KEY, None)
    try:
        method_model.load_state_dict(state)
    except RuntimeError as exc:
        raise ConfigError(f"setting 'train.init_from': the weights of {name} do not fit this run's model "
                          f"({str(exc).splitlines()[0][:160]}); give it the same architecture settings") from None


def verify(name: str, root: Path | str | None = None) -> dict:
    """Re-detect MTFL-80's regressor_train and test_mtfl with the committed weights of ``name`` and
    score them by the protocol (a pose core: LSPET val, scored by PCK@0.2): returns the forward error, the record's, and the one measured from
    the stored weights when they were written (fp16 weights give that one, within
    :data:`FP16_TOLERANCE` of the record's)."""
    detector = load_detector(name, root=root)
    record = detector.record
    source = get_source(record["config"]["data"]["source"])
    if kind_of(record) == POSE:  # PCK as a fraction
        pck = pck_val(detector.method, source, record)
        check = record["weights_check"]
        stored = check["pck_val_fp16"] if record["weights_dtype"] == "fp16" else check["pck_val_fp32"]
        return {"model": name, "dtype": record["weights_dtype"], "score": "PCK@0.2 LSPET val", "from the weights": pck,
                "when written": stored, "record": record["metrics"][PCK_KEY]["pck"], "difference": abs(pck - stored)}
    error, _ = forward_and_regressor(detector.method.detect, source, RegressionOptions())
    check = record["weights_check"]
    stored = check["test_mtfl_fp16"] if record["weights_dtype"] == "fp16" else check["test_mtfl_fp32"]
    return {"model": name, "dtype": record["weights_dtype"], "score": "forward test_mtfl (% IOD)", "from the weights": error,
            "when written": stored, "record": record["metrics"]["forward"]["test_mtfl"]["mean"],
            "difference": abs(error - stored)}


def per_face_errors(name: str, split: str = "test_mtfl", root: Path | str | None = None) -> np.ndarray:
    """Each face's forward error on ``split`` (``N``, % of IOD) from the face detector ``name``'s
    committed weights and regressor: what a comparison over training runs resamples
    (:func:`lmcore.book.reporting.ordering_verdicts`) when the runs themselves are not on this machine."""
    detector = load_detector(name, root=root)
    test = get_source(detector.record["config"]["data"]["source"]).split(split)
    images = test.images.float() / 255.0
    points = torch.cat([detector.points(images[i:i + 512]) for i in range(0, len(images), 512)])
    return normalised_errors(points.numpy(), test.points.numpy()).mean(1)


def lineage(record: dict, root: Path | str | None = None) -> list[dict]:
    """``record`` preceded by the committed references it was started from (``train.init_from``,
    recursively), oldest first; a missing ancestor's record ends the chain."""
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
