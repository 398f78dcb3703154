"""Jakab et al. 2018: generator, renderer, perceptual loss and the weights it depends on."""
import pytest
import torch

from lmcore.errors import MissingDataError
from lmcore.methods import build_method, get_method
from lmcore.methods.base import deep_update
from lmcore.models.conditional_generator import ConditionalGenerator, GaussianRenderer


def test_the_renderer_draws_one_peak_per_landmark_at_every_scale():
    points = torch.tensor([[[0.5, -0.5], [-0.25, 0.25]]])
    maps = GaussianRenderer(0.1)(points, [8, 16, 32])
    assert [m.shape[-1] for m in maps] == [8, 16, 32]
    for m in maps:
        assert m.max() <= 1.0 and m.shape[1] == 2


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


def test_the_vgg_features_are_pretrained_not_random(perceptual):
    # ImageNet conv1_1 filters have a structure random init lacks: their biases are not all ~0 and
    # the first layer's filters sum to sizeable colour-opponent values (checked against the pinned hash
    # by the loader); here: relu activations on a smooth image are sparse in deep layers.
    smooth = torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(1, 3, 32, 32)
    feats = perceptual.vgg(smooth)
    assert (feats["relu2_2"] > 0).float().mean() < 0.5


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
    config = get_method("jakab").default_config("smoke")
    method = build_method("jakab", config)
    state = method.state_dict()
    assert not any(".vgg.body." in k for k in state)
    other = build_method("jakab", deep_update(config, {"train": {"seed": 1}}))
    other.load_state_dict(state)
    for key, value in state.items():
        assert torch.equal(other.state_dict()[key], value)


def test_a_training_step_backpropagates_to_the_pose_encoder():
    method = build_method("jakab", get_method("jakab").default_config("smoke"))
    terms = method(torch.rand(2, 3, 80, 80), torch.Generator().manual_seed(0), step=0)
    terms["loss"].backward()
    assert torch.isfinite(terms["loss"])
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.model.pose.parameters())
