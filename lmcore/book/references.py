"""The ``reference`` profile: a book built from the committed references, training nothing.

The committed references are the longest runs made for this book (``results/<method>/<run>.json``,
trained in the ``cpu`` profile), and the model zoo's weights beside the headline ones
(``results/<method>/<run>.safetensors``). In the ``reference`` profile, the default where PyTorch
sees no GPU, a chapter asks for its runs as in any profile and gets these instead:

* :func:`reference_record`: the committed record of a run name, or None where the book has none
  (a chapter then says which command trains it);
* :func:`load_reference_model`: the method with the committed weights, for figures and widgets;
* :func:`reference_few_shot`: a few-shot curve measured from the weights (the records hold none),
  cached by the weights' digest;

This is the book's layer: no method or training module imports it, so editing it changes no run's
identity.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import torch

from .. import env
from ..data.sources import get_source
from ..errors import ConfigError, LmbookError
from ..evaluation import Detections, detect_all
from ..evaluation.rescore import faces_key
from ..paths import RESULTS_DIR, cache_root
from ..profiles import PROFILES
from ..training.records import write_json_atomic
from ..training.run_record import RunRecord
from ..zoo import is_direct, load_model, verify, weights_path
from ..zoo import record_path as zoo_record_path

REFERENCE = "reference"
#: the profile every committed reference was trained in: the settings a reference chapter shows
REFERENCE_SETTINGS = "cpu"
#: every profile a chapter (and ``make book``) accepts, those ``$LMBOOK_PROFILE`` takes; training
#: accepts :data:`lmcore.profiles.PROFILES`
BOOK_PROFILES = env.VARIABLES["LMBOOK_PROFILE"].values
assert set(PROFILES) < set(BOOK_PROFILES) and REFERENCE in BOOK_PROFILES
#: how the built book itself describes this profile (the other profiles: lmcore.profiles.DESCRIPTIONS)
DESCRIPTION = ("reference profile: the committed reference runs (trained in the cpu profile) and their weights; "
               "nothing is trained")
#: images per batch when detecting a reference's landmarks (measured on 2 cores: FSE, Zhang and
#: Sanchez K = 10 take 1.04 / 0.80 / 0.82 ms per face at 64 against 1.50 / 1.42 / 1.18 at 256,
#: with identical points)
DETECT_BATCH = 64
#: the command that trains what a reference chapter cannot show
TRAIN_COMMAND = "LMBOOK_PROFILE=cpu make book"
#: how a reference trained with other settings is trained again with today's
REFRESH_HINT = "python -m lmcore.train <method> --profile cpu --name <run> --publish"


class NoReferenceError(LmbookError):
    """A chapter in the reference profile needs a run the repository has no reference (or weights) for."""


def default_book_profile() -> str:
    """``paper`` where PyTorch sees a GPU, else ``reference``: a book without a GPU shows what
    was trained for it instead of training for hours."""
    return "paper" if torch.cuda.is_available() else REFERENCE


def resolve_book_profile(requested: str | None = None) -> str:
    """``requested``, else ``$LMBOOK_PROFILE``, else :func:`default_book_profile`."""
    profile = requested or env.profile() or default_book_profile()
    if profile not in BOOK_PROFILES:
        raise ConfigError(f"unknown profile '{profile}' (from the argument or $LMBOOK_PROFILE); "
                          f"choose one of {', '.join(BOOK_PROFILES)}")
    return profile


def settings_profile(profile: str) -> str:
    """The training profile whose settings a chapter in ``profile`` shows (the references' for
    ``reference``)."""
    return REFERENCE_SETTINGS if profile == REFERENCE else profile


def reference_record(method: str, name: str, root: Path | str = RESULTS_DIR):
    """The committed reference ``results/<method>/<name>.json`` as a :class:`RunRecord` (marked
    ``reused``), or None where there is none."""
    path = Path(root) / method / f"{name}.json"
    if not path.exists():
        return None
    record = RunRecord.from_file(path)
    record.reused = True
    return record


def has_weights(record) -> bool:
    """Whether a committed reference has its weights in the zoo."""
    return bool(record.is_reference and record.get("weights_sha256")
                and weights_path(f"{record.method}/{record.run_name}").exists())


def load_reference_model(record, device: torch.device | None = None):
    """The method of a committed reference with its zoo weights, in eval mode (what
    :func:`lmcore.training.load_trained` gives for a run of this machine). Raises
    :class:`NoReferenceError` for a reference without weights."""
    name = f"{record.method}/{record.run_name}"
    if not has_weights(record):
        raise NoReferenceError(f"the reference {name} has no weights in the zoo (only its record); "
                               f"{TRAIN_COMMAND} trains the chapter's runs")
    return load_model(name, device=device)  # with its training-only parts, which chapters show (jakab: the VGG16's source)


def _weights_key(record, extra: dict) -> str:
    return hashlib.sha256(json.dumps({"weights": record["weights_sha256"], **extra}, sort_keys=True).encode()).hexdigest()[:16]


def reference_few_shot(record, few_shot: dict, splits: tuple[str, ...] = ("test_mtfl", "test_aflw")) -> dict:
    """``{split: few-shot curve}`` of a reference, measured from its weights by the protocol
    (:meth:`lmcore.evaluation.Detections.curve`, forward error, ``few_shot = {"sizes": [...],
    "repeats": n}``) and cached under the cache folder by the weights' digest and the request. The
    landmarks come from :func:`reference_detections`, so the book detects each face once per
    reference however many chapters ask."""
    request = {"few_shot": few_shot, "splits": list(splits), "kind": "few_shot"}
    path = _cache_dir() / f"{record.method}-{record.run_name}-{_weights_key(record, request)}.json"
    if path.exists():
        return json.loads(path.read_text())
    source = get_source(record.config["data"]["source"])
    detections = reference_detections(record, source.split("regressor_train"), {s: source.split(s) for s in splits})
    curves = {split: detections.curve(split, few_shot["sizes"], few_shot.get("repeats", 10), "forward")
              for split in splits}
    curves = json.loads(json.dumps(curves, default=float))
    write_json_atomic(path, curves)
    return curves


def reference_detections(record, regressor_set, test_sets: dict):
    """A reference's landmarks on a regressor set and test sets (:class:`lmcore.evaluation.Detections`)
    from its zoo weights: what :func:`lmcore.training.run_detections` gives for a run of this
    machine. Each set's landmarks are cached apart, under the cache folder, by the weights' digest
    and the set's faces, so a chapter asking for test_mtfl alone and one asking for both test sets
    share the detection pass; the model is loaded only where a set is not cached yet."""
    loaded = []

    def detector():
        if not loaded:
            loaded.append(load_reference_model(record))
        return loaded[0].detect

    return Detections(regressor_set, reference_points(record, regressor_set, detector), dict(test_sets),
                      {name: reference_points(record, faces, detector) for name, faces in test_sets.items()},
                      kind="direct" if is_direct(record) else "regressed")  # as run_detections decides


def reference_points(record, faces, detector=None) -> torch.Tensor:
    """A reference's pixel landmarks ``N x K x 2`` on the images of ``faces`` (a
    :class:`lmcore.data.LandmarkSet`), cached by the weights' digest and the faces' names.
    ``detector``: a callable returning the detect function (default: load the zoo weights)."""
    path = _cache_dir() / f"{record.method}-{record.run_name}-points-{_weights_key(record, {'faces': faces_key(faces)})}.pt"
    sidecar = path.with_suffix(".json")  # the points' digest, written after them, as the image cache does
    try:
        points = torch.load(path, map_location="cpu", weights_only=True)
        digest = json.loads(sidecar.read_text()).get("sha256")
        if isinstance(points, torch.Tensor) and points.ndim == 3 and len(points) == len(faces) \
                and digest == points_sha256(points):
            return points
    except (OSError, RuntimeError, ValueError, EOFError, AttributeError, pickle.UnpicklingError):
        pass  # missing, partial, foreign or without a matching digest: detect again (and replace it)
    detect = detector() if detector is not None else load_reference_model(record).detect
    with torch.no_grad():
        # batches of 64 give the same points as the protocol's 256, 1.3-1.8x faster on two cores
        points = detect_all(detect, faces.images, batch_size=DETECT_BATCH)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")  # a reader never sees half a file
    torch.save(points, tmp)
    tmp.replace(path)
    write_json_atomic(sidecar, {"sha256": points_sha256(points), "shape": list(points.shape)})
    return points


def points_sha256(points: torch.Tensor) -> str:
    """sha256 of a tensor of points' values (float32, contiguous): what a cached file must hold."""
    return hashlib.sha256(points.detach().float().contiguous().numpy().tobytes()).hexdigest()


