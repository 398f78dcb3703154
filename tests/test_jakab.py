"""Jakab et al. 2018: generator, renderer, perceptual loss and the weights it depends on."""
import copy

import pytest
import torch

from lmcore.errors import MissingDataError
from lmcore.methods import build_method
from lmcore.config import deep_update
from lmcore.models.conditional_generator import ConditionalGenerator, GaussianRenderer
from lmcore.experiments import method_settings


def test_the_renderer_draws_one_peak_per_landmark_at_every_scale():
    # two landmarks off centre, with x != y and on opposite sides, away from pixel borders at every
    # scale: each map's brightest pixel is the pixel holding its point, so a transposed (x, y), a
    # flipped axis or swapped channels put a peak elsewhere
    points = torch.tensor([[[0.53, -0.28], [-0.41, 0.66]]])
    expected = {  # (column, row) of the pixel holding each point: floor((p + 1) / 2 * size)
        8: [(6, 2), (2, 6)],
        16: [(12, 5), (4, 13)],
        32: [(24, 11), (9, 26)],
    }
    maps = GaussianRenderer(0.1)(points, [8, 16, 32])
    assert [tuple(m.shape) for m in maps] == [(1, 2, 8, 8), (1, 2, 16, 16), (1, 2, 32, 32)]
    for m in maps:
        size = m.shape[-1]
        for k, (col, row) in enumerate(expected[size]):
            peak = int(m[0, k].argmax())
            assert divmod(peak, size) == (row, col), (size, k)
            # the peak's value is the Gaussian at that pixel centre: exp(-d^2 / (2 std^2)) <= 1
            centre = torch.tensor([(2 * col + 1) / size - 1, (2 * row + 1) / size - 1])
            height = torch.exp(-((centre - points[0, k]) ** 2).sum() / (2 * 0.1**2))
            assert m[0, k, row, col].item() == pytest.approx(height.item(), rel=1e-5)
    # at the finest scale (std = 1.6 px) the map's centroid is the point itself
    from lmcore.geometry import expected_coordinates

    assert torch.allclose(expected_coordinates(maps[-1]), points, atol=0.01)


def test_the_generator_renders_the_target_size_from_appearance_and_pose():
    model = ConditionalGenerator(5, width=4, downsamples=2, max_width=16)
    out = model(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))
    assert out["points"].shape == (2, 5, 2)
    assert out["scores"].shape == (2, 5, 8, 8)
    assert out["generated"].shape == (2, 3, 32, 32)
    assert (out["generated"] > 0).all() and (out["generated"] < 1).all()


@pytest.fixture(scope="module")
def perceptual():
    from lmcore.losses.perceptual import PerceptualLoss

    return PerceptualLoss(("relu1_2", "relu2_2"))


def test_perceptual_loss_is_zero_for_identical_images_and_grows_with_difference(perceptual):
    perceptual.eval()  # no running-mean update: raw normalised terms
    perceptual.running.fill_(1.0)
    image = torch.rand(2, 3, 32, 32)
    assert perceptual(image, image).item() == pytest.approx(0.0, abs=1e-6)
    small = perceptual(image, (image + 0.05 * torch.randn_like(image)).clamp(0, 1))
    large = perceptual(image, torch.rand_like(image))
    assert 0 < small < large


