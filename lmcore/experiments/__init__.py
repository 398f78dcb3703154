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

from . import c3, fse, jakab, protocol, sanchez, zhang
from .base import FACE_FEW_SHOT, BookRun, Experiment, num_landmarks

__all__ = ["BOOK_RUNS", "EXPERIMENTS", "FACE_FEW_SHOT", "BookRun", "Experiment", "num_landmarks"]

#: every chapter's experiment, in the book's order
EXPERIMENTS: dict[str, Experiment] = {e.chapter: e for e in (protocol.EXPERIMENT, fse.EXPERIMENT, zhang.EXPERIMENT,
                                                            jakab.EXPERIMENT, sanchez.EXPERIMENT, c3.EXPERIMENT)}
#: the headline runs of the method chapters in the book's order, then chapter 0's supervised
#: yardstick: the leaderboard's rows (the mean shape follows the yardstick)
BOOK_RUNS: tuple[BookRun, ...] = tuple(run for e in (*list(EXPERIMENTS.values())[1:], protocol.EXPERIMENT)
                                       for run in e.runs)
