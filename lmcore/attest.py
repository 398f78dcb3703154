"""Command line: is each committed record keyed by today's code, and can it be re-keyed without
retraining?

    python -m lmcore.attest                      # the state of every committed record (exit 1 if one is stale)
    python -m lmcore.attest --attest             # attest the stale ones: probes, re-key or label
    python -m lmcore.attest --attest results/zhang/k10.json

A committed record (``results/<method>/<run>.json``, ``results/tuning/<method>/<run>.json``) is

* **current**: the training identity today's code, data and parents give its config is the one it
  carries (comments, docstrings and layout never change it: :mod:`lmcore.training.code_identity`);
* **attested**: it was re-keyed to today's identity because its probes gave bit-identical weights
  under today's code (:mod:`lmcore.training.attestation`); the record keeps when, under which
  commit, against what, and the digests;
* **stale**: today's identity differs and nobody has looked: ``--attest`` decides;
* **changed**: its probes differ under today's code: today's code computes something else, so the
  record is kept as what it was (its commit trains it again) and labelled;
* **not attestable**: something other than the code differs (its data, its parents' or ancestor's
  weights) or the code that trained it is unknown; labelled with the reason.

Its numbers are **scored by today's protocol** when the evaluation code of the commit that scored
them computes what today's does, else by the protocol of that commit (said, never hidden).

A record is attested only by committed code (the evidence names a commit), so commit first.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .cli import OneLineParser
from .data.sources import get_source
from .errors import LmbookError
from .methods import REGISTRY
from .paths import PROJECT_ROOT, RESULTS_DIR, display_path
from .training.attestation import probe_requests, run_probes_at_commit, run_probes_here
from .training.code_identity import (SCHEME, changed_files, commit_tree, evaluation_manifest, fingerprint,
                                     lmcore_is_dirty, training_manifest)
from .training.records import config_hash, describe_device, git_commit, now_iso, write_record
from .training.run_record import RunRecord
from .training.runs import run_identity
from .zoo import record_path as zoo_record_path

PROG = "python -m lmcore.attest"
#: the record's field that holds a judgement on a record that could not be re-keyed
VERDICT_KEY = "attestation_verdict"
#: states a committed record may be in (see the module docstring)
STATES = ("current", "attested", "stale", "changed", "not attestable")


@dataclass
class RecordState:
    """A committed record's state under today's code."""

    path: Path
    record: RunRecord
    state: str
    detail: str = ""
    identity: str | None = None  # today's training identity, where it can be computed
    scored_by: str = ""  # "today's protocol", or the commit whose protocol scored it

    @property
    def key(self) -> tuple[str, str]:
        return self.record.method, self.record.run_name


def committed_paths(root: Path = RESULTS_DIR) -> list[Path]:
    """Every committed run record: references and tuning sweeps."""
    root = Path(root)
    found = [p for p in root.glob("*/*.json") if p.parent.name not in ("bench", "builds")]
    found += list(root.glob("tuning/*/*.json"))
    return sorted(found)


def published_records(root: Path = RESULTS_DIR) -> dict[tuple[str, str], RunRecord]:
    """The references by (method, run name): what a record's parent links point to."""
    out = {}
    for path in sorted(Path(root).glob("*/*.json")):
        if path.parent.name in ("bench", "builds", "tuning"):
            continue
        record = RunRecord.from_file(path)
        out[(record.method, record.run_name)] = record
    return out


def source_of(record: dict) -> str:
    """The data source a record trained on (records older than ``config.data`` name it in ``data``)."""
    return (record["config"].get("data") or {}).get("source") or record.get("data", {}).get("source") or "mtfl80"


def known_identities(record: dict) -> set[str]:
    """The identities a record has carried: its own and those it was re-keyed from."""
    return {record.get("identity")} | {a.get("from_identity") for a in record.get("attested", [])} - {None}