def _neighbour_correlation(weight: torch.Tensor, dim: int) -> float:
    """Correlation between kernel taps adjacent along ``dim`` (-1: x, -2: y), over all filters."""
    a = weight.narrow(dim, 0, weight.shape[dim] - 1).flatten().double()
    b = weight.narrow(dim, 1, weight.shape[dim] - 1).flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_the_vgg_features_are_pretrained_not_random(perceptual):
    conv1_1 = perceptual.vgg.body[0]
    # values of torchvision's ImageNet VGG16 (IMAGENET1K_V1) conv1_1, which the checksummed file
    # holds: filter 0 (input channels R, G, B) and the first biases. A random init, another
    # network or a BGR-ordered copy (channels 0 and 2 swapped) differs.
    filter0 = torch.tensor([
        [[-0.5537, 0.1427, 0.5290], [-0.5831, 0.3566, 0.7657], [-0.6902, -0.0480, 0.4841]],
        [[0.1755, 0.0099, -0.0814], [0.0441, -0.0703, -0.2604], [0.1324, -0.1728, -0.1323]],
        [[0.3130, -0.1659, -0.4275], [0.4752, -0.0827, -0.4870], [0.6320, 0.0193, -0.2775]],
    ])
    assert torch.allclose(conv1_1.weight[0].detach(), filter0, atol=1e-4)
    assert torch.allclose(conv1_1.bias[:4].detach(), torch.tensor([0.4034, 0.3778, 0.4644, -0.3228]), atol=1e-4)
    # and a property of learned first layers that no i.i.d. initialisation has: smooth filters,
    # whose neighbouring taps are correlated (about 0.33 here; random init: 0 +- 0.07)
    for dim in (-1, -2):
        assert _neighbour_correlation(conv1_1.weight.detach(), dim) > 0.2
        iid = torch.randn(64, 3, 3, 3, generator=torch.Generator().manual_seed(dim + 2))
        assert abs(_neighbour_correlation(iid, dim)) < 0.2  # the property tells the two apart


def test_missing_weights_name_the_data_script(tmp_path, monkeypatch):
    import torchvision

    from lmcore.losses import perceptual as module

    monkeypatch.setenv("LMBOOK_DATA_ROOT", str(tmp_path))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # an empty torchvision cache

    def no_download(*args, **kwargs):
        raise AssertionError("the loader must not try to download")

    monkeypatch.setattr(torchvision.models, "vgg16", no_download)
    with pytest.raises(MissingDataError, match="data_scripts/fetch_vgg16_weights.py"):
        module.load_vgg16_imagenet()


def test_the_fetched_weights_are_used_without_touching_torchvision(monkeypatch):
    import torchvision

    from lmcore.losses import perceptual as module

    def no_download(*args, **kwargs):
        raise AssertionError("the loader must not call torchvision when the fetched file is there")

    monkeypatch.setattr(torchvision.models, "vgg16", no_download)
    try:
        state, source = module.load_vgg16_imagenet()
    except MissingDataError:
        pytest.skip("VGG16 weights not fetched (make data)")
    assert "fetch_vgg16_weights" in source and state["0.weight"].shape == (64, 3, 3, 3)


def test_checkpoints_leave_out_the_frozen_vgg_but_reload():
    config = method_settings("jakab").default_config("smoke")
    method = build_method("jakab", config)
    state = method.state_dict()
    assert not any(".vgg.body." in k for k in state)
    other = build_method("jakab", deep_update(config, {"train": {"seed": 1}}))
    other.load_state_dict(state)
    for key, value in state.items():
        assert torch.equal(other.state_dict()[key], value)


def test_a_training_step_backpropagates_to_the_pose_encoder():
    method = build_method("jakab", method_settings("jakab").default_config("smoke"))
    terms = method(torch.rand(2, 3, 80, 80), torch.Generator().manual_seed(0), step=0)
    terms["loss"].backward()
    assert torch.isfinite(terms["loss"])
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.model.pose.parameters())


def test_a_config_recorded_before_the_grid_and_batch_norm_settings_builds_what_it_trained():
    """Committed records hold configs without method.map_grid and the batch-norm settings: they
    build with pixel centres and PyTorch's batch norm, as they were trained."""
    config = method_settings("jakab").default_config("smoke")
    recorded = copy.deepcopy(config)
    for key in ("map_grid", "batch_norm_momentum", "batch_norm_eps"):
        del recorded["method"][key]
    earlier, now = build_method("jakab", recorded).eval(), build_method("jakab", config).eval()
    assert earlier.model.renderer.grid == "centres"
    assert all((m.momentum, m.eps) == (0.1, 1e-5) for m in earlier.model.modules()
               if isinstance(m, torch.nn.BatchNorm2d))
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(earlier.model(images, images)["generated"], now.model(images, images)["generated"])
