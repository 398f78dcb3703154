"""The evaluation protocol: forward, backward and consistency errors, in % of the IOD.

Every paper of the book scores discovered landmarks by a *linear regression* onto the annotated
points, fitted on a labelled training set and tested elsewhere (``forward``: discovered ->
annotated). Sanchez & Tzimiropoulos 2019 add the ``backward`` direction (annotated ->
discovered; a detector with a few unstable points looks good forward and bad backward) and the
``consistency`` error under random similarities. The papers differ in details that move the
numbers (intercept or not, ridge, the regressor's training subset, the normaliser); each is an
explicit field of :class:`RegressionOptions`, and every result carries the options it was
computed with, including the ridge strength actually used and how it was chosen.

The book's main protocol is the field's majority convention: a linear map *without* a bias
(Thewlis, Zhang, IMM, AutoLink), so that even one labelled face gives a number that depends on
the detector (with a bias, n = 1 copies the labelled face's shape whatever the detector found).
The ridge strength is chosen on the regressor set's own tune_fit / tune_val parts, never on a
test set (:data:`RIDGE_GRID`, :func:`choose_ridge`): unregularised least squares is ill-posed
when the number of labelled faces nears the number of regression parameters (2K per output).

All points here are *pixel* coordinates of the evaluation images (``N x P x 2``), discovered
ones included, so that a choice of training resolution does not change the protocol.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
import torch

from ..geometry import WarpSpec, random_similarity, warp_image
from ..geometry.coords import normalized_to_pixels, pixels_to_normalized
from .statistics import bootstrap_interval

EYES = (0, 1)  # MTFL/MAFL point order: left eye centre, right eye centre, nose, mouth corners

RIDGE_GRID = (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
"""Relative ridge strengths tried by ``ridge="tuned"`` (0: minimum-norm least squares)."""

TUNE_MIN_REPEATS = 10
"""Random size-n subsets of tune_fit scored per grid value when n is smaller than tune_fit."""

RIDGE_SCALES = ("max_eigenvalue", "max_entry")
NORMALISERS = ("eyes", "box")


@dataclass(frozen=True)
class RegressionOptions:
    """How the linear regressor is fitted and scored; recorded beside every number it produces.

    intercept: fit a bias (Sanchez, in effect: it centres the data) or not (Thewlis, Zhang, IMM,
        AutoLink; the default). With a bias, a fit on n = 1 face predicts that face's shape for
        every test face, whatever the detector.
    ridge: a relative ridge strength r >= 0 (0: least squares, minimum-norm when
        underdetermined), or ``"tuned"`` (default): r is chosen from :data:`RIDGE_GRID` for each
        fit size n on the regressor set's tune_fit / tune_val parts (:func:`choose_ridge`); the
        value used and the tuning errors are recorded in the result's options.
    ridge_scale: what r is relative to; the absolute strength is ``lambda = r * s`` with ``s``
        from the Gram matrix ``X^T X`` of the fitted inputs (centred when ``intercept``, raw
        otherwise): ``"max_eigenvalue"`` (default) its largest eigenvalue, ``"max_entry"`` its
        largest entry (Sanchez's code: r = 1e-4 in its README, 1e-5 in its script).
    train_size: n, the number of labelled images the regressor sees (None: all of them).
    repeats: R, random subsets of size n drawn (results give mean and std over them).
    normaliser: ``"eyes"`` divides by the inter-ocular distance of points 1 and 2 (MTFL, MAFL,
        AFLW); ``"box"`` by the diagonal of the bounding box of each image's *annotated points*
        (the 68-point sets' convention). With MTFL's 5 points that box spans only eyes to mouth:
        its diagonal is about 1.56 IOD on MTFL-80 (median; 5-95 %: 1.40-1.81), so 5-point box
        errors are about 0.64 x the eye errors and are not comparable with 68-point box numbers
        (no face box is annotated in MTFL, and the image size depends on the crop).
    regressor_fraction: fit on the first ``int(fraction * N)`` images of the regressor list
        only (IMM drops the last 10 % of MAFL-train: 0.9); the tune parts are positions of
        that prefix.
    tune_every: the tune rule: tune_val = positions ``i % tune_every == 0`` of the regressor
        set, tune_fit = the others (with 5 and regressor_train in its listed order this is
        exactly MTFL-80's tune_val / tune_fit). Explicit index arrays may be passed instead
        (``tune_split``).
    seed: seed of the subset draws.
    """

    intercept: bool = False
    ridge: float | str = "tuned"
    ridge_scale: str = "max_eigenvalue"
    train_size: int | None = None
    repeats: int = 1
    normaliser: str = "eyes"
    regressor_fraction: float = 1.0
    tune_every: int = 5
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.ridge, str):
            if self.ridge != "tuned":
                raise ValueError(f"ridge must be a number >= 0 or 'tuned', not {self.ridge!r}")
        elif not float(self.ridge) >= 0:
            raise ValueError(f"ridge must be >= 0, not {self.ridge}")
        if self.ridge_scale not in RIDGE_SCALES:
            raise ValueError(f"ridge_scale must be one of {RIDGE_SCALES}, not {self.ridge_scale!r}")
        if self.normaliser not in NORMALISERS:
            raise ValueError(f"normaliser must be one of {NORMALISERS}, not {self.normaliser!r}")
        if not 0 < self.regressor_fraction <= 1:
            raise ValueError(f"regressor_fraction must be in (0, 1], not {self.regressor_fraction}")
        if self.tune_every < 2:
            raise ValueError(f"tune_every must be >= 2, not {self.tune_every}")

    @property
    def tuned(self) -> bool:
        return isinstance(self.ridge, str)

    def as_dict(self) -> dict:
        return asdict(self)


PROTOCOL_VARIANTS = {
    "book": RegressionOptions(),
    "intercept": RegressionOptions(intercept=True),
    "least squares": RegressionOptions(ridge=0.0),
    "Sanchez ridge": RegressionOptions(intercept=True, ridge=1e-4, ridge_scale="max_entry"),
    "IMM regressor set": RegressionOptions(regressor_fraction=0.9),
    "n = 100": RegressionOptions(train_size=100, repeats=10),
    "box normaliser": RegressionOptions(normaliser="box"),
}
"""The protocol details the papers disagree on, each one change from the book's protocol
(``"book"``: no intercept, ridge tuned on tune_val, all of the regressor set, IOD):

* ``intercept``: a bias in the regressor (Sanchez's code, in effect; Jakab's IMM code has none);
* ``least squares``: no ridge (Thewlis, Zhang);
* ``Sanchez ridge``: an intercept and lambda = 1e-4 x the largest entry of the centred Gram matrix
  (the README of Sanchez's code; its script uses 1e-5);
* ``IMM regressor set``: the first 90 % of the regressor list only (IMM drops MAFL-train's last 10 %);
* ``n = 100``: the regressor fitted on 100 labelled faces (mean of 10 random draws);
* ``box normaliser``: errors in % of the diagonal of the 5 annotated points' box, not the IOD.
"""


@dataclass
class LinearMap:
    """``y = x @ weight + bias``, mapping flattened point sets ``N x (2 P_in)`` -> ``N x (2 P_out)``."""

    weight: np.ndarray
    bias: np.ndarray

    def predict(self, points: np.ndarray) -> np.ndarray:
        n = points.shape[0]
        flat = points.reshape(n, -1) @ self.weight + self.bias
        return flat.reshape(n, -1, 2)


def _as_numpy(points) -> np.ndarray:
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().numpy()
    return np.asarray(points, dtype=np.float64)


def gram_scale(inputs, intercept: bool = False, ridge_scale: str = "max_eigenvalue") -> float:
    """``s`` of ``lambda = r * s``: the largest eigenvalue (``"max_eigenvalue"``) or the largest
    entry (``"max_entry"``) of ``X^T X``, X the flattened inputs, centred when ``intercept``."""
    x = _as_numpy(inputs)
    x = x.reshape(x.shape[0], -1)
    if x.size == 0:
        return 0.0
    if intercept:
        x = x - x.mean(0)
    if ridge_scale == "max_eigenvalue":
        return float(np.linalg.svd(x, compute_uv=False)[0] ** 2)
    if ridge_scale == "max_entry":  # X^T X is PSD: its largest entry is on its diagonal
        return float((x ** 2).sum(0).max())
    raise ValueError(f"ridge_scale must be one of {RIDGE_SCALES}, not {ridge_scale!r}")


def _fit_maps(x: np.ndarray, y: np.ndarray, intercept: bool, ridges: Sequence[float],
              ridge_scale: str) -> list[LinearMap]:
    """Closed-form ridge fits of flattened ``x`` (N x D) -> ``y`` (N x O), one per relative
    strength, sharing one SVD: ``W = V diag(s / (s^2 + lambda)) U^T y``; lambda = 0 is the
    minimum-norm least-squares solution (singular values below numpy's lstsq cut-off dropped)."""
    n, d = x.shape
    if intercept:
        x_mean, y_mean = x.mean(0), y.mean(0)
        x, y = x - x_mean, y - y_mean
    if d == 0 or n == 0:
        weight = np.zeros((d, y.shape[1]))
        bias = y_mean if intercept else np.zeros(y.shape[1])
        return [LinearMap(weight, bias.copy()) for _ in ridges]
    if ridge_scale not in RIDGE_SCALES:
        raise ValueError(f"ridge_scale must be one of {RIDGE_SCALES}, not {ridge_scale!r}")
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    uty = u.T @ y
    scale = s[0] ** 2 if ridge_scale == "max_eigenvalue" else float((x ** 2).sum(0).max())  # see gram_scale
    cutoff = np.finfo(np.float64).eps * max(n, d) * s[0]
    maps = []
    for r in ridges:
        lam = float(r) * scale
        if lam > 0:
            d_inv = s / (s ** 2 + lam)
        else:
            d_inv = np.divide(1.0, s, out=np.zeros_like(s), where=s > cutoff)
        weight = vt.T @ (d_inv[:, None] * uty)
        bias = y_mean - x_mean @ weight if intercept else np.zeros(y.shape[1])
        maps.append(LinearMap(weight=weight, bias=bias))
    return maps


def fit_linear_map(inputs, targets, intercept: bool = False, ridge: float = 0.0,
                   ridge_scale: str = "max_eigenvalue") -> LinearMap:
    """Least-squares (or ridge) linear map from point sets ``inputs`` to ``targets``.

    inputs: ``N x P_in x 2`` (``P_in`` may be 0: then only the intercept is fitted, which
    predicts the mean target: the mean-shape baseline); targets: ``N x P_out x 2``.
    ``ridge`` is relative (:func:`gram_scale`); 0 gives the minimum-norm least-squares fit.
    Closed form in numpy (one SVD).
    """
    x = _as_numpy(inputs)
    y = _as_numpy(targets)
    n = x.shape[0]
    return _fit_maps(x.reshape(n, -1), y.reshape(n, -1), intercept, [ridge], ridge_scale)[0]


def inter_ocular_distance(points, eyes: Sequence[int] = EYES) -> np.ndarray:
    """Distance between the two eye points of each ``N x P x 2`` set: ``N``."""
    p = _as_numpy(points)
    return np.linalg.norm(p[:, eyes[0]] - p[:, eyes[1]], axis=-1)


def box_diagonal(points) -> np.ndarray:
    """Diagonal of the bounding box of each ``N x P x 2`` point set: ``N``."""
    p = _as_numpy(points)
    return np.linalg.norm(p.max(1) - p.min(1), axis=-1)


def normaliser_distance(points, normaliser: str = "eyes", eyes: Sequence[int] = EYES) -> np.ndarray:
    """The per-image distance errors are divided by: ``"eyes"`` (IOD) or ``"box"`` (diagonal of
    the points' bounding box); see :class:`RegressionOptions`."""
    if normaliser == "eyes":
        return inter_ocular_distance(points, eyes)
    if normaliser == "box":
        return box_diagonal(points)
    raise ValueError(f"normaliser must be one of {NORMALISERS}, not {normaliser!r}")


def normalised_errors(predicted, truth, normaliser_points=None, eyes: Sequence[int] = EYES,
                      normaliser: str = "eyes") -> np.ndarray:
    """Point-to-point errors in % of the normalising distance (the IOD by default): ``N x P``.

    The distance comes from ``normaliser_points`` (the annotated points of the same images; by
    default ``truth`` itself).
    """
    pred = _as_numpy(predicted)
    true = _as_numpy(truth)
    ref = true if normaliser_points is None else _as_numpy(normaliser_points)
    dist = normaliser_distance(ref, normaliser, eyes)
    if np.any(dist <= 0):
        raise ValueError(f"an image has a zero normaliser ({normaliser}: coincident points): its error is undefined")
    return 100.0 * np.linalg.norm(pred - true, axis=-1) / dist[:, None]


def regressor_count(n_total: int, fraction: float = 1.0) -> int:
    """How many images (a prefix of the regressor list) the regressor may use."""
    return n_total if fraction >= 1 else max(1, int(fraction * n_total))


def tune_positions(n_total: int, every: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The tune rule: (tune_fit, tune_val) positions of a regressor set of ``n_total`` images;
    tune_val = positions ``i % every == 0`` (MTFL-80's rule for regressor_train with 5)."""
    positions = np.arange(n_total)
    val = positions % every == 0
    return positions[~val], positions[val]


def _subsets(n_total: int, options: RegressionOptions) -> list[np.ndarray]:
    if options.train_size is None or options.train_size >= n_total:
        return [np.arange(n_total)]
    rng = np.random.default_rng(options.seed)
    return [np.sort(rng.choice(n_total, options.train_size, replace=False)) for _ in range(options.repeats)]


def _tune_parts(n_used: int, options: RegressionOptions, tune_split) -> tuple[np.ndarray, np.ndarray, str]:
    if tune_split is None:
        fit, val = tune_positions(n_used, options.tune_every)
        return fit, val, f"tune_val = positions i % {options.tune_every} == 0 of the regressor set, tune_fit = the others"
    fit, val = (np.asarray(part, dtype=np.int64).ravel() for part in tune_split)
    if np.intersect1d(fit, val).size:
        raise ValueError("tune_split: tune_fit and tune_val share positions")
    fit, val = fit[fit < n_used], val[val < n_used]  # the tune parts are positions of the regressor set
    return fit, val, "explicit tune_fit / tune_val positions of the regressor set"


def _choose(inputs: np.ndarray, targets: np.ndarray, annotated: np.ndarray, size: int | None,
            options: RegressionOptions, direction: str, tune_split=None) -> dict:
    """The tuning itself, on flattened inputs / targets of the (prefix) regressor set."""
    fit, val, rule = _tune_parts(len(inputs), options, tune_split)
    grid = [float(r) for r in RIDGE_GRID]
    choice = {"grid": grid, "rule": rule, "criterion": f"mean {direction} error on tune_val ({options.normaliser})",
              "tune_fit_size": int(len(fit)), "tune_val_size": int(len(val))}
    if len(fit) == 0 or len(val) == 0:
        return {"ridge": 0.0, **choice, "tune_errors": None, "n": None, "repeats": 0,
                "skipped": "the regressor set is too small for a tune_fit / tune_val split: ridge 0"}
    n_tune = len(fit) if size is None or size >= len(fit) else int(size)
    if n_tune == len(fit):
        subsets = [fit]
    else:
        rng = np.random.default_rng([options.seed, n_tune, 1])
        subsets = [np.sort(rng.choice(fit, n_tune, replace=False))
                   for _ in range(max(options.repeats, TUNE_MIN_REPEATS))]
    x_val, y_val, norm_val = inputs[val], targets[val].reshape(len(val), -1, 2), annotated[val]
    errors = np.zeros(len(grid))
    for subset in subsets:
        for j, fitted in enumerate(_fit_maps(inputs[subset], targets[subset], options.intercept, grid,
                                             options.ridge_scale)):
            errors[j] += normalised_errors(fitted.predict(x_val), y_val, norm_val, normaliser=options.normaliser).mean()
    errors /= len(subsets)
    errors = np.where(np.isfinite(errors), errors, np.inf)
    best = int(np.argmin(errors))  # ties: the weakest ridge
    return {"ridge": grid[best], **choice, "tune_errors": [float(e) for e in errors], "n": n_tune,
            "repeats": len(subsets)}


def _flat(points) -> np.ndarray:
    p = _as_numpy(points)
    return p.reshape(p.shape[0], -1)


def _direction_arrays(discovered, annotated, direction: str):
    if direction not in ("forward", "backward"):
        raise ValueError(f"direction must be 'forward' or 'backward', not {direction!r}")
    d, a = _flat(discovered), _flat(annotated)
    return (d, a) if direction == "forward" else (a, d)


def choose_ridge(discovered_train, annotated_train, options: RegressionOptions = RegressionOptions(),
                 direction: str = "forward", tune_split=None) -> dict:
    """Choose the relative ridge strength for fits of ``options.train_size`` images (None: all).

    Uses only the regressor set (its first ``regressor_fraction``): fits on random size-n
    subsets of its tune_fit part (all of tune_fit when n is not smaller; otherwise
    ``max(repeats, TUNE_MIN_REPEATS)`` subsets), one per value of :data:`RIDGE_GRID`, and scores
    the ``direction`` error on its tune_val part; the value of least mean error wins.
    ``tune_split`` = (tune_fit positions, tune_val positions) replaces the rule
    ``i % options.tune_every == 0``. Returns ``{"ridge", "grid", "tune_errors", "rule", ...}``.
    """
    n_used = regressor_count(len(_as_numpy(annotated_train)), options.regressor_fraction)
    x, y = _direction_arrays(discovered_train, annotated_train, direction)
    annotated = _as_numpy(annotated_train)[:n_used]
    return _choose(x[:n_used], y[:n_used], annotated, options.train_size, options, direction, tune_split)


def _summarise(errors_per_repeat: list[np.ndarray], options: dict, per_image: bool = False,
               predictions: list[np.ndarray] | None = None) -> dict:
    """Mean error over images and points per repeat; mean/std over repeats; per-point means; a
    95 % bootstrap interval over the test faces of the mean (:func:`bootstrap_interval`, on each
    face's error averaged over the repeats: the spread over regressor subsets is ``std``).
    ``per_image``: also the per-face errors (``N``) and, when given, the predicted points averaged
    over the repeats (``N x P x 2``): for re-scoring, not for records."""
    means = [float(e.mean()) for e in errors_per_repeat]
    per_point = np.mean([e.mean(0) for e in errors_per_repeat], axis=0)
    per_face = np.mean([e.mean(1) for e in errors_per_repeat], axis=0)
    result = {
        "mean": float(np.mean(means)),
        "std": float(np.std(means)),
        "ci95": bootstrap_interval(per_face),
        "per_point": [float(v) for v in per_point],
        "repeats": means,
        "options": options,
    }
    if per_image:
        result["per_image"] = per_face
        if predictions is not None:
            result["predicted"] = np.mean(predictions, axis=0)
    return result


def _regression_error(discovered_train, annotated_train, discovered_test, annotated_test,
                      options: RegressionOptions, direction: str, tune_split=None,
                      ridge_choice: dict | None = None, per_image: bool = False) -> dict:
    annotated_all = _as_numpy(annotated_train)
    n_used = regressor_count(len(annotated_all), options.regressor_fraction)
    x, y = _direction_arrays(discovered_train, annotated_train, direction)
    x, y, annotated = x[:n_used], y[:n_used], annotated_all[:n_used]
    x_test, y_test = _direction_arrays(discovered_test, annotated_test, direction)
    y_test = y_test.reshape(len(y_test), -1, 2)
    norm_test = _as_numpy(annotated_test)
    recorded = options.as_dict()
    if options.tuned:
        if ridge_choice is None:
            ridge_choice = _choose(x, y, annotated, options.train_size, options, direction, tune_split)
        ridge = float(ridge_choice["ridge"])
        recorded["ridge_choice"] = ridge_choice
    else:
        ridge = float(options.ridge)
    recorded["ridge"] = ridge
    recorded["regressor_images"] = n_used
    errors, predictions = [], []
    for subset in _subsets(n_used, options):
        fit = _fit_maps(x[subset], y[subset], options.intercept, [ridge], options.ridge_scale)[0]
        predicted = fit.predict(x_test)
        errors.append(normalised_errors(predicted, y_test, normaliser_points=norm_test, normaliser=options.normaliser))
        if per_image:
            predictions.append(predicted)
    return _summarise(errors, recorded, per_image, predictions if per_image else None)


def forward_error(discovered_train, annotated_train, discovered_test, annotated_test,
                  options: RegressionOptions = RegressionOptions(), *, tune_split=None,
                  ridge_choice: dict | None = None, per_image: bool = False) -> dict:
    """Discovered -> annotated: fit on the train sets, score the annotated points of the test set.

    Returns ``{"mean", "std", "ci95", "per_point" (P annotated), "repeats", "options"}`` in % of
    the normaliser (``ci95``: a bootstrap interval over the test faces); with ``per_image`` also
    ``"per_image"`` (``N`` per-face errors) and ``"predicted"`` (``N x P x 2``).
    ``options["ridge"]`` is the strength used; with ``ridge="tuned"``,
    ``options["ridge_choice"]`` says how it was chosen (:func:`choose_ridge`; only the train sets
    are used). ``ridge_choice``: a result of :func:`choose_ridge` for the same data and options,
    to reuse the tuning across test sets.
    """
    return _regression_error(discovered_train, annotated_train, discovered_test, annotated_test, options,
                             "forward", tune_split, ridge_choice, per_image)


def backward_error(discovered_train, annotated_train, discovered_test, annotated_test,
                   options: RegressionOptions = RegressionOptions(), *, tune_split=None,
                   ridge_choice: dict | None = None, per_image: bool = False) -> dict:
    """Annotated -> discovered (Sanchez 2019): fit the reverse map, score the discovered points.

    Errors are normalised by the *annotated* points of each test image; a tuned ridge is chosen
    on the backward error itself. ``per_point`` has one entry per discovered landmark.
    """
    return _regression_error(discovered_train, annotated_train, discovered_test, annotated_test, options,
                             "backward", tune_split, ridge_choice, per_image)


def mean_shape_error(annotated_train, annotated_test, options: RegressionOptions = RegressionOptions()) -> dict:
    """The mean-shape baseline, through the same regression code: a fit with no input points
    (with an intercept, by definition; no ridge: there is no weight to shrink)."""
    train = _as_numpy(annotated_train)
    test = _as_numpy(annotated_test)
    no_points_train = np.zeros((len(train), 0, 2))
    no_points_test = np.zeros((len(test), 0, 2))
    return forward_error(no_points_train, train, no_points_test, test, replace(options, intercept=True, ridge=0.0))


def few_shot_curve(discovered_train, annotated_train, discovered_test, annotated_test,
                   sizes: Sequence[int | None], repeats: int = 10, direction: str = "forward",
                   options: RegressionOptions = RegressionOptions(), *, tune_split=None,
                   ridge_choices: dict | None = None) -> list[dict]:
    """Error against the number n of labelled images (None = all), ``repeats`` draws per n.

    With ``ridge="tuned"`` the strength is chosen for each n (fits of size n on tune_fit).
    ``ridge_choices``: a dict ``{(direction, n, repeats): choice}`` filled here and reused by later calls on the same
    regressor set (other test sets) so that the tuning runs once per n.
    """
    score = forward_error if direction == "forward" else backward_error
    if direction not in ("forward", "backward"):
        raise ValueError(f"direction must be 'forward' or 'backward', not {direction!r}")
    ridge_choices = {} if ridge_choices is None else ridge_choices
    n_used = regressor_count(len(_as_numpy(annotated_train)), options.regressor_fraction)
    curve = []
    for n in sizes:
        opts = replace(options, train_size=n, repeats=repeats if n is not None else 1)
        choice = None
        if opts.tuned:
            key = (direction, opts.train_size, opts.repeats)
            if key not in ridge_choices:
                ridge_choices[key] = choose_ridge(discovered_train, annotated_train, opts, direction, tune_split)
            choice = ridge_choices[key]
        result = score(discovered_train, annotated_train, discovered_test, annotated_test, opts,
                       tune_split=tune_split, ridge_choice=choice)
        result["n"] = n if n is not None and n < n_used else n_used
        curve.append(result)
    return curve


DetectFn = Callable[[torch.Tensor], torch.Tensor]
"""A detector: images ``B x 3 x H x W`` float in [0, 1] -> landmarks ``B x K x 2`` normalised."""

CONSISTENCY_WARPS = WarpSpec(rotation_deg=30.0, log2_scale=0.25, translation=0.05)
"""Random similarities of the consistency error (Sanchez 2019 does not give its ranges)."""


@torch.no_grad()
def consistency_error(detect: DetectFn, images: torch.Tensor, annotated: torch.Tensor,
                      spec: WarpSpec = CONSISTENCY_WARPS, seed: int = 0, batch_size: int = 256) -> dict:
    """Per-landmark ``|detect(A(x)) - A(detect(x))|`` under random similarities A (Sanchez 2019).

    images: ``N x 3 x H x W`` uint8 or float; annotated: ``N x P x 2`` pixel points, used for
    the IOD (taken in the warped frame, where the error is measured). Returns errors in % of IOD:
    ``per_landmark`` (mean over images, landmark order), ``sorted`` (ascending, as Sanchez's
    Table 3) and ``mean``.
    """
    generator = torch.Generator().manual_seed(seed)
    size = images.shape[-1]
    errors = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        batch = batch.float() / 255.0 if batch.dtype == torch.uint8 else batch.float()
        warp = random_similarity(spec, len(batch), generator)
        warped = warp_image(batch, warp)
        points = detect(batch).cpu()
        points_warped = detect(warped).cpu()
        carried = warp.transport(points)
        gt = pixels_to_normalized(annotated[start:start + batch_size].float(), size)
        gt_warped = normalized_to_pixels(warp.transport(gt), size)
        err = normalised_errors(normalized_to_pixels(points_warped, size), normalized_to_pixels(carried, size),
                                normaliser_points=gt_warped)
        errors.append(err)
    errors = np.concatenate(errors)
    per_landmark = errors.mean(0)
    return {
        "per_landmark": [float(v) for v in per_landmark],
        "sorted": [float(v) for v in np.sort(per_landmark)],
        "mean": float(per_landmark.mean()),
        "ci95": bootstrap_interval(errors.mean(1)),
        "warps": spec.as_dict(),
        "seed": seed,
    }


@dataclass
class ProtocolResult:
    """Forward, backward and consistency errors per test split, with the options used."""

    forward: dict = field(default_factory=dict)
    backward: dict = field(default_factory=dict)
    consistency: dict = field(default_factory=dict)
    few_shot: dict = field(default_factory=dict)
    tune: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = {"forward": self.forward, "backward": self.backward, "consistency": self.consistency}
        if self.few_shot:
            out["few_shot"] = self.few_shot
        if self.tune:
            out["tune"] = self.tune
        return out


@torch.no_grad()
def detect_all(detect: DetectFn, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Run ``detect`` over uint8 images in batches; returns *pixel* points ``N x K x 2`` (CPU)."""
    size = images.shape[-1]
    out = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].float() / 255.0
        out.append(detect(batch).cpu())
    return normalized_to_pixels(torch.cat(out), size)


def evaluate_detector(detect: DetectFn, train_set, test_sets: dict, options: RegressionOptions = RegressionOptions(),
                      consistency: bool = True, consistency_limit: int | None = 1000,
                      few_shot_sizes: Sequence[int | None] = (), few_shot_repeats: int = 10,
                      tune_split=None) -> ProtocolResult:
    """Run the whole protocol for one detector.

    train_set: the labelled regressor set (a :class:`lmcore.data.LandmarkSet`); test_sets:
    ``{name: LandmarkSet}``. Consistency is measured on the first ``consistency_limit`` images
    of each test set (None: all). With ``few_shot_sizes`` the forward error is also measured with
    regressors fitted on ``few_shot_repeats`` random subsets of each size (None: all images).
    A tuned ridge is chosen once per direction and fit size, on the regressor set's own
    detections (tune_fit / tune_val: ``options.tune_every`` or ``tune_split``), never on a test set.
    """
    train_points = detect_all(detect, train_set.images)
    result = ProtocolResult()
    if tune_split is None and len(train_points) >= 2 * options.tune_every:
        # the score that chooses settings, from the detections the protocol makes anyway
        result.tune["tune_val"] = tune_val_error(train_points, train_set.points, options.tune_every)
    choices: dict = {}
    if options.tuned:
        for direction in ("forward", "backward"):
            choices[(direction, options.train_size, options.repeats)] = choose_ridge(train_points, train_set.points, options,
                                                                    direction, tune_split)
    for name, test in test_sets.items():
        test_points = detect_all(detect, test.images)
        for direction, score, out in (("forward", forward_error, result.forward),
                                      ("backward", backward_error, result.backward)):
            out[name] = score(train_points, train_set.points, test_points, test.points, options,
                              tune_split=tune_split, ridge_choice=choices.get((direction, options.train_size, options.repeats)))
        if consistency:
            limit = consistency_limit or len(test)
            result.consistency[name] = consistency_error(detect, test.images[:limit], test.points[:limit])
        if few_shot_sizes:
            result.few_shot[name] = few_shot_curve(train_points, train_set.points, test_points, test.points,
                                                   few_shot_sizes, few_shot_repeats, "forward", options,
                                                   tune_split=tune_split, ridge_choices=choices)
    return result


TUNE_OPTIONS = RegressionOptions(ridge=0.0)  # no intercept; tune_fit is 5,356 faces, so no ridge is needed


def tune_val_error(discovered, annotated, every: int = 5) -> dict:
    """The score that *chooses settings*, from a regressor set's detections: the forward error
    (% of IOD) fitted on its tune_fit positions and scored on its tune_val positions
    (``i % every == 0``; on MTFL-80's regressor_train these are the README's tune_fit / tune_val)."""
    fit, val = tune_positions(len(discovered), every)
    discovered, annotated = _as_numpy(discovered), _as_numpy(annotated)
    return forward_error(discovered[fit], annotated[fit], discovered[val], annotated[val], TUNE_OPTIONS)


def tune_forward_error(detect: DetectFn, source, subsample: int = 1) -> float:
    """:func:`tune_val_error` of a detector on a source's ``tune_fit`` / ``tune_val`` splits
    (MTFL-80's README), never a test set."""
    fit, val = source.split("tune_fit", every=subsample), source.split("tune_val", every=subsample)
    return forward_error(detect_all(detect, fit.images), fit.points, detect_all(detect, val.images), val.points,
                         TUNE_OPTIONS)["mean"]
