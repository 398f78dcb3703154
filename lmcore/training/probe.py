"""Attestation probes: a few training steps of a run's config whose weights fingerprint what its
code computes (:mod:`lmcore.training.attestation` says when they are taken and compared).

A probe builds the run's method from its config and seed, with its parent runs freshly
initialised from their own seeds (each parent is attested by its own probes) and without the
``train.init_from`` weights, trains it for ``steps`` steps through the loop on one CPU with
``threads`` threads, and returns the sha256 of its weights. It needs nothing but the code and the
data, so the same request can be run under today's code and under the code of the commit that
trained a reference: equal digests mean the two compute the same thing on that run.

This file is also a script that runs under the code of an older commit (it imports nothing of the
package but what every version since the first keyed run records, 2026-11-24, has:
``build_method``, ``get_method``, ``get_source``, the loop's ``train`` with its ``targets`` and
``pairs``, and a method's ``training_targets`` and ``trains_on_pairs``)::

    python lmcore/training/probe.py TREE_ROOT < requests.json > results.json

where ``TREE_ROOT`` holds the ``lmcore`` package to probe and each request is
``{"method", "config", "parents": {role: {"method", "config", "parents"}}, "steps", "threads"}``.
"""
from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path


def weights_sha256(module) -> str:
    """sha256 over a module's state dict: each tensor's name, dtype, shape and bytes, by name."""
    import torch

    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{key}|{value.dtype}|{tuple(value.shape)}\n".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _build(method: str, config: dict, parents: dict):
    """The method of ``config`` from its seed with freshly initialised parents, as this version of
    lmcore builds a run (``trainee.build_trainee`` where it exists)."""
    parent_models = {role: _build(p["method"], p["config"], p.get("parents") or {}).eval() for role, p in parents.items()}
    try:
        from lmcore.training.trainee import build_trainee
    except ImportError:  # code from before trainee.py: the run API built runs the same way
        from lmcore.methods import build_method

        model = build_method(method, config)
        if parent_models:
            model.adopt_parents(parent_models)
        return model
    return build_trainee(method, config, parent_models, init_weights=False)


def _train(model, method: str, config: dict, run_dir: Path, steps: int):
    """Train ``model`` for at most ``steps`` steps as this version of lmcore trains a run."""
    import torch

    try:
        from lmcore.training.trainee import train_trainee
    except ImportError:  # code from before trainee.py: the run API's own call of the loop
        from lmcore.data.sources import get_source
        from lmcore.methods import get_method
        from lmcore.training import loop

        cls = get_method(method)
        train_set = get_source(config["data"]["source"]).split(config["data"]["split"])
        return loop.train(model, train_set.images, loop.TrainConfig.from_dict(config["train"]), run_dir,
                          torch.device("cpu"), progress=False, stop_after=steps, targets=cls.training_targets(train_set),
                          pairs=cls.trains_on_pairs)
    result, _ = train_trainee(model, method, config, run_dir, torch.device("cpu"), progress=False, stop_after=steps)
    return result


def run_probe(request: dict) -> dict:
    """One probe (see the module docstring): ``{"steps": trained, "weights_sha256": ...}``."""
    import torch

    torch.set_num_threads(int(request["threads"]))
    with tempfile.TemporaryDirectory(prefix="lmbook-probe-") as folder:
        model = _build(request["method"], request["config"], request.get("parents") or {})
        result = _train(model, request["method"], request["config"], Path(folder), int(request["steps"]))
        return {"steps": int(result.steps), "weights_sha256": weights_sha256(model)}


def main() -> int:
    """Run the requests on stdin under the ``lmcore`` of ``sys.argv[1]``; results on stdout."""
    tree = Path(sys.argv[1]).resolve()
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [str(tree)] + [p for p in sys.path if p not in (here, "")]
    import lmcore  # noqa: F401  (the tree's own set-up, e.g. its torchvision fallback)

    requests = json.load(sys.stdin)
    answer, sys.stdout = sys.stdout, sys.stderr  # what an older lmcore prints goes to stderr: stdout is the JSON
    try:
        results = [run_probe(r) for r in requests]
    finally:
        sys.stdout = answer
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
