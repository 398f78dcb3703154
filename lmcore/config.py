"""Run configurations: merging overrides into a method's defaults, and refusing bad ones.

A run's configuration is a nested dict ``{"data": {...}, "method": {...}, "train": {...},
"parents": {...}}`` whose defaults come from the method's profile
(:meth:`lmcore.methods.LandmarkMethod.default_config`). A user's overrides (the command line's
``--set a.b=value``, a chapter's variants) are merged with :func:`deep_update` after
:func:`check_overrides` has accepted them: every key must exist in the defaults (a typo is an
error with a suggestion, never a silently different run) and every value must have the
default's type (an integer setting refuses ``2.5`` and ``"abc"``). Value ranges are checked
where the values are used (``TrainConfig``, each method's ``check_config``).
"""
from __future__ import annotations

import copy
import difflib
from typing import Any

from .errors import ConfigError


def deep_update(base: dict, overrides: dict | None) -> dict:
    """Copy of ``base`` with ``overrides`` merged in, nested dicts merged key by key."""
    out = copy.deepcopy(base)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a group of settings"
    return type(value).__name__


def _fits(default: Any, value: Any) -> bool:
    """Whether ``value`` may replace ``default`` (JSON types; an int is a valid number)."""
    if default is None:  # an optional number (e.g. grad_clip)
        return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            return False
        if default:  # elements typed like the default's first element
            return all(_fits(default[0], v) for v in value)
        return True
    if isinstance(default, dict):
        return isinstance(value, dict)
    return True


def check_overrides(defaults: dict, overrides: dict | None, prefix: str = "") -> None:
    """Raise :class:`ConfigError` unless every key of ``overrides`` exists in ``defaults`` with
    a value of the default's type (one line naming the key, the value and what is allowed)."""
    for key, value in (overrides or {}).items():
        path = f"{prefix}{key}"
        if key not in defaults:
            close = difflib.get_close_matches(str(key), [str(k) for k in defaults], n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            known = ", ".join(sorted(str(k) for k in defaults))
            raise ConfigError(f"unknown setting '{path}'{hint} (known here: {known})")
        default = defaults[key]
        if isinstance(default, dict) and default and isinstance(value, dict):
            check_overrides(default, value, f"{path}.")
            continue
        if not _fits(default, value):
            expected = "a number or null" if default is None else _type_name(default)
            if isinstance(default, (list, tuple)) and default and isinstance(value, (list, tuple)):
                expected = f"a list of {_type_name(default[0]).replace('an ', '').replace('a ', '')}s"
            raise ConfigError(f"setting '{path}' must be {expected}, got {value!r}")


def normalise_numbers(defaults: dict, config: dict) -> dict:
    """``config`` with integers given for float settings turned into floats (``lr=1`` -> 1.0), so
    that equal runs have equal identities whichever way a number was written."""
    out = {}
    for key, value in config.items():
        default = defaults.get(key) if isinstance(defaults, dict) else None
        if isinstance(default, dict) and isinstance(value, dict):
            out[key] = normalise_numbers(default, value)
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            out[key] = float(value)
        else:
            out[key] = value
    return out


def parse_assignment(text: str) -> dict:
    """``a.b=value`` -> ``{"a": {"b": value}}``, the value parsed as JSON where it parses
    (``2`` is an integer, ``[700]`` a list, ``abc`` stays a string)."""
    import json

    if "=" not in text:
        raise ConfigError(f"expected KEY=VALUE, got '{text}'")
    key, raw = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"'{text}': the key must be dotted names such as train.steps")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    out: dict = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out
