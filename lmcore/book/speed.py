"""The speed appendix's tables and figure, from benchmark records (:mod:`lmcore.bench`): what each
training step costs, where it spends its time, and what each profile's headline runs would take."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from ..bench import book_bench, is_plain, load_bench_records, option_label
from .references import TRAIN_COMMAND
from .reporting import short_commit
from .tables import fold

#: the parts of a training step the bench times, with their colours in the share figure
STEP_PARTS = {"warps, pairs": ("warps_ms", "tab:orange"), "networks, losses": ("networks_ms", "tab:blue"),
              "perceptual loss": ("perceptual_ms", "tab:green"),
              "backward + update": ("backward_update_ms", "tab:gray")}


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
    """Each plain step's (no speed option) time split into :data:`STEP_PARTS`, as fractions of the
    whole step."""
    rows = []
    for r in record["rows"]:
        if is_plain(r):
            total = max(r["step_ms"], 1e-9)
            rows.append({"settings": r["profile"], "method": r["case"],
                         **{part: r[key] / total for part, (key, _) in STEP_PARTS.items()}})
    return pd.DataFrame(rows)


def share_figure(shares: pd.DataFrame, device_name: str):
    """Stacked bars of :func:`share_table`, one panel per settings profile; returns the figure."""
    colours = {part: colour for part, (_, colour) in STEP_PARTS.items()}
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
    fig.legend(handles, labels, loc="upper center", ncol=4, bbox_to_anchor=(0.5, 1.02), frameon=False)
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
