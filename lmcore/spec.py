"""A run, resolved once: :class:`RunSpec` holds the method, the profile, the run's name, its
complete checked config, its parent runs (each a :class:`RunSpec` of its own) and how it is
evaluated. The command line, the chapters (through :func:`lmcore.training.run_method`), the
tools and the benchmark build one, and what trains, reuses, finds or prices a run takes it::

    spec = RunSpec.resolve("c3", "cpu", "k30", {"method": {"num_landmarks": 30}, "parents": {...}})
    spec.config["method"]["num_landmarks"]      # 30
    spec.parents["pairs"].config                 # the Jakab run it starts from, resolved too
    run_spec(spec)                               # lmcore.training.runs: train or reuse it

The settings come from the method's profile (:func:`lmcore.experiments.method_settings`), the
overrides are checked against them (:func:`resolve_config`: unknown key, wrong type, impossible
value, a test split, a parent that does not share the settings the method shares with it are
each a :class:`~lmcore.errors.ConfigError`), and the training settings' schema is
:class:`lmcore.config.TrainConfig`, beside the ``method`` ranges each method declares.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .config import TrainConfig, check_overrides, deep_update, normalise_numbers
from .data.sources import get_source
from .errors import ConfigError
from .evaluation import RegressionOptions
from .experiments import method_settings
from .methods import get_method
from .profiles import resolve_profile

#: a run name is a folder name under ``runs/``
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}")
#: splits that only score a detector: a run never trains on them
TEST_SPLITS = ("test_mtfl", "test_aflw", "test")
#: a data source's other splits that score its runs: LSPET-128's val is where a pose run's PCK is measured
SCORED_SPLITS = {"lspet128": ("val",)}


@dataclass(frozen=True)
class RunSpec:
    """One run, resolved: what :func:`lmcore.training.runs.run_spec` trains or reuses.

    ``config`` is complete (``data``, ``method``, ``train``, ``parents``) and checked; ``parents``
    maps each role of ``config["parents"]`` to the parent's own spec (same profile); ``options``
    and ``few_shot`` are the evaluation's settings (``few_shot``: ``{"sizes", "repeats"}`` or
    None), ``eval_subsample`` the budget's (every n-th image of each evaluation split)."""

    method: str
    profile: str
    name: str
    config: dict
    parents: dict = field(default_factory=dict)
    options: RegressionOptions = field(default_factory=RegressionOptions)
    few_shot: dict | None = None
    eval_subsample: int = 1

    @classmethod
    def resolve(cls, method: str, profile: str | None = None, name: str = "default", overrides: dict | None = None,
                options: RegressionOptions = RegressionOptions(), few_shot: dict | None = None) -> "RunSpec":
        """The spec of run ``method/name`` in ``profile`` (default: ``$LMBOOK_PROFILE``, else by the
        hardware) with ``overrides`` merged into the profile's settings; its parents are resolved
        with their own overrides and evaluated as parents are (default options, no few-shot)."""
        profile = resolve_profile(profile)
        check_run_name(name)
        config = _own_config(method, profile, overrides)
        parents = {role: cls.resolve(p["method"], profile, p["name"], p.get("overrides") or {})
                   for role, p in config["parents"].items()}
        spec = cls(method, profile, name, config, parents, options, few_shot,
                   method_settings(method).budget(profile).eval_subsample)
        spec.check_shared_with_parents()
        return spec

    @property
    def evaluation(self) -> dict:
        """The evaluation settings as a run record stores them (read back from its JSON, so that an
        unchanged request compares equal)."""
        return json.loads(json.dumps({"options": self.options.as_dict(), "few_shot": self.few_shot or {}}))

    def parent_step(self, role: str) -> int | None:
        """The kept checkpoint step at which the parent ``role`` is adopted (None: its final weights)."""
        return (self.config["parents"].get(role) or {}).get("step")

    def check_shared_with_parents(self) -> None:
        """Each parent's resolved settings must equal this run's where the method shares them
        (``shared_with_parents``): a mismatch is a :class:`ConfigError` before any parent trains."""
        ours = self.config["method"]
        for role, keys in get_method(self.method).shared_with_parents.items():
            parent = self.parents.get(role)
            if parent is None:
                continue
            theirs = parent.config["method"]
            differ = [k for k in keys if theirs.get(k) != ours[k]]
            if differ:
                raise ConfigError(f"the parent run 'parents.{role}' ({parent.method}/{parent.name}) differs from this "
                                  "run in " + ", ".join(f"method.{k} ({theirs.get(k)} vs {ours[k]})" for k in differ)
                                  + f": set 'parents.{role}.overrides' to match and give it its own "
                                  f"'parents.{role}.name'")


