"""The convergence campaign as the book shows it: each lineage's curve, the paper's claims judged
on the longest-trained runs, and accuracy against compute for the whole field.

A lineage (:data:`lmcore.experiments.campaign.LINEAGES`) is a headline run grown continuation after
continuation (``tools/campaign.py``); its records are committed as ``results/<method>/<name>-<n>``
with the weights of its latest one. Compute is counted in **core-hours**: the training steps of a
run and of every run it started from, times the cost of one step measured by the benchmark
(``results/bench/cpu.json``: milliseconds per ``cpu``-profile step on two threads), times the two
cores it keeps busy; so a curve is priced by the step, whatever else the machine did meanwhile.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..evaluation import paired_difference_over_seeds
from ..experiments.base import FLAT_GAIN, FLAT_POINTS, Claim, Lineage
from ..experiments.campaign import LINEAGES
from ..methods.base import TUNE_CURVE_KEY
from ..paths import RESULTS_DIR
from ..training.run_record import RunRecord
from ..zoo import lineage as ancestors
from ..zoo import weights_path

BENCH_RECORD = RESULTS_DIR / "bench" / "cpu.json"
#: the budgets of the "which method for my budget" table, in core-hours
BUDGETS_H = {"10 min": 10 / 60, "1 h": 1.0, "8 h": 8.0}


# --------------------------------------------------------------------------- lineages


def continuations(lineage: Lineage, root: Path = RESULTS_DIR) -> list[RunRecord]:
    """A lineage's committed continuations in order (``<name>-0`` first where it has one)."""
    found = []
    for n in range(0, 10_000):
        path = Path(root) / lineage.method / f"{lineage.continuation(n)}.json"
        if not path.exists():
            if n == 0:
                continue
            break
        found.append(RunRecord.from_file(path))
    return found


def tune_curve(records: list) -> list[tuple[int, float]]:
    """``(step, tune_val error)`` of every learning-curve evaluation of ``records`` (in order), each
    counted after the steps of those before it."""
    curve, offset = [], 0
    for record in records:
        curve += [(offset + int(h["step"]), float(h[TUNE_CURVE_KEY])) for h in record.get("history", [])
                  if TUNE_CURVE_KEY in h]
        offset += int(record.get("steps") or 0)
    return curve


def is_flat(curve: list[tuple[int, float]]) -> bool:
    """Whether the last :data:`FLAT_POINTS` evaluations improve by less than :data:`FLAT_GAIN` points in all."""
    return len(curve) >= FLAT_POINTS and curve[-FLAT_POINTS][1] - curve[-1][1] < FLAT_GAIN


def is_final(record: dict) -> bool:
    """A continuation trained at the decayed learning rate (from its second step): its lineage's last."""
    train = record["config"]["train"]
    return bool(train.get("init_from")) and train.get("lr_milestones") == [1]


def lineage_of(name: str) -> Lineage | None:
    """The lineage that grows the zoo model ``name`` (its start, or its seed run ``<name>-0``)."""
    method, _, run = name.partition("/")
    return next((l for l in LINEAGES if l.method == method and (l.start == name or l.continuation(0) == run)), None)


def longest(name: str, root: Path = RESULTS_DIR) -> tuple[str, str]:
    """The zoo model that stands for ``name`` in a claim: its lineage's latest continuation with
    weights, or ``name`` itself; and where it stands (``converged``, ``still falling at N steps``)."""
    lineage = lineage_of(name)
    records = continuations(lineage, root) if lineage else []
    heads = [r for r in records if weights_path(f"{r.method}/{r.run_name}", root).exists()]
    if not heads:
        return name, "not grown yet"
    head = heads[-1]
    curve = tune_curve(records)
    state = "converged" if is_final(head) and is_flat(curve) else (
        "stopped at its cap" if is_final(head) else "still falling" if not is_flat(curve) else "flat, not yet decayed")
    return f"{head.method}/{head.run_name}", state


# --------------------------------------------------------------------------- compute


def step_costs(path: Path = BENCH_RECORD) -> dict[str, float]:
    """Core-seconds per ``cpu``-profile step of each method (two threads' step time, two cores),
    from the benchmark's record; a Sanchez mode under ``sanchez/<mode>``."""
    record = json.loads(Path(path).read_text())
    cores = int(record["device"].get("threads", 1))
    costs = {}
    for row in record["rows"]:
        if row.get("profile") != "cpu" or row.get("variant"):
            continue
        key = row["method"]
        mode = (row.get("overrides") or {}).get("method", {}).get("mode")
        key = f"{key}/{mode}" if mode else key
        costs.setdefault(key, row["step_ms"] / 1000 * cores)
    return costs


def record_core_hours(record: dict, costs: dict) -> float:
    """Core-hours of a run and of every run it started from (its zoo ancestors)."""
    total = 0.0
    for part in ancestors(record):
        mode = part["config"]["method"].get("mode")
        cost = costs.get(f"{part['method']}/{mode}", costs.get(part["method"]))
        total += int(part.get("steps") or 0) * (cost or 0.0) / 3600
    return total


# --------------------------------------------------------------------------- accuracy against compute


@dataclass
class FieldCurve:
    """One method's tune_val error against core-hours: its headline reference, then its lineage."""

    label: str
    method: str
    points: list  # [(core-hours, steps, tune_val error)]
    state: str


