"""The fidelity tables are true of the configs, and lmcore computes what the released code computes
where a table says the `paper` profile follows it (facts from the authors' code, not from lmcore)."""
import dataclasses
import math

import pytest
import torch

from lmcore.config import deep_update
from lmcore.experiments.fidelity import fidelity_problems, fidelity_table
from lmcore.experiments.fidelity import c3 as c3_table
from lmcore.experiments.fidelity import fse as fse_table
from lmcore.experiments.fidelity import jakab as jakab_table
from lmcore.experiments.fidelity import sanchez as sanchez_table
from lmcore.experiments.fidelity import zhang as zhang_table
from lmcore.geometry import (AffineWarp, TPSWarp, WarpSpec, gaussian_densities, landmark_statistics, random_similarity,
                             random_tps, regular_grid)
from lmcore.losses.zhang import EQUIVARIANCE_CODE_SCALE, concentration_loss, equivariance_loss, reconstruction_loss
from lmcore.methods import build_method
from lmcore.experiments.zhang import CODE_WARP
from lmcore.experiments import method_settings

TABLES = [fse_table.TABLE, zhang_table.TABLE, jakab_table.TABLE, c3_table.TABLE, sanchez_table.TABLE]


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.method)
def test_every_fidelity_row_holds_in_the_resolved_configs(table):
    assert fidelity_problems(table) == []
    frame = fidelity_table(table)
    assert len(frame) == len(table.rows) and not frame["lmbook paper"].eq("").any()


def test_a_row_that_no_longer_holds_is_reported():
    row = next(r for r in zhang_table.ROWS if r.key == "method.lambda_sep" and r.variant is None)
    wrong = dataclasses.replace(zhang_table.TABLE, rows=(dataclasses.replace(row, value=16.0),))
    assert any("lambda_sep = 20" in p for p in fidelity_problems(wrong))
    missing_why = dataclasses.replace(row, follows="departure", why="")
    assert fidelity_problems(dataclasses.replace(zhang_table.TABLE, rows=(missing_why,)))
    missing_value = dataclasses.replace(row, value=None)
    assert any("must give the value" in p for p in fidelity_problems(
        dataclasses.replace(zhang_table.TABLE, rows=(missing_value,))))


def test_c3s_learning_rate_ends_a_hundred_times_lower_as_the_paper_has_it():
    """5e-4 divided by 10 at epochs 100 and 150 of 200: 5e-6 at the end (not Jakab's x0.95)."""
    from lmcore.config import TrainConfig
    from lmcore.training.loop import _lr_factor

    train = TrainConfig.from_dict(method_settings("c3").default_config("paper")["train"])
    schedule = _lr_factor(train)
    assert train.lr * schedule(train.steps - 1) == pytest.approx(5e-6)
    assert train.lr * schedule(train.lr_milestones[0] - 1) == pytest.approx(5e-4)


# --------------------------------------------------------------------------- Zhang: the code's formulas


def test_equivariance_in_the_codes_units_for_a_known_displacement():
    """The code squares errors in [-1, 1] coordinates of the 96 px frame the 80 px image is padded
    to, sums over points and divides by (80/96) x batch (keypoint_encoder.py:419-421)."""
    d_px = torch.tensor([3.0, -2.0])  # each landmark moved by (3, -2) px of the 80 px image
    points = torch.zeros(2, 4, 2)
    moved = points + d_px * 2 / 80  # lmcore's normalised coordinates span 2 over the 80 px view
    identity = AffineWarp.identity(2)
    code = 4 * (((d_px * 2 / 96) ** 2).sum() / (80 / 96)).item()  # 4 points, per image
    assert equivariance_loss(points, moved, identity, EQUIVARIANCE_CODE_SCALE).item() == pytest.approx(code)
    edge = 4 * ((d_px / 80) ** 2).sum().item()  # the paper's units: the image edge is 1
    assert equivariance_loss(points, moved, identity).item() == pytest.approx(edge)
    assert edge / code == pytest.approx(0.30, abs=0.005)


