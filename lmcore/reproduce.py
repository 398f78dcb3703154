"""Reproducing a committed reference from its record: the smallest ``--set`` overrides of its
profile that give its config, and the command that trains it again.

    python -m lmcore.train --from-record results/zhang/k10.json

The overrides are computed against the profile as *this* ``lmcore`` defines it, so they are exact
whenever this code can still build the record's config. Settings added after the record was
written take today's defaults (:func:`predated_settings` names them: usually the earlier behaviour,
not always); a setting the code no longer has or can no longer reach is refused by
:func:`record_overrides`, naming the record's commit to check out.
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path

from .errors import ConfigError
from .experiments import method_settings
from .spec import resolve_config

_MISSING = object()


def _overrides(defaults: dict, config: dict) -> dict:
    out = {}
    for key, value in config.items():
        default = defaults.get(key, _MISSING) if isinstance(defaults, dict) else _MISSING
        # recurse where the command line does (check_overrides): into non-empty dicts of the defaults
        if isinstance(default, dict) and default and isinstance(value, dict):
            inner = _overrides(default, value)
            if inner:
                out[key] = inner
        elif default is _MISSING or value != default or type(value) is not type(default):
            out[key] = value
    return out


def _differences(a, b, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b), key=str)
        return [d for k in keys for d in _differences(a.get(k, _MISSING), b.get(k, _MISSING), f"{prefix}{k}.")]
    return [] if a == b and type(a) is type(b) else [prefix.rstrip(".")]


def _absent(resolved, config, prefix: str = "") -> list[str]:
    """Dotted keys of ``resolved`` that ``config`` lacks."""
    if not (isinstance(resolved, dict) and isinstance(config, dict)):
        return []
    return [d for k in sorted(resolved, key=str)
            for d in ([f"{prefix}{k}"] if k not in config else _absent(resolved[k], config[k], f"{prefix}{k}."))]


def predated_settings(record: dict) -> list[str]:
    """The settings this ``lmcore`` has that ``record`` predates (they take today's defaults when
    it is trained again)."""
    return _absent(resolve_config(record["method"], record["profile"], record_overrides(record)), record["config"])


def record_overrides(record: dict) -> dict:
    """The overrides of the record's profile that resolve to exactly its config. Raises
    :class:`ConfigError` naming the keys and the record's commit when this ``lmcore`` cannot."""
    method, profile = record["method"], record["profile"]
    defaults = method_settings(method).default_config(profile)
    overrides = _overrides(defaults, record["config"])
    commit = record.get("git_commit", "?")[:10]
    try:
        resolved = resolve_config(method, profile, overrides)
    except ConfigError as exc:
        raise ConfigError(f"this lmcore cannot build the config of {method}/{record.get('run_name')} ({exc}); "
                          f"check out commit {commit}, which trained it") from None
    absent = set(_absent(resolved, record["config"]))
    differ = [k for k in _differences(resolved, record["config"]) if k not in absent]
    if differ:
        raise ConfigError(f"this lmcore cannot build the config of {method}/{record.get('run_name')}: "
                          f"{', '.join(differ[:5])}{' ...' if len(differ) > 5 else ''} would differ; check out "
                          f"commit {commit}, which trained it")
    return overrides


