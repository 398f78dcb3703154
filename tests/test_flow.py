"""C3's cross-image flow module (lmcore.models.flow) and its losses (lmcore.losses.c3)."""
import math

import pytest
import torch
import torch.nn.functional as F

from lmcore.geometry import AffineWarp, gaussian_heatmaps, pixel_centres, regular_grid, warp_image
from lmcore.losses.c3 import equivariance_loss, flow_supervision_loss
from lmcore.models.flow import (
    CrossImageFlow,
    NeighbourhoodFilter,
    SeparableConv4d,
    correlation_4d,
    correlation_memory_bytes,
    flow_of_warp,
    score_maps,
    transfer_points,
    transformation_map,
)


def smooth_features(n: int, c: int, h: int, w: int, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Gaussian-blurred noise: distinct far apart, correlated over about ``sigma`` cells, so
    that bilinear warping of it is faithful and correlation peaks are single and smooth."""
    x = torch.randn(n, c, h, w, generator=generator)
    k = int(3 * sigma) * 2 + 1
    r = torch.arange(k) - k // 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    x = F.conv2d(F.pad(x, (k // 2, k // 2, 0, 0), mode="reflect"), g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(F.pad(x, (0, 0, k // 2, k // 2), mode="reflect"), g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def random_similarities(batch: int, generator: torch.Generator, scale: bool = True,
                        shift: float = 0.1) -> AffineWarp:
    """Rotations within 15 degrees, scales within 2^(+-0.15), shifts within ``shift`` (normalised)."""
    angle = (torch.rand(batch, generator=generator) * 2 - 1) * math.radians(15)
    s = torch.exp2((torch.rand(batch, generator=generator) * 2 - 1) * 0.15) if scale else torch.ones(batch)
    t = (torch.rand(batch, 2, generator=generator) * 2 - 1) * shift
    return AffineWarp.similarity(angle, s, t)


# --------------------------------------------------------------------------- correlation


def test_correlation_is_the_cosine_of_the_right_positions_and_one_on_the_diagonal():
    gen = torch.Generator().manual_seed(0)
    fa = torch.randn(2, 8, 5, 7, generator=gen) * 3.0  # unnormalised: the function normalises
    fb = torch.randn(2, 8, 4, 6, generator=gen)
    corr = correlation_4d(fa, fb)
    assert corr.shape == (2, 5, 7, 4, 6)
    assert corr.min() >= -1 - 1e-6 and corr.max() <= 1 + 1e-6
    # an off-diagonal entry, with different y and x on each side, is that pair's cosine
    expected = F.cosine_similarity(fa[1, :, 3, 5], fb[1, :, 2, 1], dim=0)
    assert torch.allclose(corr[1, 3, 5, 2, 1], expected, atol=1e-6)
    self_corr = correlation_4d(fa, fa).reshape(2, 35, 35)
    assert torch.allclose(torch.diagonal(self_corr, dim1=1, dim2=2), torch.ones(2, 35), atol=1e-5)
    assert (self_corr < 1 - 1e-4).sum() == 2 * (35 * 35 - 35)  # only the diagonal is 1


def test_memory_helper_counts_the_4d_tensor():
    corr = correlation_4d(torch.randn(3, 4, 6, 5), torch.randn(3, 4, 7, 2))
    assert correlation_memory_bytes(6, 5, 7, 2, batch=3) == corr.numel() * corr.element_size()
    assert correlation_memory_bytes(16) == 16**4 * 4  # 256 KiB per channel and pair


# --------------------------------------------------------------------------- Eq. 3 filter


def direct_conv4d(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Slow reference: dense 4D cross-correlation with zero padding, as a sum over kernel offsets."""
    k = kernel.shape[-1]
    p = k // 2
    n, ci, ha, wa, hb, wb = x.shape
    xp = F.pad(x, (p,) * 8)
    out = torch.zeros(n, kernel.shape[0], ha, wa, hb, wb, dtype=x.dtype)
    for a1 in range(k):
        for a2 in range(k):
            for b1 in range(k):
                for b2 in range(k):
                    patch = xp[:, :, a1:a1 + ha, a2:a2 + wa, b1:b1 + hb, b2:b2 + wb]
                    out += torch.einsum("oi,ni...->no...", kernel[:, :, a1, a2, b1, b2], patch)
    if bias is not None:
        out += bias.view(1, -1, 1, 1, 1, 1)
    return out


def test_separable_conv4d_is_a_4d_convolution_with_a_separable_kernel():
    torch.manual_seed(0)
    layer = SeparableConv4d(2, 3, kernel_size=3, mid_channels=4).double()
    x = torch.randn(2, 2, 4, 5, 3, 6, dtype=torch.float64)  # every axis a different size
    out = layer(x)
    assert out.shape == (2, 3, 4, 5, 3, 6)
    expected = direct_conv4d(x, layer.kernel_4d(), layer.conv_a.bias)
    assert torch.allclose(out, expected, atol=1e-10)


def test_separable_conv4d_with_delta_kernels_is_the_identity():
    layer = SeparableConv4d(1, 1, kernel_size=3, bias=False)
    with torch.no_grad():
        for conv in (layer.conv_a, layer.conv_b):
            conv.weight.zero_()
            conv.weight[0, 0, 1, 1] = 1.0
    x = torch.randn(1, 1, 4, 5, 6, 3)
    assert torch.allclose(layer(x), x)


def test_symmetric_filter_transposes_with_the_images():
    torch.manual_seed(1)
    corr = correlation_4d(torch.randn(2, 8, 5, 4), torch.randn(2, 8, 3, 6))
    swapped = corr.permute(0, 3, 4, 1, 2)
    sym = NeighbourhoodFilter((4, 1), (3, 3), symmetric=True)
    assert torch.allclose(sym(swapped), sym(corr).permute(0, 3, 4, 1, 2), atol=1e-5)
    # the test has teeth: the one-sided filter treats A's and B's axes differently
    one_sided = NeighbourhoodFilter((4, 1), (3, 3), symmetric=False)
    assert not torch.allclose(one_sided(swapped), one_sided(corr).permute(0, 3, 4, 1, 2), atol=1e-3)


# --------------------------------------------------------------------------- scores and T


def test_score_maps_normalise_over_the_other_image():
    corr = correlation_4d(torch.randn(2, 8, 3, 4), torch.randn(2, 8, 5, 2))
    s_ab, s_ba = score_maps(corr, temperature=0.1)
    assert s_ab.shape == (2, 3, 4, 5, 2) and s_ba.shape == (2, 5, 2, 3, 4)
    assert torch.allclose(s_ab.sum((-2, -1)), torch.ones(2, 3, 4), atol=1e-5)
    assert torch.allclose(s_ba.sum((-2, -1)), torch.ones(2, 5, 2), atol=1e-5)
    # S_ba at B's (4, 1) is the softmax over A of that column of C
    column = torch.softmax(corr[1, :, :, 4, 1].flatten() / 0.1, 0).reshape(3, 4)
    assert torch.allclose(s_ba[1, 4, 1], column, atol=1e-6)


@pytest.mark.parametrize("window", [None, 1])
def test_flow_of_a_shifted_copy_is_the_shift(window):
    # B is A shifted by (dx, dy) cells on a non-square map, so an x/y or A/B mix-up shows
    gen = torch.Generator().manual_seed(2)
    h, w, dx, dy = 10, 14, 3, -2
    fa = torch.randn(2, 32, h, w, generator=gen)
    fb = torch.roll(fa, shifts=(dy, dx), dims=(2, 3))  # fb[y + dy, x + dx] = fa[y, x]
    out = CrossImageFlow(channels=(), temperature=0.02, window=window)(fa, fb)
    shift = torch.tensor([dx * 2 / w, dy * 2 / h])
    centres = pixel_centres(h, w)
    # positions whose shifted place is inside the map (away from the wrap-around seam)
    ys, xs = slice(2, h), slice(0, w - dx)
    assert torch.allclose(out["T_ab"][:, ys, xs], (centres + shift)[ys, xs], atol=1e-3)
    ys_b, xs_b = slice(0, h + dy), slice(dx, w)
    assert torch.allclose(out["T_ba"][:, ys_b, xs_b], (centres - shift)[ys_b, xs_b], atol=1e-3)


def test_window_ignores_a_distant_weaker_match():
    # one row of scores: best match at B's cell (2, 2), a runner-up at (6, 6)
    corr = torch.full((1, 1, 1, 8, 8), -1.0)
    corr[0, 0, 0, 2, 2] = 1.0
    corr[0, 0, 0, 6, 6] = 0.9
    centre = pixel_centres(8, 8)[2, 2]
    global_t = transformation_map(corr, temperature=0.1)[0, 0, 0]
    local_t = transformation_map(corr, temperature=0.1, window=1)[0, 0, 0]
    assert (global_t - centre).norm() > 0.2  # pulled about a third of the way to the runner-up
    assert torch.allclose(local_t, centre, atol=1e-6)


def test_flow_of_a_warped_smooth_map_agrees_with_the_warp():
    # B = A o g for random similarities g; T from the raw correlation carries interior points
    # of A where g.transport does (and B's where g.map does) within 0.6 of a cell (measured:
    # at most 0.38 cells over 16 seeds)
    gen = torch.Generator().manual_seed(3)
    h = 16
    fa = smooth_features(4, 32, h, h, sigma=1.0, generator=gen)
    warp = random_similarities(4, gen, shift=0.25)
    fb = warp_image(fa, warp, padding_mode="border")
    out = CrossImageFlow(channels=(), temperature=0.05)(fa, fb)
    points = regular_grid(5, 4, extent=0.5)
    cell = 2 / h
    err_ab = (transfer_points(out["T_ab"], points) - warp.transport(points)).norm(dim=-1) / cell
    err_ba = (transfer_points(out["T_ba"], points) - warp.map(points)).norm(dim=-1) / cell
    assert err_ab.max() < 0.6 and err_ba.max() < 0.6
    # and the points do move: taking T as the identity would miss them by over a cell on average
    assert ((points - warp.transport(points)).norm(dim=-1) / cell).mean() > 1.0


def test_transfer_points_is_exact_for_an_affine_flow():
    gen = torch.Generator().manual_seed(4)
    warp = random_similarities(3, gen)
    t_ab, t_ba = flow_of_warp(warp, 12, 12)
    points = regular_grid(4, 3, extent=0.8)  # within the outermost cell centres (11/12)
    assert torch.allclose(transfer_points(t_ab, points), warp.transport(points), atol=1e-5)
    assert torch.allclose(transfer_points(t_ba, points), warp.map(points), atol=1e-5)




def test_supervised_flow_loss_trains_the_filter(one_thread):
    # pre-training on synthetic pairs (the book's departure from NC-Net): the loss reaches the
    # filter's weights and a few Adam steps lower it (measured: 1.45 -> about 0.4 in 12 steps)
    torch.manual_seed(5)
    gen = torch.Generator().manual_seed(5)
    h = 8
    flow = CrossImageFlow(channels=(4, 1), kernel_sizes=(3, 3))
    opt = torch.optim.Adam(flow.parameters(), lr=3e-2)

    def batch_loss():
        fa = smooth_features(4, 16, h, h, sigma=0.7, generator=gen)
        warp = random_similarities(4, gen)
        out = flow(fa, warp_image(fa, warp, padding_mode="border"))
        true_ab, true_ba = flow_of_warp(warp, h, h)
        return flow_supervision_loss(out["T_ab"], true_ab) + flow_supervision_loss(out["T_ba"], true_ba)

    first = batch_loss()
    first.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in flow.parameters())
    opt.step()
    for _ in range(12):
        opt.zero_grad()
        batch_loss().backward()
        opt.step()
    with torch.no_grad():
        final = (batch_loss() + batch_loss()) / 2
    assert final < 0.5 * first.detach()


