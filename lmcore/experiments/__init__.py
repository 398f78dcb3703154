"""The book's experiments: for each paper, the runs its chapter trains as headline results and
how the chapter evaluates them (few-shot sizes), stated once.

One module per paper (``fse``, ``zhang``, ``jakab``, ``sanchez``, ``c3``; ``protocol`` for
chapter 0's supervised yardstick) declares an :class:`Experiment`. The chapters
(:meth:`lmcore.book.chapter.Chapter.headline_runs`), the leaderboard, the speed benchmark and the
tools all read these declarations, so a run name, a K or a few-shot size is never copied from one
to another: a chapter that restated a few-shot size differently from another chapter sharing the
run would make that run evaluate again.

No module that trains imports this package (a test walks every method's import closure): the
method modules keep their settings, this layer names the runs made with them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import deep_update
from ..methods import get_method

#: the few-shot regression sizes of the face chapters (``None``: every regressor_train face), each
#: size fitted on ``repeats`` random draws
FACE_FEW_SHOT = {"sizes": [1, 5, 10, 100, 500, 1000, None], "repeats": 10}


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
        base = get_method(self.method).budget(profile).variant(self.variant) if self.variant else {}
        return deep_update(base, self.overrides)


@dataclass(frozen=True)
class Experiment:
    """A chapter's headline runs (in the order its tables show them) and the few-shot sizes it
    evaluates them at (None: no few-shot curve)."""

    chapter: str
    runs: tuple[BookRun, ...]
    few_shot: dict | None = None

    def run(self, name: str) -> BookRun:
        """The headline run called ``name``."""
        for run in self.runs:
            if run.name == name:
                return run
        raise KeyError(f"{self.chapter} has no headline run '{name}' (it has {', '.join(r.name for r in self.runs)})")


def num_landmarks(k: int) -> dict:
    """The overrides of a run with ``k`` landmarks."""
    return {"method": {"num_landmarks": k}}


from . import c3, fse, jakab, protocol, sanchez, zhang  # noqa: E402  (they use the classes above)

#: every chapter's experiment, in the book's order
EXPERIMENTS: dict[str, Experiment] = {e.chapter: e for e in (protocol.EXPERIMENT, fse.EXPERIMENT, zhang.EXPERIMENT,
                                                            jakab.EXPERIMENT, sanchez.EXPERIMENT, c3.EXPERIMENT)}
#: the headline runs of the method chapters in the book's order, then chapter 0's supervised
#: yardstick: the leaderboard's rows (the mean shape follows the yardstick)
BOOK_RUNS: tuple[BookRun, ...] = tuple(run for e in (*list(EXPERIMENTS.values())[1:], protocol.EXPERIMENT)
                                       for run in e.runs)