def test_concentration_from_standard_deviations_as_the_code_has_it():
    """An elongated map: the code's sigma is the mean of the two standard deviations
    (keypoints_2d.py:286 with keypoint_encoder.py:256), the paper's the root of the mean variance."""
    variances = torch.tensor([[[0.04, 0.01]]]) * 4  # std 0.2 and 0.1 of the image edge
    code = 2 * math.pi * math.e * ((0.2 + 0.1) / 2) ** 2
    paper = 2 * math.pi * math.e * (0.04 + 0.01) / 2
    assert concentration_loss(variances, from_std=True).item() == pytest.approx(code, rel=1e-6)
    assert concentration_loss(variances).item() == pytest.approx(paper, rel=1e-6)


def test_the_codes_reconstruction_slope_is_80_times_lower_than_eq_17_with_table_7():
    """The code: recon_weight 0.1 x 0.5 |I - I~|^2 (sigma 1); Eq. 17 with Table 7: 0.01 / 0.05^2."""
    images = torch.rand(1, 3, 4, 4)
    recon = images.clone().requires_grad_(True)
    shifted = recon + 0.1

    def slope(lam, sigma):
        value = lam * reconstruction_loss(images, shifted, sigma)
        (grad,) = torch.autograd.grad(value, recon)
        return (grad / (2 * 0.1)).mean().item()  # d loss / d squared error

    paper_config = method_settings("zhang").default_config("paper")["method"]
    code = slope(paper_config["lambda_recon"], paper_config["sigma_color"])
    assert code == pytest.approx(0.1 * 0.5, rel=1e-5)
    assert slope(0.01, 0.05) / code == pytest.approx(80, rel=1e-5)


def _identity_zhang(extra=None):
    config = method_settings("zhang").default_config("smoke")
    no_warp = {"rotation_deg": 0.0, "log2_scale": 0.0, "translation": 0.0, "tps_grid": 0, "tps_std": 0.0}
    config = deep_update(config, {"method": {"warp": no_warp, "brightness": 0.0, "contrast": 0.0,
                                             "landmark_control_fraction": 0.0, **(extra or {})}})
    method = build_method("zhang", config)
    method.eval()  # batch norm by running statistics: the two views are computed alike
    return method


def test_concentration_and_separation_average_the_two_views():
    """With no warp the warped view is the original: the doubled-batch average of the code equals
    one view's value, where a sum would double it (keypoint_encoder.py:297-301, 321)."""
    method = _identity_zhang()
    images = torch.rand(2, 3, 80, 80)
    with torch.no_grad():
        terms = method(images, torch.Generator().manual_seed(0), step=0)
        out = method.model(method.to_view(images))
    m = method.config["method"]
    assert terms["conc"].item() == pytest.approx(concentration_loss(out["variances"], m["concentration_sigma"] == "std")
                                                 .item(), rel=1e-5)
    from lmcore.losses.zhang import separation_loss

    assert terms["sep"].item() == pytest.approx(separation_loss(out["points"], m["sigma_sep"]).item(), rel=1e-5)
    assert terms["eqv"].item() < 1e-10


def test_the_codes_scale_draw_has_a_log2_std_of_0_32():
    """exp(N(0, 1) ln 1.25) (keypoint_encoder.py:165-176), not a log2 std of 1.25."""
    spec = WarpSpec(log2_scale=CODE_WARP["log2_scale"], distribution="normal")
    warp = random_similarity(spec, 20000, torch.Generator().manual_seed(0))
    scale = torch.linalg.det(warp.matrix[:, :, :2]).abs().sqrt()  # map's scale = 1 / content scale
    assert torch.log(scale).std().item() == pytest.approx(math.log(1.25), rel=0.03)


def test_the_codes_warps_fold_some_images_and_bend_half_as_far():
    """The code's TPS (std 0.1 in [-1, 1] units of the 96 px frame, evaluated with half its kernel)
    folds a few percent of images; read with the wrong unit (0.1 of the image edge) most would fold."""
    g = torch.Generator().manual_seed(0)
    ticks = torch.linspace(-1, 1, 33)
    gy, gx = torch.meshgrid(ticks, ticks, indexing="ij")
    grid = torch.stack([gx, gy], -1).reshape(1, -1, 2).expand(1000, -1, -1)

    def folded(spec):
        warp = random_tps(spec, 1000, g)
        return (torch.linalg.det(warp.jacobian(grid)).min(1).values <= 0).float().mean().item()

    code = folded(WarpSpec(**CODE_WARP))
    assert 0.03 < code < 0.15
    assert folded(WarpSpec(**{**CODE_WARP, "tps_std": 0.1, "tps_bend": 1.0})) > 3 * code
    bend = WarpSpec(tps_grid=7, tps_std=0.05, tps_bend=0.5)
    full = WarpSpec(tps_grid=7, tps_std=0.05, tps_bend=1.0)
    half, whole = random_tps(bend, 4, torch.Generator().manual_seed(1)), random_tps(full, 4, torch.Generator().manual_seed(1))
    assert torch.allclose(half.weights, 0.5 * whole.weights) and torch.allclose(half.affine, whole.affine)