def _assignments(defaults: dict, overrides: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in overrides.items():
        default = defaults.get(key) if isinstance(defaults, dict) else None
        path = f"{prefix}{key}"
        if isinstance(default, dict) and default and isinstance(value, dict):
            out += _assignments(default, value, f"{path}.")
            continue
        text = json.dumps(value)
        if isinstance(value, str):
            try:  # a plain word stays unquoted when it cannot be read as anything but a string
                json.loads(value)
            except json.JSONDecodeError:
                text = value
        out.append(f"{path}={text}")
    return out


def reproduction_command(record: dict, publish: bool = False) -> list[str]:
    """The ``python -m lmcore.train ...`` arguments, one ``--set`` per setting the record changed
    from its profile, that train the same config (and so the same run) again."""
    overrides = record_overrides(record)
    defaults = method_settings(record["method"]).default_config(record["profile"])
    argv = ["python", "-m", "lmcore.train", record["method"], "--profile", record["profile"],
            "--name", record.get("run_name", "default")]
    for assignment in _assignments(defaults, overrides):
        argv += ["--set", assignment]
    return argv + (["--publish"] if publish else [])


def reference_records(root: Path | str | None = None) -> list:
    """Every committed reference (``results/<method>/<run>.json``), by method and name."""
    from .methods import REGISTRY
    from .paths import RESULTS_DIR
    from .training.run_record import RunRecord

    root = Path(root or RESULTS_DIR)
    return [RunRecord.from_file(p) for method in sorted(REGISTRY) for p in sorted((root / method).glob("*.json"))]


def command_lines(argv: list[str]) -> str:
    """A command as shell lines short enough to read whole: the command and its options on the
    first line, then one ``--set`` per continued line."""
    head, rest, i = [], [], 0
    while i < len(argv):
        if argv[i] == "--set":
            rest.append(f"--set {shlex.quote(argv[i + 1])}")
            i += 2
        else:
            (rest if rest else head).append(shlex.quote(argv[i]))
            i += 1
    return " \\\n    ".join([" ".join(head)] + rest)


def reproduction_page(root: Path | str | None = None) -> str:
    """A markdown page: each committed reference with its numbers, where it was trained, and the
    command that trains it again (generated from its record, never copied by hand): one table per
    method, the commands spelled out in a collapsed block under it."""
    from .book.reporting import short_device

    lines = ["# Reproducing each reference", "",
             "Generated by `lmcore.reproduce` from the committed records when the book is built. Each "
             "reference trains again with one command, `python -m lmcore.train --from-record "
             "results/<method>/<run>.json` (add `--publish` to replace the committed record); the collapsed "
             "block under each table spells out the same run as the settings that differ from its profile. "
             "A run's parents (the pre-training a C3 or Sanchez run starts from) are trained first when "
             "they are missing.", ""]
    by_method: dict = {}
    for record in reference_records(root):
        by_method.setdefault(record.method, []).append(record)
    for method, records in by_method.items():
        lines += [f"## {method}", "", "| run | profile, steps | trained | forward error (%) | commit |",
                  "|---|---|---|---|---|"]
        commands = []
        for r in records:
            forward = r["metrics"].get("forward", {})
            errors = ", ".join(f"{s} {v['mean']:.2f}" for s, v in forward.items()) or "no face errors"
            lines.append(f"| **{r.run_name}** | {r.profile}, {r.get('steps'):,} | {r['wall_time_s'] / 60:.1f} min on "
                         f"{short_device(r['device'])} | {errors} | `{r['git_commit'][:10]}` |")
            commands += _spelled_out(method, r)
        lines += ["", f"````{{dropdown}} The commands behind the {method} references, spelled out",
                  ":class-container: lmbook-details", "", *commands, "````", ""]
    return "\n".join(lines)


def _spelled_out(method: str, record) -> list[str]:
    """``record``'s command lines for :func:`reproduction_page`'s collapsed block."""
    name = Path(str(record.path)).name
    out = [f"**{record.run_name}**: `python -m lmcore.train --from-record results/{method}/{name}`, that is:", ""]
    try:
        command = command_lines(reproduction_command(record))
    except ConfigError as exc:
        return out[:1] + ["", f"*Not buildable by this lmcore:* {exc}.", ""]
    out += ["```bash", command, "```", ""]
    predated = predated_settings(record)
    if predated:
        out += [f"The record predates {len(predated)} setting(s), which take today's defaults: "
                + ", ".join(f"`{k}`" for k in predated) + f". For the very run, check out "
                f"`{record['git_commit'][:10]}` first.", ""]
    return out
