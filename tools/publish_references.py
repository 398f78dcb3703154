"""Commit-ready copies of finished run records as the chapters' reference runs.

    python tools/publish_references.py --profile cpu fse:k10 fse:k30 zhang:k10 ...

For each ``method:run`` the finished run of exactly that name (``runs/<profile>/<method>/<run>-<identity>/``)
whose identity is the current one (the code, data and parents a run of its config would have
today) is copied (record only: no checkpoint, no data) to ``results/<method>/<run>.json``, which
the chapters display with its provenance. Where no run of that name is current, or several runs
of that name are (other configs), the candidates are listed and ``method:run@<identity>`` chooses
one. A record trained from uncommitted ``lmcore`` code, or with no known git commit, is refused
(:func:`lmcore.zoo_export.publish`, which ``python -m lmcore.train --publish`` uses too: checked whole
before anything is written, never a smoke run, never over a reference of another profile unless
``--replace-profile``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lmcore.errors import LmbookError  # noqa: E402
from lmcore.paths import display_path, runs_root  # noqa: E402
from lmcore.training import RunRecord, config_hash, find_run  # noqa: E402
from lmcore.training.runs import check_run_name, run_identity  # noqa: E402
from lmcore.zoo_export import publish  # noqa: E402


def is_current(record: RunRecord) -> bool:
    """Whether the record's identity is the one a run of its config would have today."""
    parents = {}
    for role, p in record.config.get("parents", {}).items():
        parent = find_run(p["method"], record.profile, p["name"], p.get("overrides") or {}, evaluated=False)
        if parent is None:
            return False
        parents[role] = parent
    return record.get("identity") == config_hash(run_identity(record.method, record.profile, record.config, parents))


def candidates(method: str, name: str, profile: str) -> list[RunRecord]:
    """Finished runs named exactly ``name`` (other names that start with it, e.g. ``name-long``, excluded)."""
    found = []
    for path in sorted((runs_root() / profile / method).glob(f"{name}-*/record.json")):
        try:
            record = RunRecord.from_file(path, run_dir=path.parent)
        except LmbookError as exc:
            print(f"skipped {display_path(path)}: {exc}", file=sys.stderr)
            continue
        if record.run_name == name and path.parent.name == f"{name}-{record.get('identity')}":
            found.append(record)
    return found


def choose(item: str, profile: str) -> RunRecord:
    spec, _, identity = item.partition("@")
    method, _, name = spec.partition(":")
    check_run_name(name)
    found = candidates(method, name, profile)
    if identity:
        chosen = [r for r in found if r.get("identity") == identity]
    else:
        chosen = [r for r in found if is_current(r)]
    if len(chosen) == 1:
        return chosen[0]
    listing = "; ".join(f"@{r.get('identity')} ({r.get('created', '?')[:16]}, {'current' if is_current(r) else 'stale'})"
                        for r in found) or "none"
    why = "no finished run of that identity" if identity else (
        "no finished run of that name is current" if not chosen else "several current runs have that name")
    raise LmbookError(f"{item}: {why} in profile {profile} under {display_path(runs_root())}; runs named '{name}': "
                      f"{listing}; choose one as {method}:{name}@<identity>")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="method:run_name, or method:run_name@identity")
    parser.add_argument("--profile", required=True, choices=("cpu", "paper"),
                        help="the profile of the runs (smoke runs are never published)")
    parser.add_argument("--replace-profile", action="store_true",
                        help="replace a reference of another profile (refused otherwise)")
    args = parser.parse_args(argv)
    for item in args.runs:
        if ":" not in item:
            print(f"expected method:run_name, got '{item}'", file=sys.stderr)
            return 2
        try:
            record = choose(item, args.profile)
            path, weights = publish(record, replace_profile=args.replace_profile)  # checked whole before writing
        except LmbookError as exc:
            print(f"{exc}", file=sys.stderr)
            return 1
        forward = {k: round(v["mean"], 2) for k, v in record["metrics"].get("forward", {}).items()}
        print(f"{item}: {path.relative_to(ROOT)}  forward {forward}  ({record['wall_time_s'] / 60:.1f} min, {record.profile})"
              + (f"; weights {weights['dtype']}, {weights['bytes'] / 1e6:.2f} MB" if weights else ""))
    from lmcore.book.leaderboard import write_leaderboard

    for path in write_leaderboard():  # the leaderboard follows its records
        print(f"rewrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