def test_a_spline_evaluated_with_half_its_kernel_depends_on_the_frame_it_is_solved_in():
    """The code solves its TPS in the 96 px frame (tps_stn.py:225-239), lmcore in the 80 px view's
    units: with the half kernel each warp moves by a constant, RMS 0.014 of the image edge; with
    the whole kernel a spline is the same in either frame."""
    g = torch.Generator().manual_seed(0)
    frame = 96 / 80
    control = regular_grid(7, 2000, extent=6 / 7).double()  # the code's cell centres, 96 px frame units
    targets = control + torch.randn(control.shape, generator=g, dtype=torch.float64) * 0.1
    ticks = torch.linspace(-1, 1, 21, dtype=torch.float64)
    gy, gx = torch.meshgrid(ticks, ticks, indexing="ij")
    view = torch.stack([gx, gy], -1).reshape(1, -1, 2).expand(2000, -1, -1)  # the 80 px view

    def shift(bend):
        code, ours = TPSWarp.fit(control, targets), TPSWarp.fit(control * frame, targets * frame)
        code.weights, ours.weights = bend * code.weights, bend * ours.weights
        return ours.map(view) - code.map(view / frame) * frame  # in the view's normalised units

    half = shift(0.5)
    assert (half - half.mean(1, keepdim=True)).abs().max() < 1e-9  # one constant per warp
    edges = half.mean(1) / 2
    assert edges.pow(2).sum(-1).mean().sqrt().item() == pytest.approx(0.014, abs=0.001)
    assert shift(1.0).abs().max() < 1e-9


def test_lmcore_samples_through_the_inverse_of_the_similarity_it_draws():
    """The code samples the image at [sR | t] of each output position (spatial_transformer.py:127-142);
    lmcore at the inverse of the similarity it draws, whose translation is divided by the scale:
    5 % more RMS translation with the code's scales, exp(N(0, ln 1.25))."""
    spec = WarpSpec(rotation_deg=CODE_WARP["rotation_deg"], log2_scale=CODE_WARP["log2_scale"],
                    translation=CODE_WARP["translation"], distribution="normal")
    warp = random_similarity(spec, 200000, torch.Generator().manual_seed(0))
    drawn = 2 * CODE_WARP["translation"] / math.sqrt(3)  # RMS of uniform +-translation, normalised units
    sampled = warp.matrix[:, :, 2].pow(2).mean(0).sqrt() / drawn
    assert torch.allclose(sampled, torch.tensor(math.exp(math.log(1.25) ** 2)), rtol=0.005)
    assert sampled.mean().item() == pytest.approx(1.05, abs=0.005)


def test_the_codes_decoder_maps_give_landmarks_one_percent_of_eq_11s_share():
    """The code divides its Gaussian by 2 pi sigma^4 (HW)^2 against a background of 1 / (HW)
    (keypoints_2d.py:157-158, keypoint_decoder.py:80-83): at sigma = 0.125 on 80 x 80, the landmark
    channel's peak-to-background ratio is 1 / (sigma^2 HW) = 1 / 100 of Eq. 11's."""
    from lmcore.models.landmark_autoencoder import LandmarkAutoencoder

    small = {"width": 4, "depth": 2, "max_width": 8, "skip_convs": 1, "block_convs": 1}
    point = torch.tensor([[[1 / 80, 1 / 80]]])  # a pixel centre of an 80 px map
    kwargs = dict(detector_net=small, feature_net=small, decoder_net=small)
    paper = LandmarkAutoencoder(1, decoder_maps="density", **kwargs).render(point, 80, 0.125)
    code = LandmarkAutoencoder(1, decoder_maps="code", **kwargs).render(point, 80, 0.125)
    ratio_paper = (paper[0, 0] / paper[0, 1]).max().item()
    ratio_code = (code[0, 0] / code[0, 1]).max().item()
    assert ratio_paper == pytest.approx(1 / (2 * math.pi * 0.125**2), rel=1e-3)
    assert ratio_code / ratio_paper == pytest.approx(1 / (0.125**2 * 80 * 80), rel=1e-4)


