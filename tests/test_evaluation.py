"""The protocol: regressions, errors in % of IOD, baselines, consistency, the tuned ridge."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from lmcore.data import LandmarkSet
from lmcore.evaluation import (
    RIDGE_GRID,
    RegressionOptions,
    backward_error,
    choose_ridge,
    consistency_error,
    evaluate_detector,
    few_shot_curve,
    fit_linear_map,
    forward_error,
    mean_shape_error,
    normalised_errors,
    tune_positions,
)
from lmcore.geometry import gaussian_heatmaps, soft_argmax
from lmcore.geometry.coords import pixels_to_normalized

FACE = np.array([[30.0, 35.0], [50.0, 35.0], [40.0, 45.0], [32.0, 57.0], [48.0, 57.0]])  # an 80 px face


def _random_shapes(n, p, seed):
    rng = np.random.default_rng(seed)
    base = rng.uniform(20, 60, size=(1, p, 2))
    return base + rng.normal(0, 3, size=(n, p, 2))


def _faces(n, seed, spread=2.5):
    return FACE + np.random.default_rng(seed).normal(0, spread, size=(n, 5, 2))


def _linear_detector(shapes, k, noise, seed):
    """K points, each a random mix of the annotated points (pixel coordinates), plus noise."""
    rng = np.random.default_rng(seed)
    mix = rng.uniform(0, 1, size=(k, shapes.shape[1]))
    mix /= mix.sum(1, keepdims=True)
    return np.einsum("kp,npc->nkc", mix, shapes) + rng.normal(0, noise, size=(len(shapes), k, 2))


def test_the_regressor_recovers_a_known_linear_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 7, 2))
    weight = rng.normal(size=(14, 10))
    bias = rng.normal(size=10)
    y = (x.reshape(200, -1) @ weight).reshape(200, 5, 2)
    no_bias = fit_linear_map(x, y)  # the default: y = x W, no intercept
    assert np.allclose(no_bias.weight, weight, atol=1e-8) and np.allclose(no_bias.bias, 0)
    with_bias = fit_linear_map(x, y + bias.reshape(5, 2), intercept=True)
    assert np.allclose(with_bias.weight, weight, atol=1e-8) and np.allclose(with_bias.bias, bias, atol=1e-8)
    # without the intercept option, the same affine data cannot be fitted exactly
    assert not np.allclose(fit_linear_map(x, y + bias.reshape(5, 2)).weight, weight, atol=1e-3)
    # ridge shrinks the weights
    ridged = fit_linear_map(x, y, ridge=0.5)
    assert np.linalg.norm(ridged.weight) < 0.9 * np.linalg.norm(weight)
    # underdetermined (n < parameters): ridge 0 is the minimum-norm least-squares solution
    few = fit_linear_map(x[:5], y[:5])
    assert np.allclose(few.weight, np.linalg.pinv(x[:5].reshape(5, -1)) @ y[:5].reshape(5, -1), atol=1e-8)


def test_ridge_scales_follow_their_definitions():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, size=(60, 4, 2)) * rng.uniform(0.2, 5, size=(1, 4, 2)) + 40
    y = rng.normal(size=(60, 5, 2))
    xc = x.reshape(60, -1) - x.reshape(60, -1).mean(0)
    yc = y.reshape(60, -1) - y.reshape(60, -1).mean(0)
    gram = xc.T @ xc
    r = 1e-2
    for scale, reference in (("max_entry", gram.max()), ("max_eigenvalue", np.linalg.eigvalsh(gram)[-1])):
        expected = np.linalg.solve(gram + r * reference * np.eye(8), xc.T @ yc)
        fit = fit_linear_map(x, y, intercept=True, ridge=r, ridge_scale=scale)
        assert np.allclose(fit.weight, expected, atol=1e-10), scale
    entry = fit_linear_map(x, y, intercept=True, ridge=r, ridge_scale="max_entry").weight
    eigen = fit_linear_map(x, y, intercept=True, ridge=r, ridge_scale="max_eigenvalue").weight
    assert not np.allclose(entry, eigen, atol=1e-4)
    # forward_error fits with the scale it is given and records it
    d = _linear_detector(_faces(200, 2), 4, 1.0, 3)
    a = _faces(200, 2)
    by_entry = forward_error(d[:150], a[:150], d[150:], a[150:], RegressionOptions(ridge=0.3, ridge_scale="max_entry"))
    by_eigen = forward_error(d[:150], a[:150], d[150:], a[150:], RegressionOptions(ridge=0.3))
    manual = fit_linear_map(d[:150], a[:150], ridge=0.3, ridge_scale="max_entry").predict(d[150:])
    assert by_entry["mean"] == pytest.approx(normalised_errors(manual, a[150:]).mean(), rel=1e-10)
    assert by_entry["mean"] != pytest.approx(by_eigen["mean"], rel=1e-3)
    assert by_entry["options"]["ridge_scale"] == "max_entry" and by_entry["options"]["ridge"] == 0.3


def test_ground_truth_scored_against_itself_gives_zero():
    shapes = _random_shapes(300, 5, 1)
    result = forward_error(shapes[:200], shapes[:200], shapes[200:], shapes[200:])
    assert result["mean"] < 1e-8
    assert len(result["per_point"]) == 5
    assert result["options"]["intercept"] is False


def test_errors_are_in_percent_of_the_inter_ocular_distance():
    truth = np.array([[[0.0, 0.0], [10.0, 0.0], [5.0, 5.0]]])
    predicted = truth + np.array([[[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]]])
    assert np.allclose(normalised_errors(predicted, truth), [[10.0, 0.0, 20.0]])
    # the box normaliser: the diagonal of the points' bounding box (10 x 5 here)
    assert np.allclose(normalised_errors(predicted, truth, normaliser="box"), [[10.0, 0.0, 20.0]] / np.hypot(10, 5) * 10)


def test_the_box_normaliser_is_honoured_by_forward_backward_and_few_shot():
    rng = np.random.default_rng(4)
    train = _faces(300, 5)
    # test faces: one template, shifted and scaled, so that box / IOD is the same for every face
    scale = rng.uniform(0.8, 1.2, size=(100, 1, 1))
    test = (FACE - FACE.mean(0)) * scale + 40 + rng.normal(0, 3, size=(100, 1, 2))
    ratio = np.hypot(*(FACE.max(0) - FACE.min(0))) / np.linalg.norm(FACE[0] - FACE[1])  # box / IOD
    det_train = _linear_detector(train, 6, 1.0, 6)
    det_test = _linear_detector(test, 6, 1.0, 6)
    eyes, box = RegressionOptions(ridge=0.0), RegressionOptions(ridge=0.0, normaliser="box")
    for score in (forward_error, backward_error):
        e = score(det_train, train, det_test, test, eyes)
        b = score(det_train, train, det_test, test, box)
        assert b["mean"] == pytest.approx(e["mean"] / ratio, rel=1e-9)
        assert b["options"]["normaliser"] == "box"
    e, b = (few_shot_curve(det_train, train, det_test, test, [10], 3, "forward", o)[0] for o in (eyes, box))
    assert b["mean"] == pytest.approx(e["mean"] / ratio, rel=1e-9)
    # a tuned fit is also tuned on the box error
    tuned = forward_error(det_train, train, det_test, test, RegressionOptions(normaliser="box"))
    assert "(box)" in tuned["options"]["ridge_choice"]["criterion"]


def test_mean_shape_baseline_reproduces_the_data_readme(mtfl):
    train = mtfl.split("regressor_train").points
    result = mean_shape_error(train, mtfl.split("test_mtfl").points)
    assert result["mean"] == pytest.approx(21.41, abs=0.005)
    assert result["options"]["intercept"] is True and result["options"]["ridge"] == 0.0
    assert mean_shape_error(train, mtfl.split("test_aflw").points)["mean"] == pytest.approx(31.71, abs=0.005)


def test_the_default_tune_rule_is_mtfl80s_tune_split(mtfl):
    names = mtfl.splits["regressor_train"]
    fit, val = tune_positions(len(names))
    assert [names[i] for i in val] == mtfl.splits["tune_val"]
    assert [names[i] for i in fit] == mtfl.splits["tune_fit"]


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
    # the backward ridge is tuned on the backward error itself
    assert bwd["options"]["ridge_choice"] == choose_ridge(discovered[:300], shapes[:300], direction="backward")
    assert bwd["options"]["ridge_choice"]["tune_errors"] != fwd["options"]["ridge_choice"]["tune_errors"]


def test_few_shot_repeats_draw_different_subsets():
    shapes = _random_shapes(500, 5, 4)
    rng = np.random.default_rng(5)
    discovered = shapes + rng.normal(0, 1.5, size=shapes.shape)
    curve = few_shot_curve(discovered[:400], shapes[:400], discovered[400:], shapes[400:], sizes=[1, 10, None], repeats=10)
    assert [c["n"] for c in curve] == [1, 10, 400]
    assert len(curve[0]["repeats"]) == 10 and curve[0]["std"] > 0
    assert curve[0]["mean"] > curve[-1]["mean"]  # more labels, lower error
    # each size records its own tuned strength, chosen with fits of its own size on tune_fit
    assert [c["options"]["ridge_choice"]["n"] for c in curve] == [1, 10, 320]
    assert all(c["options"]["ridge"] == c["options"]["ridge_choice"]["ridge"] for c in curve)


def test_at_one_labelled_face_only_the_fit_without_intercept_depends_on_the_detector():
    faces = _faces(300, 7)
    good = faces + np.random.default_rng(8).normal(0, 0.5, size=faces.shape)  # follows the face
    mixed = _linear_detector(faces, 5, 4.0, 9)  # a different, noisier detector
    train, test = slice(0, 200), slice(200, None)

    def n1(detections, intercept):
        opts = RegressionOptions(intercept=intercept, train_size=1, repeats=10)
        return forward_error(detections[train], faces[train], detections[test], faces[test], opts)

    plain = [n1(d, False)["mean"] for d in (good, mixed)]
    assert abs(plain[0] - plain[1]) > 1.0
    with_bias = [n1(d, True) for d in (good, mixed)]
    assert with_bias[0]["repeats"] == pytest.approx(with_bias[1]["repeats"], abs=1e-9)
    # ... because with an intercept n = 1 copies the labelled face's shape, whatever the detector
    rng = np.random.default_rng(0)  # the subset draws of RegressionOptions(seed=0)
    copies = [normalised_errors(np.repeat(faces[train][rng.choice(200, 1)], 100, 0), faces[test]).mean()
              for _ in range(10)]
    assert with_bias[0]["repeats"] == pytest.approx(copies, abs=1e-9)
    assert plain[0] != pytest.approx(with_bias[0]["mean"], abs=1.0)


def test_the_tuned_ridge_tames_fits_near_the_number_of_parameters():
    faces = _faces(600, 10)
    detections = _linear_detector(faces, 10, 1.0, 11)  # K = 10: 2K = 20 inputs per output
    train, test = slice(0, 500), slice(500, None)
    args = (detections[train], faces[train], detections[test], faces[test])
    tuned = forward_error(*args, RegressionOptions(train_size=20, repeats=10))
    plain = forward_error(*args, RegressionOptions(train_size=20, repeats=10, ridge=0.0))
    mean_shape = mean_shape_error(faces[train], faces[test])["mean"]
    assert tuned["options"]["ridge"] > 0
    assert tuned["mean"] < 0.2 * plain["mean"]
    assert tuned["mean"] < 0.9 * mean_shape
    # with all the labels the tuned fit is no worse than least squares (up to the tuning's noise)
    full = forward_error(*args)["mean"]
    assert full <= 1.02 * forward_error(*args, RegressionOptions(ridge=0.0))["mean"]


def test_the_ridge_choice_is_recorded_and_never_looks_at_the_test_set():
    faces = _faces(400, 12)
    detections = _linear_detector(faces, 10, 1.0, 13)
    train, test = slice(0, 300), slice(300, None)
    opts = RegressionOptions(train_size=25, repeats=5)
    clean = forward_error(detections[train], faces[train], detections[test], faces[test], opts)
    choice = clean["options"]["ridge_choice"]
    assert choice["grid"] == list(RIDGE_GRID) and len(choice["tune_errors"]) == len(RIDGE_GRID)
    assert clean["options"]["ridge"] == RIDGE_GRID[int(np.argmin(choice["tune_errors"]))]
    assert "i % 5 == 0" in choice["rule"] and (choice["tune_fit_size"], choice["tune_val_size"]) == (240, 60)
    # a planted outlier in the test set moves the error, not the choice
    spoiled = detections[test].copy()
    spoiled[0] += 1e4
    outlier = forward_error(detections[train], faces[train], spoiled, faces[test], opts)
    assert outlier["mean"] > 2 * clean["mean"]
    assert outlier["options"]["ridge_choice"] == choice
    # the same outlier in the regressor set's tune_val part (position 0) does move the tuning
    planted = detections[train].copy()
    planted[0] += 1e4
    assert choose_ridge(planted, faces[train], opts)["tune_errors"] != choice["tune_errors"]
    # explicit tune positions: the rule's own give the same choice, others another one
    fit, val = tune_positions(300)
    assert choose_ridge(detections[train], faces[train], opts, tune_split=(fit, val)) == {
        **choice, "rule": "explicit tune_fit / tune_val positions of the regressor set"}
    other = choose_ridge(detections[train], faces[train], opts, tune_split=(np.arange(100, 300), np.arange(100)))
    assert other["tune_errors"] != choice["tune_errors"] and other["tune_val_size"] == 100


def test_regressor_fraction_uses_the_first_ninety_percent():
    faces = _faces(300, 14)
    detections = _linear_detector(faces, 6, 1.0, 15)
    labels = faces.copy()
    labels[270:] = labels[270:, ::-1] + 30  # the last 10 % carry wrong labels
    test = _faces(100, 16)
    det_test = _linear_detector(test, 6, 1.0, 15)
    imm = RegressionOptions(regressor_fraction=0.9)
    prefix = forward_error(detections[:270], labels[:270], det_test, test)
    cut = forward_error(detections, labels, det_test, test, imm)
    assert cut["mean"] == pytest.approx(prefix["mean"], rel=1e-12)
    assert cut["options"]["regressor_images"] == 270 and cut["options"]["regressor_fraction"] == 0.9
    assert forward_error(detections, labels, det_test, test)["mean"] > 1.5 * cut["mean"]
    for direction in ("forward", "backward"):
        a = few_shot_curve(detections, labels, det_test, test, [10, None], 4, direction, imm)
        b = few_shot_curve(detections[:270], labels[:270], det_test, test, [10, None], 4, direction)
        assert [c["mean"] for c in a] == pytest.approx([c["mean"] for c in b], rel=1e-12)
        assert a[-1]["n"] == 270
    assert backward_error(detections, labels, det_test, test, imm)["mean"] == pytest.approx(
        backward_error(detections[:270], labels[:270], det_test, test)["mean"], rel=1e-12)


def _encoded_set(points: np.ndarray, name: str) -> LandmarkSet:
    """80 px 'images' whose first row spells out the (integer) annotated coordinates."""
    images = torch.zeros(len(points), 3, 80, 80, dtype=torch.uint8)
    images[:, 0, 0, :points.shape[1] * 2] = torch.as_tensor(points.reshape(len(points), -1), dtype=torch.uint8)
    return LandmarkSet(name, [f"{name}/{i}" for i in range(len(points))], images, torch.as_tensor(points, dtype=torch.float32))


def test_evaluate_detector_on_exact_linear_and_noise_detectors():
    rng = np.random.default_rng(17)
    train = np.round(_faces(400, 18, spread=3.0))
    test = np.round(_faces(150, 19, spread=3.0))
    train_set, test_sets = _encoded_set(train, "train"), {"test": _encoded_set(test, "test")}
    mix = torch.as_tensor(rng.uniform(0, 1, size=(8, 5)), dtype=torch.float32)
    mix /= mix.sum(1, keepdim=True)

    def linear(batch):  # K = 8 points, an exact linear function of the annotated ones
        points = (batch[:, 0, 0, :10] * 255).round().reshape(-1, 5, 2)
        return pixels_to_normalized(torch.einsum("kp,npc->nkc", mix, points), 80)

    places = torch.rand(1, 8, 2, generator=torch.Generator().manual_seed(3)) * 1.2 - 0.6

    def noise(batch):  # points that ignore the face: 4 px of noise around fixed places
        return places + torch.randn(len(batch), 8, 2) * 0.1

    def wander(batch):  # points anywhere in the image
        return torch.rand(len(batch), 8, 2) * 1.6 - 0.8

    kwargs = dict(consistency=False, few_shot_sizes=[1, 20, None], few_shot_repeats=3)
    exact = evaluate_detector(linear, train_set, test_sets, RegressionOptions(), **kwargs).as_dict()
    assert exact["forward"]["test"]["mean"] < 1e-3 and exact["backward"]["test"]["mean"] < 1e-3
    assert exact["few_shot"]["test"][-1]["mean"] < 1e-3
    mean_shape = mean_shape_error(train, test)["mean"]
    torch.manual_seed(0)
    noisy = evaluate_detector(noise, train_set, test_sets, RegressionOptions(), **kwargs).as_dict()
    assert 0.97 * mean_shape <= noisy["forward"]["test"]["mean"] < 1.2 * mean_shape
    # points wandering over the whole image: mean-shape-like with an intercept; without one the
    # map reaches the mean shape only through the detections' (noisy) mean position, and is worse
    torch.manual_seed(0)
    biased = evaluate_detector(wander, train_set, test_sets, RegressionOptions(intercept=True), consistency=False)
    assert 0.97 * mean_shape <= biased.forward["test"]["mean"] < 1.1 * mean_shape
    torch.manual_seed(0)
    assert evaluate_detector(wander, train_set, test_sets, consistency=False).forward["test"]["mean"] > 1.5 * mean_shape
    for result in (noisy["forward"]["test"], noisy["backward"]["test"], *noisy["few_shot"]["test"]):
        assert result["options"]["ridge"] in RIDGE_GRID and result["options"]["ridge_choice"]["grid"] == list(RIDGE_GRID)
    assert "backward" in noisy["backward"]["test"]["options"]["ridge_choice"]["criterion"]
    # the old call (positional options, consistency_limit) still works, with a fixed ridge too
    old = evaluate_detector(linear, train_set, test_sets, replace(RegressionOptions(), ridge=1e-4),
                            consistency_limit=4, few_shot_sizes=[5], few_shot_repeats=2)
    assert old.consistency["test"]["mean"] >= 0 and old.forward["test"]["options"]["ridge"] == 1e-4


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


@pytest.mark.parametrize("intercept", [False, True])
@pytest.mark.parametrize("ridge", [0.0, 1e-3, 1e-1])
def test_closed_form_fits_agree_with_scikit_learn(intercept, ridge):
    """The protocol's numpy fits are checked against scikit-learn's solvers (the reference)."""
    from sklearn.linear_model import LinearRegression, Ridge

    from lmcore.evaluation.protocol import fit_linear_map, gram_scale

    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 10, 2)) * 5 + 40
    y = rng.normal(size=(60, 5, 2)) * 3 + 40
    fit = fit_linear_map(x, y, intercept=intercept, ridge=ridge)
    flat_x, flat_y = x.reshape(60, -1), y.reshape(60, -1)
    if ridge:
        alpha = ridge * gram_scale(flat_x, intercept, "max_eigenvalue")
        reference = Ridge(alpha=alpha, fit_intercept=intercept, solver="svd").fit(flat_x, flat_y)
    else:
        reference = LinearRegression(fit_intercept=intercept).fit(flat_x, flat_y)
    expected = reference.predict(flat_x).reshape(60, 5, 2)
    assert np.allclose(fit.predict(x), expected, atol=1e-6)


def test_every_protocol_run_records_its_tune_val_score_from_the_regressor_sets_detections(mtfl):
    """The record's tune_val number (what settings are chosen by) equals scoring the detector on
    MTFL-80's shipped tune_fit / tune_val lists: the positional rule picks the README's faces."""
    from lmcore.evaluation import tune_forward_error, tune_val_error

    def centroids(batch):  # five image-dependent points: intensity centroids of channels and halves
        weights = batch.mean(1, keepdim=True).expand(-1, 5, -1, -1).clone()
        weights[:, 1] *= batch[:, 0]
        weights[:, 2] *= batch[:, 2]
        weights[:, 3, :, 40:] = 0
        weights[:, 4, 40:] = 0
        return soft_argmax(torch.log(weights + 1e-6), temperature=1.0)[0]

    regressor = mtfl.split("regressor_train", every=1)
    from lmcore.evaluation import detect_all

    detected = detect_all(centroids, regressor.images)
    recorded = tune_val_error(detected, regressor.points)["mean"]
    assert recorded == pytest.approx(tune_forward_error(centroids, mtfl), rel=1e-6)  # float32 sums
    test_sets = {"test_mtfl": mtfl.split("test_mtfl", every=8)}
    result = evaluate_detector(centroids, regressor, test_sets, consistency=False).as_dict()
    assert result["tune"]["tune_val"]["mean"] == pytest.approx(recorded, rel=1e-12)
