"""Tables built from run records: results with their provenance."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..evaluation import paired_difference_over_seeds
from ..paths import RESULTS_DIR
from ..training.run_record import RunRecord
from ..zoo import lineage
from ..attest import published_records, state_of
from .references import reference_record
from .tables import collapse


def short_commit(commit: str) -> str:
    return commit[:10] + ("+dirty" if commit.endswith("+dirty") else "")


def short_device(device: dict) -> str:
    """A device as a table cell: the GPU's name, or the CPU's without trademarks and filler words
    (``Intel(R) Xeon(R) Processor @ 2.80GHz`` -> ``Intel Xeon @ 2.80GHz``)."""
    name = device.get("name", device.get("type", "?"))
    name = re.sub(r"\((R|TM|tm)\)|\bCPU\b|\bProcessor\b|\b\d+-Core\b", "", name)
    return re.sub(r"\s+", " ", name).strip() or device.get("type", "?")


def code_state(record: dict) -> str:
    """Whether the record's ``lmcore`` code was the commit's: ``as committed``, ``uncommitted
    changes`` or ``not recorded`` (records older than that field: the commit alone names the code)."""
    dirty = record.get("lmcore_dirty")
    return "not recorded (older record)" if dirty is None else ("uncommitted changes" if dirty else "as committed")


def regressor_label(record: dict) -> str:
    """How the record's forward errors were fitted: the book's protocol changed on 2026-11-23 from
    a fit with an intercept to one without and with a ridge chosen on tune_val (chapter 0), and
    older committed references keep the protocol they were scored with."""
    options = next(iter(record.get("metrics", {}).get("forward", {}).values()), {}).get("options", {})
    if options.get("direct"):
        return "direct (no regressor)"
    if not options:
        return "-"
    ridge = options.get("ridge_choice") and "ridge tuned on tune_val" or (
        f"ridge {options['ridge']:g}" if options.get("ridge") else "least squares")
    return ("intercept, " if options.get("intercept") else "no intercept, ") + ridge


def parent_label(record: dict) -> str:
    """The parent runs a record started from, as ``role: method/run`` (with the kept checkpoint's
    step where an early one was adopted); empty for a run without parents."""
    parts = []
    for role, parent in (record.get("parents") or {}).items():
        step = f" at step {parent['step']}" if parent.get("step") is not None else ""
        parts.append(f"{role}: {parent.get('method', '?')}/{parent.get('run_name', '?')}{step}")
    return "; ".join(parts)


def published_parent(record: dict, role: str, root=None):
    """The committed reference record (``results/<method>/<run>.json``) of ``record``'s parent run
    ``role``, when that file is the very run the record started from (same identity); else None,
    e.g. when the parent was retrained on other code and never published."""

    parent = (record.get("parents") or {}).get(role)
    if not parent:
        return None
    path = Path(root or RESULTS_DIR) / parent.get("method", "") / f"{parent.get('run_name', '')}.json"
    if not path.is_file():
        return None
    published = RunRecord.from_file(path)
    return published if published.get("identity") == parent.get("identity") else None


def provenance_table(records: Sequence[dict], label: Callable[[dict], str] | None = None) -> pd.DataFrame:
    """Where each number came from: profile, device, code version, training time, and the parent
    runs it started from (a column only where some record has one; their time is not included)."""
    rows = []
    for r in records:
        rows.append({
            "run": label(r) if label else r.get("run_name", "?"),
            "method": r["method"],
            "profile": r["profile"],
            "device": short_device(r["device"]),
            "git commit": r["git_commit"][:10],
            "lmcore": code_state(r),
            "steps": r.get("steps"),
            "regressor": regressor_label(r),
            "training (min)": round(r["wall_time_s"] / 60, 1),
            "created (UTC)": r.get("created", "")[:16].replace("T", " "),
            "parent runs": parent_label(r),
            "identity today": code_since(r),
        })
    frame = pd.DataFrame(rows).set_index("run")
    if not frame["identity today"].any():
        frame = frame.drop(columns="identity today")
    frame = frame if frame["parent runs"].any() else frame.drop(columns="parent runs")
    return collapse(frame, f"Provenance of {len(frame)} run{'s' if len(frame) != 1 else ''}: where, when and "
                           f"from which code {'each' if len(frame) != 1 else 'it'} trained")


def code_since(record) -> str:
    """For a committed reference: its identity under today's code (:mod:`lmcore.attest`):
    ``current``, ``attested (date)``, or its label and why (``changed``, ``not attestable``,
    ``stale``); empty for a run of this machine."""
    if getattr(record, "run_dir", True) is not None or getattr(record, "path", None) is None:
        return ""
    path = Path(record.path).resolve()
    if path not in _STATES:
        if not _PUBLISHED:
            _PUBLISHED.update(published_records())
        _STATES[path] = state_of(path, RunRecord.from_file(path), _PUBLISHED)
    state = _STATES[path]
    scored = "" if state.scored_by == "today's protocol" else f"; its numbers scored by {state.scored_by}"
    if state.state == "current":
        return "current" + scored
    if state.state == "attested":
        return f"attested ({state.detail.split(' under ')[0].removeprefix('re-keyed ')})" + scored
    return f"{state.state}: {state.detail}" + scored


#: each shown reference's state, and the references its parent links point to, once per process
_STATES: dict = {}
_PUBLISHED: dict = {}


def error_table(records: Sequence[dict], metric: str = "forward", splits: Sequence[str] = ("test_mtfl", "test_aflw"),
                label: Callable[[dict], str] | None = None, digits: int = 2) -> pd.DataFrame:
    """Mean error (% of IOD) of ``metric`` per test split, one row per run, with its profile."""
    rows = []
    for r in records:
        row = {"run": label(r) if label else r.get("run_name", "?"), "profile": r["profile"]}
        for split in splits:
            value = r["metrics"].get(metric, {}).get(split, {}).get("mean")
            row[f"{split} (%)"] = None if value is None else round(value, digits)
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def protocol_table(records: Sequence[dict], splits: Sequence[str] = ("test_mtfl", "test_aflw"),
                   label: Callable[[dict], str] | None = None, digits: int = 2) -> pd.DataFrame:
    """Forward, backward and consistency errors side by side for each run, after the tune_val
    forward error where the runs recorded it (the number settings are chosen by)."""
    rows = []
    with_tune = any("tune" in r.get("metrics", {}) for r in records)
    for r in records:
        row = {"run": label(r) if label else r.get("run_name", "?"), "profile": r["profile"]}
        if with_tune:
            value = r["metrics"].get("tune", {}).get("tune_val", {}).get("mean")
            row[("forward", "tune_val")] = None if value is None else round(value, digits)
        for metric in ("forward", "backward", "consistency"):
            for split in splits:
                value = r["metrics"].get(metric, {}).get(split, {}).get("mean")
                row[(metric, split)] = None if value is None else round(value, digits)
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("run")
    return frame


def target_verdicts(records: Sequence[dict], target: float, split: str = "test_mtfl") -> list[str]:
    """One line per record: its forward error on ``split`` and whether it is below ``target`` (the
    book's bar for a K = 10 reference: half the mean shape's error), or by how much it misses."""
    lines = []
    for r in records:
        error = r["metrics"]["forward"][split]["mean"]
        verdict = "meets" if error < target else f"misses by {error - target:.2f} points"
        lines.append(f"{r.get('run_name', '?')} [{r['profile']}, {r.get('steps')} steps]: {error:.2f} % on {split}, "
                     f"{verdict} the target of {target:.2f} %")
    return lines


def lineage_curve(record: dict, key: str, root=None) -> list[tuple[int, float]]:
    """``(step, value)`` of ``key`` along a run's whole lineage (its ancestors' curves first, each
    run's steps counted after theirs: ``train.init_from``, :func:`lmcore.zoo.lineage`)."""
    curve, offset = [], 0
    for part in lineage(record, root):
        curve += [(offset + int(h["step"]), float(h[key])) for h in part.get("history", []) if key in h]
        offset += int(part.get("steps") or 0)
    return curve


