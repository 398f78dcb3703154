"""Command line: train one method in one profile and print where its record is.

    python -m lmcore.train fse --profile cpu --name k30 --set method.num_landmarks=30

Several GPUs: launch the same command with PyTorch's own launcher, e.g.
``torchrun --nproc_per_node 4 -m lmcore.train zhang --profile paper``. The loop then wraps the
model in DistributedDataParallel, every rank draws its own batches, and rank 0 alone writes
checkpoints, evaluates and writes the record.
"""
from __future__ import annotations

import argparse
import json
import sys

from .methods import REGISTRY
from .profiles import PROFILES


def parse_assignment(text: str) -> dict:
    """``a.b=value`` -> ``{"a": {"b": value}}`` with value parsed as JSON where possible."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got '{text}'")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    out: dict = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def main(argv=None) -> int:
    from .methods.base import deep_update
    from .training import publish_reference, run_method

    parser = argparse.ArgumentParser(prog="python -m lmcore.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("method", choices=sorted(REGISTRY))
    parser.add_argument("--profile", choices=PROFILES, default=None, help="default: $LMBOOK_PROFILE, else by hardware")
    parser.add_argument("--name", default="default", help="run name (folder under runs/<profile>/<method>/)")
    parser.add_argument("--set", dest="assignments", action="append", type=parse_assignment, default=[],
                        help="override a config value, e.g. method.num_landmarks=30 or train.steps=500")
    parser.add_argument("--force", action="store_true", help="retrain even if a finished run exists")
    parser.add_argument("--publish", action="store_true", help="copy the record to results/<method>/<name>.json")
    args = parser.parse_args(argv)
    overrides: dict = {}
    for assignment in args.assignments:
        overrides = deep_update(overrides, assignment)
    record = run_method(args.method, args.profile, args.name, overrides, force=args.force or None)
    if not record:  # a non-zero rank under torchrun
        return 0
    summary = {split: round(v["mean"], 2) for split, v in record["metrics"]["forward"].items()}
    print(f"{args.method}/{args.name} [{record['profile']}] forward error % IOD: {summary}; "
          f"trained {record['wall_time_s']} s on {record['device']['name']}; record: {record['_run_dir']}/record.json")
    if args.publish:
        print(f"published {publish_reference(record)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