def resolve_config(method: str, profile: str, overrides: dict | None = None) -> dict:
    """The method's ``profile`` defaults with ``overrides`` merged in, after checking that every
    key exists and every value has the right type and range, and that its parents share what
    they must (:class:`ConfigError` otherwise): the config of :meth:`RunSpec.resolve`."""
    return RunSpec.resolve(method, profile, overrides=overrides).config


def _own_config(method: str, profile: str, overrides: dict | None) -> dict:
    cls = get_method(method)
    defaults = method_settings(method).default_config(profile)
    check_parent_roles(method, defaults["parents"], (overrides or {}).get("parents"))
    check_overrides(defaults, overrides)
    config = normalise_numbers(defaults, deep_update(defaults, overrides))
    TrainConfig.from_dict(config["train"])  # ranges of the training settings
    cls.check_config(config)
    check_training_split(config["data"])
    for role, parent in config["parents"].items():
        missing = {"method", "name"} - set(parent)
        if missing:
            raise ConfigError(f"parent run 'parents.{role}' needs {sorted(missing)}")
        step = parent.get("step")
        if step is not None and (not isinstance(step, int) or step <= 0):
            raise ConfigError(f"setting 'parents.{role}.step' must be a positive step of a kept checkpoint or null, "
                              f"got {step!r}")
    return config


def check_parent_roles(method: str, roles: dict, overrides) -> None:
    """``parents.<role>`` overrides must name the parent runs the method's settings have (a method
    without parents has none): an unknown role is one line, never an extra run trained beside it."""
    if isinstance(overrides, dict) and overrides and not roles:  # with parents, check_overrides names a wrong role
        raise ConfigError(f"unknown setting 'parents.{next(iter(overrides))}': {method} trains from no parent run "
                          "(its settings have no parents)")


def check_training_split(data: dict) -> None:
    """``data.split`` must be a split its source offers and not one its runs are scored on (training
    on the test faces, or on LSPET's val, would make every number the book prints optimistic)."""
    split, source = data["split"], data["source"]
    scored = TEST_SPLITS + SCORED_SPLITS.get(source, ())
    if split in scored:
        if split in TEST_SPLITS:
            what, choose = f"the test split '{split}'", "e.g. unsup_train"
        else:
            what, choose = f"'{split}', the split {source} runs are scored on", _training_splits(source)
        raise ConfigError(f"setting 'data.split' is {what}: runs never train on the images they are scored on; "
                          f"choose a training split ({choose})")
    offered = get_source(source).splits
    if split not in offered:
        raise ConfigError(f"setting 'data.split' must be a split of '{source}' ({_training_splits(source)}), "
                          f"got '{split}'")


def _training_splits(source: str) -> str:
    scored = TEST_SPLITS + SCORED_SPLITS.get(source, ())
    return ", ".join(s for s in sorted(get_source(source).splits) if s not in scored)


def check_run_name(name: str) -> str:
    """A run name is a folder name under ``runs/``: letters, digits, '.', '_' and '-' only."""
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name) or ".." in name:
        shown = repr(name) if len(repr(name)) <= 100 else repr(name)[:97] + "..."
        raise ConfigError(f"run name {shown} must be letters, digits, '.', '_' or '-' (at most 81, no '..'), "
                          "so that the run stays inside the runs folder")
    return name
