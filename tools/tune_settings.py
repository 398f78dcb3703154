"""Train a method's tuning sweep and commit-ready copies of its records.

    python tools/tune_settings.py fse zhang jakab [--profile cpu] [--threads 1] [--publish] [--only TEXT]

Each method's ``budgets[profile].variants["tuning"]`` (``{label: overrides}``) is trained (or
reused) with :func:`lmcore.training.run_variants` as runs ``tune-<label slug>`` and printed with
its **tune_val** forward error (regressor fitted on tune_fit: MTFL-80's README), the number the
chapter's settings are chosen by (for the supervised pose core, its PCK@0.2 on LSPET val, its own
validation split); the test errors are printed too but choose nothing. With
``--publish`` the records go to ``results/tuning/<method>/`` (refused for uncommitted ``lmcore``
code, like every reference), where the chapters show them as their tuning tables.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lmcore.errors import LmbookError  # noqa: E402
from lmcore.paths import RESULTS_DIR  # noqa: E402
from lmcore.experiments import method_settings

TUNING_ROOT = RESULTS_DIR / "tuning"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("methods", nargs="+")
    parser.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "paper"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    parser.add_argument("--publish", action="store_true", help="copy the records to results/tuning/<method>/")
    parser.add_argument("--only", default="", help="train only the labels containing this text")
    args = parser.parse_args(argv)
    import torch

    from lmcore.train import refuse_publishing_uncommitted
    from lmcore.training import RunRecord, publish_reference, run_variants

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        for method in args.methods:
            sweep = method_settings(method).budget(args.profile).variant("tuning")
            if not sweep:
                print(f"{method}: no tuning sweep in profile {args.profile}", file=sys.stderr)
                return 1
            chosen = {label: change for label, change in sweep.items() if args.only in label}
            if not chosen:
                print(f"{method}: no setting's label contains '{args.only}' (labels: {', '.join(sweep)})", file=sys.stderr)
                return 1
            if args.publish:
                refuse_publishing_uncommitted(method)  # before anything trains
                for path in sorted((TUNING_ROOT / method).glob("*.json")):  # a setting no longer in the sweep
                    if RunRecord.from_file(path, check_digest=False).get("tuning_label") not in sweep:
                        path.unlink()
                        print(f"removed {path.relative_to(ROOT)}: its setting is no longer in the sweep", flush=True)
            sweep = chosen
            for label, change in sweep.items():  # one at a time: each is published as soon as it is done
                record = run_variants(method, args.profile, {label: change}, prefix="tune", progress=False,
                                      base=method_settings(method).tuning_config(args.profile))[label]
                record["tuning_label"] = label  # the chapters' tuning tables show it
                where = publish_reference(record, TUNING_ROOT) if args.publish else None
                tests = {k: round(v["mean"], 2) for k, v in record["metrics"].get("forward", {}).items()}
                name, value, _ = record.tuning_score()
                print(f"{method} | {label}: {name} {value:.2f}  (tests, not used: {tests})  "
                      f"{record['wall_time_s'] / 60:.1f} min{'  -> ' + str(where.relative_to(ROOT)) if where else ''}",
                      flush=True)
    except LmbookError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
