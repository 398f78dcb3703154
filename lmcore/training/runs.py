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
from .loop import TrainConfig, train
from .records import config_hash, describe_device, git_commit, now_iso, read_record, write_json_atomic

TEST_SPLITS = ("test_mtfl", "test_aflw")


def run_directory(method: str, profile: str, name: str, config: dict) -> Path:
    identity = {"method": method, "profile": profile, "config": config}
    return runs_root() / profile / method / f"{name}-{config_hash(identity)}"


def resolve_config(method: str, profile: str, overrides: dict | None = None) -> dict:
    cls = get_method(method)
    return deep_update(cls.default_config(profile), overrides)


def learning_curve_evaluator(data: MTFL80, n_train: int = 2000):
    """Cheap forward error on test_mtfl for the learning curve: the regressor is fitted on
    ``n_train`` labelled images spread evenly over ``regressor_train`` (which is sorted by path,
    so its first rows would all be LFW faces)."""
    names = data.splits["regressor_train"]
    stride = max(1, len(names) // n_train)
    train_set = data.by_names(names[::stride][:n_train], "regressor_train (learning curve subset)")
    test_set = data.split("test_mtfl")

    def evaluate(method) -> dict:
        with torch.no_grad():
            tr = detect_all(method.detect, train_set.images)
            te = detect_all(method.detect, test_set.images)
        result = forward_error(tr, train_set.points, te, test_set.points)
        return {"forward_test_mtfl": result["mean"]}

    return evaluate


def run_method(method: str, profile: str | None = None, name: str = "default", overrides: dict | None = None,
               data: MTFL80 | None = None, force: bool | None = None, progress: bool | None = None,
               options: RegressionOptions = RegressionOptions()) -> dict:
    """Train (or reuse) a run and return its record (a dict, see :mod:`lmcore.training.records`).

    ``overrides`` are merged into the profile's config (e.g. ``{"method": {"num_landmarks": 30}}``).
    The record's ``_run_dir`` says where its checkpoint is (:func:`load_trained` reloads it).
    """
    profile = resolve_profile(profile)
    config = resolve_config(method, profile, overrides)
    run_dir = run_directory(method, profile, name, config)
    record_path = run_dir / "record.json"
    commit = git_commit()
    if force is None:
        force = os.environ.get("LMBOOK_RETRAIN", "") not in ("", "0")
    if progress is None:  # executed notebooks (papermill) set LMBOOK_PROGRESS=0: no progress widgets saved
        progress = os.environ.get("LMBOOK_PROGRESS", "1") != "0"
    if record_path.exists() and not force:
        record = read_record(record_path)
        if record.get("git_commit") == commit:
            record["_run_dir"] = str(run_dir)
            return record
    if force and run_dir.exists():
        shutil.rmtree(run_dir)
    record_path.unlink(missing_ok=True)

    data = data or MTFL80()
    cls = get_method(method)
    model = build_method(method, config)
    device = select_device()
    cfg = TrainConfig.from_dict(config["train"])
    train_images = data.split(cls.train_split).images
    started = time.perf_counter()
    result = train(model, train_images, cfg, run_dir, device,
                   evaluate=learning_curve_evaluator(data) if cfg.eval_every else None,
                   identity={"method": method, "profile": profile, "config": config}, progress=progress,
                   targets=data.split(cls.train_split).points if getattr(cls, "supervised", False) else None)
    if int(os.environ.get("RANK", "0")) != 0:
        return {}
    eval_start = time.perf_counter()
    metrics = evaluate_method(model, data, options)
    record = {
        "method": method,
        "profile": profile,
        "config": config,
        "git_commit": commit,
        "device": describe_device(device),
        "wall_time_s": round(result.wall_time_s, 1),
        "data": {"dataset": "mtfl80", "root": str(data.root), "train_split": cls.train_split,
                 "n_train": len(train_images), "regressor_split": "regressor_train",
                 "test_splits": list(TEST_SPLITS)},
        "metrics": metrics,
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


def evaluate_method(model, data: MTFL80, options: RegressionOptions = RegressionOptions()) -> dict:
    """The protocol's metrics for a trained method (its own ``evaluate`` if it defines one)."""
    if hasattr(model, "evaluate"):
        return model.evaluate(data, options)
    test_sets = {name: data.split(name) for name in TEST_SPLITS}
    return evaluate_detector(model.detect, data.split("regressor_train"), test_sets, options).as_dict()


def load_trained(record: dict, device: torch.device | None = None):
    """Rebuild the method of a run record and load its final checkpoint (eval mode)."""
    run_dir = Path(record["_run_dir"])
    ckpt = run_dir / "checkpoint.pt"
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
