"""The book's leaderboard: every method's main runs on one protocol, with provenance, written
from run records by a tool and never by hand.

    python -m lmcore.book.leaderboard            # results/leaderboard.csv and .json from results/*/*.json
    python -m lmcore.book.leaderboard --check    # exit 1 when the files disagree with the records, or a
                                                 # committed record is stale (each record's state printed)

:data:`lmcore.experiments.BOOK_RUNS` names the runs the method chapters train as their headline
results (method, run name, overrides: exactly what each chapter trains, through
:meth:`~lmcore.book.chapter.Chapter.headline_runs`), so that the comparison chapter finds the same
runs (:func:`book_runs`) and the tool the same committed references (:func:`committed_references`).
A row is one record: its errors (with the 95 % bootstrap interval over test faces where the record
carries one), its training steps, time, device, profile, commit and the file it came from; the
papers' numbers sit in their own labelled columns. The mean shape, which has no run, is computed from MTFL-80's labels.

No training module imports this one: editing it retrains nothing.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from . import papers
from ..attest import states as record_states
from ..attest import table as attest_table
from ..data.sources import get_source
from ..errors import LmbookError
from ..evaluation import mean_shape_error
from ..experiments import BOOK_RUNS, BookRun
from ..paths import PROJECT_ROOT, RESULTS_DIR
from ..profiles import resolve_profile
from ..training import RunRecord, find_run
from .reporting import regressor_label, short_commit

SPLITS = ("test_mtfl", "test_aflw")
METRICS = ("forward", "backward", "consistency")


def paper_numbers(method: str, k: int | None, name: str = "") -> tuple[float | None, float | None, str]:
    """(MAFL, AFLW, source) forward errors the paper of ``method`` reports for ``k`` landmarks;
    Nones where it reports none (FSE's AFLW number is for 51 landmarks after fine-tuning: not this
    protocol; the supervised yardstick is this book's own network, no paper's)."""
    if method == "fse" and k in papers.FSE_TABLE1["rows"]:
        return papers.FSE_TABLE1["rows"][k][1], None, papers.FSE_TABLE1["source"] + ", regressor on CelebA"
    for table, m in ((papers.ZHANG_TABLE1, "zhang"), (papers.JAKAB, "jakab"), (papers.C3, "c3")):
        if method == m and k in table["rows"]:
            row = table["rows"][k]
            return row["MAFL"], row["AFLW"], table["source"]
    if method == "sanchez" and name in papers.SANCHEZ["table1"]:
        row = papers.SANCHEZ["table1"][name]
        return row["MAFL"], row["AFLW"], papers.SANCHEZ["table1_source"]
    return None, None, ""



# --------------------------------------------------------------------------- finding records


def book_runs(profile: str | None = None) -> dict[BookRun, object]:
    """``{book run: its finished record in profile, or None}`` found without training anything
    (:func:`lmcore.training.find_run`: a stale or missing run is None)."""
    profile = resolve_profile(profile)
    return {run: find_run(run.method, profile, run.name, run.resolved_overrides(profile)) for run in BOOK_RUNS}


def committed_references(root: Path = RESULTS_DIR) -> dict[BookRun, object]:
    """``{book run: its committed reference results/<method>/<name>.json}`` for those committed."""
    found = {}
    for run in BOOK_RUNS:
        path = Path(root) / run.method / f"{run.name}.json"
        if path.exists():
            found[run] = RunRecord.from_file(path)
    return found


# --------------------------------------------------------------------------- rows


def _value(record, metric: str, split: str) -> dict:
    return record.get("metrics", {}).get(metric, {}).get(split, {}) or {}


def _round(value, digits: int = 3):
    return None if value is None else round(float(value), digits)


def record_row(run: BookRun, record, source: str) -> dict:
    """One leaderboard row from one record (``source``: the file it was read from)."""
    row = {"method": run.label, "K": run.num_landmarks, "run": run.key, "profile": record["profile"]}
    for metric in METRICS:
        for split in SPLITS:
            entry = _value(record, metric, split)
            row[f"{metric} {split}"] = _round(entry.get("mean"))
            if metric == "forward":
                ci = entry.get("ci95") or (None, None)
                row[f"{metric} {split} ci95 low"], row[f"{metric} {split} ci95 high"] = _round(ci[0]), _round(ci[1])
    mafl, aflw, paper_source = paper_numbers(run.method, run.num_landmarks, run.name)
    row.update({
        "paper MAFL": mafl, "paper AFLW": aflw,
        "steps": record.get("steps"),
        "training min": _round(record.get("wall_time_s", 0) / 60, 1),
        "device": record.get("device", {}).get("name", record.get("device", {}).get("type")),
        "git commit": short_commit(record.get("git_commit", "unknown")),
        "regressor": regressor_label(record),
        "record": source,
        "paper source": paper_source,
    })
    return row


def mean_shape_row(source=None) -> dict:
    """The mean shape's errors (no detector: the regressor's intercept), computed from MTFL-80."""
    source = source or get_source("mtfl80")
    train = source.split("regressor_train").points
    row = {"method": "mean shape", "K": None, "run": "-", "profile": "-"}
    for metric in METRICS:
        for split in SPLITS:
            result = mean_shape_error(train, source.split(split).points) if metric == "forward" else {}
            row[f"{metric} {split}"] = _round(result.get("mean"))
            if metric == "forward":
                low, high = result["ci95"]
                row[f"{metric} {split} ci95 low"], row[f"{metric} {split} ci95 high"] = _round(low), _round(high)
    row.update({"paper MAFL": None, "paper AFLW": None, "steps": 0, "training min": 0.0, "device": "-",
                "git commit": "-", "regressor": "intercept only", "record": "computed from MTFL-80's labels",
                "paper source": ""})
    return row


def leaderboard_rows(records: dict, root: Path = PROJECT_ROOT, mean_shape: dict | None = None) -> list[dict]:
    """Rows for ``{book run: record}`` in :data:`BOOK_RUNS` order, the mean shape last."""
    rows = []
    for run in BOOK_RUNS:
        record = records.get(run)
        if record is None:
            continue
        path = record.path
        source = str(Path(path).resolve().relative_to(Path(root).resolve())) if path is not None else "?"
        rows.append(record_row(run, record, source))
    rows.append(mean_shape if mean_shape is not None else mean_shape_row())
    return rows


def _csv_text(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def _json_text(rows: list[dict]) -> str:
    return json.dumps({"generated_by": "python -m lmcore.book.leaderboard", "from": "results/<method>/<run>.json",
                       "rows": rows}, indent=1) + "\n"


def leaderboard_files(root: Path = RESULTS_DIR) -> dict[Path, str]:
    """``{path: text}`` of results/leaderboard.csv and .json as the committed references give them."""
    rows = leaderboard_rows(committed_references(root), root=Path(root).parent)
    return {Path(root) / "leaderboard.csv": _csv_text(rows), Path(root) / "leaderboard.json": _json_text(rows)}


def write_leaderboard(root: Path = RESULTS_DIR) -> list[Path]:
    files = leaderboard_files(root)
    for path, text in files.items():
        path.write_text(text)
    return list(files)


def check_leaderboard(root: Path = RESULTS_DIR) -> list[str]:
    """Files that are missing or disagree with the records (empty: all agree)."""
    problems = []
    for path, text in leaderboard_files(root).items():
        if not path.exists():
            problems.append(f"{path.name} is missing")
        elif path.read_text() != text:
            problems.append(f"{path.name} disagrees with the run records")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmcore.book.leaderboard",
                                     description="Write (or --check) results/leaderboard.csv and .json from the "
                                                 "committed run records.")
    parser.add_argument("--check", action="store_true", help="exit 1 if the files disagree with the records, or a "
                        "committed record is stale under today's code (each record's state is printed)")
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = check_leaderboard()
            for problem in problems:
                print(f"results/{problem}; regenerate with: python -m lmcore.book.leaderboard", file=sys.stderr)
            found = record_states()
            print(attest_table(found))
            stale = [s for s in found if s.state == "stale"]
            if stale:
                print(f"{len(stale)} committed record(s) are stale under today's code; python -m lmcore.attest --attest "
                      "re-keys those that compute the same and labels the others", file=sys.stderr)
            return 1 if problems or stale else 0
        for path in write_leaderboard():
            print(f"wrote {path.relative_to(PROJECT_ROOT)}")
    except LmbookError as exc:  # missing MTFL-80 (the mean shape's row), a corrupt record: one line
        print(f"lmcore.book.leaderboard: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