def cached_for_weights(record, request: dict, compute):
    """``compute()`` (a JSON-able result that depends only on a reference's weights and ``request``,
    e.g. a few-shot curve of its detections), cached under the cache folder by the weights' digest
    and the request: a warm book computes it once per weights, not once per build."""
    path = _cache_dir() / f"{record.method}-{record.run_name}-{_weights_key(record, request)}.json"
    if path.exists():
        return json.loads(path.read_text())
    result = json.loads(json.dumps(compute(), default=float))
    write_json_atomic(path, result)
    return result


def verified(name: str) -> dict:
    """The zoo's check of a committed reference's weights (:func:`lmcore.zoo.verify`: its score
    measured again from the weights beside the one stored when they were written), cached under
    the cache folder by the weights' digest: the check is a function of the weights and the data,
    so a book measures it once per weights, not once per build."""
    record = RunRecord.from_file(zoo_record_path(name))
    path = _cache_dir() / f"{name.replace('/', '-')}-verified-{_weights_key(record, {'kind': 'verify'})}.json"
    if path.exists():
        return json.loads(path.read_text())
    check = json.loads(json.dumps(verify(name), default=float))
    write_json_atomic(path, check)
    return check


def _cache_dir() -> Path:
    return cache_root() / "references"


def number_from_weights(record, direction: str, split: str) -> float | None:
    """What a reference's weights must give for ``direction`` error on ``split``: the record's own
    number where the weights are the trained fp32 ones; for fp16 weights, the forward error on
    test_mtfl measured from them when they were written (within 0.01 of the record's, the zoo's
    rule), and None for the numbers fp16 was not measured on."""
    metrics = record.get("metrics", {}).get(direction, {}).get(split, {})
    if record.get("weights_dtype") == "fp32":
        return metrics.get("mean")
    if direction == "forward" and split == "test_mtfl":
        return (record.get("weights_check") or {}).get("test_mtfl_fp16")
    return None