def _data_matches(record: dict) -> bool:
    """Whether today's data is what the record trained on (before images were part of the data
    identity, its label files)."""
    source = get_source(source_of(record))
    keyed = record.get("data", {}).get("fingerprint")
    if record.get("identity_scheme", 1) >= SCHEME:
        return keyed == source.fingerprint()
    return keyed == source.labels_sha256()


def today_identity(record: RunRecord, published: dict) -> tuple[str | None, str]:
    """The training identity today's code, data, parents and ancestor give the record's config,
    or ``(None, why not)``."""
    parents = {}
    for role, link in (record.get("parents") or {}).items():
        parent = published.get((link["method"], link["run_name"]))
        if parent is None or link["identity"] not in known_identities(parent):
            return None, f"its parent run {link['method']}/{link['run_name']} was retrained since (it started from " \
                         f"@{link['identity']}, the committed one is @{parent.get('identity') if parent else 'missing'})"
        parent_identity, why = today_identity(parent, published)
        if parent_identity != parent.get("identity"):
            return None, f"its parent run {link['method']}/{link['run_name']} is not current ({why or 'attest it first'})"
        parents[role] = parent
    init = record["config"]["train"].get("init_from")
    now = None
    if init:  # the ancestor's record names its weights (a lineage's superseded weights leave the zoo)
        path = zoo_record_path(init)
        now = RunRecord.from_file(path).get("weights_sha256") if path.is_file() else None
        if now is None:
            return None, f"its ancestor {init} is no longer in the zoo"
        if now != (record.get("ancestor") or {}).get("weights_sha256"):
            return None, f"its ancestor {init} was replaced by other weights since"
    if not _data_matches(record):
        return None, "it trained on other data than today's (its data fingerprint differs)"
    return config_hash(run_identity(record.method, record.profile, record.config, parents, init_sha256=now)), ""


def _scored_by(record: dict) -> tuple[str, dict | None]:
    """Which protocol scored the record's numbers: ``("today's protocol", manifest)`` or ``("the
    protocol of commit X", its manifest)``; the manifest is None where it cannot be known."""
    source = source_of(record)
    today = evaluation_manifest(record["method"], source)
    if record.get("evaluation_code"):
        kept = {k: record["evaluation_code"][k] for k in ("files", "functions")}
    else:
        try:
            kept = evaluation_manifest(record["method"], source, commit_tree(record["git_commit"].split("+")[0]))
        except (LookupError, LmbookError):
            return "an unknown protocol", None
    if fingerprint(kept) == fingerprint(today):
        return "today's protocol", kept
    return f"the protocol of commit {record.get('git_commit', '?')[:10]}", kept


def state_of(path: Path, record: RunRecord, published: dict) -> RecordState:
    """A committed record's state under today's code (see the module docstring)."""
    scored_by = _scored_by(record)[0]
    if not record.get("identity"):
        return RecordState(path, record, "not attestable", "it carries no identity (recorded before runs were keyed)",
                           scored_by=scored_by)
    identity, why = today_identity(record, published)
    if identity is not None and identity == record.get("identity"):
        attested = [a for a in record.get("attested", []) if a.get("to_identity") == identity]
        if attested:
            last = attested[-1]
            return RecordState(path, record, "attested", f"re-keyed {last['created'][:10]} under {last['git_commit'][:10]}"
                               f" against {last['against']}", identity, scored_by)
        return RecordState(path, record, "current", "", identity, scored_by)
    verdict = record.get(VERDICT_KEY)
    if verdict:
        return RecordState(path, record, verdict["state"], verdict["reason"], identity, scored_by)
    if identity is None:
        return RecordState(path, record, "stale", why, None, scored_by)
    changed = changed_files(record.get("code_files"), training_manifest(record.method, source_of(record))["files"]) \
        if record.get("identity_scheme", 1) >= SCHEME else []
    detail = ("its code changed: " + ", ".join(f.removeprefix("lmcore/") for f in changed[:5])) if changed else \
        "keyed before today's rules" if record.get("identity_scheme", 1) < SCHEME else "its identity differs"
    return RecordState(path, record, "stale", detail, identity, scored_by)


