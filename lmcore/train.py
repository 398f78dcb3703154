"""Command line: train one method in one profile and print where its record is.

    python -m lmcore.train fse --profile cpu --name k30 --set method.num_landmarks=30

Every ``--set`` key must exist in the method's config (``python -m lmcore.train fse --show``
prints it) and every value must have its type: a typo or an impossible value ends with one
line saying what is wrong and exit code 2, before anything is read or trained.

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

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        print(f"python -m lmcore.train: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)


def main(argv=None) -> int:
    from .config import deep_update, parse_assignment
    from .errors import ConfigError, LmbookError

    parser = _Parser(prog="python -m lmcore.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("method", choices=sorted(REGISTRY))
    parser.add_argument("--profile", choices=PROFILES, default=None, help="default: $LMBOOK_PROFILE, else by hardware")
    parser.add_argument("--name", default="default", help="run name (folder under runs/<profile>/<method>/)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. method.num_landmarks=30 or train.steps=500")
    parser.add_argument("--force", action="store_true", help="retrain even if a finished run exists")
    parser.add_argument("--publish", action="store_true", help="copy the record to results/<method>/<name>.json")
    parser.add_argument("--show", action="store_true", help="print the resolved config and exit")
    args = parser.parse_args(argv)
    try:
        from .profiles import resolve_profile
        from .training import publish_reference, resolve_config, run_method
        from .training.runs import check_run_name

        overrides: dict = {}
        for text in args.assignments:
            overrides = deep_update(overrides, parse_assignment(text))
        profile = resolve_profile(args.profile)
        check_run_name(args.name)
        config = resolve_config(args.method, profile, overrides)
        if args.show:
            print(json.dumps(config, indent=1))
            return 0
        record = run_method(args.method, profile, args.name, overrides, force=args.force or None)
        if not record:  # a non-zero rank under torchrun
            return 0
        summary = {split: round(v["mean"], 2) for split, v in record["metrics"].get("forward", {}).items()}
        print(f"{args.method}/{args.name} [{record.profile}] forward error % IOD: {summary or 'none (no face labels)'}; "
              f"trained {record['wall_time_s']} s on {record['device']['name']}; record: {record.path}")
        if args.publish:
            print(f"published {publish_reference(record)}")
        return 0
    except ConfigError as exc:
        print(f"python -m lmcore.train: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except LmbookError as exc:
        print(f"python -m lmcore.train: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("python -m lmcore.train: interrupted; the last checkpoint is kept and the run resumes from it "
              "when started again", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
