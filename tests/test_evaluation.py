"""The protocol: regressions, errors in % of IOD, baselines, consistency."""
import numpy as np
import pytest
import torch

from lmcore.evaluation import (
    RegressionOptions,
    backward_error,
    consistency_error,
    few_shot_curve,
    fit_linear_map,
    forward_error,
    mean_shape_error,
    normalised_errors,
)
from lmcore.geometry import gaussian_heatmaps, soft_argmax


def _random_shapes(n, p, seed):
    rng = np.random.default_rng(seed)
    base = rng.uniform(20, 60, size=(1, p, 2))
    return base + rng.normal(0, 3, size=(n, p, 2))


def test_the_regressor_recovers_a_known_linear_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 7, 2))
    weight = rng.normal(size=(14, 10))
    bias = rng.normal(size=10)
    y = (x.reshape(200, -1) @ weight + bias).reshape(200, 5, 2)
    fit = fit_linear_map(x, y, intercept=True)
    assert np.allclose(fit.weight, weight, atol=1e-8) and np.allclose(fit.bias, bias, atol=1e-8)
    no_bias = fit_linear_map(x, y - bias.reshape(5, 2), intercept=False)
    assert np.allclose(no_bias.weight, weight, atol=1e-8) and np.allclose(no_bias.bias, 0)
    # ridge shrinks the weights
    ridged = fit_linear_map(x, y, intercept=True, ridge=0.5)
    assert np.linalg.norm(ridged.weight) < np.linalg.norm(weight)


def test_ground_truth_scored_against_itself_gives_zero():
    shapes = _random_shapes(300, 5, 1)
    result = forward_error(shapes[:200], shapes[:200], shapes[200:], shapes[200:])
    assert result["mean"] < 1e-8
    assert len(result["per_point"]) == 5
    assert result["options"]["intercept"] is True


def test_errors_are_in_percent_of_the_inter_ocular_distance():
    truth = np.array([[[0.0, 0.0], [10.0, 0.0], [5.0, 5.0]]])
    predicted = truth + np.array([[[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]]])
    assert np.allclose(normalised_errors(predicted, truth), [[10.0, 0.0, 20.0]])


def test_mean_shape_baseline_reproduces_the_data_readme(mtfl):
    train = mtfl.split("regressor_train").points
    assert mean_shape_error(train, mtfl.split("test_mtfl").points)["mean"] == pytest.approx(21.41, abs=0.005)
    assert mean_shape_error(train, mtfl.split("test_aflw").points)["mean"] == pytest.approx(31.71, abs=0.005)


def test_backward_error_exposes_an_unstable_landmark():
    shapes = _random_shapes(400, 5, 2)
    rng = np.random.default_rng(3)
    stable = shapes[:, [0, 1, 2]] * 1.0 + 2.0  # points that follow the face
    noise = rng.uniform(0, 80, size=(400, 1, 2))  # a point that jumps around
    discovered = np.concatenate([stable, noise], axis=1)
    fwd = forward_error(discovered[:300], shapes[:300], discovered[300:], shapes[300:])
    bwd = backward_error(discovered[:300], shapes[:300], discovered[300:], shapes[300:])
    assert len(bwd["per_point"]) == 4
    assert bwd["per_point"][3] > 10 * max(bwd["per_point"][:3])
    assert fwd["mean"] < bwd["mean"]


def test_few_shot_repeats_draw_different_subsets():
    shapes = _random_shapes(500, 5, 4)
    rng = np.random.default_rng(5)
    discovered = shapes + rng.normal(0, 1.5, size=shapes.shape)
    curve = few_shot_curve(discovered[:400], shapes[:400], discovered[400:], shapes[400:], sizes=[1, 10, None], repeats=10)
    assert [c["n"] for c in curve] == [1, 10, 400]
    assert len(curve[0]["repeats"]) == 10 and curve[0]["std"] > 0
    assert curve[0]["mean"] > curve[-1]["mean"]  # more labels, lower error
    # n = 1 with an intercept predicts the one labelled shape for every test image
    one = forward_error(discovered[:1], shapes[:1], discovered[400:], shapes[400:], RegressionOptions())
    direct = normalised_errors(np.repeat(shapes[:1], 100, 0), shapes[400:]).mean()
    assert one["mean"] == pytest.approx(direct)


def test_consistency_error_is_small_for_an_equivariant_detector_and_large_for_a_fixed_one():
    g = torch.Generator().manual_seed(0)
    points = torch.rand(64, 2, 2, generator=g) * 0.6 - 0.3
    points[:, 1, 0] = points[:, 0, 0] + 0.4  # keep the two 'eyes' apart
    # one blob per colour channel: channel k shows point k, so a detector can track it exactly
    blobs = gaussian_heatmaps(points, 64, 64, 0.06)
    images = torch.cat([blobs, torch.zeros(64, 1, 64, 64)], 1)
    annotated = (points + 1) * 32  # pixel coordinates, for the IOD

    def tracking_detector(batch):
        return soft_argmax(torch.log(batch[:, :2] + 1e-6) * 3)[0]

    def fixed_detector(batch):
        return torch.tensor([[-0.3, 0.0], [0.3, 0.0]]).expand(len(batch), -1, -1)

    good = consistency_error(tracking_detector, images, annotated, seed=1)
    bad = consistency_error(fixed_detector, images, annotated, seed=1)
    assert good["mean"] < 2.0  # % of IOD: resampling noise only
    assert bad["mean"] > 10 * good["mean"]
    assert bad["sorted"] == sorted(bad["per_landmark"])
