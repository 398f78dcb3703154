"""What an experiment declares: a method's settings per profile and its chapter's budgets
(:class:`MethodSettings`, :class:`Budget`), a chapter's headline runs and the few-shot sizes it
evaluates them at (:class:`Experiment`, :class:`BookRun`)."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

from ..config import TrainConfig, deep_update
from ..errors import ConfigError
from ..methods import get_method
from ..profiles import PROFILES

#: the few-shot regression sizes of the face chapters (``None``: every regressor_train face), each
#: size fitted on ``repeats`` random draws
FACE_FEW_SHOT = {"sizes": [1, 5, 10, 100, 500, 1000, None], "repeats": 10}


@dataclass(frozen=True)
class Budget:
    """How much a chapter trains in one profile, beside the method's profile settings.

    eval_subsample: evaluations use every n-th image of each split (the smoke profile: 8).
    ablation_steps: length of the ablation runs (None: as long as the main runs, whose run the
        default row then reuses).
    ablation_train: other ``train`` settings of the ablation runs (e.g. a smaller batch).
    variants: named overrides a chapter trains besides the defaults (e.g. ``"k30"``,
        ``"mnist"``), so that no chapter holds a profile-dependent dict of its own.
    tuning_steps: length of the tuning sweep's runs (None: as long as the main runs).
    """

    eval_subsample: int = 1
    tuning_steps: int | None = None
    ablation_steps: int | None = None
    ablation_train: dict = field(default_factory=dict)
    variants: dict = field(default_factory=dict)

    def variant(self, name: str) -> dict:
        """The overrides of variant ``name`` (an empty dict if this profile has none)."""
        return copy.deepcopy(self.variants.get(name, {}))


@dataclass(frozen=True)
class MethodSettings:
    """A method's settings in each profile (``{profile: config}``, without the ``data`` and
    ``parents`` sections that :meth:`default_config` adds) and its chapter's budget per profile.

    An experiments module declares one per method it trains, in ``SETTINGS = {name: ...}``;
    :func:`lmcore.experiments.method_settings` finds it by the method's registry name."""

    method: str
    profiles: dict = field(hash=False, compare=False)
    budgets: dict = field(default_factory=dict, hash=False, compare=False)

    def default_config(self, profile: str) -> dict:
        """The complete settings of ``profile``: ``data``, ``method``, ``train``, ``parents``, so
        that every run's config is complete and checkable."""
        if profile not in self.profiles:
            raise ConfigError(f"method '{self.method}' has no profile '{profile}'; choose one of {sorted(self.profiles)}")
        cls = get_method(self.method)
        config = {"data": {"source": cls.data_source, "split": cls.train_split}, "parents": {},
                  "train": TrainConfig().as_dict()}  # every training setting, so that any can be overridden
        return deep_update(config, self.profiles[profile])

    def budget(self, profile: str) -> Budget:
        return self.budgets.get(profile, Budget())

    def ablation_config(self, profile: str, config: dict | None = None) -> dict:
        """The base config of a chapter's ablation runs in ``profile``: ``config`` (default: the
        profile's) shortened to the budget's ablation steps, with its other train settings."""
        config = config if config is not None else self.default_config(profile)
        budget = self.budget(profile)
        if budget.ablation_steps:
            config = get_method(self.method).shortened_config(config, budget.ablation_steps)
        return deep_update(config, {"train": budget.ablation_train})

    def tuning_config(self, profile: str) -> dict:
        """The base config of the tuning sweep in ``profile``: the profile's, shortened to the
        budget's tuning steps (see :meth:`~lmcore.methods.LandmarkMethod.shortened_config`)."""
        config = self.default_config(profile)
        steps = self.budget(profile).tuning_steps
        return get_method(self.method).shortened_config(config, steps) if steps else config

    def variant_config(self, profile: str, name: str) -> dict:
        """The profile's config with the budget's variant ``name`` applied; a variant that sets
        ``train.steps`` shortens the schedule first (see
        :meth:`~lmcore.methods.LandmarkMethod.shortened_config`)."""
        config = self.default_config(profile)
        overrides = self.budget(profile).variant(name)
        steps = overrides.get("train", {}).pop("steps", None)
        if steps:
            config = get_method(self.method).shortened_config(config, steps)
        return deep_update(config, overrides)

    def problems(self) -> list[str]:
        """What is wrong with this declaration (empty: nothing): a profile missing or unknown, a
        budget for an unknown profile."""
        found = []
        if set(self.profiles) != set(PROFILES):
            found.append(f"{self.method}: profiles {sorted(self.profiles)}, expected {sorted(PROFILES)}")
        found += [f"{self.method}: a budget for the unknown profile '{p}'" for p in self.budgets if p not in PROFILES]
        return found


#: every method's settings, filled by :mod:`lmcore.experiments` from its modules' ``SETTINGS``
_REGISTERED: dict[str, MethodSettings] = {}