def field_curves(root: Path = RESULTS_DIR, costs: dict | None = None) -> list[FieldCurve]:
    """Every lineage's curve, priced by the benchmark's step costs, from its start's final tune_val
    error (the reference's own protocol) through each learning-curve evaluation of its
    continuations (the learning curve's: least squares on tune_fit faces)."""
    costs = costs if costs is not None else step_costs()
    curves = []
    for lineage in LINEAGES:
        records = continuations(lineage, root)
        points = []
        start = RunRecord.from_file(Path(root) / f"{lineage.start}.json") if lineage.start else None
        base_h = record_core_hours(start, costs) if start else 0.0
        base_steps = int((start.get("ancestor") or {}).get("lineage_steps", 0) + (start.steps or 0)) if start else 0
        if start and start.tune_error() is not None:
            points.append((base_h, base_steps, start.tune_error()))
        cost = costs.get(lineage.method, 0.0) / 3600
        points += [(base_h + step * cost, base_steps + step, value) for step, value in tune_curve(records)]
        state = "not grown yet" if not records else longest(f"{lineage.method}/{records[0].run_name}", root)[1]
        curves.append(FieldCurve(lineage.label or f"{lineage.method}/{lineage.name}", lineage.method, points, state))
    return curves


def budget_table(curves: list[FieldCurve], budgets: dict = BUDGETS_H) -> pd.DataFrame:
    """Which method for a budget: each budget's best tune_val error of each curve at or under it
    (the lowest point its lineage reached by then), and the best of all."""
    rows = []
    for label, hours in budgets.items():
        reached = {c.label: min((p[2] for p in c.points if p[0] <= hours), default=np.nan) for c in curves}
        best = min((k for k, v in reached.items() if not np.isnan(v)), key=reached.get, default="–")
        rows.append({"budget (core-hours)": label, **{k: ("–" if np.isnan(v) else round(v, 2)) for k, v in reached.items()},
                     "best": best})
    return pd.DataFrame(rows).set_index("budget (core-hours)")


def accuracy_compute_figure(curves: list[FieldCurve], budgets: dict = BUDGETS_H):
    """tune_val error against core-hours (log scale), one line per lineage, the budgets marked."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for curve in curves:
        if curve.points:
            hours, _, error = zip(*curve.points)
            ax.plot(hours, error, marker="o", markersize=3, label=f"{curve.label} ({curve.state})")
    for label, hours in budgets.items():
        ax.axvline(hours, color="0.8", linestyle=":")
        ax.text(hours, ax.get_ylim()[1], label, fontsize=8, va="top", ha="right", rotation=90, color="0.4")
    ax.set_xscale("log")
    ax.set_xlabel("training compute (core-hours: steps x the benchmark's step cost)")
    ax.set_ylabel("forward error on tune_val (% of IOD)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- claims


def claim_row(claim: Claim, per_face, root: Path = RESULTS_DIR) -> dict:
    """One claim judged: each side's longest-trained models (:func:`longest`), the paired difference
    of their per-face errors on the claim's split resampled over runs and faces
    (``per_face(zoo name, split) -> N``), and the verdict: **holds** / **does not hold** where the
    interval excludes zero and both sides converged, **undecided** otherwise (said why)."""
    better = [longest(name, root) for name in claim.better]
    worse = [longest(name, root) for name in claim.worse]
    a = np.stack([per_face(name, claim.split) for name, _ in better])
    b = np.stack([per_face(name, claim.split) for name, _ in worse])
    d = paired_difference_over_seeds(a, b)
    converged = all(state == "converged" for _, state in better + worse)
    lower = "holds" if d["high"] < 0 else "does not hold" if d["low"] > 0 else None
    if lower and converged:
        verdict = lower
    elif lower:
        verdict = f"undecided: {lower} at this budget, not converged"
    else:
        verdict = "undecided: within the spread"
    states = sorted({state for _, state in better + worse})
    return {"claim": claim.text, "paper": claim.paper, "runs": f"{', '.join(n for n, _ in better)} vs "
            f"{', '.join(n for n, _ in worse)}", "difference (points)": round(d["difference"], 2),
            "95 % interval": f"[{d['low']:.2f}, {d['high']:.2f}]", "training": "; ".join(states), "verdict": verdict}


def claims_table(claims, per_face, root: Path = RESULTS_DIR) -> pd.DataFrame:
    """The chapter's claims, one row each (:func:`claim_row`); a claim whose models have no weights
    in the zoo yet (``per_face`` raises LookupError) gets a row saying so."""
    rows = []
    for claim in claims:
        try:
            rows.append(claim_row(claim, per_face, root))
        except LookupError as exc:
            rows.append({"claim": claim.text, "paper": claim.paper, "verdict": f"not judged yet: {exc}"})
    return pd.DataFrame(rows).set_index("claim")


def lineage_figure(method: str, root: Path = RESULTS_DIR):
    """The tune_val curves of ``method``'s lineages against their training steps (each from its
    start's own steps), with where each stands; None when none has a continuation yet."""
    lineages = [l for l in LINEAGES if l.method == method and continuations(l, root)]
    if not lineages:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for lineage in lineages:
        records = continuations(lineage, root)
        start = RunRecord.from_file(Path(root) / f"{lineage.start}.json") if lineage.start else None
        offset = int((start.get("ancestor") or {}).get("lineage_steps", 0) + (start.steps or 0)) if start else 0
        curve = tune_curve(records)
        steps, errors = zip(*[(offset + s, e) for s, e in curve]) if curve else ((), ())
        state = longest(f"{lineage.method}/{records[0].run_name}", root)[1]
        line, = ax.plot(steps, errors, marker="o", markersize=3,
                        label=f"{lineage.label or lineage.name}: {len(records)} run(s), {state}")
        if start is not None and start.tune_error() is not None:
            ax.plot([offset], [start.tune_error()], marker="s", color=line.get_color())
    ax.set_xlabel("training steps of the lineage (its start's included)")
    ax.set_ylabel("forward error on tune_val (% of IOD)")
    ax.set_title(f"{method}: the convergence campaign's lineages (flat: {FLAT_POINTS} evaluations within "
                 f"{FLAT_GAIN} points)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
