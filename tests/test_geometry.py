"""Geometry: soft-argmax, heatmaps and warps move points and images consistently."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcore.geometry import (
    AffineWarp,
    ComposedWarp,
    TPSWarp,
    WarpSpec,
    crop_warp,
    expected_coordinates,
    gaussian_heatmaps,
    marginal_soft_argmax,
    normalized_to_pixels,
    pixels_to_normalized,
    random_similarity,
    random_tps,
    regular_grid,
    soft_argmax,
    synthesize_pair,
    warp_image,
)

coordinate = st.floats(min_value=-0.8, max_value=0.8)


@settings(max_examples=40, deadline=None)
@given(x=coordinate, y=coordinate, size=st.sampled_from([16, 20, 33, 64]))
def test_soft_argmax_finds_a_known_peak(x, y, size):
    # a sharp peak at the pixel nearest (x, y): soft-argmax at low temperature returns its centre
    col = min(int((x + 1) / 2 * size), size - 1)
    row = min(int((y + 1) / 2 * size), size - 1)
    scores = torch.zeros(1, 1, size, size)
    scores[0, 0, row, col] = 1.0
    points, probs = soft_argmax(scores, temperature=0.01)
    expected = torch.tensor([(2 * col + 1) / size - 1, (2 * row + 1) / size - 1])
    assert torch.allclose(points[0, 0], expected, atol=1e-4)
    assert torch.allclose(probs.sum((-1, -2)), torch.ones(1, 1))


@settings(max_examples=30, deadline=None)
@given(x=st.floats(-0.5, 0.5), y=st.floats(-0.5, 0.5))
def test_soft_argmax_is_sub_pixel_on_a_gaussian(x, y):
    maps = gaussian_heatmaps(torch.tensor([[[x, y]]]), 40, 40, std=0.08)
    points, _ = soft_argmax(torch.log(maps + 1e-30))
    assert torch.allclose(points[0, 0], torch.tensor([x, y]), atol=2e-3)


@settings(max_examples=30, deadline=None)
@given(x=st.floats(-0.5, 0.5), y=st.floats(-0.5, 0.5))
def test_marginal_soft_argmax_recovers_a_separable_peak(x, y):
    from lmcore.geometry import squared_distance_maps

    scores = -200.0 * squared_distance_maps(torch.tensor([[[x, y]]]), 40, 40)
    points, (px, py) = marginal_soft_argmax(scores)
    assert torch.allclose(points[0, 0], torch.tensor([x, y]), atol=2e-3)
    assert torch.allclose(px.sum(-1), torch.ones(1, 1)) and torch.allclose(py.sum(-1), torch.ones(1, 1))


def test_pixel_and_normalised_coordinates_round_trip():
    p = torch.tensor([[0.0, 0.0], [80.0, 80.0], [40.0, 20.0]])
    n = pixels_to_normalized(p, 80)
    assert torch.allclose(n, torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, -0.5]]))
    assert torch.allclose(normalized_to_pixels(n, 80), p)


def _blob_centres_after_warp(points, warp, size=128, std=0.03):
    """Warp an image of one Gaussian blob per point; return each blob's centroid."""
    blobs = gaussian_heatmaps(points, size, size, std)
    return expected_coordinates(warp_image(blobs, warp, padding_mode="zeros"))


warp_specs = st.builds(
    WarpSpec,
    rotation_deg=st.floats(0, 40),
    log2_scale=st.floats(0, 0.3),
    translation=st.floats(0, 0.1),
    tps_grid=st.sampled_from([0, 4, 5]),
    tps_std=st.floats(0, 0.015),
)


@settings(max_examples=25, deadline=None)
@given(spec=warp_specs, seed=st.integers(0, 10_000))
def test_warp_applied_to_points_agrees_with_warp_applied_to_image(spec, seed):
    g = torch.Generator().manual_seed(seed)
    warp = random_tps(spec, 4, g)
    points = torch.rand(4, 3, 2, generator=g) - 0.5  # inside [-0.5, 0.5]^2
    moved = warp.transport(points)
    inside = (moved.abs() < 0.8).all(-1)  # blobs that leave the frame have no centroid to compare
    centroids = _blob_centres_after_warp(points, warp)
    err = (centroids - moved).norm(dim=-1)[inside]
    # 0.012 normalised = 0.5 px at 80 px; the TPS bends a blob a little so centroids move slightly
    assert err.numel() == 0 or err.max() < 0.012


def test_a_rotation_moves_content_the_way_transport_says():
    # rotating by +90 degrees (y down): the point right of centre goes below it
    warp = AffineWarp.similarity(torch.tensor([math.pi / 2]), torch.tensor([1.0]), torch.zeros(1, 2))
    moved = warp.transport(torch.tensor([[[0.5, 0.0]]]))
    assert torch.allclose(moved, torch.tensor([[[0.0, 0.5]]]), atol=1e-6)
    centroid = _blob_centres_after_warp(torch.tensor([[[0.5, 0.0]]]), warp)
    assert torch.allclose(centroid, moved, atol=5e-3)


@settings(max_examples=25, deadline=None)
@given(spec=warp_specs, seed=st.integers(0, 10_000))
def test_composing_a_warp_with_its_inverse_gives_the_identity(spec, seed):
    g = torch.Generator().manual_seed(seed)
    warp = random_tps(spec, 3, g)
    points = torch.rand(3, 50, 2, generator=g) * 1.6 - 0.8
    assert torch.allclose(warp.map(warp.transport(points)), points, atol=1e-4)
    assert torch.allclose(warp.transport(warp.map(points)), points, atol=1e-4)
    similarity = random_similarity(spec, 3, g)
    both = ComposedWarp(similarity, similarity.inverse())
    assert torch.allclose(both.map(points), points, atol=1e-5)