def states(root: Path = RESULTS_DIR, paths: list[Path] | None = None) -> list[RecordState]:
    """The state of every committed record (or of ``paths``)."""
    published = published_records(root)
    return [state_of(p, RunRecord.from_file(p), published) for p in (paths or committed_paths(root))]


# --------------------------------------------------------------------------- attesting


def _parent_requests(record: RunRecord, published: dict) -> dict:
    """The record's parents as probe requests describe them (each built from its own config)."""
    out = {}
    for role, link in (record.get("parents") or {}).items():
        parent = published[(link["method"], link["run_name"])]
        out[role] = {"method": parent.method, "config": parent.config, "parents": _parent_requests(parent, published)}
    return out


def _label(path: Path, record: RunRecord, state: str, reason: str, commit: str) -> RunRecord:
    record[VERDICT_KEY] = {"state": state, "reason": reason, "git_commit": commit, "created": now_iso()}
    return RunRecord(write_record(path, record), path=path)


def attest(path: Path, published: dict, commit: str, log=print) -> RecordState:
    """Attest one stale committed record under today's (committed) code: run its probes, then
    re-key it (bit-identical weights) or label it (see the module docstring); returns its new state."""
    record = RunRecord.from_file(path)
    current = state_of(path, record, published)
    if current.state != "stale":
        return current
    short = commit[:10]
    if current.identity is None:
        return state_of(path, _label(path, record, "not attestable", current.detail, commit), published)
    trained_by = (record.get("git_commit") or "unknown").split("+")[0]
    if record.get("lmcore_dirty") is not False or trained_by == "unknown":
        reason = "the code that trained it is not known to be its commit's (uncommitted or unrecorded changes)"
        return state_of(path, _label(path, record, "not attestable", reason, commit), published)
    if record.get("device", {}).get("type", "cpu") != "cpu":
        reason = "it trained on a GPU, where training is not bit-identical from run to run"
        return state_of(path, _label(path, record, "not attestable", reason, commit), published)
    threads = int(record.get("device", {}).get("threads") or 1)
    requests = probe_requests(record.method, record.config, _parent_requests(record, published), threads)
    started = time.perf_counter()
    try:
        today = run_probes_here(requests)
    except (KeyError, TypeError, ValueError, RuntimeError, LmbookError) as exc:
        reason = (f"today's code cannot train its config ({type(exc).__name__}: {str(exc)[:80]}): it predates a "
                  f"setting without a default; its commit {trained_by[:10]} trains it again")
        log(f"{display_path(path)}: not attestable ({reason})")
        return state_of(path, _label(path, record, "not attestable", reason, commit), published)
    stored = record.get("attestation")
    same_machine = stored and stored.get("cpu") == _cpu() and stored.get("torch") == torch.__version__
    if same_machine and set(stored["probes"]) == set(today):
        against, then = "its own probes", stored["probes"]
    else:
        try:
            then = run_probes_at_commit(trained_by, requests)
        except (LookupError, RuntimeError) as exc:
            return state_of(path, _label(path, record, "not attestable", f"its commit's probes could not run ({exc})", commit),
                            published)
        against = f"the code of commit {trained_by[:10]}"
    seconds = time.perf_counter() - started
    digests = {name: r["weights_sha256"] for name, r in today.items()}
    differ = [name for name in today if then[name]["weights_sha256"] != digests[name]]
    if differ:
        reason = (f"today's code ({short}) trains other weights than {against} in the "
                  f"{' and '.join(differ)} probe{'s' if len(differ) > 1 else ''}: its code changed what it computes")
        log(f"{display_path(path)}: changed ({seconds:.0f} s of probes)")
        return state_of(path, _label(path, record, "changed", reason, commit), published)
    rekeyed = _rekey(record, current.identity, published, {
        "created": now_iso(), "git_commit": commit, "from_identity": record["identity"], "to_identity": current.identity,
        "against": against, "threads": threads, "cpu": _cpu(), "torch": torch.__version__,
        "probes": {name: {"steps": r["steps"], "weights_sha256": r["weights_sha256"]} for name, r in today.items()},
        "probe_seconds": round(seconds, 1)})
    write_record(path, rekeyed)
    log(f"{display_path(path)}: attested against {against} ({seconds:.0f} s of probes)")
    return state_of(path, RunRecord.from_file(path), published)


