"""A process that times training steps under one version of lmcore, for ``python -m lmcore.bench
--against COMMIT``: the old code and today's each in a worker of their own, asked in turn, so that
their steps are timed on the same machine under the same load, minutes apart at most.

This file is also a script that runs under the code of an older commit (it imports nothing of the
package but :func:`lmcore.training.bench.run_step_cost` with its ``trained_parents`` argument,
which every version since commit 8532bec, 2026-11-23, has)::

    python lmcore/training/step_worker.py TREE_ROOT

where ``TREE_ROOT`` holds the ``lmcore`` package to time. It reads one request a line on stdin,
``{"method", "profile", "overrides", "steps", "warmup", "n_images", "threads"}``, and answers each
with one line on stdout: the request's :func:`~lmcore.training.bench.step_cost` (``{"error": ...}``
when it failed). It ends when stdin closes.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def answer(request: dict) -> dict:
    """One request under the ``lmcore`` this process imports."""
    import torch

    from lmcore.training.bench import run_step_cost

    torch.set_num_threads(int(request["threads"]))
    torch.manual_seed(0)
    return run_step_cost(request["method"], request["profile"], request.get("overrides") or {},
                         steps=int(request["steps"]), warmup=int(request["warmup"]),
                         n_images=int(request["n_images"]), device=torch.device("cpu"), trained_parents=False)


def main() -> int:
    tree = Path(sys.argv[1]).resolve()
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [str(tree)] + [p for p in sys.path if p not in (here, "")]
    import lmcore  # noqa: F401  (the tree's own set-up, e.g. its torchvision fallback)

    out = sys.stdout
    sys.stdout = sys.stderr  # whatever the timed code prints must not end up in the answers
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            result = answer(json.loads(line))
        except Exception as exc:  # a failing case is an answer, not the end of the worker
            result = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(result) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
