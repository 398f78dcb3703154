"""``python -m lmcore.bench``: what every method's training step costs on this machine, at its
``cpu`` and ``paper`` settings, and what the paper profile would therefore take.

For each method (Sanchez in its three modes) and profile it runs the real training step
(:func:`lmcore.training.bench.step_cost`: forward, backward, Adam) on that profile's data and
settings, with freshly initialised parents (a step's cost does not depend on their training, so
the benchmark trains nothing), and reports steps/s, images/s, the activations kept for the
backward pass, the GPU allocator's peak, and where the step's time goes: warps and pair
synthesis, the networks and losses, the perceptual loss, the backward pass and update. In the
same run it measures ratios against a reference: each method's step against FSE's (same
profile); Sanchez's projected convolutions against the same FAN trained plainly (``finetune``)
and from scratch; the 4D correlation of C3's flow at two feature sides; with ``--options``, the
other precision (bf16 autocast or float32), the other memory layout (channels-last or standard)
and (``--compile``) ``torch.compile``, each against the profile's own settings.

With ``--against COMMIT`` it also times each case's step under the code of an earlier commit and
under today's, in two worker processes asked in turn (:mod:`lmcore.training.step_worker`: never
figures of different days), and records both, their ratio per round, where today's step spends
its time (data, warps, networks, perceptual loss, loss terms, backward, optimiser) and, with
``--also KEY=VALUE``, today's step with a training setting changed (e.g. ``precision=bf16``).

The record (``results/bench/<device type>.json`` by default) carries the device, commit, code
fingerprint and wall time; the projection (per measured profile but smoke) multiplies each
method's steps in that profile by its measured step time, and sums per chapter the headline runs the book trains
(:data:`lmcore.experiments.BOOK_RUNS` and their parents; ablations and few-shot fits not
included). Absolute times move with the machine: compare ratios within one record. On a CPU the
``paper`` settings are timed over one step without warm-up (they take 1-70 s a step there) and
the options only at the ``cpu`` settings.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .cli import user_error
from .config import deep_update
from .env import check_environment
from .errors import ConfigError, LmbookError
from .experiments import BOOK_RUNS
from .paths import PROJECT_ROOT, RESULTS_DIR, cache_root, data_root, runs_root
from .training.attestation import commit_checkout
from .training.bench import correlation_cost, run_step_cost
from .training.code_identity import code_fingerprint, lmcore_is_dirty
from .training.records import describe_device, git_commit, now_iso, write_json_atomic
from .training.runs import resolve_config

BENCH_DIR = RESULTS_DIR / "bench"
PROFILES = ("smoke", "cpu", "paper")


@dataclass(frozen=True)
class BenchCase:
    """One training step to time: ``method`` with ``overrides`` (a label names it in tables)."""

    label: str
    method: str
    overrides: dict = field(default_factory=dict)


CASES: tuple[BenchCase, ...] = (
    BenchCase("FSE", "fse"),
    BenchCase("Zhang", "zhang"),
    BenchCase("Jakab", "jakab"),
    BenchCase("supervised (faces)", "supervised"),
    BenchCase("pose core (LSPET)", "pose"),
    BenchCase("face core", "face_core"),
    BenchCase("Sanchez (proposed)", "sanchez", {"method": {"mode": "proposed"}}),
    BenchCase("Sanchez (fine-tune)", "sanchez", {"method": {"mode": "finetune"}}),
    BenchCase("Sanchez (scratch)", "sanchez", {"method": {"mode": "scratch"}}),
    BenchCase("C3 flow pre-training", "c3_flow"),
    BenchCase("C3", "c3"),
)
REFERENCE = "FSE"
#: the cases whose precision / memory-format / compile variants ``--options`` measures
OPTION_CASES = ("FSE", "Zhang", "Jakab")
CORRELATION_SIDES = (8, 16)


def _case(label: str) -> BenchCase:
    return next(c for c in CASES if c.label == label)


def select_bench_device(name: str) -> torch.device:
    """``auto``: the GPU where there is one; ``cpu``; ``cuda`` (refused without a GPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise LmbookError("--device cuda: this machine has no GPU that PyTorch can use")
    return torch.device(name)


def _n_images(case: BenchCase, profile: str) -> int:
    batch = resolve_config(case.method, profile, case.overrides)["train"]["batch_size"]
    return max(2 * batch, 16)


def measure_case(case: BenchCase, profile: str, device: torch.device, steps: int, warmup: int,
                 train_overrides: dict | None = None) -> dict:
    """One row: :func:`~lmcore.training.bench.run_step_cost` of the case in ``profile``."""
    overrides = deep_update(case.overrides, {"train": train_overrides}) if train_overrides else case.overrides
    config = resolve_config(case.method, profile, overrides)
    torch.manual_seed(0)
    cost = run_step_cost(case.method, profile, overrides, steps=steps, warmup=warmup,
                         n_images=_n_images(case, profile), device=device, trained_parents=False)
    cost["variant"] = dict(train_overrides or {})  # empty: the profile's own settings
    step_s = cost["step_ms"] / 1000
    steps_total = config["train"]["steps"]
    return {"case": case.label, "method": case.method, "profile": profile, "overrides": overrides,
            "resolution": config["train"]["resolution"], "steps": steps_total,
            "steps_per_s": round(1 / step_s, 2), **cost,
            "projected_run_h": round(steps_total * step_s / 3600, 2)}


def is_plain(row: dict) -> bool:
    """A row timed at its profile's own settings (not one of ``--options``' changes to them).
    Rows of records older than the ``variant`` key were plain when float32, standard layout, not
    compiled."""
    if "variant" in row:
        return not row["variant"]
    return row["precision"] == "fp32" and not row["channels_last"] and not row["compile"]


def _ratios(rows: list[dict], correlation: list[dict]) -> list[dict]:
    out = []
    for profile in sorted({r["profile"] for r in rows}, key=PROFILES.index):
        by_case = {r["case"]: r for r in rows if r["profile"] == profile and is_plain(r)}
        ref = by_case.get(REFERENCE)
        if ref:
            for label, row in by_case.items():
                if label != REFERENCE:
                    out.append({"profile": profile, "what": f"{label} step / {REFERENCE} step",
                                "ratio": round(row["step_ms"] / ref["step_ms"], 2)})
        proposed = by_case.get("Sanchez (proposed)")
        for other in ("Sanchez (fine-tune)", "Sanchez (scratch)"):
            if proposed and other in by_case:
                out.append({"profile": profile, "what": f"projected convolutions (proposed) / plain FAN ({other[9:-1]})",
                            "ratio": round(proposed["step_ms"] / by_case[other]["step_ms"], 2)})
        for label in OPTION_CASES:
            base = by_case.get(label)
            for row in rows:
                if base and row["case"] == label and row["profile"] == profile and not is_plain(row):
                    out.append({"profile": profile, "what": f"{label}: {option_label(row)} / {option_label(base)}",
                                "ratio": round(row["step_ms"] / base["step_ms"], 2)})
    if len(correlation) == 2:
        small, large = correlation
        out.append({"profile": "-", "what": f"4D correlation, train step per pair: side {large['side']} / side {small['side']}",
                    "ratio": round(large["train_ms_per_pair"] / small["train_ms_per_pair"], 1)})
    return out


def option_changes(case: BenchCase, profile: str, compile: bool = False) -> list[dict]:
    """What ``--options`` times beside a case's own settings: the other precision, the other memory
    layout and (``compile``) compiled, each changed alone, so that each ratio is one option's."""
    train = resolve_config(case.method, profile, case.overrides)["train"]
    changes = [{"precision": "bf16" if train.get("precision", "fp32") == "fp32" else "fp32"},
               {"channels_last": not train.get("channels_last", False)}]
    if compile and not train.get("compile", False):
        changes.append({"compile": True})
    return changes


def option_label(row: dict) -> str:
    parts = [row["precision"]]
    if row["channels_last"]:
        parts.append("channels_last")
    if row["compile"]:
        parts.append("compile")
    return " + ".join(parts)


def projection(rows: list[dict], profile: str = "paper") -> list[dict]:
    """Hours of the ``profile`` runs each chapter trains as its headline (and their parents),
    from the measured steps: each run's steps x its method's measured step time (a K = 30 run at
    the K = 10 step time; a run is counted once, in the first chapter that trains it)."""
    step_s = {}
    for row in rows:
        if row["profile"] == profile and is_plain(row):
            step_s.setdefault(row["method"], row["step_ms"] / 1000)
            if row["method"] == "sanchez":
                step_s[("sanchez", row["overrides"]["method"]["mode"])] = row["step_ms"] / 1000
    counted, chapters = set(), {}

    def add(chapter: str, method: str, name: str, overrides: dict) -> None:
        config = resolve_config(method, profile, overrides)
        key = (method, name, repr(sorted(config["method"].items())))
        if key in counted:
            return
        counted.add(key)
        for p in config["parents"].values():
            add(chapter, p["method"], p["name"], p.get("overrides") or {})
        per_step = step_s.get((method, config["method"].get("mode")), step_s.get(method))
        entry = chapters.setdefault(chapter, {"chapter": chapter, "runs": 0, "steps": 0, "hours": 0.0, "unmeasured": []})
        entry["runs"] += 1
        entry["steps"] += config["train"]["steps"]
        if per_step is None:
            entry["unmeasured"].append(method)
        else:
            entry["hours"] += config["train"]["steps"] * per_step / 3600

    for run in BOOK_RUNS:
        add(run.chapter, run.method, run.name, run.resolved_overrides(profile))
    out = [dict(e, hours=round(e["hours"], 2)) for e in chapters.values()]
    return sorted(out, key=lambda e: e["chapter"])


def run_bench(profiles=("cpu", "paper"), labels: list[str] | None = None, device: torch.device | None = None,
              steps: int = 2, warmup: int = 1, options: bool = False, compile: bool = False,
              correlation: bool = True, progress=print, against: dict | None = None) -> dict:
    """Measure and return the bench record (see the module docstring); writes nothing. ``against``:
    the arguments of :func:`compare_with_commit` (its cases are ``labels``'), measured first."""
    device = device or torch.device("cpu")
    cases = [c for c in CASES if labels is None or c.label in labels or c.method in labels]
    started = time.perf_counter()
    compared = compare_with_commit(cases=cases, progress=progress, **against) if against else None
    rows = []
    for profile in profiles:
        # paper settings on a CPU take 1-70 s a step: one step, no warm-up (CPU steps vary little)
        slow = profile == "paper" and device.type == "cpu"
        n_steps, n_warmup = (1, 0) if slow else (steps, warmup)
        for case in cases:
            t = time.perf_counter()
            rows.append(dict(measure_case(case, profile, device, n_steps, n_warmup), steps_timed=n_steps,
                             warmup=n_warmup))
            progress(f"{profile:6s} {case.label:24s} {rows[-1]['step_ms']:9.1f} ms/step "
                     f"({time.perf_counter() - t:.0f} s)")
        if options and not slow:
            for label in OPTION_CASES:
                if any(c.label == label for c in cases):
                    for change in option_changes(_case(label), profile, compile):
                        rows.append(dict(measure_case(_case(label), profile, device, steps,
                                                      max(warmup, 3 if compile else 1), train_overrides=change),
                                         steps_timed=steps, warmup=max(warmup, 3 if compile else 1)))
                        progress(f"{profile:6s} {label} {option_label(rows[-1]):18s} {rows[-1]['step_ms']:9.1f} ms/step")
    corr = [correlation_cost(side, pairs=4, steps=2, warmup=1, device=device) for side in CORRELATION_SIDES] \
        if correlation else []
    record = {
        "kind": "bench", "created": now_iso(), "commit": git_commit(), "code_fingerprint": code_fingerprint(),
        "lmcore_dirty": lmcore_is_dirty(), "device": describe_device(device),
        "profiles": list(profiles), "steps_timed": steps, "warmup": warmup,
        "rows": rows, "correlation": corr, "ratios": _ratios(rows, corr),
        "projection": {profile: projection(rows, profile) for profile in profiles if profile != "smoke"},
        "wall_time_s": round(time.perf_counter() - started, 1),
    }
    if compared is not None:
        record["against"] = compared
    return record


# --------------------------------------------------------------------------- against an earlier commit

STEP_WORKER = Path(__file__).resolve().parent / "training" / "step_worker.py"


class StepWorker:
    """A :mod:`lmcore.training.step_worker` process timing steps under the ``lmcore`` of ``tree``
    (its warnings go to a log file, named when it fails)."""

    def __init__(self, tree: Path, label: str):
        self.label = label
        self.log = tempfile.NamedTemporaryFile("w+", prefix="lmbook-step-worker-", suffix=".log", delete=False)
        env = dict(os.environ, LMBOOK_DATA_ROOT=str(data_root()), LMBOOK_CACHE=str(cache_root()), LMBOOK_PROGRESS="0")
        env.pop("PYTHONPATH", None)
        self.process = subprocess.Popen([sys.executable, str(STEP_WORKER), str(tree)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)

    def measure(self, request: dict) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise LmbookError(f"the step worker under {self.label} ended (exit {self.process.wait()}); its log: "
                              f"{self.log.name}")
        result = json.loads(line)
        if "error" in result:
            raise LmbookError(f"{request['method']} under {self.label}: {result['error']}")
        return result

    def close(self) -> None:
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        self.process.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None and self.process.poll() is None:
            self.process.kill()
        self.close()


def resolve_commit(commit: str) -> str:
    """The full hash of ``commit`` (a hash, its prefix, a tag or ``HEAD~2``)."""
    done = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"], cwd=PROJECT_ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise ConfigError(f"--against {commit}: not a commit of this repository")
    return done.stdout.strip()


def parse_setting(text: str) -> dict:
    """``precision=bf16`` -> ``{"precision": "bf16"}`` (the value read as JSON where it is JSON),
    checked as a training setting."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--also {text}: give a training setting as KEY=VALUE, e.g. precision=bf16")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    from .config import TrainConfig

    TrainConfig.from_dict({key: parsed})  # a wrong key or value is one line
    return {key: parsed}


def _median_parts(results: list[dict], key: str) -> dict:
    parts = [r[key] for r in results if key in r]
    return {name: round(statistics.median(p[name] for p in parts), 1) for name in parts[0]} if parts else {}


#: the split every version of step_cost gives (warps, perceptual, the rest of the forward pass,
#: backward and update): comparable between the two trees
SPLIT_KEYS = ("warps_ms", "perceptual_ms", "networks_ms", "backward_update_ms")


def _arm(results: list[dict]) -> dict:
    times = [r["step_ms"] for r in results]
    return {"step_ms": round(statistics.median(times), 1), "runs_ms": times,
            "split_ms": {k: round(statistics.median(r[k] for r in results), 1) for k in SPLIT_KEYS},
            "parts_ms": _median_parts(results, "parts_ms")}


def compare_with_commit(commit: str, cases: list[BenchCase], profile: str = "cpu", rounds: int = 3, steps: int = 3,
                        warmup: int = 1, threads: int | None = None, also: list[dict] = (), progress=print) -> dict:
    """Each case's step under the code of ``commit`` (``before``) and under this tree's (``after``,
    and ``after`` with each of the training settings ``also``), in worker processes asked in turn
    (the order reversed every other round), ``rounds`` times; ``steps`` timed steps (median) after
    ``warmup`` each time. A row's ``speedup`` is the median step before over the median step after;
    ``speedup_per_round`` pairs the two of one round."""
    sha = resolve_commit(commit)
    threads = threads or torch.get_num_threads()
    started, load_at_start = time.perf_counter(), _load_average()
    rows = []
    with StepWorker(commit_checkout(sha), f"commit {sha[:7]}") as before, StepWorker(PROJECT_ROOT, "this tree") as after:
        for case in cases:
            request = {"method": case.method, "profile": profile, "overrides": case.overrides, "steps": steps,
                       "warmup": warmup, "n_images": _n_images(case, profile), "threads": threads}
            arms = [("before", before, request), ("after", after, request)] + [
                (json.dumps(change), after, dict(request, overrides=deep_update(case.overrides, {"train": change})))
                for change in also]
            results: dict[str, list] = {name: [] for name, _, _ in arms}
            for round_ in range(rounds):
                for name, worker, arm_request in (arms if round_ % 2 == 0 else arms[::-1]):
                    results[name].append(worker.measure(arm_request))
            row = {"case": case.label, "method": case.method, "profile": profile,
                   "before": _arm(results["before"]), "after": _arm(results["after"])}
            row["speedup"] = round(row["before"]["step_ms"] / row["after"]["step_ms"], 2)
            row["speedup_per_round"] = [round(b["step_ms"] / a["step_ms"], 2)
                                        for b, a in zip(results["before"], results["after"])]
            row["also"] = [dict(_arm(results[json.dumps(change)]), train=change,
                                speedup=round(row["before"]["step_ms"] / _arm(results[json.dumps(change)])["step_ms"], 2))
                           for change in also]
            rows.append(row)
            progress(f"{profile:6s} {case.label:24s} {row['before']['step_ms']:8.1f} -> {row['after']['step_ms']:8.1f} "
                     f"ms/step ({row['speedup']:.2f}x" + "".join(f"; {json.dumps(a['train'])} {a['step_ms']:.1f} ms, "
                                                                  f"{a['speedup']:.2f}x" for a in row["also"]) + ")")
    return {"commit": sha, "profile": profile, "rounds": rounds, "steps_timed": steps, "warmup": warmup,
            "threads": threads, "also": list(also), "rows": rows,
            "load": {"start": load_at_start, "end": _load_average()},
            "wall_time_s": round(time.perf_counter() - started, 1)}


def _load_average() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return []


def default_path(device: torch.device) -> Path:
    return BENCH_DIR / f"{device.type}.json"


BENCH_KEYS = ("kind", "created", "commit", "device", "rows", "ratios", "correlation", "projection", "wall_time_s")


def read_bench_record(path: Path) -> dict:
    """A bench record; a file that is not one raises :class:`LmbookError` naming it."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise LmbookError(f"{path} is not a readable bench record ({type(exc).__name__}); delete it or write it "
                          "again with: python -m lmcore.bench") from exc
    missing = [key for key in BENCH_KEYS if not isinstance(record, dict) or key not in record]
    if missing or record.get("kind") != "bench":
        raise LmbookError(f"{path} is not a bench record (missing {', '.join(missing) or 'kind: bench'}); delete it "
                          "or write it again with: python -m lmcore.bench")
    return record


def load_bench_records(folder: Path = BENCH_DIR) -> list[dict]:
    """The committed bench records (``results/bench/*.json``), each with its ``path``."""
    records = []
    for path in sorted(Path(folder).glob("*.json")):
        record = read_bench_record(path)
        record["path"] = str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)
        records.append(record)
    return records


