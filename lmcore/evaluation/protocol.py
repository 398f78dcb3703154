"""The evaluation protocol: forward, backward and consistency errors, in % of the IOD.

Every paper of the book scores discovered landmarks by a *linear regression* onto the annotated
points, fitted on a labelled training set and tested elsewhere (``forward``: discovered ->
annotated). Sanchez & Tzimiropoulos 2019 add the ``backward`` direction (annotated ->
discovered; a detector with a few unstable points looks good forward and bad backward) and the
``consistency`` error under random similarities. The papers differ in details that move the
numbers (intercept or not, ridge, the regressor's training subset); each is an explicit field
of :class:`RegressionOptions`, and every result carries the options it was computed with.

All points here are *pixel* coordinates of the evaluation images (``N x P x 2``), discovered
ones included, so that a choice of training resolution does not change the protocol.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
import torch
from sklearn.linear_model import LinearRegression, Ridge

from ..geometry import AffineWarp, WarpSpec, random_similarity, warp_image
from ..geometry.coords import normalized_to_pixels, pixels_to_normalized

EYES = (0, 1)  # MTFL/MAFL point order: left eye centre, right eye centre, nose, mouth corners


@dataclass(frozen=True)
class RegressionOptions:
    """How the linear regressor is fitted; recorded beside every number it produces.

    intercept: fit a bias (Sanchez; in effect) or not (Thewlis, Jakab, Zhang).
    ridge: ridge strength *relative to the largest eigenvalue* of the regressor's Gram matrix
        (Sanchez uses 1e-4); 0 is ordinary least squares (minimum-norm when underdetermined).
    train_size: n, the number of labelled images the regressor sees (None: all of them).
    repeats: R, random subsets of size n drawn (results give mean and std over them).
    normaliser: ``"eyes"`` divides by the inter-ocular distance of points 1 and 2 (MTFL, MAFL).
    seed: seed of the subset draws.
    """

    intercept: bool = True
    ridge: float = 0.0
    train_size: int | None = None
    repeats: int = 1
    normaliser: str = "eyes"
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


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


def fit_linear_map(inputs, targets, intercept: bool = True, ridge: float = 0.0) -> LinearMap:
    """Least-squares (or ridge) linear map from point sets ``inputs`` to ``targets``.

    inputs: ``N x P_in x 2`` (``P_in`` may be 0: then only the intercept is fitted, which
    predicts the mean target: the mean-shape baseline); targets: ``N x P_out x 2``.
    Fitted with scikit-learn (``LinearRegression`` for ridge 0, ``Ridge`` otherwise).
    """
    x = _as_numpy(inputs)
    y = _as_numpy(targets)
    n = x.shape[0]
    x = x.reshape(n, -1)
    y = y.reshape(n, -1)
    no_inputs = x.shape[1] == 0
    if no_inputs:
        x = np.zeros((n, 1))  # a constant feature the fit cannot use: only the bias is learnt
    if ridge > 0:
        centred = x - x.mean(0) if intercept else x
        top = float(np.linalg.eigvalsh(centred.T @ centred)[-1]) if n > 0 else 0.0
        model = Ridge(alpha=ridge * top, fit_intercept=intercept) if top > 0 else LinearRegression(fit_intercept=intercept)
    else:
        model = LinearRegression(fit_intercept=intercept)
    model.fit(x, y)
    weight = np.atleast_2d(model.coef_).T  # (features, outputs)
    if no_inputs:
        weight = weight[:0]
    bias = np.broadcast_to(np.asarray(model.intercept_, dtype=np.float64), (y.shape[1],)).copy()
    return LinearMap(weight=weight, bias=bias)


def inter_ocular_distance(points, eyes: Sequence[int] = EYES) -> np.ndarray:
    """Distance between the two eye points of each ``N x P x 2`` set: ``N``."""
    p = _as_numpy(points)
    return np.linalg.norm(p[:, eyes[0]] - p[:, eyes[1]], axis=-1)


def normalised_errors(predicted, truth, normaliser_points=None, eyes: Sequence[int] = EYES) -> np.ndarray:
    """Point-to-point errors in % of the IOD: ``N x P``.

    The IOD comes from ``normaliser_points`` (the annotated points of the same images; by
    default ``truth`` itself).
    """
    pred = _as_numpy(predicted)
    true = _as_numpy(truth)
    ref = true if normaliser_points is None else _as_numpy(normaliser_points)
    iod = inter_ocular_distance(ref, eyes)
    if np.any(iod <= 0):
        raise ValueError("an image has coincident eye points: its IOD is 0 and its error undefined")
    return 100.0 * np.linalg.norm(pred - true, axis=-1) / iod[:, None]


def _subsets(n_total: int, options: RegressionOptions) -> list[np.ndarray]:
    if options.train_size is None or options.train_size >= n_total:
        return [np.arange(n_total)]
    rng = np.random.default_rng(options.seed)
    return [np.sort(rng.choice(n_total, options.train_size, replace=False)) for _ in range(options.repeats)]


def _summarise(errors_per_repeat: list[np.ndarray], options: RegressionOptions) -> dict:
    """Mean error over images and points per repeat; mean/std over repeats; per-point means."""
    means = [float(e.mean()) for e in errors_per_repeat]
    per_point = np.mean([e.mean(0) for e in errors_per_repeat], axis=0)
    return {
        "mean": float(np.mean(means)),
        "std": float(np.std(means)),
        "per_point": [float(v) for v in per_point],
        "repeats": means,
        "options": options.as_dict(),
    }


def forward_error(discovered_train, annotated_train, discovered_test, annotated_test,
                  options: RegressionOptions = RegressionOptions()) -> dict:
    """Discovered -> annotated: fit on the train sets, score the annotated points of the test set.

    Returns ``{"mean", "std", "per_point" (P annotated), "repeats", "options"}`` in % of IOD.
    """
    errors = []
    for subset in _subsets(len(_as_numpy(discovered_train)), options):
        fit = fit_linear_map(_as_numpy(discovered_train)[subset], _as_numpy(annotated_train)[subset],
                             options.intercept, options.ridge)
        errors.append(normalised_errors(fit.predict(_as_numpy(discovered_test)), annotated_test))
    return _summarise(errors, options)


def backward_error(discovered_train, annotated_train, discovered_test, annotated_test,
                   options: RegressionOptions = RegressionOptions()) -> dict:
    """Annotated -> discovered (Sanchez 2019): fit the reverse map, score the discovered points.

    Errors are normalised by the IOD of the *annotated* points of each test image.
    ``per_point`` has one entry per discovered landmark.
    """
    errors = []
    for subset in _subsets(len(_as_numpy(discovered_train)), options):
        fit = fit_linear_map(_as_numpy(annotated_train)[subset], _as_numpy(discovered_train)[subset],
                             options.intercept, options.ridge)
        errors.append(normalised_errors(fit.predict(_as_numpy(annotated_test)), discovered_test,
                                        normaliser_points=annotated_test))
    return _summarise(errors, options)


def mean_shape_error(annotated_train, annotated_test, options: RegressionOptions = RegressionOptions()) -> dict:
    """The mean-shape baseline, through the same regression code: a fit with no input points."""
    train = _as_numpy(annotated_train)
    test = _as_numpy(annotated_test)
    no_points_train = np.zeros((len(train), 0, 2))
    no_points_test = np.zeros((len(test), 0, 2))
    return forward_error(no_points_train, train, no_points_test, test, replace(options, intercept=True))


def few_shot_curve(discovered_train, annotated_train, discovered_test, annotated_test,
                   sizes: Sequence[int | None], repeats: int = 10, direction: str = "forward",
                   options: RegressionOptions = RegressionOptions()) -> list[dict]:
    """Error against the number n of labelled images (None = all), ``repeats`` draws per n."""
    score = forward_error if direction == "forward" else backward_error
    curve = []
    for n in sizes:
        opts = replace(options, train_size=n, repeats=repeats if n is not None else 1)
        result = score(discovered_train, annotated_train, discovered_test, annotated_test, opts)
        result["n"] = n if n is not None else len(_as_numpy(annotated_train))
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
    per_landmark = np.concatenate(errors).mean(0)
    return {
        "per_landmark": [float(v) for v in per_landmark],
        "sorted": [float(v) for v in np.sort(per_landmark)],
        "mean": float(per_landmark.mean()),
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

    def as_dict(self) -> dict:
        out = {"forward": self.forward, "backward": self.backward, "consistency": self.consistency}
        if self.few_shot:
            out["few_shot"] = self.few_shot
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
                      few_shot_sizes: Sequence[int | None] = (), few_shot_repeats: int = 10) -> ProtocolResult:
    """Run the whole protocol for one detector.

    train_set: the labelled regressor set (a :class:`lmcore.data.LandmarkSet`); test_sets:
    ``{name: LandmarkSet}``. Consistency is measured on the first ``consistency_limit`` images
    of each test set (None: all). With ``few_shot_sizes`` the forward error is also measured with
    regressors fitted on ``few_shot_repeats`` random subsets of each size (None: all images).
    """
    train_points = detect_all(detect, train_set.images)
    result = ProtocolResult()
    for name, test in test_sets.items():
        test_points = detect_all(detect, test.images)
        result.forward[name] = forward_error(train_points, train_set.points, test_points, test.points, options)
        result.backward[name] = backward_error(train_points, train_set.points, test_points, test.points, options)
        if consistency:
            limit = consistency_limit or len(test)
            result.consistency[name] = consistency_error(detect, test.images[:limit], test.points[:limit])
        if few_shot_sizes:
            result.few_shot[name] = few_shot_curve(train_points, train_set.points, test_points, test.points,
                                                   few_shot_sizes, few_shot_repeats, "forward", options)
    return result