def steps_to_target(curve: Sequence[tuple[int, float]], target: float, window: int = 4) -> dict:
    """How far a still-moving learning curve is from ``target`` at the pace of its last ``window``
    points (a least-squares line through them): ``{"per_1000_steps", "steps_left"}``, where
    ``steps_left`` is None when that pace does not lead to the target (flat or moving away) and 0
    when it is reached. Curves flatten, so a pace-based estimate is a lower bound, and said as one."""
    last = np.asarray(curve[-window:], dtype=float)
    if len(last) < 2:
        return {"per_1000_steps": None, "steps_left": None}
    slope = float(np.polyfit(last[:, 0], last[:, 1], 1)[0])
    gap = target - last[-1, 1]
    if gap == 0 or (gap * slope) <= 0:
        return {"per_1000_steps": 1000 * slope, "steps_left": 0 if gap == 0 else None}
    return {"per_1000_steps": 1000 * slope, "steps_left": int(np.ceil(gap / slope - 1e-9))}  # no rounding-up of float noise


def tuning_records(method: str, root=None) -> list:
    """The committed tuning records of ``method`` (``results/tuning/<method>/*.json``, written by
    ``tools/tune_settings.py --publish``), in file order."""

    folder = Path(root or RESULTS_DIR / "tuning") / method
    return [RunRecord.from_file(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


#: words of the committed tuning labels that name the book's own history, and what a reader reads instead
_READER_WORDS = {"before the audit": "the book's earlier settings"}


def reader_label(label: str) -> str:
    """A committed tuning label as the book shows it (``"K = 30, before the audit"`` -> ``"K = 30,
    the book's earlier settings"``): the records keep the words they were published with."""
    for words, shown in _READER_WORDS.items():
        label = label.replace(words, shown)
    return label


def tuning_table(records: Sequence[dict], digits: int = 2) -> pd.DataFrame:
    """A tuning sweep as the chapters show it, best first: each setting's score on the split it was
    chosen by (a landmark method's **tune_val** forward error, the regressor fitted on tune_fit:
    MTFL-80's README; a pose core's PCK@0.2 on LSPET val), with the run's length and provenance.
    Test errors are left out on purpose: they chose nothing."""
    rows, orders = [], []
    for r in records:
        r = r if isinstance(r, RunRecord) else RunRecord(r)
        score = r.tuning_score()
        name, value, higher = score if score else ("tune_val forward (%)", None, False)
        tune = r["metrics"].get("tune", {}).get("tune_val", {})
        rows.append({
            "setting": reader_label(r.get("tuning_label", r.get("run_name", "?"))),
            name: None if value is None else round(value, digits),
            "95 % interval": None if not tune.get("ci95") else tuple(round(v, digits) for v in tune["ci95"]),
            "K": r["config"]["method"].get("num_landmarks"),
            "steps x batch": f"{r.get('steps')} x {r['config']['train']['batch_size']}",
            "training (min)": round(r["wall_time_s"] / 60, 1),
            "profile": r["profile"],
            "device": r["device"].get("name", r["device"].get("type")),
            "git commit": short_commit(r["git_commit"]),
        })
        orders.append(float("inf") if value is None else (-value if higher else value))
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame([row for _, row in sorted(zip(orders, rows), key=lambda pair: pair[0])]).set_index("setting")
    return table.dropna(axis=1, how="all")


def ordering_verdicts(per_face: dict, expected: Sequence[str] = ()) -> tuple[pd.DataFrame, list[str]]:
    """Which of several methods is better, and whether the difference outlasts the spread between
    training runs: ``per_face`` maps a method to its per-face errors on one test split, ``runs x
    faces`` (one row per training run, e.g. per seed; the same faces for all). Every pair is
    compared with :func:`lmcore.evaluation.paired_difference_over_seeds` (runs and faces
    resampled). Returns the pairs' table and lines saying the order where each step of it is
    certain, and which steps are within the spread, beside ``expected`` (e.g. the paper's order)."""
    means = {name: float(np.mean(errors)) for name, errors in per_face.items()}
    order = sorted(means, key=means.get)
    rows, certain = [], {}
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            d = paired_difference_over_seeds(per_face[a], per_face[b])
            certain[(a, b)] = d["certain"]
            rows.append({"pair": f"{a} − {b}", "runs": f"{d['runs'][0]} and {d['runs'][1]}",
                         "difference (points)": round(d["difference"], 2),
                         "95 % interval": f"[{d['low']:.2f}, {d['high']:.2f}]",
                         "verdict": f"{a} lower" if d["certain"] else "within the spread"})
    lines = []
    steps = [(a, b) for a, b in zip(order, order[1:])]
    stated = " < ".join(order)
    if all(certain[s] for s in steps):
        lines.append(f"order (every step certain): {stated}")
    else:
        unsure = ", ".join(f"{a} and {b}" for a, b in steps if not certain[(a, b)])
        lines.append(f"means in the order {stated}; not separated beyond the runs' spread: {unsure}")
    if expected:
        agrees = list(expected) == order and all(certain[s] for s in steps)
        lines.append(f"expected order {' < '.join(expected)}: "
                     f"{'reproduced' if agrees else 'not reproduced' if all(certain[s] for s in steps) else 'not established'}")
    return pd.DataFrame(rows).set_index("pair"), lines


SMOKE_NOTE = ("smoke profile: these runs prove the code path in a few steps, and their numbers mean nothing, "
              "so no verdict is drawn from them here (the cpu and paper profiles draw it)")
PAPER_STYLE = {"background-color": "#eef2f7", "font-style": "italic"}


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and not pd.isna(value)


def separated(frame: pd.DataFrame, profile: str, paper_columns: Sequence = (), paper_rows: Sequence = (),
              digits: int = 2, result_columns: Sequence | None = None):
    """``frame`` as a styled table in which this build's numbers and the papers' cannot be mixed
    up: the papers' cells (``paper_columns`` and ``paper_rows``) are shaded and in italics, and each
    number of a smoke run (the row's ``profile`` column, else ``profile``) becomes text carrying
    the word *smoke* (``"20.89 smoke"``), so that no smoke number stands beside a paper number
    without it: every number outside the papers' cells, or only those of ``result_columns``
    (numbers, or text starting with one such as ``"20.89 [19.8, 22.1]"``). Returns a pandas
    ``Styler`` (a table in the built page), whose HTML id comes from the table's content, so that
    two builds of one table give the same page."""
    shown = frame.copy().astype(object)
    paper_columns, paper_rows = list(paper_columns), list(paper_rows)
    profile_column = next((c for c in shown.columns if c == "profile" or c == ("profile", "")), None)
    for index in shown.index:
        if index in paper_rows:
            continue
        row_profile = shown.at[index, profile_column] if profile_column is not None else profile
        if row_profile != "smoke":
            continue
        for column in shown.columns:
            value = shown.at[index, column]
            if column in paper_columns or (result_columns is not None and column not in result_columns):
                continue
            if _is_number(value):
                number = f"{value:.{digits}f}" if isinstance(value, (float, np.floating)) else str(value)
                shown.at[index, column] = f"{number} smoke"
            elif result_columns is not None and isinstance(value, str) and re.match(r"^-?\d", value):
                shown.at[index, column] = f"{value} smoke"
    styler = shown.style.format(lambda v: f"{v:.{digits}f}" if isinstance(v, (float, np.floating)) and not pd.isna(v)
                                else ("–" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)))
    styler = styler.set_uuid(hashlib.sha256(shown.to_csv().encode()).hexdigest()[:10])  # pandas' default is random
    if paper_columns:
        styler = styler.set_properties(subset=pd.IndexSlice[:, paper_columns], **PAPER_STYLE)
    if paper_rows:
        styler = styler.set_properties(subset=pd.IndexSlice[paper_rows, :], **PAPER_STYLE)
    return styler


def verdict(profile: str, text: str) -> str:
    """``text`` (a conclusion drawn from this build's runs), or :data:`SMOKE_NOTE` in the smoke
    profile, whose numbers support no conclusion."""
    return SMOKE_NOTE if profile == "smoke" else text


#: settings that change when and what a run saves, not what it trains
_BOOKKEEPING = {"train.checkpoint_every", "train.keep_every", "train.log_every"}


def config_differences(config: dict, other: dict, prefix: str = "") -> list[str]:
    """The dotted keys where two run configs differ (bookkeeping keys such as ``train.log_every``
    left out): empty where one would train what the other did."""
    keys = []
    for key in sorted(set(config) | set(other)):
        name = f"{prefix}{key}"
        a, b = config.get(key), other.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += config_differences(a, b, f"{name}.")
        elif a != b and name not in _BOOKKEEPING:
            keys.append(name)
    return keys


def reference_comparison(records: Sequence, split: str = "test_mtfl") -> pd.DataFrame | None:
    """Each run of this build beside the committed reference of the same method and name: the
    forward error on ``split`` of both and, where their configs agree, whether this build's lies
    within the reference's 95 % interval over the test faces (the spread a second training of the
    same config is checked against); where they differ, the keys that do. None where no run has a
    reference."""
    rows = []
    for record in records:
        if record is None or record.is_reference:
            continue
        reference = reference_record(record.method, record.run_name)
        if reference is None:
            continue
        differs = config_differences(record.config, reference.config)
        fresh, kept = record.forward(split), reference.forward(split)
        low, high = reference.metric("forward", split).get("ci95", (kept, kept))
        if differs:
            verdict = f"different config ({', '.join(differs[:3])}{', ...' if len(differs) > 3 else ''}): not comparable"
        else:
            verdict = (f"same config: {'within' if low <= fresh <= high else 'OUTSIDE'} the reference's 95 % "
                       f"interval [{low:.2f}, {high:.2f}]")
        rows.append({"run": f"{record.method}/{record.run_name}",
                     f"this build ({record.profile}), steps": record.steps, "reference, steps": reference.steps,
                     f"this build ({record.profile}), {split} %": round(fresh, 2), f"reference, {split} %": round(kept, 2),
                     "verdict": verdict})
    return pd.DataFrame(rows).set_index("run") if rows else None
