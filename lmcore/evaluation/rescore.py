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

import hashlib
import pickle
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import torch

from ..files import atomic_writer
from .protocol import (DetectFn, RegressionOptions, _summarise, backward_error, choose_ridge, detect_all,
                       few_shot_curve, forward_error, normalised_errors)

DIRECTIONS = ("forward", "backward")
KINDS = ("regressed", "direct", "mean_shape")


def faces_key(landmark_set) -> str:
    """A short hash of a set's image names in order: detections saved for one set of faces are
    never read back for another."""
    return hashlib.sha256("\n".join(landmark_set.names).encode()).hexdigest()[:16]


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
    #: ``"regressed"``: discovered landmarks, scored through the regressor (the protocol);
    #: ``"direct"``: a supervised detector of the annotated points themselves, scored as they are
    #: (forward only; the regression options but the normaliser do not apply);
    #: ``"mean_shape"``: no detector, the regressor's intercept alone (:meth:`mean_shape`)
    kind: str = "regressed"
    # tuned ridges chosen so far, per options: the tuning uses the regressor set only, so the
    # test splits share it
    _choices: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, detect: DetectFn, regressor_set, test_sets: dict, kind: str = "regressed") -> "Detections":
        """Run ``detect`` over the regressor set and every test set (one pass each)."""
        return cls(regressor_set, detect_all(detect, regressor_set.images), dict(test_sets),
                   {name: detect_all(detect, s.images) for name, s in test_sets.items()}, kind=kind)

    @classmethod
    def mean_shape(cls, regressor_set, test_sets: dict) -> "Detections":
        """The mean-shape baseline as a detector that finds no point: every option scores it
        through the same regression code (with an intercept and no ridge, by definition)."""
        return cls(regressor_set, torch.zeros(len(regressor_set), 0, 2), dict(test_sets),
                   {name: torch.zeros(len(s), 0, 2) for name, s in test_sets.items()}, kind="mean_shape")

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")

    def save(self, path: Path | str) -> None:
        """Keep the points (not the images) with the names' hashes of the sets they belong to."""
        with atomic_writer(Path(path)) as fh:  # a reader never sees half a file
            torch.save({"kind": self.kind, "regressor": (faces_key(self.regressor_set), self.regressor_points),
                        "tests": {name: (faces_key(self.test_sets[name]), points)
                                  for name, points in self.test_points.items()}}, fh)

    @classmethod
    def load(cls, path: Path | str, regressor_set, test_sets: dict) -> "Detections | None":
        """Detections saved by :meth:`save` for exactly these sets (same faces, same order), else None."""
        try:
            saved = torch.load(Path(path), map_location="cpu", weights_only=True)
            key, regressor_points = saved["regressor"]
            tests = {name: saved["tests"][name] for name in test_sets}
        except (OSError, KeyError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError):
            return None  # missing, partial or foreign: detect again
        if key != faces_key(regressor_set) or any(tests[n][0] != faces_key(s) for n, s in test_sets.items()):
            return None
        return cls(regressor_set, regressor_points, dict(test_sets), {n: tests[n][1] for n in test_sets},
                   kind=saved["kind"])

    def _check(self, split: str, direction: str) -> None:
        if split not in self.test_sets:
            raise KeyError(f"no detections on '{split}'; these have {sorted(self.test_sets)}")
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'forward' or 'backward', not {direction!r}")

    def error(self, split: str, direction: str = "forward", options: RegressionOptions = RegressionOptions(),
              per_image: bool = False) -> dict:
        """The forward or backward error on ``split`` under ``options`` (a tuned ridge is chosen
        on the regressor set's tune_fit / tune_val parts, never on ``split``). ``per_image``:
        with the per-face errors (``"per_image"``, ``N``) and predicted points (``"predicted"``)."""
        self._check(split, direction)
        if self.kind == "direct":
            if direction == "backward":
                raise ValueError("a direct (supervised) detector has no backward error: it predicts the annotated points")
            points = self.test_points[split]
            errors = normalised_errors(points, self.test_sets[split].points, normaliser=options.normaliser)
            return _summarise([errors], {"direct": True, "normaliser": options.normaliser}, per_image,
                              [points.numpy()])
        if self.kind == "mean_shape":
            if direction == "backward":
                raise ValueError("the mean shape finds no landmark: it has no backward error")
            options = replace(options, intercept=True, ridge=0.0)
        score = forward_error if direction == "forward" else backward_error
        choice = None
        if options.tuned:
            key = (repr(options), direction)
            if key not in self._choices:
                self._choices[key] = choose_ridge(self.regressor_points, self.regressor_set.points, options, direction)
            choice = self._choices[key]
        return score(self.regressor_points, self.regressor_set.points, self.test_points[split],
                     self.test_sets[split].points, options, ridge_choice=choice, per_image=per_image)

    def per_image(self, split: str, direction: str = "forward", options: RegressionOptions = RegressionOptions()):
        """Per-face errors (``N``, % of the normaliser) on ``split``: for intervals, distributions
        and paired comparisons (:mod:`lmcore.evaluation.statistics`)."""
        return self.error(split, direction, options, per_image=True)["per_image"]

    def curve(self, split: str, sizes: Sequence[int | None], repeats: int = 10, direction: str = "forward",
              options: RegressionOptions = RegressionOptions()) -> list[dict]:
        """Error against the number of labelled images the regressor is fitted on (None: all)."""
        self._check(split, direction)
        choices = self._choices.setdefault((repr(options), "curve"), {})
        return few_shot_curve(self.regressor_points, self.regressor_set.points, self.test_points[split],
                              self.test_sets[split].points, sizes, repeats, direction, options, ridge_choices=choices)