class _Constant(torch.nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, images):
        return self.value


def test_descriptors_pool_under_the_detection_maps_in_the_code():
    """The code pools each descriptor under D_k itself (generic_encoder.py:76-84); the paper under
    its Gaussian fit (Eq. 10). A two-peaked map separates the two."""
    from lmcore.models.landmark_autoencoder import LandmarkAutoencoder

    small = {"width": 4, "depth": 1, "max_width": 4, "skip_convs": 1, "block_convs": 1}
    size = 16
    features = torch.zeros(1, 2, size, size)
    features[0, 0, 2, 2] = 1.0  # a feature only at one of the two peaks
    detection = torch.full((1, 2, size, size), 1e-9)
    detection[0, 0, 2, 2] = detection[0, 0, 13, 13] = 1.0
    detection[0, 1] = 1.0
    points, variances = landmark_statistics(detection[:, :1])
    for pooling, expected in (("detection", 0.5), ("gaussian", None)):
        model = LandmarkAutoencoder(1, feature_channels=2, descriptor_dim=2, detector_net=small, feature_net=small,
                                    decoder_net=small, descriptor_pooling=pooling)
        model.features = _Constant(features)
        model.encode_weight.data = torch.eye(2).expand(2, 2, 2).clone()
        pooled = model.descriptors(torch.zeros(1, 3, size, size), detection, points, variances)[0, 0, 0].item()
        if expected is not None:
            assert pooled == pytest.approx(expected, rel=1e-4)
        else:  # the Gaussian fit centres between the peaks and spreads over both: far less at (2, 2)
            assert pooled < 0.1


# --------------------------------------------------------------------------- Jakab: the code's formulas


def test_the_codes_gaussian_maps_carry_half_the_mass():
    """exp(-d^2 / std^2) (imm_model.py:54-59) against exp(-d^2 / (2 std^2)): at std 0.1 on a 16 x 16
    map the book's earlier form carried 2.0-2.3x the code's mass."""
    from lmcore.models.conditional_generator import GaussianRenderer

    points = torch.tensor([[[0.03, -0.11], [0.4, 0.25]]])
    code = GaussianRenderer(0.1, "code")(points, [16])[0]
    earlier = GaussianRenderer(0.1, "sigma")(points, [16])[0]
    ratio = (earlier.sum((-1, -2)) / code.sum((-1, -2)))
    assert ((ratio > 1.9) & (ratio < 2.4)).all()
    from lmcore.geometry import squared_distance_maps

    assert torch.allclose(code, torch.exp(-squared_distance_maps(points, 16, 16) / 0.1**2))


def test_the_codes_grid_draws_the_maps_from_its_own_coordinates():
    """The code reads each point on linspace(-1, 1, 16) from the score maps' marginals and draws
    exp(-d^2 / std^2) on that grid (imm_model.py:44-59, 252-264). From lmcore's points (read on
    pixel centres), map_grid = "linspace" draws the code's maps; the pixel centres draw the code's
    with std x 16/15, 1.14x their mass."""
    from lmcore.geometry import marginal_soft_argmax
    from lmcore.models.conditional_generator import GaussianRenderer

    scores = 3 * torch.randn(4, 10, 16, 16, generator=torch.Generator().manual_seed(0))
    ticks = torch.linspace(-1, 1, 16)
    code_x = (torch.softmax(scores.mean(2), -1) * ticks).sum(-1)  # the mean over rows, then along x
    code_y = (torch.softmax(scores.mean(3), -1) * ticks).sum(-1)
    squared = ((ticks[None, None, None, :] - code_x[..., None, None]) ** 2
               + (ticks[None, None, :, None] - code_y[..., None, None]) ** 2)
    code = torch.exp(-squared / 0.1**2)
    points = marginal_soft_argmax(scores)[0]
    assert (GaussianRenderer(0.1, "code", "linspace")(points, [16])[0] - code).abs().max() < 1e-6
    centres = GaussianRenderer(0.1, "code", "centres")(points, [16])[0]
    assert (centres - torch.exp(-squared / (0.1 * 16 / 15) ** 2)).abs().max() < 1e-6
    mass = centres.sum((-2, -1)) / code.sum((-2, -1))
    assert mass.mean().item() == pytest.approx((16 / 15) ** 2, rel=0.01)


