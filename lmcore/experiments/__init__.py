"""The book's experiments: for each paper, its methods' settings per profile, its chapter's
budgets and tuning sweeps, the runs the chapter trains as headline results and how it evaluates
them (few-shot sizes), each stated once.

One module per paper (``fse``, ``zhang``, ``jakab``, ``sanchez`` with the cores it adapts in
``pose``, ``c3``; ``protocol`` for chapter 0's supervised yardstick) declares

* ``SETTINGS = {method: MethodSettings(method, profiles, budgets)}``: what
  :func:`method_settings` returns, which the run API (:func:`lmcore.training.run_method`), the
  chapters, the tools and the benchmark read; a method module holds the model, the losses and the
  meaning and ranges of its settings, never a profile (so no method imports another's profiles);
* ``EXPERIMENT = Experiment(chapter, runs, few_shot)``: the chapter's headline runs, which the
  chapters (:meth:`lmcore.book.chapter.Chapter.headline_runs`), the leaderboard and the speed
  benchmark read, so a run name, a K or a few-shot size is never copied from one to another.

The modules are found by listing this package: a new paper's module needs no line here. Each
chapter's fidelity table (the paper, the released code, our profiles, and why) is
:mod:`lmcore.experiments.fidelity`, one module per paper, checked by a test against these settings.

A run's identity holds its whole resolved config, so this package is left out of the code
fingerprint (:mod:`lmcore.training.code_identity`): editing a profile retrains exactly the runs
whose config it changes, not every run of every method.
"""
from __future__ import annotations

import importlib
import pkgutil

from . import base
from .base import FACE_FEW_SHOT, BookRun, Budget, Experiment, MethodSettings, num_landmarks

__all__ = ["BOOK_RUNS", "EXPERIMENTS", "FACE_FEW_SHOT", "SETTINGS", "BookRun", "Budget", "Experiment",
           "MethodSettings", "method_settings", "num_landmarks"]

#: every module of this package but ``base``, in name order (the ``fidelity`` tables, a package of
#: their own, read these settings and are imported where a chapter shows them)
MODULES = tuple(importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)
                if info.name != "base" and not info.ispkg)


def _collect_settings() -> dict[str, MethodSettings]:
    found: dict[str, MethodSettings] = {}
    for module in MODULES:
        for name, settings in getattr(module, "SETTINGS", {}).items():
            if name in found or name != settings.method:
                raise ValueError(f"{module.__name__}: settings of '{name}' declared twice or under another name")
            found[name] = settings
    return found


#: every method's settings, by registry name
SETTINGS: dict[str, MethodSettings] = _collect_settings()
base._REGISTERED.update(SETTINGS)

#: every chapter's experiment, in the book's order
EXPERIMENTS: dict[str, Experiment] = {e.chapter: e for e in sorted(
    (m.EXPERIMENT for m in MODULES if hasattr(m, "EXPERIMENT")), key=lambda e: e.chapter)}
#: the headline runs of the method chapters in the book's order, then chapter 0's supervised
#: yardstick: the leaderboard's rows (the mean shape follows the yardstick)
BOOK_RUNS: tuple[BookRun, ...] = tuple(run for e in (*list(EXPERIMENTS.values())[1:], *list(EXPERIMENTS.values())[:1])
                                       for run in e.runs)


def method_settings(method: str) -> MethodSettings:
    """The settings of the method registered as ``method`` (:class:`~lmcore.errors.ConfigError`
    for an unknown method, naming the choices)."""
    return base._settings_of(method)
