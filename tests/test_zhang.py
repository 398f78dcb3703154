"""Zhang et al. 2018: the constraints of §3.2, the decoder of §3.4, and the method's training step."""
import math

import pytest
import torch

from lmcore.geometry import WarpSpec, gaussian_densities, landmark_statistics, random_tps
from lmcore.losses.zhang import (
    EQUIVARIANCE_CODE_SCALE,
    concentration_loss,
    equivariance_loss,
    reconstruction_loss,
    separation_loss,
)
from lmcore.methods import build_method, get_method
from lmcore.config import deep_update
from lmcore.models.landmark_autoencoder import LandmarkAutoencoder
from lmcore.experiments import method_settings

SMALL = {"width": 4, "depth": 2, "max_width": 128, "skip_convs": 2, "block_convs": 2}


def test_separation_falls_as_points_spread():
    centre = torch.zeros(1, 2, 2)
    values = []
    for gap in (0.0, 0.05, 0.1, 0.2, 0.4):
        points = centre + torch.tensor([[[-gap, 0.0], [gap, 0.0]]])
        values.append(separation_loss(points, sigma=0.06).item())
    assert values[0] == pytest.approx(2.0)  # two coincident points: exp(0) for (1,2) and (2,1)
    assert all(a > b for a, b in zip(values, values[1:]))
    assert values[-1] < 1e-6


@pytest.mark.parametrize("std", [0.05, 0.1, 0.2])
def test_concentration_is_the_exponential_entropy_of_a_gaussian_map(std):
    size = 96
    density = gaussian_densities(torch.tensor([[[0.1, -0.05]]]), size, size, std)
    points, variances = landmark_statistics(density)
    assert torch.allclose(points, torch.tensor([[[0.1, -0.05]]]), atol=1e-4)
    # differential entropy of the discrete map, in image-edge units (pixel area = (1/size)^2)
    p = density.flatten()
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum() + 2 * math.log(1 / size)
    assert concentration_loss(variances).item() == pytest.approx(math.exp(entropy.item()), rel=0.02)


def test_equivariance_is_zero_for_points_that_move_with_the_warp():
    g = torch.Generator().manual_seed(0)
    warp = random_tps(WarpSpec(rotation_deg=10, translation=0.1, tps_grid=5, tps_std=0.01), 2, g)
    points = torch.rand(2, 6, 2, generator=g) - 0.5
    assert equivariance_loss(points, warp.transport(points), warp).item() < 1e-9
    assert equivariance_loss(points, points + 0.2, warp).item() > 1e-3


def test_reconstruction_loss_is_the_gaussian_nll():
    images = torch.rand(2, 3, 8, 8)
    perfect = reconstruction_loss(images, images, 0.05)
    assert perfect.item() == pytest.approx(math.log(2 * math.pi * 0.05**2))
    off = reconstruction_loss(images, images + 0.1, 0.05)
    assert off.item() == pytest.approx(3 * 64 * 0.01 / 0.0025 + math.log(2 * math.pi * 0.0025), rel=1e-5)


def test_the_decoder_maps_sum_to_one_across_channels():
    model = LandmarkAutoencoder(5, detector_net=SMALL, feature_net=SMALL, decoder_net=SMALL, feature_channels=6, descriptor_dim=2, decoder_sigmas=(0.03, 0.1))
    spread = torch.tensor([[-0.6, -0.6], [0.6, -0.6], [0.0, 0.0], [-0.6, 0.6], [0.6, 0.55]])
    # well apart, so each channel wins at its own point; within 0.2 px of a pixel centre, so the
    # neighbouring channels' tails cannot tip the peak into the next pixel
    jitter = 0.1 * torch.rand(3, 5, 2, generator=torch.Generator().manual_seed(0))
    centres = (((spread + jitter + 1) / 2 * 16).floor() + 0.5) / 16 * 2 - 1
    points = centres + (torch.rand(3, 5, 2, generator=torch.Generator().manual_seed(1)) - 0.5) * 0.4 / 8
    for sigma in model.decoder_sigmas:
        maps = model.render(points, 16, sigma)
        assert maps.shape == (3, 6, 16, 16)
        assert torch.allclose(maps.sum(1), torch.ones(3, 16, 16), atol=1e-6)
        # each landmark channel peaks at its landmark's pixel
        peak = maps[:, :5].flatten(2).argmax(-1)
        cols, rows = peak % 16, peak // 16
        expected = ((points + 1) / 2 * 16).floor().clamp(0, 15).long()
        assert (cols == expected[..., 0]).all() and (rows == expected[..., 1]).all()


def test_the_autoencoder_detects_k_points_and_rebuilds_an_image():
    model = LandmarkAutoencoder(4, detector_net=SMALL, feature_net=SMALL, decoder_net=SMALL, feature_channels=6, descriptor_dim=2)
    out = model(torch.rand(2, 3, 16, 16))
    assert out["detection"].shape == (2, 5, 16, 16)
    assert torch.allclose(out["detection"].sum(1), torch.ones(2, 16, 16), atol=1e-5)
    assert out["points"].shape == (2, 4, 2) and out["descriptors"].shape == (2, 5, 2)
    assert out["reconstruction"].shape == (2, 3, 16, 16)
    without = LandmarkAutoencoder(4, detector_net=SMALL, decoder_net=SMALL, with_descriptors=False, image_channels=1)
    assert without(torch.rand(2, 1, 16, 16))["reconstruction"].shape == (2, 1, 16, 16)


def test_the_reconstruction_weight_rises_as_configured():
    config = method_settings("zhang").default_config("smoke")
    method = build_method("zhang", config)
    steps = config["method"]["recon_increase_steps"]
    base = config["method"]["lambda_recon"]
    assert method.recon_weight(0) == pytest.approx(base)
    assert method.recon_weight(steps[0] - 1) == pytest.approx(base)
    assert method.recon_weight(steps[0]) == pytest.approx(10 * base)  # App. G.3: x10 twice
    assert method.recon_weight(steps[1] + 1) == pytest.approx(100 * base)
    k30 = build_method("zhang", deep_update(config, method_settings("zhang").budget("paper").variant("k30")))
    assert k30.recon_weight(steps[0]) == pytest.approx(100 * base)  # the released K = 30: x100, then x1000
    assert k30.recon_weight(steps[1]) == pytest.approx(1000 * base)


def test_a_shortened_schedule_keeps_each_phase_at_its_fraction():
    config = method_settings("zhang").default_config("cpu")  # 2000 steps: lr decay 1400, lambda x10 at 700, 1400
    short = get_method("zhang").shortened_config(config, 500)
    assert short["train"]["steps"] == 500
    assert short["train"]["lr_milestones"] == [350]
    assert short["method"]["recon_increase_steps"] == [175, 350]
    assert short["method"]["landmark_control_after"] == 125
    assert config["train"]["steps"] == 2000  # the original is untouched
    method = build_method("zhang", short)
    assert method.recon_weight(175) == pytest.approx(10 * config["method"]["lambda_recon"])


def test_a_training_step_gives_finite_losses_and_gradients_to_the_detector():
    config = deep_update(method_settings("zhang").default_config("smoke"), {"method": {"landmark_control_after": 0,
                                                                                  "landmark_control_fraction": 1.0}})
    method = build_method("zhang", config)
    terms = method(torch.rand(2, 3, 80, 80), torch.Generator().manual_seed(0), step=10)
    terms["loss"].backward()
    assert all(torch.isfinite(v).all() for v in terms.values())
    grads = [p.grad for p in method.model.detector.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