#: what the book's appendix measures in each profile: (profiles, cases, timed steps, warm-up, options)
BOOK_BENCH = {
    "smoke": (("smoke",), ["fse", "jakab", "sanchez", "c3"], 1, 0, False),
    "cpu": (("cpu", "paper"), None, 2, 1, True),
    "paper": (("cpu", "paper"), None, 5, 2, True),
}


def book_bench(profile: str, device: torch.device) -> tuple[dict, bool]:
    """The bench record the book shows in ``profile`` on ``device``: measured once and kept as
    ``<runs>/<profile>/bench/<device type>.json``, reused while the code fingerprint, the device's
    name and the thread count are unchanged. Returns ``(record, reused)``."""
    path = runs_root() / profile / "bench" / f"{device.type}.json"
    here = describe_device(device)
    if path.exists():
        try:
            record = read_bench_record(path)
        except LmbookError:  # a cut-short cache: measure again
            record = None
        if record and record.get("code_fingerprint") == code_fingerprint() and all(
                record["device"].get(k) == here[k] for k in ("name", "threads")):
            return record, True
    profiles, labels, steps, warmup, options = BOOK_BENCH[profile]
    record = run_bench(profiles, labels, device, steps, warmup, options, progress=lambda line: None)
    record["book_profile"] = profile
    write_json_atomic(path, record)
    return record, False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmcore.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", nargs="+", choices=PROFILES, default=["cpu", "paper"],
                        help="settings to measure (default: cpu paper)")
    parser.add_argument("--methods", nargs="+", metavar="NAME",
                        help="cases to measure, by method or label (default: all): "
                             + ", ".join(sorted({c.method for c in CASES})))
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per case (median; default 2)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    parser.add_argument("--options", action="store_true", help="also the other precision and the other memory layout for "
                        + " and ".join(OPTION_CASES))
    parser.add_argument("--compile", action="store_true", help="with --options: also torch.compile (slow to compile)")
    parser.add_argument("--against", metavar="COMMIT", help="also time each case's step under the code of COMMIT and "
                        "under this tree's, in two worker processes asked in turn (on the CPU)")
    parser.add_argument("--rounds", type=int, default=3, help="with --against: turns of each side per case (default 3)")
    parser.add_argument("--also", action="append", default=[], metavar="KEY=VALUE",
                        help="with --against: also this tree's step with a training setting changed, e.g. precision=bf16")
    parser.add_argument("--out", type=Path, help="record path (default: results/bench/<device type>.json)")
    parser.add_argument("--no-write", action="store_true", help="print the tables, write no record")
    args = parser.parse_args(argv)
    known = {c.method for c in CASES} | {c.label for c in CASES}
    unknown = [m for m in args.methods or [] if m not in known]
    if unknown:
        parser.error(f"unknown method {unknown[0]!r} (known: {', '.join(sorted({c.method for c in CASES}))})")
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    if args.compile and not args.options:
        parser.error("--compile measures an option: give --options too")
    if (args.also or args.rounds != 3) and not args.against:
        parser.error("--also and --rounds belong to --against COMMIT")
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    try:
        check_environment()  # every LMBOOK_* variable and torchrun's: a bad one is one line, exit 2
        device = select_bench_device(args.device)
        against = None
        if args.against:
            if device.type != "cpu":
                raise ConfigError("--against times the CPU step (the worker processes run on the CPU): give --device cpu")
            against = {"commit": args.against, "profile": "cpu" if "cpu" in args.profiles else args.profiles[0],
                       "rounds": args.rounds, "steps": max(args.steps, 3), "warmup": args.warmup,
                       "also": [parse_setting(text) for text in args.also]}
        record = run_bench(args.profiles, args.methods, device, args.steps, args.warmup, args.options, args.compile,
                           progress=lambda line: print(line, flush=True), against=against)
        record["command"] = " ".join(["python -m lmcore.bench", *(argv if argv is not None else sys.argv[1:])])
    except ConfigError as exc:
        return user_error(parser.prog, exc)
    except LmbookError as exc:
        print(f"lmcore.bench: {exc}", file=sys.stderr)
        return 1
    for ratio in record["ratios"]:
        print(f"{ratio['profile']:6s} {ratio['what']}: {ratio['ratio']}")
    for row in record.get("against", {}).get("rows", []):
        print(f"{row['profile']:6s} {row['case']}: step before / after (commit {record['against']['commit'][:7]} / "
              f"this tree): {row['speedup']}")
    for profile, entries in record["projection"].items():
        for entry in entries:
            print(f"{profile} profile, chapter {entry['chapter']}: {entry['runs']} headline runs, {entry['steps']} steps, "
                  f"{entry['hours']} h of training on {record['device']['name']}")
    if not args.no_write:
        path = args.out or default_path(device)
        write_json_atomic(path, record)
        print(f"wrote {path} ({record['wall_time_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