def test_batch_norm_as_tensorflows_defaults():
    """tf.layers.batch_normalization's defaults (nn_utils.py:201-202): moving averages with decay
    0.99 (PyTorch's momentum 0.01) and eps 1e-3, in the paper profile's generator."""
    from lmcore.models.conditional_generator import ConditionalGenerator

    config = deep_update(method_settings("jakab").default_config("smoke"), {"method": {
        k: method_settings("jakab").default_config("paper")["method"][k]
        for k in ("map_grid", "batch_norm_momentum", "batch_norm_eps")}})
    method = build_method("jakab", config)
    norms = [m for m in method.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all((m.momentum, m.eps) == (0.01, 1e-3) for m in norms)
    assert method.model.renderer.grid == "linspace"
    model = ConditionalGenerator(3, width=4, downsamples=1, max_width=4, batch_norm=(0.01, 1e-3)).train()
    first = model.pose.encoder.net[0]
    images = torch.rand(2, 3, 8, 8)
    batch = first[0](images)
    first(images)
    assert torch.allclose(first[1].running_mean, 0.01 * batch.mean((0, 2, 3)), atol=1e-7)
    normalised = (batch - batch.mean((0, 2, 3), keepdim=True)) / (batch.var((0, 2, 3), unbiased=False,
                                                                            keepdim=True) + 1e-3).sqrt()
    assert torch.allclose(first[1](batch), normalised, atol=1e-5)


def test_the_pose_reaches_the_decoder_at_the_bottleneck_only():
    """The code's decoder reads the 16 x 16 maps alone (imm_model.py:161): changing the finer maps
    changes nothing; with maps at every scale it does."""
    from lmcore.models.conditional_generator import ConditionalGenerator

    for maps_at, finer_matter in (("bottleneck", False), ("all", True)):
        torch.manual_seed(0)
        model = ConditionalGenerator(3, width=4, downsamples=2, max_width=8, maps_at=maps_at).eval()
        appearance = model.appearance(torch.rand(1, 3, 32, 32))
        maps = model.renderer(torch.zeros(1, 3, 2), [8, 16, 32])
        other = [maps[0]] + [torch.rand_like(m) for m in maps[1:]]
        same = torch.allclose(model.generator(appearance, maps), model.generator(appearance, other))
        assert same != finer_matter
    assert ConditionalGenerator(3, downsamples=3, maps_at="bottleneck").map_sizes(128) == [16]


def test_the_codes_perceptual_term_on_a_tiny_input():
    """1000 x sum_k mean(mask_k e_k) / w_k with squared errors and the code's starting normalisers
    (imm_model.py:131, 142-150), computed by hand for the pixel term alone."""
    from lmcore.losses.perceptual import PerceptualLoss, smooth_border_mask

    loss = PerceptualLoss(("relu1_2",), distance="l2", initial=[0.5, 2.0], scale=1000.0, gray=True).eval()
    a, b = torch.zeros(1, 3, 16, 16), torch.full((1, 3, 16, 16), 0.2)
    mask = smooth_border_mask(16)
    terms = loss.terms(a, b, mask)
    pixel = (mask * 0.2**2).mean().item()  # the mask broadcast over the three channels
    assert terms[0].item() == pytest.approx(pixel, rel=1e-6)
    assert loss(a, b, mask).item() == pytest.approx(1000 * (terms[0] / 0.5 + terms[1] / 2.0).item(), rel=1e-5)


def test_the_border_mask_is_the_codes_strip():
    """10 zeros, a 20-sample tanh ramp 0.5 + 0.5 tanh(t / 0.4), ones, mirrored (tps_dataset.py:47-67)."""
    from lmcore.losses.perceptual import smooth_border_mask

    mask = smooth_border_mask(128)[0, 0]
    strip = mask[64]  # a row through the middle: the x strip times 1
    assert (strip[:10] == 0).all() and (strip[30:98] == 1).all() and (strip[118:] == 0).all()
    assert strip[10].item() == pytest.approx(0.5 + 0.5 * math.tanh(-1 / 0.4), rel=1e-5)
    assert torch.allclose(strip, strip.flip(0)) and mask.mean().item() == pytest.approx(0.6875**2, rel=0.02)


def test_the_codes_warps_draw_kernel_weights_directly():
    """w = 0.001 N + 0.005 Bern(1/2) N on a 10 x 10 grid over [-1, 1], added to the affine map
    (tps_sampler.py:127-189): no spline is solved, so the weights are unconstrained."""
    from lmcore.geometry import TPSWarp
    from lmcore.experiments.jakab import CODE_SOURCE_WARP, CODE_TARGET_WARP

    g = torch.Generator().manual_seed(0)
    warp = random_tps(WarpSpec(**CODE_TARGET_WARP), 4000, g)
    assert isinstance(warp, TPSWarp) and warp.control.shape == (4000, 100, 2)
    assert warp.control[0].min().item() == -1 and warp.control[0].max().item() == 1
    weights = warp.weights.flatten()
    expected_var = 0.001**2 + 0.5 * 0.005**2
    assert weights.var().item() == pytest.approx(expected_var, rel=0.05)
    assert warp.weights.sum(1).abs().mean() > 1e-3  # a fitted spline's weights sum to zero
    assert torch.allclose(warp.affine[:, :, :2], torch.eye(2).expand(4000, 2, 2))  # no rotation or scale
    assert warp.affine[:, :, 2].std().item() == pytest.approx(0.1, rel=0.05)  # N(0, 0.1) in [-1, 1] units
    source = random_tps(WarpSpec(**CODE_SOURCE_WARP), 4000, g)
    assert source.weights.var().item() == pytest.approx(0.001**2 + 0.5 * 0.01**2, rel=0.05)


def test_the_codes_source_is_warped_from_its_target():
    """source = target ∘ S (tps_dataset.py:82-83): with an identity source warp the two views agree."""
    from lmcore.experiments.jakab import CODE_WARPS

    config = deep_update(method_settings("jakab").default_config("smoke"), {"method": CODE_WARPS})
    identity = {"rotation_deg": 0.0, "log2_scale": 0.0, "translation": 0.0, "tps_std": 0.0, "tps_sparse_std": 0.0}
    method = build_method("jakab", deep_update(config, {"method": {"source_warp": identity}}))
    images = torch.rand(2, 3, 80, 80)
    source, target = method.views(images, torch.Generator().manual_seed(0))
    assert torch.allclose(source, target, atol=1e-5)
    other = build_method("jakab", deep_update(config, {"method": {"source_warp": identity,
                                                                  "pair_warps": "independent"}}))
    source, target = other.views(images, torch.Generator().manual_seed(0))
    assert not torch.allclose(source, target, atol=1e-3)  # each warped from the original


def test_per_tensor_clipping_clips_each_gradient_on_its_own():
    """clip_by_norm per tensor (cnn_train_multi.py:232-239) against one global norm."""
    from lmcore.config import TrainConfig
    from lmcore.training.loop import clip_gradients

    big, small = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2))
    for mode, expected_small in (("per_tensor", 0.5), ("global", 0.5 / math.sqrt(100 + 0.25))):
        big.grad, small.grad = torch.tensor([6.0, 8.0, 0.0]), torch.tensor([0.3, 0.4])
        module = torch.nn.Module()
        module.big, module.small = big, small
        clip_gradients(module, TrainConfig(grad_clip=1.0, grad_clip_mode=mode))
        assert small.grad.norm().item() == pytest.approx(expected_small, rel=1e-5)
        assert big.grad.norm().item() == pytest.approx(1.0 if mode == "per_tensor" else 10 / math.sqrt(100.25),
                                                       rel=1e-5)


def test_weight_decay_on_convolution_kernels_only():
    from lmcore.config import TrainConfig
    from lmcore.training.loop import make_optimizer

    conv = torch.nn.Conv2d(2, 2, 3)
    optimiser = make_optimizer(conv.parameters(), TrainConfig(weight_decay=1e-5, weight_decay_on="conv_weights"))
    decays = {p.ndim: g["weight_decay"] for g in optimiser.param_groups for p in g["params"]}
    assert decays == {4: 1e-5, 1: 0.0}
