"""Commit-ready copies of finished run records as the chapters' reference runs.

    python tools/publish_references.py --profile cpu fse:k10 fse:k30 zhang:k10 ...

For each ``method:run`` the newest ``runs/<profile>/<method>/<run>-*/record.json`` is copied (record
only: no checkpoint, no data) to ``results/<method>/<run>.json``, which the chapters display with
its provenance. Refuses records made from a dirty work tree unless ``--allow-dirty``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lmcore.paths import runs_root  # noqa: E402
from lmcore.training import publish_reference, read_record  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="method:run_name")
    parser.add_argument("--profile", required=True)
    parser.add_argument("--allow-dirty", action="store_true")
    args = parser.parse_args(argv)
    for item in args.runs:
        method, name = item.split(":", 1)
        candidates = sorted((runs_root() / args.profile / method).glob(f"{name}-*/record.json"),
                            key=lambda p: p.stat().st_mtime)
        if not candidates:
            print(f"no finished run {item} in profile {args.profile}", file=sys.stderr)
            return 1
        record = read_record(candidates[-1])
        record["_run_dir"] = str(candidates[-1].parent)
        if record["git_commit"].endswith("+dirty") and not args.allow_dirty:
            print(f"{candidates[-1]} was made from a dirty tree ({record['git_commit']}); commit first", file=sys.stderr)
            return 1
        path = publish_reference(record)
        forward = {k: round(v["mean"], 2) for k, v in record["metrics"].get("forward", {}).items()}
        print(f"{item}: {path.relative_to(ROOT)}  forward {forward}  ({record['wall_time_s'] / 60:.1f} min, {record['profile']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
