"""The convergence campaign: grow each lineage of :data:`lmcore.experiments.campaign.LINEAGES`,
one training at a time, each continuation published to the zoo so that the next one (in this
process or a later session) continues it.

    python tools/campaign.py status              # where each lineage stands, and what comes next
    python tools/campaign.py next                # train and publish the next continuation
    python tools/campaign.py run --hours 6       # `next` again and again, each in a process of its own

A continuation is a ``cpu`` run published as ``results/<method>/<lineage>-<n>.json`` with its
weights; the weights of the one it grew from are then removed from the zoo (its record stays: the
lineage's curve is read from the records, and the zoo holds the head of each lineage), so the
zoo's size cap holds however long a lineage grows. Each continuation runs in a process of its own,
so that it is keyed by, and records, the code committed when it starts.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lmcore.book.campaign import continuations, is_final, is_flat, tune_curve  # noqa: E402
from lmcore.errors import LmbookError  # noqa: E402
from lmcore.experiments.base import FLAT_POINTS, Lineage  # noqa: E402
from lmcore.experiments.campaign import LINEAGES  # noqa: E402
from lmcore.paths import RESULTS_DIR, display_path  # noqa: E402
from lmcore.zoo import WEIGHTS_SUFFIX  # noqa: E402


def state(lineage: Lineage, root: Path = RESULTS_DIR) -> dict:
    """Where a lineage stands: its continuations, hours, curve, and the next run to train
    (``{"name", "overrides", "why"}``) or None when it is done."""
    records = continuations(lineage, root)
    hours = sum(r["wall_time_s"] for r in records) / 3600
    curve = tune_curve(records)
    out = {"records": records, "hours": hours, "curve": curve, "flat": is_flat(curve), "next": None}
    if not records and lineage.start is None:
        out["next"] = {"name": lineage.continuation(0), "overrides": _seed_overrides(lineage), "why": "the seed run"}
        return out
    if records and is_final(records[-1]):
        return out  # done
    previous = f"{lineage.method}/{records[-1].run_name}" if records else lineage.start
    n = len([r for r in records if r.run_name != lineage.continuation(0)]) + 1
    final = out["flat"] or hours >= lineage.cap_hours
    why = ("flat: the last decayed continuation" if out["flat"] else f"cap of {lineage.cap_hours:g} h reached: "
           "the last decayed continuation") if final else f"still falling ({hours:.1f} of {lineage.cap_hours:g} h)"
    out["next"] = {"name": lineage.continuation(n), "overrides": lineage.continuation_overrides(previous, final),
                   "why": why, "previous": previous}
    return out


def _seed_overrides(lineage: Lineage) -> dict:
    from lmcore.config import deep_update

    return deep_update(lineage.seed, {"train": {"eval_every": lineage.eval_every}})


def first_unfinished(root: Path = RESULTS_DIR):
    """The lineage to grow next: of the first priority with an unfinished lineage, the one that has
    trained the fewest hours; ``(None, None)`` when every lineage is done."""
    unfinished = [(lineage, found) for lineage in LINEAGES if (found := state(lineage, root))["next"] is not None]
    if not unfinished:
        return None, None
    first = min(lineage.priority for lineage, _ in unfinished)
    return min(((l, f) for l, f in unfinished if l.priority == first), key=lambda pair: pair[1]["hours"])


def train_next(root: Path = RESULTS_DIR) -> int:
    """Train and publish the next continuation of the first lineage not done; remove the weights it
    grew from from the zoo (a continuation of this lineage only, never a headline reference)."""
    from lmcore.spec import RunSpec
    from lmcore.train import refuse_publishing_uncommitted, summary_line
    from lmcore.training.runs import run_spec
    from lmcore.zoo_export import publish

    lineage, found = first_unfinished(root)
    if lineage is None:
        print("campaign: every lineage is done")
        return 0
    step = found["next"]
    spec = RunSpec.resolve(lineage.method, "cpu", step["name"], step["overrides"])
    refuse_publishing_uncommitted(lineage.method, spec.config["data"]["source"])
    print(f"campaign: {lineage.method}/{step['name']} ({lineage.label}; {step['why']})", flush=True)
    record = run_spec(spec, progress=True)
    print(summary_line(record), flush=True)
    path, weights = publish(record, root=root)
    print(f"campaign: published {display_path(path)}" + (f" with {weights['dtype']} weights" if weights else ""), flush=True)
    previous = step.get("previous")
    if previous and previous.split("/", 1)[1].startswith(f"{lineage.name}-"):
        (root / f"{previous}{WEIGHTS_SUFFIX}").unlink(missing_ok=True)  # the head holds the lineage's weights
    return 0


def show_status(root: Path = RESULTS_DIR) -> None:
    for lineage in LINEAGES:
        found = state(lineage, root)
        last = ", ".join(f"{v:.2f}" for _, v in found["curve"][-FLAT_POINTS:]) or "-"
        steps = sum(int(r.steps or 0) for r in found["records"])
        nxt = found["next"]
        print(f"{lineage.method}/{lineage.name} [{lineage.label}]: {len(found['records'])} run(s), {steps} steps, "
              f"{found['hours']:.2f} h of {lineage.cap_hours:g}; tune_val (last {FLAT_POINTS}): {last}"
              f"{' (flat)' if found['flat'] else ''}; next: "
              + (f"{nxt['name']} ({nxt['why']})" if nxt else "done"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("status", "next", "run"))
    parser.add_argument("--hours", type=float, default=1.0, help="with run: start no continuation after this long")
    args = parser.parse_args(argv)
    try:
        if args.command == "status":
            show_status()
            return 0
        if args.command == "next":
            return train_next()
    except LmbookError as exc:
        print(f"campaign: {exc}", file=sys.stderr)
        return 1
    started = time.time()
    while time.time() - started < args.hours * 3600:
        if first_unfinished()[0] is None:
            print("campaign: every lineage is done")
            return 0
        code = subprocess.call([sys.executable, __file__, "next"], cwd=ROOT)
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
