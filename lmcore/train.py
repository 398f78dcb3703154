"""Command line: train one method in one profile and print where its record is.

    python -m lmcore.train fse --profile cpu --name k30 --set method.num_landmarks=30
    python -m lmcore.train --from-record results/zhang/k10.json   # a committed reference, again

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

from .cli import OneLineParser, lmbook_error, user_error
from .methods import REGISTRY
from .profiles import PROFILES
from .train_help import duration, epilog, misplaced_key, settings_lines

PROG = "python -m lmcore.train"


def refuse_publishing_uncommitted(method: str, source: str | None = None) -> None:
    """Raise :class:`~lmcore.training.PublishRefused` when the code that trains or scores a run of
    ``method`` on ``source`` differs from git's ``HEAD`` (or git cannot tell): a published
    reference must name its code."""
    from .training import PublishRefused
    from .training.code_identity import code_files, dirty_files, evaluation_manifest

    closure = sorted(set(code_files(method, source=source)) | set(evaluation_manifest(method, source)["files"]))
    changed = dirty_files(files=closure)
    if changed is None:
        raise PublishRefused("--publish needs a git checkout of lmbook (a reference names the commit that made it)")
    if changed:
        raise PublishRefused(f"--publish refused before training: {method} imports uncommitted code "
                             f"({', '.join(changed[:6])}{' ...' if len(changed) > 6 else ''}); commit it first")


def summary_line(record) -> str:
    """One readable line about a finished run: trained or reused, errors per test split, steps,
    time, device, and where its record is."""
    from .paths import display_path

    forward = record["metrics"].get("forward", {})
    score = None if forward else record.tuning_score()
    errors = ("forward error % IOD: " + ", ".join(f"{split} {v['mean']:.2f}" for split, v in forward.items()) if forward
              else f"{score[0]}: {score[1]:.2f}" if score else
              ", ".join(f"{k} {v:.2f}" for k, v in record["metrics"].items() if isinstance(v, (int, float)))
              or "no score (no labels to score it by)")
    took = duration(record["wall_time_s"])
    trained = (f"reused the finished run ({record.get('steps')} steps, trained in {took} on "
               if getattr(record, "reused", False) else f"trained {record.get('steps')} steps in {took} on ")
    return (f"{record.method}/{record.run_name} [{record.profile}]: {trained}{record['device'].get('name')}"
            f"{')' if getattr(record, 'reused', False) else ''}; {errors}; record: "
            f"{display_path(record.path)}")


def main(argv=None) -> int:
    from .config import deep_update, parse_assignment
    from .errors import ConfigError, LmbookError

    parser = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0], epilog=epilog(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("method", nargs="?", choices=sorted(REGISTRY), metavar="METHOD",
                        help="the method to train (listed below); omitted with --from-record")
    parser.add_argument("--from-record", metavar="RECORD", help="train the config of a run record (e.g. a committed "
                        "reference results/<method>/<run>.json) again: its method, profile, name and settings, "
                        "then any --set on top")
    parser.add_argument("--profile", choices=PROFILES, default=None, help="default: $LMBOOK_PROFILE, else by hardware")
    parser.add_argument("--name", default=None, help="run name (its folder: runs/<profile>/<method>/NAME-<identity hash>); "
                        "default: 'default'")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. method.num_landmarks=30 or train.steps=500")
    parser.add_argument("--init-from", metavar="MODEL", help="start from a committed reference's weights "
                        "(method/run of the model zoo, e.g. jakab/k10) with a fresh optimiser: train.init_from")
    parser.add_argument("--force", action="store_true", help="retrain even if a finished run exists")
    parser.add_argument("--publish", action="store_true", help="copy the record to results/<method>/<name>.json, its "
                        "weights to the zoo beside it (never a smoke run)")
    parser.add_argument("--replace-profile", action="store_true", help="with --publish: replace a reference of "
                        "another profile (refused otherwise)")
    parser.add_argument("--show", action="store_true", help="print every setting with its value and allowed range, "
                        "and exit")
    parser.add_argument("--json", action="store_true", help="with --show: the resolved config as JSON instead")
    args = parser.parse_args(argv)
    try:
        from .env import check_environment
        from .env import profile as env_profile
        from .paths import display_path
        from .profiles import select_device
        from .spec import RunSpec
        from .training.runs import run_spec

        check_environment()  # every LMBOOK_* variable and torchrun's, before anything is read or trained
        select_device()  # a device this machine lacks ($LMBOOK_DEVICE=cuda without a GPU)
        overrides: dict = {}
        if args.from_record:
            if args.method:
                raise ConfigError("give either a method or --from-record, not both (the record names its method)")
            from .reproduce import record_overrides
            from .training.run_record import RunRecord

            try:
                record = RunRecord.from_file(args.from_record)
            except FileNotFoundError:
                raise ConfigError(f"--from-record: no such file: {args.from_record}") from None
            except IsADirectoryError:
                raise ConfigError(f"--from-record: {args.from_record} is a folder; give a record file such as "
                                  "results/fse/k10.json") from None
            overrides = record_overrides(record)
            from .reproduce import predated_settings

            predated = predated_settings(record)
            if predated:
                print(f"python -m lmcore.train: note: {args.from_record} predates {', '.join(predated)}: they take "
                      f"today's defaults (check out {record['git_commit'][:10]} for the very run)", file=sys.stderr)
            args.method = record.method
            args.profile = args.profile or record.profile
            args.name = args.name or record.run_name
        elif not args.method:
            raise ConfigError("name a method (" + ", ".join(sorted(REGISTRY)) + ") or give --from-record RECORD")
        args.name = args.name or "default"
        if args.profile is None and env_profile() == "reference":  # the book's profile: its references' settings
            args.profile = "cpu"
            print(f"{PROG}: note: LMBOOK_PROFILE=reference builds the book from committed references, which were "
                  "trained in the cpu profile: training in cpu (--profile chooses another)", file=sys.stderr)
        if args.init_from:
            overrides = deep_update(overrides, {"train": {"init_from": args.init_from}})
        for text in args.assignments:
            if "." not in text.split("=", 1)[0]:  # a key outside every group: say which key it may mean
                meant = misplaced_key(text, RunSpec.resolve(args.method, args.profile, args.name, overrides).config)
                if meant:
                    raise ConfigError(f"--set {text}: no setting '{text.split('=', 1)[0]}'; did you mean {meant}?")
            overrides = deep_update(overrides, parse_assignment(text))
        spec = RunSpec.resolve(args.method, args.profile, args.name, overrides)  # every check, parents' included
        if args.show and args.json:
            print(json.dumps(spec.config, indent=1))
            return 0
        if args.show:
            print(f"# {args.method} in the {spec.profile} profile: key = value  # allowed range")
            print("\n".join(settings_lines(args.method, spec.config)))
            return 0
        if args.publish:  # refused before anything trains: a reference must name committed code
            refuse_publishing_uncommitted(args.method, spec.config["data"]["source"])
            if spec.profile == "smoke":
                raise ConfigError("--publish: smoke runs are never published (seconds of training, numbers "
                                  "meaningless); train in the cpu or paper profile")
        if args.replace_profile and not args.publish:
            raise ConfigError("--replace-profile goes with --publish")
        record = run_spec(spec, force=args.force or None)
        if not record:  # a non-zero rank under torchrun
            return 0
        print(summary_line(record))
        if args.publish:
            from .zoo_export import check_summary, publish

            published, weights = publish(record, replace_profile=args.replace_profile)
            print(f"published {display_path(published)}")
            if weights:
                print(f"published {display_path(published.with_suffix('.safetensors'))} ({weights['dtype']}, "
                      f"{weights['bytes'] / 1e6:.2f} MB; {check_summary(weights)})")
        return 0
    except ConfigError as exc:
        return user_error(PROG, exc)
    except LmbookError as exc:
        return lmbook_error(PROG, exc)
    except OSError as exc:
        # A full disk or quota, a read-only file system or a refused write: one line, no traceback.
        # Checkpoints and records go to a temp file that is renamed (lmcore.files.atomic_writer), so the
        # previous checkpoint is whole and the same command resumes from it.
        import errno

        if exc.errno in (errno.EISDIR, errno.ENOTDIR):  # e.g. a folder where a checkpoint or record belongs
            kind = "a folder where lmbook expects a file" if exc.errno == errno.EISDIR else "not a folder"
            print(f"{PROG}: error: {exc.filename} is {kind}: move it away and run the same command again",
                  file=sys.stderr)
            return 1
        full = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
        if exc.errno not in full | {errno.EROFS, errno.EACCES, errno.EPERM}:
            raise
        from .paths import runs_root

        where = exc.filename or f"a file (the error names none; runs are written under {runs_root()})"
        if exc.errno in full:
            why = "no space left on the device" if exc.errno == errno.ENOSPC else "disk quota exceeded"
            problem = f"{why} writing {where}"
        elif exc.errno == errno.EROFS:
            problem = f"cannot write {where}: the file system is read-only"
        else:
            problem = f"permission denied: {where}"
        fix = "free some space" if exc.errno in full else "make it writable (or set LMBOOK_RUNS to a writable folder)"
        print(f"python -m lmcore.train: error: {problem}; the previous checkpoint is whole (files are written to "
              f"a temp file and renamed): {fix} and run the same command again to resume", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("python -m lmcore.train: interrupted; the last checkpoint is kept and the run resumes from it "
              "when started again", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
