"""Run configurations: merging overrides into a method's defaults, and refusing bad ones.

A run's configuration is a nested dict ``{"data": {...}, "method": {...}, "train": {...},
"parents": {...}}`` whose defaults come from the method's profile
(:meth:`lmcore.experiments.MethodSettings.default_config`). A user's overrides (the command line's
``--set a.b=value``, a chapter's variants) are merged with :func:`deep_update` after
:func:`check_overrides` has accepted them: every key must exist in the defaults (a typo is an
error with a suggestion, never a silently different run) and every value must have the
default's type (an integer setting refuses ``2.5`` and ``"abc"``). Value ranges are declared
once per setting (:class:`Between`, :class:`OneOf`, :class:`ListOf`; each method's ``ranges``)
and checked in one place (:func:`check_ranges`): a negative, NaN or absurdly large value is one
line, never a run that trains on it or a hang followed by an allocation traceback.
"""
from __future__ import annotations

import copy
import difflib
import math
import re
from dataclasses import asdict, dataclass, fields
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


# --------------------------------------------------------------------------- value ranges


@dataclass(frozen=True)
class Between:
    """A finite number in ``[low, high]`` (either bound may be None); ``above`` excludes ``low``
    itself (``Between(0, above=True)``: strictly positive)."""

    low: float | None = None
    high: float | None = None
    above: bool = False

    def problem(self, value) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return "a finite number"
        low_ok = self.low is None or (value > self.low if self.above else value >= self.low)
        if low_ok and (self.high is None or value <= self.high):
            return None
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.above else '['}{self.low:g}, {self.high:g}]"
        if self.low is not None:
            return f"{'>' if self.above else '>='} {self.low:g}"
        return f"<= {self.high:g}"


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of values."""

    choices: tuple

    def __init__(self, *choices):
        object.__setattr__(self, "choices", tuple(choices))

    def problem(self, value) -> str | None:
        return None if value in self.choices else "one of " + ", ".join(repr(c) for c in self.choices)


@dataclass(frozen=True)
class ListOf:
    """A list of ``min_length`` to ``max_length`` items, each within ``item``."""

    item: Any
    min_length: int = 0
    max_length: int = 64

    def problem(self, value) -> str | None:
        if not isinstance(value, (list, tuple)) or not self.min_length <= len(value) <= self.max_length:
            if self.min_length == self.max_length:
                return f"a list of {self.min_length} items"
            return f"a list of {self.min_length} to {self.max_length} items"
        for v in value:
            inner = self.item.problem(v)
            if inner:
                return f"a list of items each {inner}"
        return None


def check_ranges(values: dict, ranges: dict, prefix: str = "") -> None:
    """Raise :class:`ConfigError` (one line: the key, the bad value, what is allowed) for the first
    value of ``values`` outside its declared range; nested groups (``{"warp": {...}}``) are
    checked against nested range dicts. Keys without a declared range are not checked here (a
    test requires every setting of every profile to have one)."""
    for key, rule in ranges.items():
        if key not in values:
            continue
        value = values[key]
        if isinstance(rule, dict):
            if isinstance(value, dict):
                check_ranges(value, rule, f"{prefix}{key}.")
            continue
        if value is None and getattr(rule, "optional", False):
            continue
        problem = rule.problem(value)
        if problem:
            shown = repr(value)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            raise ConfigError(f"setting '{prefix}{key}' must be {problem}, got {shown}")


def unranged_keys(values: dict, ranges: dict, prefix: str = "") -> list[str]:
    """The non-boolean settings of ``values`` without a declared range (for the completeness test)."""
    missing = []
    for key, value in values.items():
        rule = ranges.get(key)
        if isinstance(value, dict) and value:
            missing += unranged_keys(value, rule if isinstance(rule, dict) else {}, f"{prefix}{key}.")
        elif rule is None and not isinstance(value, bool):
            missing.append(prefix + key)
    return missing


@dataclass(frozen=True)
class Optional:
    """``None``, or a value within ``rule``."""

    rule: Any
    optional: bool = True

    def problem(self, value) -> str | None:
        return None if value is None else self.rule.problem(value)


# --------------------------------------------------------------------------- the train.* settings

@dataclass
class TrainConfig:
    """Optimisation settings shared by every method (method settings live in the method's config)."""

    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    weight_decay_on: str = "all"  # all parameters, or conv_weights: convolution kernels only (Jakab's code)
    optimizer: str = "adam"  # adam (L2 weight decay, as the papers' regulariser) or adamw
    betas: tuple[float, float] = (0.9, 0.999)
    lr_milestones: tuple[int, ...] = ()  # steps at which the learning rate is multiplied by lr_gamma
    lr_gamma: float = 0.1
    warmup_steps: int = 0
    grad_clip: float | None = None
    # the norm of all gradients together, per_tensor (each tensor's: Jakab's code) or per_network
    # (each of the method's clip_groups: Sanchez's code clips its detector and generator apart)
    grad_clip_mode: str = "global"
    resolution: int = 80  # training images are resized to this (evaluation is always at full size)
    checkpoint_every: int = 500
    eval_every: int = 0  # 0: no learning curve
    keep_every: int = 0  # also keep a copy of the checkpoint every N steps (checkpoint-<step>.pt); 0: none
    log_every: int = 50
    seed: int = 0
    # GPU options (see the README's "Speed and scale" section and python -m lmcore.bench for their measured effect)
    precision: str = "fp32"  # fp32, or bf16: the forward pass under torch.autocast (bfloat16)
    channels_last: bool = False  # the networks' weights in channels-last memory format
    compile: bool = False  # torch.compile the method's forward pass
    # start from a committed reference's weights ("method/run" of the model zoo, lmcore.zoo) with a
    # fresh optimiser; "" starts from the method's initialisation
    init_from: str = ""

    @classmethod
    def from_dict(cls, values: dict, prefix: str = "train.") -> "TrainConfig":
        """Build and :meth:`validate` a config; errors name keys as ``prefix + key`` (``train.steps``)."""
        if not isinstance(values, dict):
            raise ConfigError(f"setting '{prefix.rstrip('.')}' must be a group of settings, got {_shown(values)}")
        known = [f.name for f in fields(cls)]
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
                raise ConfigError(f"unknown setting '{prefix}{key}'{hint} (known: {', '.join(sorted(known))})")
        given = values
        values = dict(values)
        for key in ("betas", "lr_milestones"):  # JSON lists -> tuples (anything else is reported by validate)
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        return cls(**values).validate(prefix, given)

    def validate(self, prefix: str = "train.", given: dict | None = None) -> "TrainConfig":
        """Raise :class:`ConfigError` (one line: the key, the bad value, what is allowed) for a
        value of a wrong type or outside its range; return ``self`` otherwise. ``given``: the
        values as the user wrote them, shown in the message (default: this config's)."""
        def fail(key: str, allowed: str) -> None:
            value = given[key] if given is not None and key in given else getattr(self, key)
            raise ConfigError(f"setting '{prefix}{key}' must be {allowed}, got {_shown(value)}")

        for key, low in _INT_MINIMA.items():
            value = getattr(self, key)
            high = _INT_MAXIMA.get(key)
            if not _is_int(value) or value < low or (high is not None and value > high):
                fail(key, f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]")
        for key, high in _NUMBER_MAXIMA.items():
            value = getattr(self, key)
            if not _is_number(value) or not math.isfinite(value) or value <= 0 or value > high:
                fail(key, f"a number in (0, {high:g}]")
        if not _is_number(self.weight_decay) or not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            fail("weight_decay", "a number >= 0")
        if self.grad_clip is not None and (not _is_number(self.grad_clip) or not math.isfinite(self.grad_clip)
                                           or self.grad_clip <= 0):
            fail("grad_clip", "null (no clipping) or a number > 0")
        if not isinstance(self.optimizer, str) or self.optimizer not in OPTIMIZERS:
            fail("optimizer", " or ".join(repr(o) for o in OPTIMIZERS))
        if not isinstance(self.grad_clip_mode, str) or self.grad_clip_mode not in CLIP_MODES:
            fail("grad_clip_mode", " or ".join(repr(o) for o in CLIP_MODES))
        if not isinstance(self.weight_decay_on, str) or self.weight_decay_on not in DECAY_TARGETS:
            fail("weight_decay_on", " or ".join(repr(o) for o in DECAY_TARGETS))
        if not isinstance(self.precision, str) or self.precision not in PRECISIONS:
            fail("precision", " or ".join(repr(p) for p in PRECISIONS))
        for key in ("channels_last", "compile"):
            if not isinstance(getattr(self, key), bool):
                fail(key, "true or false")
        if not isinstance(self.init_from, str) or (self.init_from and not re.fullmatch(r"[a-z0-9_]+/[A-Za-z0-9._-]+",
                                                                                       self.init_from)):
            fail("init_from", "a model of the zoo as method/run (python -m lmcore.detect --list), or \"\"")
        if (not isinstance(self.betas, (list, tuple)) or len(self.betas) != 2
                or not all(_is_number(b) and 0 <= b < 1 for b in self.betas)):
            fail("betas", "two numbers in [0, 1)")
        if (not isinstance(self.lr_milestones, (list, tuple))
                or not all(_is_int(m) and 1 <= m <= self.steps for m in self.lr_milestones)):
            fail("lr_milestones", f"a list of integer steps in [1, {self.steps}] ({prefix}steps)")
        return self

    def as_dict(self) -> dict:
        out = asdict(self)
        out["betas"] = list(self.betas)
        out["lr_milestones"] = list(self.lr_milestones)
        return out


OPTIMIZERS = ("adam", "adamw")
CLIP_MODES = ("global", "per_tensor", "per_network")
DECAY_TARGETS = ("all", "conv_weights")
PRECISIONS = ("fp32", "bf16")
_INT_MINIMA = {"steps": 1, "batch_size": 1, "checkpoint_every": 1, "log_every": 1, "eval_every": 0,
               "keep_every": 0, "warmup_steps": 0, "resolution": 8, "seed": 0}
# beyond these a run hangs or fails deep inside an allocation: refused as one line instead
_INT_MAXIMA = {"steps": 10**8, "batch_size": 65536, "resolution": 1024}
# the learning rate and its factor at each milestone: far above any paper's (Adam at 1e-4 to 1e-2),
# yet below where torch's optimisers overflow (lr=1e38 is a traceback inside Adam)
_NUMBER_MAXIMA = {"lr": 10.0, "lr_gamma": 10.0}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
