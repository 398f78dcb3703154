"""The speed appendix's tables and figure, from benchmark records (:mod:`lmcore.bench`): what each
training step costs, where it spends its time, what each profile's headline runs would take, how
much faster the step became against an earlier commit (``--against``), lmbook's Sanchez step against
the authors' released one, and how long ``make test`` takes, idle and beside another job."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ..bench import BENCH_DIR, book_bench, is_plain, load_bench_records, option_label
from ..paths import RESULTS_DIR
from .references import TRAIN_COMMAND
from .reporting import short_commit
from .tables import fold

#: the parts of a training step the bench times, with their colours in the share figure (records
#: older than ``parts_ms``: four parts of the step alone)
STEP_PARTS = {"warps, pairs": ("warps_ms", "tab:orange"), "networks, losses": ("networks_ms", "tab:blue"),
              "perceptual loss": ("perceptual_ms", "tab:green"),
              "backward + update": ("backward_update_ms", "tab:gray")}
#: the parts of a whole training iteration (``parts_ms`` of :func:`lmcore.training.bench.step_cost`)
ITERATION_PARTS = {"data": "tab:brown", "warps": "tab:orange", "networks": "tab:blue", "perceptual": "tab:green",
                   "loss terms": "tab:purple", "backward": "tab:gray", "optimiser": "tab:olive"}
#: lmbook's Sanchez step beside the authors' released one (written by the command it names)
AUTHORS_RECORD = BENCH_DIR / "authors" / "sanchez.json"
#: ``make test``'s build records: idle, and beside one competing two-thread job
BUILD_RECORDS = {"idle": RESULTS_DIR / "builds" / "test.json", "beside a training run": RESULTS_DIR / "builds" / "test-contended.json"}


def appendix_record(trains: bool, profile: str, device) -> tuple[dict, str]:
    """The bench record the appendix shows and a line saying where it is from: measured (or reused)
    on this machine in a training profile; in the reference profile, which times nothing, the
    committed CPU record."""
    if trains:
        record, reused = book_bench(profile, device)
        return record, (f"{'reused' if reused else 'measured'}: {len(record['rows'])} steps timed on "
                        f"{record['device']['name']} ({record['device']['threads']} threads), {record['wall_time_s']} s, "
                        f"code {record['code_fingerprint']}")
    record = next(r for r in load_bench_records() if r["device"]["type"] == "cpu")
    return record, (f"reference profile: nothing is timed here; this is the committed record {record['path']} "
                    f"({len(record['rows'])} steps timed on {record['device']['name']}, {record['device']['threads']} "
                    f"threads, commit {short_commit(record['commit'])}); `{TRAIN_COMMAND}` measures this machine")


def parts_record(record: dict, committed: list[dict]) -> dict:
    """The record whose plain steps are cut into the iteration's parts: ``record`` where it is,
    else the newest committed CPU record that is (the reference profile's ``cpu.json`` predates
    ``parts_ms``)."""
    def has_parts(r: dict) -> bool:
        plain = [row for row in r["rows"] if is_plain(row)]
        return bool(plain) and all("parts_ms" in row for row in plain)

    if has_parts(record):
        return record
    cut = [r for r in committed if r["device"]["type"] == record["device"]["type"] and has_parts(r)]
    return max(cut, key=lambda r: r["created"]) if cut else record


def against_record(committed: list[dict]) -> dict | None:
    """The newest committed record holding a before-and-after comparison (``--against``), or None."""
    found = [r for r in committed if r.get("against")]
    return max(found, key=lambda r: r["created"]) if found else None


def step_table(record: dict) -> pd.DataFrame:
    """One row per timed step: settings, method, options, batch, resolution, time, throughput,
    activation memory, peak GPU memory and the trainable share of the weights; what every row
    shares is said once above the table (:func:`lmcore.book.tables.fold`)."""
    return fold(pd.DataFrame([{"settings": r["profile"], "method": r["case"], "options": option_label(r),
                          "batch": r["batch_size"], "px": r["resolution"], "ms / step": r["step_ms"],
                          "steps / s": r["steps_per_s"], "images / s": r["images_per_s"],
                          "kept for backward (MB)": r["saved_for_backward_mb"],
                          "peak GPU (MB)": r.get("peak_cuda_mb", "-"),
                          "trainable / all weights": f"{r['trainable'] / max(r['parameters'], 1):.0%} of {r['parameters']:,}"}
                         for r in record["rows"]]))


def share_table(record: dict) -> pd.DataFrame:
    """Each plain step's (no speed option) time split into parts, as fractions of the whole: the
    iteration's :data:`ITERATION_PARTS` where the record has them (``parts_ms``), else the step's
    four :data:`STEP_PARTS`."""
    rows = []
    plain = [r for r in record["rows"] if is_plain(r)]
    fine = bool(plain) and all("parts_ms" in r for r in plain)
    for r in plain:
        if fine:
            total = max(sum(r["parts_ms"].values()), 1e-9)
            parts = {part: r["parts_ms"][part] / total for part in ITERATION_PARTS}
        else:
            total = max(r["step_ms"], 1e-9)
            parts = {part: r[key] / total for part, (key, _) in STEP_PARTS.items()}
        rows.append({"settings": r["profile"], "method": r["case"], **parts})
    return pd.DataFrame(rows)


def share_parts(shares: pd.DataFrame) -> list[str]:
    """The parts a :func:`share_table` holds."""
    return [part for part in (*ITERATION_PARTS, *STEP_PARTS) if part in shares.columns]


def share_figure(shares: pd.DataFrame, device_name: str):
    """Stacked bars of :func:`share_table`, one panel per settings profile; returns the figure."""
    palette = {**ITERATION_PARTS, **{part: colour for part, (_, colour) in STEP_PARTS.items()}}
    colours = {part: palette[part] for part in share_parts(shares)}
    groups = list(dict.fromkeys(shares["settings"]))
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 0.35 * len(shares) / len(groups) + 1.6),
                             squeeze=False)
    for ax, settings in zip(axes[0], groups):
        part = shares[shares["settings"] == settings].set_index("method")[list(colours)]
        part.iloc[::-1].plot.barh(stacked=True, ax=ax, color=list(colours.values()), legend=False, width=0.75)
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of the training step")
        ax.set_ylabel("")
        ax.set_title(f"{settings} settings, {device_name[:40]}")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 7), bbox_to_anchor=(0.5, 1.02), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def projection_table(record: dict) -> pd.DataFrame:
    """Per profile, each chapter's headline runs, steps and projected hours of training (from the
    measured step times), then an ``all`` row with their sums."""
    rows = []
    for profile_name, entries in record["projection"].items():
        part = [{"profile": profile_name, "chapter": e["chapter"], "headline runs": e["runs"], "steps": e["steps"],
                 "hours of training": e["hours"], "not measured": ", ".join(e["unmeasured"]) or "-"} for e in entries]
        part.append({"profile": profile_name, "chapter": "all", "headline runs": sum(r["headline runs"] for r in part),
                     "steps": sum(r["steps"] for r in part),
                     "hours of training": round(sum(r["hours of training"] for r in part), 1), "not measured": "-"})
        rows += part
    return pd.DataFrame(rows)


def provenance_table(records: list[dict]) -> pd.DataFrame:
    """Where each committed bench record comes from: file, device, threads, torch, commit, whether
    lmcore differed from the commit, when, and how long it took."""
    return pd.DataFrame([{"record": r["path"], "device": r["device"]["name"], "threads": r["device"]["threads"],
                          "torch": r["device"]["torch"], "commit": short_commit(r["commit"]),
                          "lmcore changed since": "yes" if r.get("lmcore_dirty") else "no",
                          "measured": r["created"][:16], "wall time (s)": r["wall_time_s"]} for r in records])


# --------------------------------------------------------------------------- before and after


def against_table(record: dict) -> pd.DataFrame | None:
    """``--against``: per case, the step under the earlier commit and under this code, timed in
    turn in one run, their ratio (and each round's), and this code's step with each ``--also``
    setting; None for a record without it."""
    against = record.get("against")
    if not against:
        return None
    rows = []
    for r in against["rows"]:
        row = {"method": r["case"], f"before ({against['commit'][:7]}), ms": r["before"]["step_ms"],
               "after, ms": r["after"]["step_ms"], "speedup": r["speedup"],
               "speedup per round": ", ".join(f"{x:.2f}" for x in r["speedup_per_round"])}
        for also in r["also"]:
            label = ", ".join(f"{k}={v}" for k, v in also["train"].items())
            row[f"after, {label}, ms"] = also["step_ms"]
            row[f"speedup, {label}"] = also["speedup"]
        rows.append(row)
    return pd.DataFrame(rows)


def against_summary(record: dict) -> str:
    """One line: what was compared, on what, under which load, and the range of the speedups."""
    against = record["against"]
    speedups = [r["speedup"] for r in against["rows"]]
    load = against.get("load") or {}
    return (f"{against['profile']} settings, {against['threads']} thread(s), {against['rounds']} rounds of "
            f"{against['steps_timed']} timed steps on {record['device']['name']}; commit {against['commit'][:7]} "
            f"against commit {short_commit(record['commit'])}; load average {load.get('start', ['?'])[0]} -> "
            f"{load.get('end', ['?'])[0]}; speedup {min(speedups):.2f}x to {max(speedups):.2f}x "
            f"(`{record.get('command', 'python -m lmcore.bench --against ' + against['commit'][:7])}`)")


def read_authors_record(path: Path = AUTHORS_RECORD) -> dict | None:
    """lmbook's Sanchez step beside the authors' (see :data:`AUTHORS_RECORD`), or None."""
    return json.loads(Path(path).read_text()) if Path(path).is_file() else None


def authors_table(record: dict) -> pd.DataFrame:
    """Each side's median step and its ratio to the authors'."""
    authors = record["step_ms"]["authors"]
    return pd.DataFrame([{"step": name, "ms / step (median)": ms, "runs (ms)": ", ".join(map(str, record["runs_ms"][name])),
                          "authors' step / this step": round(authors / ms, 2)}
                         for name, ms in record["step_ms"].items()])


def build_times_table(records: dict[str, Path] = BUILD_RECORDS) -> pd.DataFrame:
    """``make test`` idle and beside another job, from their build records: minutes, each phase,
    the load average when it began and ended, the commit and the machine."""
    rows = []
    for when, path in records.items():
        if not Path(path).is_file():
            rows.append({"make test": when, "minutes": "not measured"})
            continue
        r = json.loads(Path(path).read_text())
        load = r.get("load") or {}
        rows.append({"make test": when, "minutes": round(r["total_s"] / 60, 1),
                     **{f"{phase} (s)": seconds for phase, seconds in r["phases_s"].items()},
                     "load at start": (load.get("start") or ["-"])[0], "load at end": (load.get("end") or ["-"])[0],
                     "caches": r["caches"], "commit": short_commit(r["commit"]), "machine": r["device"]["name"],
                     "measured": r["created"]})
    return pd.DataFrame(rows)