def _cpu() -> str:
    return describe_device(torch.device("cpu"))["cpu"]


def _rekey(record: RunRecord, identity: str, published: dict, evidence: dict) -> dict:
    """The record keyed by today's identity, with the evidence that allowed it."""
    out = dict(record)
    source = source_of(record)
    manifest = training_manifest(record.method, source)
    _, kept = _scored_by(record)
    out.pop(VERDICT_KEY, None)
    out.update({"identity": identity, "identity_scheme": SCHEME, "code_fingerprint": fingerprint(manifest),
                "code_files": manifest["files"], "attested": list(record.get("attested", [])) + [evidence]})
    out["data"] = dict(record["data"], fingerprint=get_source(source).fingerprint())
    out["parents"] = {role: dict(link, identity=published[(link["method"], link["run_name"])]["identity"])
                      for role, link in (record.get("parents") or {}).items()}
    if kept is not None:
        out["evaluation_code"] = {"fingerprint": fingerprint(kept), **kept}
    return out


def computing_files() -> list[str]:
    """Every file that trains or scores some run (the closures of every method on every data
    source it trains on): what must be committed for evidence that names a commit."""
    files: set[str] = set()
    for method in REGISTRY:
        for source in ("mtfl80", "lspet128"):
            files |= set(training_manifest(method, source)["files"]) | set(evaluation_manifest(method, source)["files"])
    return sorted(files)


def retrained_alike(new: dict, old: dict) -> dict | None:
    """The evidence that ``new``, a fresh retrain of the reference ``old`` (same method, name and
    profile) under today's code, computes what ``old`` did: its recorded numbers equal to the last
    digit and its learning curve step for step; None where they differ. Such a retrain is the
    strongest attestation there is (every step, not the first fifty), e.g. where today's config
    spells out a setting added later whose default is the old behaviour, which moves the identity."""
    same_run = all(new.get(k) == old.get(k) for k in ("method", "run_name", "profile", "steps"))
    if not same_run or new.get("metrics") != old.get("metrics") or not _same_curve(new, old):
        return None
    return {"created": now_iso(), "git_commit": git_commit(), "from_identity": old["identity"],
            "to_identity": new["identity"], "against": f"a full retrain ({new['steps']} steps: every number equal)",
            "threads": int(new.get("device", {}).get("threads") or 1), "cpu": _cpu(), "torch": torch.__version__,
            "probes": {}, "probe_seconds": round(float(new.get("wall_time_s") or 0.0), 1)}


def _same_curve(new: dict, old: dict) -> bool:
    """Whether the two records' learning curves (``history``) agree at every point on every value
    both record, times left out (a later lmcore records more values per point)."""
    a, b = new.get("history") or [], old.get("history") or []
    return len(a) == len(b) and all(
        x[k] == y[k] for x, y in zip(a, b) for k in set(x) & set(y) if "time" not in k)


def carry_identities(new: dict, old: dict) -> dict:
    """``new`` answering also to every identity ``old`` answered to, with the evidence of
    :func:`retrained_alike` (so that records whose parent is ``old`` stay linked); raises
    :class:`LmbookError` where the retrain computed something else."""
    evidence = retrained_alike(new, old)
    if evidence is None:
        raise LmbookError(f"{new['method']}/{new['run_name']}: the retrain's numbers differ from the published "
                          "record's: it is another run, publish it as such")
    return dict(new, attested=list(old.get("attested", [])) + [evidence])


