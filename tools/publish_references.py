"""Commit-ready copies of finished run records as the chapters' reference runs.

    python tools/publish_references.py --profile cpu fse:k10 fse:k30 zhang:k10 ...

For each ``method:run`` the newest ``runs/<profile>/<method>/<run>-*/record.json`` is copied (record
only: no checkpoint, no data) to ``results/<method>/<run>.json``, which the chapters display with
its provenance. A record trained from uncommitted ``lmcore`` code, or with no known git commit, is
refused (:func:`lmcore.training.publish_reference`, which ``python -m lmcore.train --publish`` uses
too).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lmcore.errors import LmbookError  # noqa: E402
from lmcore.paths import runs_root  # noqa: E402
from lmcore.training import RunRecord, publish_reference  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="method:run_name")
    parser.add_argument("--profile", required=True)
    args = parser.parse_args(argv)
    for item in args.runs:
        if ":" not in item:
            print(f"expected method:run_name, got '{item}'", file=sys.stderr)
            return 2
        method, name = item.split(":", 1)
        candidates = sorted((runs_root() / args.profile / method).glob(f"{name}-*/record.json"),
                            key=lambda p: p.stat().st_mtime)
        if not candidates:
            print(f"no finished run {item} in profile {args.profile} under {runs_root()}", file=sys.stderr)
            return 1
        try:
            record = RunRecord.from_file(candidates[-1], run_dir=candidates[-1].parent)
            path = publish_reference(record)
        except LmbookError as exc:
            print(f"{item}: {exc}", file=sys.stderr)
            return 1
        forward = {k: round(v["mean"], 2) for k, v in record["metrics"].get("forward", {}).items()}
        print(f"{item}: {path.relative_to(ROOT)}  forward {forward}  ({record['wall_time_s'] / 60:.1f} min, {record.profile})")
    from lmcore.leaderboard import write_leaderboard

    for path in write_leaderboard():  # the leaderboard follows its records
        print(f"rewrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