def _settings_of(method: str) -> MethodSettings:
    get_method(method)  # an unknown name is a ConfigError naming the choices
    if method not in _REGISTERED:
        raise ConfigError(f"method '{method}' has no settings: declare them in an lmcore/experiments module "
                          "(SETTINGS = {name: MethodSettings(...)})")
    return _REGISTERED[method]


@dataclass(frozen=True)
class BookRun:
    """One headline run of a chapter: ``run_method(method, profile, name, overrides)`` with the
    method's budget ``variant`` (e.g. ``"k30"``) merged under ``overrides``."""

    label: str
    method: str
    name: str
    num_landmarks: int | None
    overrides: dict = field(default_factory=dict, hash=False, compare=False)
    variant: str | None = None
    chapter: str = ""

    @property
    def key(self) -> str:
        return f"{self.method}/{self.name}"

    def resolved_overrides(self, profile: str) -> dict:
        """The overrides that give this run in ``profile``: its budget variant's, then its own."""
        base = _settings_of(self.method).budget(profile).variant(self.variant) if self.variant else {}
        return deep_update(base, self.overrides)


@dataclass(frozen=True)
class Claim:
    """One of a paper's central claims, judged on the book's runs: the zoo models ``better`` have a
    lower forward error on ``split`` than ``worse`` (several models on a side: its seeds). Where a
    model was grown by the convergence campaign (a :class:`Lineage` starting from it), its
    lineage's latest continuation stands for it. ``paper`` says where the paper claims it."""

    text: str
    better: tuple[str, ...]
    worse: tuple[str, ...]
    paper: str = ""
    split: str = "test_mtfl"


@dataclass(frozen=True)
class Experiment:
    """A chapter's headline runs (in the order its tables show them), the few-shot sizes it
    evaluates them at (None: no few-shot curve) and the paper's central claims it judges."""

    chapter: str
    runs: tuple[BookRun, ...]
    few_shot: dict | None = None
    claims: tuple[Claim, ...] = ()

    def run(self, name: str) -> BookRun:
        """The headline run called ``name``."""
        for run in self.runs:
            if run.name == name:
                return run
        raise KeyError(f"{self.chapter} has no headline run '{name}' (it has {', '.join(r.name for r in self.runs)})")


def num_landmarks(k: int) -> dict:
    """The overrides of a run with ``k`` landmarks."""
    return {"method": {"num_landmarks": k}}


@dataclass(frozen=True)
class Lineage:
    """A run grown continuation after continuation until its tune_val curve flattens (the
    convergence campaign, ``tools/campaign.py``).

    Its continuations are published as ``results/<method>/<name>-<n>`` (n = 1, 2, ...), each a
    ``cpu`` run of ``chunk_steps`` steps that starts from the zoo weights of the one before
    (``train.init_from``, a fresh optimiser) at the profile's learning rate, with every
    step-counted setting of the method already passed (a loss weight that grows is grown) and a
    learning curve every ``eval_every`` steps. The first starts from the zoo model ``start``; a
    lineage without one first trains ``<name>-0``: the profile with ``seed`` overrides (e.g. a
    headline run's budget in another loss balance). ``overrides`` apply to every continuation.
    When the curve is flat (:data:`FLAT_POINTS` evaluations improving by less than
    :data:`FLAT_GAIN` points in all) or ``cap_hours`` of training are spent, one last continuation
    trains at the learning rate times ``decay`` so that the number it ends with is a converged one.
    """

    method: str
    name: str
    start: str | None
    cap_hours: float
    label: str = ""
    #: lineages of the same priority grow in turn (the one with the fewest hours first), before any later one
    priority: int = 1
    chunk_steps: int = 5000
    eval_every: int = 1000
    decay: float = 0.1
    overrides: dict = field(default_factory=dict, hash=False, compare=False)
    seed: dict = field(default_factory=dict, hash=False, compare=False)

    def continuation(self, n: int) -> str:
        return f"{self.name}-{n}"

    def continuation_overrides(self, previous: str, final: bool = False) -> dict:
        """The overrides of a continuation from the zoo model ``previous`` (``final``: the decayed one)."""
        cls = get_method(self.method)
        profile = _settings_of(self.method).default_config("cpu")
        passed = {key: ([0] * len(profile["method"][key]) if isinstance(profile["method"][key], list) else 0)
                  for key in cls.step_settings}
        # the decayed one drops its rate after its first step (a milestone is a step >= 1)
        train = {"init_from": previous, "steps": self.chunk_steps, "eval_every": self.eval_every,
                 "lr_milestones": [1] if final else [], "lr_gamma": self.decay, "keep_every": 0,
                 "checkpoint_every": min(500, self.chunk_steps)}
        return deep_update(deep_update({"method": passed, "train": train}, self.overrides), {"train": train})


#: a lineage's curve is flat when its last FLAT_POINTS tune_val evaluations improve by less than
#: FLAT_GAIN points (% of IOD) in all
FLAT_POINTS = 3
FLAT_GAIN = 0.2
