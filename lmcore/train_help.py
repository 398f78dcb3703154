"""What ``python -m lmcore.train`` tells a user: a word on each method, examples, every setting
with its allowed range (``--show``), the key a misplaced ``--set`` meant, and a run's duration.

No run imports this module: editing it retrains nothing.
"""
from __future__ import annotations

import json
import math

from .config import Between, ListOf, OneOf, Optional, TrainConfig
from .errors import ConfigError

#: a word on each method of :data:`lmcore.methods.REGISTRY` (a test keeps the two in step)
METHODS = {
    "fse": "Thewlis et al. 2017, factorized spatial embeddings (chapter 1)",
    "zhang": "Zhang et al. 2018, landmarks as structural representations (chapter 2)",
    "jakab": "Jakab et al. 2018, conditional image generation (chapter 3)",
    "pose": "a FAN trained with labels on LSPET-128 people: the core sanchez adapts",
    "sanchez": "Sanchez & Tzimiropoulos 2019, a frozen pose core adapted to faces (chapter 4)",
    "face_core": "a FAN trained with MTFL-80's face labels: chapter 4's core for shoes (§4.4)",
    "c3_flow": "C3's cross-image flow module, pre-trained on synthetic pairs",
    "c3": "Xu et al. 2020, cross-image cycle consistency (chapter 5; starts from jakab and c3_flow)",
    "supervised": "the supervised yardstick of chapter 0, trained with MTFL-80's labels",
}

EXAMPLES = """methods:
{methods}

examples:
  python -m lmcore.train fse --profile cpu --show                 # every setting, its value and range
  python -m lmcore.train fse --profile cpu --name k30 --set method.num_landmarks=30
  python -m lmcore.train --from-record results/zhang/k10.json     # a committed reference, again
  torchrun --nproc_per_node 4 -m lmcore.train zhang --profile paper

profiles: smoke (seconds, numbers meaningless), cpu (a 2-core machine's budget), paper (the
authors' settings, a GPU); LMBOOK_PROFILE=reference (the book's) trains in cpu, the profile every
committed reference was trained in."""


def epilog() -> str:
    """The text under ``--help``: each method, examples and the profiles."""
    width = max(len(name) for name in METHODS)
    return EXAMPLES.format(methods="\n".join(f"  {name:<{width}}  {text}" for name, text in METHODS.items()))


def describe(rule) -> str:
    """A range rule of :mod:`lmcore.config` in words (``in [1, 256]``, ``one of 'a', 'b'``)."""
    if isinstance(rule, Optional):
        return "null or " + describe(rule.rule)
    if isinstance(rule, Between):  # the words it refuses a value beyond its bounds with
        if rule.low is None and rule.high is None:
            return "a number"
        return rule.problem(-1e308 if rule.low is not None else 1e308)
    if isinstance(rule, ListOf):
        length = (f"{rule.min_length}" if rule.min_length == rule.max_length
                  else f"{rule.min_length} to {rule.max_length}")
        return f"a list of {length} items, each {describe(rule.item)}"
    if isinstance(rule, OneOf):
        return rule.problem(object())
    return ""


def train_range(key: str, values: dict | None = None) -> str:
    """What ``train.<key>`` takes beside the other ``values`` of ``train`` (default: the loop's
    defaults), in the words :meth:`TrainConfig.validate` refuses a value with."""
    try:
        TrainConfig.from_dict({**(values or {}), key: math.nan})
    except ConfigError as exc:
        return str(exc).split(" must be ", 1)[1].rsplit(", got ", 1)[0]
    return ""  # pragma: no cover - every train setting refuses NaN


def _method_ranges(method: str) -> dict:
    from .methods import get_method

    return get_method(method).ranges


def _lines(values: dict, ranges: dict, prefix: str, train: dict | None = None) -> list[tuple[str, str, str]]:
    out = []
    for key, value in values.items():
        rule = ranges.get(key) if isinstance(ranges, dict) else None
        if isinstance(value, dict) and value:
            out += _lines(value, rule if isinstance(rule, dict) else {}, f"{prefix}{key}.")
            continue
        allowed = train_range(key, train) if train is not None else ("true or false" if isinstance(value, bool) else
                                                  describe(rule) if rule is not None else "")
        out.append((f"{prefix}{key}", json.dumps(value), allowed))
    return out


def settings_lines(method: str, config: dict) -> list[str]:
    """Every setting of a resolved ``config`` as ``key = value  # allowed``, one a line, grouped
    (``method.*`` with the method's ranges, ``train.*`` with the loop's; ``data`` and ``parents``
    as they are: a run's data and parent runs are set by its method and profile)."""
    rows = _lines(config["method"], _method_ranges(method), "method.") + \
        _lines(config["train"], {}, "train.", train=config["train"])
    rows += [(group, json.dumps(values), "set by the method and profile")
             for group, values in config.items() if group not in ("method", "train")]
    width = min(max(len(f"{k} = {v}") for k, v, _ in rows), 60)
    return [f"{f'{k} = {v}':<{width}}  # {allowed}" if allowed else f"{k} = {v}" for k, v, allowed in rows]


def misplaced_key(assignment: str, config: dict) -> str | None:
    """For ``--set num_landmarks=30`` (a key outside every group): the dotted keys of ``config``
    that end with it (``method.num_landmarks``), as a hint; None where the key names a group."""
    key = assignment.split("=", 1)[0]
    if not key or key.split(".")[0] in config:
        return None
    found = [path for path in _paths(config) if path.endswith("." + key)]
    return ", ".join(f"'{path}'" for path in found) if found else None


def _paths(config: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in config.items():
        out += _paths(value, f"{prefix}{key}.") if isinstance(value, dict) and value else [f"{prefix}{key}"]
    return out


def duration(seconds: float) -> str:
    """A run's wall time in words: ``4.2 s``, ``3.5 min`` or ``1.2 h``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
