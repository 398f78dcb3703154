"""Detect once, score under any protocol option.

A detector's landmarks on the regressor set and the test sets are all the face protocol needs:
the forward and backward errors, the few-shot curves in either direction and every protocol
variant (intercept, ridge, its scale, the regressor fraction, the normaliser) are fits on those
points. :class:`Detections` keeps them, so a chapter can re-score a trained model many ways for
the cost of one pass of detection (e.g. Sanchez's Table 2, backward errors against n, and the
authors' own protocol beside the book's).

    detections = Detections.of(model.detect, chapter.regressor_train,
                               {"test_mtfl": chapter.test_mtfl, "test_aflw": chapter.test_aflw})
    detections.error("test_mtfl", "backward")["mean"]
    detections.curve("test_aflw", [1, 10, None], direction="backward")
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from .protocol import (DetectFn, RegressionOptions, backward_error, choose_ridge, detect_all, few_shot_curve,
                       forward_error)

DIRECTIONS = ("forward", "backward")


@dataclass
class Detections:
    """Pixel landmarks ``N x K x 2`` of one detector on a labelled regressor set and on test sets.

    regressor_set / test_sets: :class:`lmcore.data.LandmarkSet` (their ``points`` are the labels);
    regressor_points / test_points: the detector's points on their images, in pixels.
    """

    regressor_set: object
    regressor_points: torch.Tensor
    test_sets: dict
    test_points: dict
    # tuned ridges chosen so far, per options: the tuning uses the regressor set only, so the
    # test splits share it
    _choices: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, detect: DetectFn, regressor_set, test_sets: dict) -> "Detections":
        """Run ``detect`` over the regressor set and every test set (one pass each)."""
        return cls(regressor_set, detect_all(detect, regressor_set.images), dict(test_sets),
                   {name: detect_all(detect, s.images) for name, s in test_sets.items()})

    def _check(self, split: str, direction: str) -> None:
        if split not in self.test_sets:
            raise KeyError(f"no detections on '{split}'; these have {sorted(self.test_sets)}")
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'forward' or 'backward', not {direction!r}")

    def error(self, split: str, direction: str = "forward", options: RegressionOptions = RegressionOptions()) -> dict:
        """The forward or backward error on ``split`` under ``options`` (a tuned ridge is chosen
        on the regressor set's tune_fit / tune_val parts, never on ``split``)."""
        self._check(split, direction)
        score = forward_error if direction == "forward" else backward_error
        choice = None
        if options.tuned:
            key = (repr(options), direction)
            if key not in self._choices:
                self._choices[key] = choose_ridge(self.regressor_points, self.regressor_set.points, options, direction)
            choice = self._choices[key]
        return score(self.regressor_points, self.regressor_set.points, self.test_points[split],
                     self.test_sets[split].points, options, ridge_choice=choice)

    def curve(self, split: str, sizes: Sequence[int | None], repeats: int = 10, direction: str = "forward",
              options: RegressionOptions = RegressionOptions()) -> list[dict]:
        """Error against the number of labelled images the regressor is fitted on (None: all)."""
        self._check(split, direction)
        choices = self._choices.setdefault((repr(options), "curve"), {})
        return few_shot_curve(self.regressor_points, self.regressor_set.points, self.test_points[split],
                              self.test_sets[split].points, sizes, repeats, direction, options, ridge_choices=choices)