def publish_retrained(run_dir: Path) -> int:
    """``--retrained``: publish the run of ``run_dir`` over its reference with
    :func:`carry_identities` (the record and its zoo weights, :func:`lmcore.zoo_export.publish`)."""
    from .zoo_export import publish

    record_file = Path(run_dir) / "record.json"
    if not record_file.is_file():
        raise LmbookError(f"{run_dir} holds no finished run (no record.json)")
    new = RunRecord.from_file(record_file, run_dir=run_dir)
    target = RESULTS_DIR / new.method / f"{new.run_name}.json"
    if not target.is_file():
        raise LmbookError(f"{display_path(target)} does not exist: publish the run with python -m lmcore.train --publish")
    carried = RunRecord(carry_identities(new, RunRecord.from_file(target)), run_dir=run_dir, path=record_file)
    path, weights = publish(carried)
    print(f"published {display_path(path)} (bit-identical to the reference it replaces: its identities carried)"
          + (f"; weights {weights['dtype']}" if weights else ""))
    return 0


def _order(paths: list[Path], published: dict) -> list[Path]:
    """Parents before the records that start from them."""
    def depth(path: Path) -> int:
        record = RunRecord.from_file(path)
        links = record.get("parents") or {}
        return 1 + max((depth_of(link["method"], link["run_name"]) for link in links.values()), default=0)

    def depth_of(method: str, name: str) -> int:
        path = RESULTS_DIR / method / f"{name}.json"
        return depth(path) if path.exists() else 0

    return sorted(paths, key=lambda p: (depth(p), str(p)))


# --------------------------------------------------------------------------- the command


def table(found: list[RecordState]) -> str:
    width = max(len(display_path(s.path)) for s in found)
    lines = [f"{display_path(s.path):<{width}}  {s.state:<14}  {s.detail}" + (f" [scored by {s.scored_by}]"
             if s.scored_by != "today's protocol" else "") for s in found]
    counts = {state: sum(s.state == state for s in found) for state in STATES}
    lines.append(", ".join(f"{n} {state}" for state, n in counts.items() if n))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = OneLineParser(prog=PROG, description="The state of every committed run record under today's code; "
                                                  "--attest re-keys the stale ones that compute the same, without retraining.")
    parser.add_argument("records", nargs="*", help="committed record files (default: all under results/)")
    parser.add_argument("--attest", action="store_true", help="run the probes of the stale records and re-key or label them")
    parser.add_argument("--retrained", metavar="RUN_DIR", type=Path,
                        help="publish the finished run in RUN_DIR over the reference it retrained, carrying the "
                             "identities the reference answered to where every number is equal")
    args = parser.parse_args(argv)
    try:
        if args.retrained is not None:
            return publish_retrained(args.retrained)
        paths = [Path(p).resolve() for p in args.records] or committed_paths()
        for path in paths:
            if not path.is_file() or RESULTS_DIR.resolve() not in path.parents:
                print(f"{PROG}: {path} is not a committed record under results/", file=sys.stderr)
                return 2
        if args.attest:
            commit = git_commit()
            if commit == "unknown" or lmcore_is_dirty(files=computing_files()) is not False:
                print(f"{PROG}: attesting needs committed lmcore code (the evidence names a commit); commit first",
                      file=sys.stderr)
                return 1
            published = published_records()
            for path in _order(paths, published):
                attest(path, published, commit)
                published = published_records()  # a re-keyed parent is what its children now point to
        found = states(paths=paths)
    except LmbookError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    print(table(found))
    return 1 if any(s.state == "stale" for s in found) else 0


if __name__ == "__main__":
    sys.exit(main())