def test_tps_fit_interpolates_its_control_points():
    g = torch.Generator().manual_seed(0)
    control = regular_grid(4, 2)
    targets = control + 0.05 * torch.randn(control.shape, generator=g)
    tps = TPSWarp.fit(control, targets)
    assert torch.allclose(tps.map(control), targets, atol=1e-5)
    # an affine target is reproduced by the affine part alone
    affine_targets = control @ torch.tensor([[1.1, 0.2], [-0.1, 0.9]]).T + torch.tensor([0.05, -0.02])
    tps = TPSWarp.fit(control, affine_targets)
    assert tps.weights.abs().max() < 1e-4


def test_warping_twice_equals_warping_once_by_the_composition():
    g = torch.Generator().manual_seed(3)
    spec = WarpSpec(rotation_deg=15, log2_scale=0.1, translation=0.05, tps_grid=4, tps_std=0.01)
    g1, g2 = random_tps(spec, 2, g), random_tps(spec, 2, g)
    images = gaussian_heatmaps(torch.rand(2, 6, 2, generator=g) - 0.5, 64, 64, 0.15).sum(1, keepdim=True)
    twice = warp_image(warp_image(images, g1), g2)
    once = warp_image(images, ComposedWarp(g1, g2))
    interior = (slice(None), slice(None), slice(12, -12), slice(12, -12))
    assert (twice - once)[interior].abs().max() < 0.05  # resampling twice blurs a little


def test_synthesized_pair_second_view_is_the_first_warped_by_the_returned_warp():
    g = torch.Generator().manual_seed(5)
    spec = WarpSpec(rotation_deg=20, log2_scale=0.1, translation=0.05, tps_grid=5, tps_std=0.01)
    images = gaussian_heatmaps(torch.rand(3, 8, 2, generator=g) - 0.5, 64, 64, 0.12).sum(1, keepdim=True)
    pair = synthesize_pair(images, spec, spec, g)
    rewarped = warp_image(pair.first, pair.warp)
    interior = (slice(None), slice(None), slice(16, -16), slice(16, -16))
    assert (rewarped - pair.second)[interior].abs().max() < 0.05
    # and a point carried by the warp lands on the same content: one small blob per channel, found
    # in the first image, is carried by warp.transport onto the same blob in the second
    blobs = gaussian_heatmaps(torch.rand(3, 4, 2, generator=g) * 0.6 - 0.3, 64, 64, 0.05)
    pair = synthesize_pair(blobs, spec, spec, g)
    in_first, in_second = expected_coordinates(pair.first), expected_coordinates(pair.second)
    assert (pair.warp.transport(in_first) - in_second).norm(dim=-1).max() < 0.012
    assert (pair.warp.map(in_second) - in_first).norm(dim=-1).max() < 0.012


def _pair_of_blobs(batch=4, blobs=3, size=96, std=0.04, seed=0):
    """Images with one Gaussian blob per channel at known places inside [-0.25, 0.25]^2."""
    g = torch.Generator().manual_seed(seed)
    points = torch.rand(batch, blobs, 2, generator=g) * 0.5 - 0.25
    return gaussian_heatmaps(points, size, size, std), points, g


def test_synthesized_pair_with_a_view_shows_the_view_at_the_requested_size():
    images, points, g = _pair_of_blobs()
    crop = 0.6
    identity = WarpSpec()
    pair = synthesize_pair(images, identity, identity, g, view=crop_warp(4, crop), size=40)
    assert pair.first.shape == pair.second.shape == (4, 3, 40, 40)
    # no warps: both images are the central 0.6 of the frame, zoomed, so a blob at p is at p / 0.6
    for image in (pair.first, pair.second):
        assert torch.allclose(expected_coordinates(image), points / crop, atol=5e-3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthesized_pair_with_a_view_relates_its_images_by_its_warp_in_view_coordinates(seed):
    images, _, g = _pair_of_blobs(seed=seed)
    first_spec = WarpSpec(rotation_deg=10, log2_scale=0.1, translation=0.05, tps_grid=4, tps_std=0.01)
    second_spec = WarpSpec(rotation_deg=25, log2_scale=0.15, translation=0.1, tps_grid=4, tps_std=0.01)
    pair = synthesize_pair(images, first_spec, second_spec, g, view=crop_warp(4, 0.6), size=40)
    assert pair.first.shape == pair.second.shape == (4, 3, 40, 40)
    in_first, in_second = expected_coordinates(pair.first), expected_coordinates(pair.second)
    assert in_first.abs().max() < 0.75 and in_second.abs().max() < 0.75  # every blob inside both views
    # the documented directions: transport carries first -> second, map carries second -> first
    # (0.01 normalised = 0.2 px of the 40 px view; the wrong direction or g2 taken in image rather
    # than view coordinates misses by 0.03 and more)
    assert (pair.warp.transport(in_first) - in_second).norm(dim=-1).max() < 0.01
    assert (pair.warp.map(in_second) - in_first).norm(dim=-1).max() < 0.01


def test_warp_image_rejects_a_batch_mismatch():
    with pytest.raises(ValueError, match="2 transforms for 3 images"):
        warp_image(torch.zeros(3, 1, 8, 8), AffineWarp.identity(2))
