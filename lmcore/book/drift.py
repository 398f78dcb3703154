"""Settings drift: where a committed reference's config differs from the settings a chapter shows
beside it (today's ``cpu`` profile, with the headline run's own overrides), and the command that
trains the reference again with today's settings.

A reference is a run of the past; a chapter shows today's profile. When the two differ (a profile
edited since, a setting added since), every differing key is shown beside the reference, never
hidden, and the test that guards the headline references names the command that refreshes them.
"""
from __future__ import annotations

import shlex

import pandas as pd

from ..experiments import BOOK_RUNS, BookRun
from ..methods import get_method
from ..spec import resolve_config
from .references import REFERENCE_SETTINGS

_MISSING = object()
#: training settings added after earlier references were trained, whose default is what every run
#: did before they existed (f5e3789 added the two optional Jakab-code behaviours, d914219 the zoo's
#: starting weights); a method's own are its class's ``SETTINGS_ADDED_LATER``
TRAIN_SETTINGS_ADDED_LATER = {"grad_clip_mode": "global", "weight_decay_on": "all", "init_from": ""}


def _flat(config: dict, prefix: str = "") -> dict:
    """``{"a.b.c": value}`` of a nested config (lists and empty dicts are values)."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def today_config(record: dict, overrides: dict | None = None, profile: str = REFERENCE_SETTINGS) -> dict:
    """The config the reference's run would have today: ``profile`` with ``overrides`` (a headline
    run's own, :meth:`~lmcore.experiments.BookRun.resolved_overrides`; none for another run)."""
    return resolve_config(record["method"], profile, overrides or {})


def settings_drift(record: dict, overrides: dict | None = None, profile: str = REFERENCE_SETTINGS) -> list[dict]:
    """Each setting in which the reference's config differs from :func:`today_config`:
    ``{"setting", "reference", "today"}``. A setting the reference predates is drift too, unless the
    method declares that its value today is the behaviour every earlier run had
    (``SETTINGS_ADDED_LATER``)."""
    ours, theirs = _flat(record["config"]), _flat(today_config(record, overrides, profile))
    earlier = {f"method.{k}": v for k, v in getattr(get_method(record["method"]), "SETTINGS_ADDED_LATER", {}).items()}
    earlier.update({f"train.{k}": v for k, v in TRAIN_SETTINGS_ADDED_LATER.items()})
    rows = []
    for key in sorted(set(ours) | set(theirs)):
        mine, now = ours.get(key, _MISSING), theirs.get(key, _MISSING)
        if mine is _MISSING and key in earlier and now == earlier[key]:
            continue  # added since with the behaviour the reference had
        if mine != now or type(mine) is not type(now):
            rows.append({"setting": key, "reference": "(absent)" if mine is _MISSING else mine,
                         "today": "(absent)" if now is _MISSING else now})
    return rows


def refresh_command(run: BookRun, profile: str = REFERENCE_SETTINGS) -> str:
    """The command that trains a headline run with today's settings and publishes it over its reference."""
    sets = " ".join(f"--set {shlex.quote(f'{k}={v}')}" for k, v in sorted(_flat(run.resolved_overrides(profile)).items()))
    return f"python -m lmcore.train {run.method} --profile {profile} --name {run.name} {sets} --publish".replace("  ", " ")


def book_run_of(record: dict) -> BookRun | None:
    """The headline run a reference is, if it is one."""
    return next((r for r in BOOK_RUNS if r.method == record["method"] and r.name == record.get("run_name")), None)


def drift_table(records: list) -> pd.DataFrame:
    """One row per drifted setting of each reference (a headline run against its own overrides,
    another against the profile's defaults): what the chapter shows beside today's settings."""
    rows = []
    for record in records:
        run = book_run_of(record)
        overrides = run.resolved_overrides(REFERENCE_SETTINGS) if run else None
        rows += [{"run": f"{record['method']}/{record.get('run_name')}", "setting": row["setting"],
                  "the reference's": _cell(row["reference"]), f"today's ({REFERENCE_SETTINGS} profile)": _cell(row["today"])}
                 for row in settings_drift(record, overrides)]
    columns = ["run", "setting", "the reference's", f"today's ({REFERENCE_SETTINGS} profile)"]
    return pd.DataFrame(rows, columns=columns).set_index(["run", "setting"])


def _cell(value) -> str:
    return value if isinstance(value, str) else repr(value)