def test_flow_supervision_loss_is_the_end_point_error_on_valid_positions():
    gen = torch.Generator().manual_seed(6)
    truth = torch.rand(2, 6, 6, 2, generator=gen) * 1.6 - 0.8
    assert flow_supervision_loss(truth, truth) == 0
    shifted = truth + torch.tensor([0.03, 0.04])
    assert torch.isclose(flow_supervision_loss(shifted, truth), torch.tensor(0.05), atol=1e-6)
    # positions whose correspondent is outside the other image carry no target
    truth_out = truth.clone()
    truth_out[:, 0] = 1.5
    wild = shifted.clone()
    wild[:, 0] = -3.0
    assert torch.isclose(flow_supervision_loss(wild, truth_out), torch.tensor(0.05), atol=1e-6)


# --------------------------------------------------------------------------- Eq. 4


def test_equivariance_loss_on_pose_maps_is_small_on_the_true_flow_and_grows_with_its_error():
    # rigid warps (no scale) carry isotropic Gaussian pose maps exactly onto each other
    gen = torch.Generator().manual_seed(8)
    warp = random_similarities(3, gen, scale=False)
    points_a = torch.rand(3, 5, 2, generator=gen) - 0.5
    pose_a = gaussian_heatmaps(points_a, 32, 32, std=0.12)
    pose_b = gaussian_heatmaps(warp.transport(points_a), 32, 32, std=0.12)
    t_ab, t_ba = flow_of_warp(warp, 16, 16)  # coarser than the maps: resampled inside
    exact = equivariance_loss(pose_a, pose_b, t_ab, t_ba)
    cell = 2 / 16
    errors = [equivariance_loss(pose_a, pose_b, t_ab + d * cell, t_ba - d * cell) for d in (0.5, 1.0, 2.0)]
    assert exact < 0.05 * errors[0]
    assert errors[0] < errors[1] < errors[2]
    assert equivariance_loss(pose_a, pose_b, t_ba, t_ab) > 10 * exact  # directions swapped
