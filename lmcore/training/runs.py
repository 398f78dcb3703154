"""Runs: train a method in a profile, evaluate it by the protocol, record everything.

:func:`run_method` is what chapters call. A run lives in
``runs/<profile>/<method>/<name>-<config hash>/`` with ``checkpoint.pt`` and ``record.json``.
Calling it again returns the finished record when it was made by the same code (same git
commit) and configuration, resumes from the checkpoint when the run was interrupted, and
trains from scratch otherwise (or when ``force=True`` / ``$LMBOOK_RETRAIN=1``).
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import torch

from ..data import MTFL80
from ..evaluation import RegressionOptions, evaluate_detector, forward_error, detect_all
from ..methods import build_method, deep_update, get_method
from ..paths import RESULTS_DIR, runs_root
from ..profiles import resolve_profile, select_device
from .loop import TrainConfig, checkpoint_meta, train
from .records import config_hash, describe_device, git_commit, now_iso, read_record, write_json_atomic

TEST_SPLITS = ("test_mtfl", "test_aflw")
# The smoke profile evaluates on every 8th image of each split: its numbers only prove the code path.
EVAL_SUBSAMPLE = {"smoke": 8}


def run_identity(method: str, profile: str, config: dict, dataset: str) -> dict:
    identity = {"method": method, "profile": profile, "config": config}
    if dataset != "mtfl80":  # keeps the hashes of MTFL-80 runs as they were
        identity["dataset"] = dataset
    return identity


def run_directory(method: str, profile: str, name: str, config: dict, dataset: str = "mtfl80") -> Path:
    return runs_root() / profile / method / f"{name}-{config_hash(run_identity(method, profile, config, dataset))}"


def mnist_training_images(pad: int = 14) -> torch.Tensor:
    """MNIST digits as ``N x 1 x (28 + 2 pad)^2`` uint8, zero-padded so warps keep the digit in
    frame (Zhang et al. App. G.1 pad 28 to 56)."""
    from ..data.registry_sets import load_mnist

    images, _ = load_mnist()
    return torch.nn.functional.pad(images[:, None], (pad, pad, pad, pad))


def resolve_config(method: str, profile: str, overrides: dict | None = None) -> dict:
    cls = get_method(method)
    return deep_update(cls.default_config(profile), overrides)


SNAPSHOT_IMAGES = 6  # test_mtfl faces whose landmarks the learning curve also records (for widgets)


def learning_curve_evaluator(data: MTFL80, n_train: int = 2000, subsample: int = 1):
    """Cheap forward error on test_mtfl for the learning curve: the regressor is fitted on
    ``n_train`` labelled images spread evenly over ``regressor_train`` (which is sorted by path,
    so its first rows would all be LFW faces)."""
    names = data.splits["regressor_train"]
    stride = max(1, len(names) // n_train) * subsample
    train_set = data.by_names(names[::stride][:n_train], "regressor_train (learning curve subset)")
    test_set = data.split("test_mtfl", every=subsample)

    def evaluate(method) -> dict:
        with torch.no_grad():
            tr = detect_all(method.detect, train_set.images)
            te = detect_all(method.detect, test_set.images)
        result = forward_error(tr, train_set.points, te, test_set.points)
        snapshot = [[[round(float(c), 2) for c in p] for p in face] for face in te[:SNAPSHOT_IMAGES]]
        return {"forward_test_mtfl": result["mean"], "snapshot_points": snapshot}

    return evaluate


def run_method(method: str, profile: str | None = None, name: str = "default", overrides: dict | None = None,
               data: MTFL80 | None = None, force: bool | None = None, progress: bool | None = None,
               options: RegressionOptions = RegressionOptions(), few_shot: dict | None = None,
               dataset: str = "mtfl80") -> dict:
    """Train (or reuse) a run and return its record (a dict, see :mod:`lmcore.training.records`).

    ``overrides`` are merged into the profile's config (e.g. ``{"method": {"num_landmarks": 30}}``).
    ``few_shot`` (``{"sizes": [1, 5, None], "repeats": 10}``) adds few-shot forward errors to the
    metrics; a finished run asked for another evaluation is re-evaluated from its checkpoint, not
    retrained. The record's ``_run_dir`` says where its checkpoint is (:func:`load_trained`).
    ``dataset="mnist"`` trains on MNIST digits (no annotated points: the record has no metrics).
    """
    if dataset not in ("mtfl80", "mnist"):
        raise ValueError(f"unknown dataset '{dataset}' (mtfl80 or mnist)")
    profile = resolve_profile(profile)
    config = resolve_config(method, profile, overrides)
    run_dir = run_directory(method, profile, name, config, dataset)
    record_path = run_dir / "record.json"
    commit = git_commit()
    if force is None:
        force = os.environ.get("LMBOOK_RETRAIN", "") not in ("", "0")
    if progress is None:  # executed notebooks (papermill) set LMBOOK_PROGRESS=0: no progress widgets saved
        progress = os.environ.get("LMBOOK_PROGRESS", "1") != "0"
    evaluation = {"options": options.as_dict(), "few_shot": few_shot or {}}
    if record_path.exists() and not force:
        record = read_record(record_path)
        if record.get("git_commit") == commit:
            record["_run_dir"] = str(run_dir)
            if dataset == "mtfl80" and record.get("evaluation") != evaluation and (run_dir / "checkpoint.pt").exists():
                record["metrics"] = evaluate_method(load_trained(record), data or MTFL80(), options, few_shot,
                                                    EVAL_SUBSAMPLE.get(profile, 1))
                record["evaluation"] = evaluation
                write_json_atomic(record_path, {k: v for k, v in record.items() if not k.startswith("_")})
            return record
    # A finished record from other code, or a checkpoint written by other code, is stale: its
    # weights must not be labelled with this commit. Only an interrupted run of this code resumes.
    stale = force or record_path.exists()
    if not stale and (run_dir / "checkpoint.pt").exists():
        stale = checkpoint_meta(run_dir / "checkpoint.pt").get("git_commit") != commit
    if stale and run_dir.exists():
        shutil.rmtree(run_dir)

    cls = get_method(method)
    model = build_method(method, config)
    device = select_device()
    cfg = TrainConfig.from_dict(config["train"])
    if dataset == "mtfl80":
        data = data or MTFL80()
        train_set = data.split(cls.train_split)
        train_images = train_set.images
        targets = train_set.points if getattr(cls, "supervised", False) else None
        subsample = EVAL_SUBSAMPLE.get(profile, 1)
        evaluate = learning_curve_evaluator(data, subsample=subsample) if cfg.eval_every else None
        data_info = {"dataset": "mtfl80", "root": str(data.root), "train_split": cls.train_split,
                     "n_train": len(train_images), "regressor_split": "regressor_train", "test_splits": list(TEST_SPLITS),
                     "eval_subsample": subsample}
    else:
        train_images, targets, evaluate = mnist_training_images(), None, None
        data_info = {"dataset": "mnist", "n_train": len(train_images), "note": "no annotated points: no protocol metrics"}
    started = time.perf_counter()
    result = train(model, train_images, cfg, run_dir, device, evaluate=evaluate,
                   identity=run_identity(method, profile, config, dataset), progress=progress, targets=targets,
                   meta={"git_commit": commit})
    if int(os.environ.get("RANK", "0")) != 0:
        return {}
    eval_start = time.perf_counter()
    metrics = evaluate_method(model, data, options, few_shot, subsample) if dataset == "mtfl80" else {}
    record = {
        "method": method,
        "profile": profile,
        "config": config,
        "git_commit": commit,
        "device": describe_device(device),
        "wall_time_s": round(result.wall_time_s, 1),
        "data": data_info,
        "metrics": metrics,
        "evaluation": evaluation,
        "history": result.history,
        "run_name": name,
        "created": now_iso(),
        "eval_time_s": round(time.perf_counter() - eval_start, 1),
        "session_time_s": round(time.perf_counter() - started, 1),
        "resumed_from_step": result.resumed_from,
        "steps": result.steps,
    }
    write_json_atomic(record_path, record)
    record["_run_dir"] = str(run_dir)
    return record


def evaluate_method(model, data: MTFL80, options: RegressionOptions = RegressionOptions(),
                    few_shot: dict | None = None, subsample: int = 1) -> dict:
    """The protocol's metrics for a trained method (its own ``evaluate`` if it defines one), on
    every ``subsample``-th image of each split (1: all; the smoke profile uses 8)."""
    if hasattr(model, "evaluate"):
        return model.evaluate(data, options, subsample)
    test_sets = {name: data.split(name, every=subsample) for name in TEST_SPLITS}
    few_shot = few_shot or {}
    sizes = [n for n in few_shot.get("sizes", ()) if n is None or n * subsample <= len(data.splits["regressor_train"])]
    return evaluate_detector(model.detect, data.split("regressor_train", every=subsample), test_sets, options,
                             consistency_limit=1000 // subsample, few_shot_sizes=sizes,
                             few_shot_repeats=few_shot.get("repeats", 10)).as_dict()


def kept_checkpoints(record: dict) -> list[tuple[int, Path]]:
    """(step, path) of the checkpoint copies a run kept (``train.keep_every``), in step order."""
    run_dir = Path(record["_run_dir"])
    return sorted((int(p.stem.split("-")[1]), p) for p in run_dir.glob("checkpoint-*.pt"))


def load_trained(record: dict, device: torch.device | None = None, step: int | None = None):
    """Rebuild the method of a run record and load its final checkpoint (or the kept copy at
    ``step``), in eval mode."""
    run_dir = Path(record["_run_dir"])
    ckpt = run_dir / ("checkpoint.pt" if step is None else f"checkpoint-{step:07d}.pt")
    if not ckpt.exists():
        raise FileNotFoundError(f"{ckpt} is missing: committed reference records carry no weights; "
                                f"rerun the experiment with lmcore.training.run_method")
    model = build_method(record["method"], record["config"])
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    model.to(device or select_device())
    model.eval()
    return model


def checkpoint_history(record: dict) -> list[dict]:
    return record.get("history", [])


def load_references(method: str, root: Path = RESULTS_DIR) -> list[dict]:
    """The committed reference run records of ``method`` (``results/<method>/*.json``), sorted by name."""
    folder = root / method
    if not folder.is_dir():
        return []
    return [read_record(p) for p in sorted(folder.glob("*.json"))]


def publish_reference(record: dict, root: Path = RESULTS_DIR) -> Path:
    """Copy a run record (no checkpoint) into ``results/<method>/<run name>.json``."""
    clean = {k: v for k, v in record.items() if not k.startswith("_")}
    path = root / record["method"] / f"{record['run_name']}.json"
    write_json_atomic(path, clean)
    return path
