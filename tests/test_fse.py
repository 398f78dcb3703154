"""Thewlis et al. 2017: detector shape and the losses of Eq. 5-8."""
import pytest
import torch

from lmcore.geometry import AffineWarp, WarpSpec, pixel_centres, random_tps, soft_argmax, spatial_softmax
from lmcore.losses.fse import (
    diversity_loss_max,
    diversity_loss_overlap,
    landmark_alignment_loss,
    probability_map_alignment_loss,
)
from lmcore.models.fse_detector import FSEDetector


def _brute_force_eq6(p, q, warp):
    """Eq. 6 as written: the double sum over all pixel pairs (u in x, v in x')."""
    b, k, h, w = p.shape
    grid = pixel_centres(h, w).reshape(1, h * w, 2).expand(b, -1, -1)
    u = grid * (w / 2)
    gv = warp.map(grid) * (w / 2)
    dist = ((u[:, :, None, :] - gv[:, None, :, :]) ** 2).sum(-1)  # B x HW x HW
    pf, qf = p.reshape(b, k, h * w), q.reshape(b, k, h * w)
    return torch.einsum("bku,buv,bkv->bk", pf, dist, qf).mean()


def test_eq6_by_its_decomposition_equals_the_brute_force_double_sum():
    g = torch.Generator().manual_seed(0)
    p = spatial_softmax(torch.randn(2, 3, 7, 6, generator=g) * 2)
    q = spatial_softmax(torch.randn(2, 3, 7, 6, generator=g) * 2)
    warp = random_tps(WarpSpec(rotation_deg=30, log2_scale=0.2, translation=0.1, tps_grid=3, tps_std=0.02), 2, g)
    fast = probability_map_alignment_loss(p, q, warp)
    assert fast.item() == pytest.approx(_brute_force_eq6(p, q, warp).item(), rel=1e-5)


def test_eq6_is_zero_only_for_matching_deltas():
    delta = torch.zeros(1, 1, 8, 8)
    delta[0, 0, 3, 5] = 1.0
    identity = AffineWarp.identity(1)
    assert probability_map_alignment_loss(delta, delta, identity).item() == pytest.approx(0.0, abs=1e-6)
    spread = torch.full((1, 1, 8, 8), 1 / 64)
    assert probability_map_alignment_loss(spread, spread, identity) > 1.0  # same mean, not concentrated


def test_eq5_is_zero_when_landmarks_move_with_the_warp():
    g = torch.Generator().manual_seed(1)
    warp = random_tps(WarpSpec(rotation_deg=20, tps_grid=4, tps_std=0.01), 3, g)
    first = torch.rand(3, 5, 2, generator=g) - 0.5
    second = warp.transport(first)
    assert landmark_alignment_loss(first, second, warp, unit=0.1).item() < 1e-8
    assert landmark_alignment_loss(first, first + 0.1, warp, unit=0.1) > 0.1


def _disjoint_maps(k=4, size=8):
    maps = torch.zeros(1, k, size, size)
    for r in range(k):
        maps[0, r, 2 * r, 2 * r] = 1.0
    return maps


@pytest.mark.parametrize("loss", [diversity_loss_overlap, diversity_loss_max])
def test_diversity_is_zero_for_disjoint_maps_and_maximal_for_identical_ones(loss):
    disjoint = _disjoint_maps()
    identical = disjoint[:, :1].expand(-1, 4, -1, -1)
    assert loss(disjoint).item() == pytest.approx(0.0, abs=1e-7)
    random_maps = spatial_softmax(torch.randn(1, 4, 8, 8))
    assert loss(disjoint) < loss(random_maps) < loss(identical)


def test_max_diversity_values_and_pooling():
    disjoint = _disjoint_maps()
    identical = disjoint[:, :1].expand(-1, 4, -1, -1)
    assert diversity_loss_max(identical).item() == pytest.approx(3.0)  # K - 1
    # neighbours two pixels apart are disjoint, but not once pooled in 4 x 4 cells
    assert diversity_loss_max(disjoint, pool=4).item() == pytest.approx(2.0)
    # pooling sums probability mass: an odd map size is padded, not truncated
    spread = torch.full((1, 2, 7, 7), 1 / 49)
    assert diversity_loss_max(spread, pool=4).item() == pytest.approx(1.0, abs=1e-6)


def test_the_detector_outputs_k_maps_at_half_resolution():
    net = FSEDetector(7)
    scores = net(torch.rand(2, 3, 40, 40))
    assert scores.shape == (2, 7, 20, 20)
    points, probs = soft_argmax(scores)
    assert points.shape == (2, 7, 2) and torch.allclose(probs.sum((-1, -2)), torch.ones(2, 7))


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_map_grid_places_each_output_pixel_over_its_receptive_field(padding):
    from lmcore.geometry import expected_coordinates, gaussian_heatmaps

    net = FSEDetector(1, widths=(1, 1, 1, 1, 1), padding=padding).eval()
    with torch.no_grad():  # every conv passes channel 0 through its centre tap: the net copies the image
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.zero_()
                c = m.kernel_size[0] // 2
                m.weight[0, 0, c, c] = 1.0
                if m.bias is not None:
                    m.bias.zero_()
    centre = torch.tensor([[[0.12, -0.2]]])
    image = gaussian_heatmaps(centre, 64, 64, 0.12).expand(-1, 3, -1, -1)
    out = net(image)
    grid = net.map_grid(64)
    assert grid.shape[:2] == out.shape[-2:]
    found = expected_coordinates(out.clamp_min(0) ** 4, grid)
    assert torch.allclose(found, centre, atol=0.03)
