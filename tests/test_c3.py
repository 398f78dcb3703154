"""C3 (Xu et al. 2020) as a method: pairs of different images from the loop, the parents adopted,
the cycle's stop-gradient, the swap of identical images, the flow's transfer of points."""
import functools

import pytest
import torch

from lmcore.config import deep_update
from lmcore.errors import ConfigError
from lmcore.methods import build_method
from lmcore.training import train
from lmcore.config import TrainConfig
from lmcore.training.loop import sample_pairs
from lmcore.training.runs import resolve_config
from lmcore.experiments import method_settings

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny tensors, one thread


@functools.lru_cache(maxsize=None)
def _parents(k: int = 10):
    """A Jakab model and a flow model as the parent runs would give them (built once: each loads
    ImageNet VGG16 weights; adopting copies or reads them, never changes them)."""
    jakab = build_method("jakab", deep_update(method_settings("jakab").default_config("smoke"),
                                              {"method": {"num_landmarks": k}}))
    with torch.no_grad():  # weights unlike a fresh initialisation, so that adoption is visible,
        for p in jakab.parameters():  # and batch-norm statistics under which eval-mode outputs vary
            p.add_(0.01 * torch.randn_like(p))
        for m in jakab.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(0.01, 0.05)
    flow = build_method("c3_flow", method_settings("c3_flow").default_config("smoke"))
    return jakab.eval(), flow.eval()


def _c3(overrides=None, parents=None):
    config = deep_update(method_settings("c3").default_config("smoke"), overrides or {})
    model = build_method("c3", config)
    jakab, flow = parents or _parents(config["method"]["num_landmarks"])
    model.adopt_parents({"pairs": jakab, "flow": flow})
    return model.eval()


# --------------------------------------------------------------------------- pairs from the loop


def test_sampled_pairs_are_always_two_different_images_and_cover_every_partner():
    generator = torch.Generator().manual_seed(0)
    first, second = sample_pairs(5, 4000, generator)
    assert (first != second).all()
    assert first.min() == 0 and first.max() == 4
    # every ordered pair i != j appears, about equally often (4000 / 20 = 200 each)
    counts = torch.bincount(first * 5 + second, minlength=25).reshape(5, 5)
    assert (counts.diagonal() == 0).all()
    off = counts[~torch.eye(5, dtype=torch.bool)]
    assert off.min() > 130 and off.max() < 270
    with pytest.raises(ValueError, match="at least 2 images"):
        sample_pairs(1, 3, generator)


class _PairRecorder(torch.nn.Module):
    """A stand-in method that records the batches the loop hands it."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen = []

    def forward(self, batch, generator, step):
        self.seen.append(batch)
        images_a, images_b = batch
        return {"loss": (self.weight - images_a.mean() + images_b.mean()) ** 2}


def test_the_loop_hands_a_pairs_method_two_batches_of_different_images(tmp_path):
    images = torch.arange(6, dtype=torch.uint8).mul(40).view(6, 1, 1, 1).expand(6, 3, 8, 8).contiguous()
    method = _PairRecorder()
    cfg = TrainConfig(steps=5, batch_size=7, resolution=8, checkpoint_every=5, log_every=5)
    train(method, images, cfg, tmp_path / "run", torch.device("cpu"), progress=False, pairs=True)
    assert len(method.seen) == 5
    for images_a, images_b in method.seen:
        assert images_a.shape == images_b.shape == (7, 3, 8, 8)
        ids_a, ids_b = images_a[:, 0, 0, 0] * 255 / 40, images_b[:, 0, 0, 0] * 255 / 40
        assert (ids_a.round() != ids_b.round()).all()
    with pytest.raises(ValueError, match="not both"):
        train(method, images, cfg, tmp_path / "other", torch.device("cpu"), progress=False, pairs=True,
              targets=torch.zeros(6, 5, 2))


# --------------------------------------------------------------------------- parents


def test_c3_starts_from_the_jakab_run_and_the_flow_run():
    jakab, flow = _parents()
    model = _c3(parents=(jakab, flow))
    for (name, mine), theirs in zip(model.model.state_dict().items(), jakab.model.state_dict().values()):
        assert torch.equal(mine, theirs), name
    assert torch.equal(model.flow_run.flow.filter.layers[0].conv_a.weight, flow.flow.filter.layers[0].conv_a.weight)
    # the frozen flow is not trained and not checkpointed: it comes from its run
    assert not any(p.requires_grad for p in model.flow_run.parameters())
    assert not any(k.startswith("flow_run.") for k in model.state_dict())
    trainable = _c3({"method": {"flow_trainable": True}})
    assert any(k.startswith("flow_run.flow.") for k in trainable.state_dict())
    assert not any(k.startswith("flow_run.backbone.body.") for k in trainable.state_dict())


def test_a_k_that_differs_from_the_pretraining_run_is_refused_before_training():
    with pytest.raises(ConfigError, match="parents.pairs"):
        resolve_config("c3", "smoke", {"method": {"num_landmarks": 30}})
    config = resolve_config("c3", "smoke", method_settings("c3").budget("smoke").variant("k30"))
    assert config["method"]["num_landmarks"] == 30
    assert config["parents"]["pairs"]["overrides"]["method"]["num_landmarks"] == 30
    with pytest.raises(ConfigError, match="nothing would train the generator"):
        resolve_config("c3", "smoke", {"method": {"paired_weight": 0.0, "cycle_weight": 0.0}})


def test_adopting_a_pretraining_run_of_another_architecture_names_the_difference():
    jakab, flow = _parents()
    config = deep_update(method_settings("c3").default_config("smoke"), {"method": {"width": 4}})
    model = build_method("c3", config)
    with pytest.raises(ConfigError, match="method.width"):
        model.adopt_parents({"pairs": jakab, "flow": flow})


# --------------------------------------------------------------------------- the cycle


def test_a_swap_of_identical_images_is_the_self_reconstruction():
    model = _c3()
    views = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        out = model.cycle(views, views)
        codes = model.encode(views)
        self_reconstruction = model.decode(codes["appearance"], codes["maps"])
    assert torch.allclose(out["swap_ij"], self_reconstruction, atol=1e-6)
    assert torch.allclose(out["swap_ji"], self_reconstruction, atol=1e-6)
    other = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        swapped = model.cycle(views, other)["swap_ij"]
    assert not torch.allclose(swapped, self_reconstruction, atol=1e-3)


@pytest.mark.parametrize("stop", [True, False])
def test_the_first_swap_is_detached_only_under_the_stop_gradient(stop):
    model = _c3().train()
    views_i, views_j = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    codes = (model.encode(views_i), model.encode(views_j))
    out = model.cycle(views_i, views_j, stop_first_swap=stop, codes=codes)
    loss = out["cycle_i"].mean() + out["cycle_j"].mean()
    grads = torch.autograd.grad(loss, [codes[0]["appearance"], codes[1]["maps"][0]], allow_unused=True)
    reached = [g is not None and g.abs().sum() > 0 for g in grads]
    assert reached == [not stop, not stop]
    assert out["swap_ij"].requires_grad is (not stop)


def test_a_training_step_has_every_term_of_eq5_and_each_ablation_row_only_its_own():
    from lmcore.experiments.c3 import ABLATION

    images = torch.rand(2, 3, 80, 80), torch.rand(2, 3, 80, 80)
    seen = {}
    for label, change in ABLATION.items():
        model = _c3({"method": change}).train()
        terms = model(images, torch.Generator().manual_seed(0), 0)
        assert torch.isfinite(terms["loss"])
        seen[label] = sorted(k for k in terms if k != "loss")
    assert seen == {"neither (paired baseline)": ["paired"], "cycle": ["cycle", "inv", "paired"],
                    "flow": ["equiv", "paired"], "cycle + flow": ["cycle", "equiv", "inv", "paired"]}


def test_eq4_trains_the_pose_encoder_and_leaves_the_frozen_flow_alone():
    model = _c3({"method": {"paired_weight": 1e-9, "cycle_weight": 0.0, "inv_weight": 0.0}}).train()
    images = torch.rand(2, 3, 80, 80), torch.rand(2, 3, 80, 80)
    model(images, torch.Generator().manual_seed(0), 0)["loss"].backward()
    assert model.model.pose.head.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.flow_run.parameters())


# --------------------------------------------------------------------------- the flow's transfer


def test_transfer_through_an_identity_flow_returns_the_points_in_the_full_image():
    model = _c3()  # view_crop 0.75: the transfer must go into the view and back out

    def identity_flow(views_a, views_b):
        from lmcore.geometry import pixel_centres

        n, _, s, _ = views_a.shape
        h = s // 4
        grid = pixel_centres(h, h).reshape(1, h, h, 2).expand(n, -1, -1, -1)
        return {"T_ab": grid, "T_ba": grid}

    model.flow_between = identity_flow
    images = torch.rand(2, 3, 80, 80)
    points = torch.tensor([[[-0.3, -0.2], [0.25, 0.1], [0.0, 0.4]]]).expand(2, -1, -1)
    moved = model.transfer(images, images, points)
    assert torch.allclose(moved, points, atol=1e-5)


class _FixedPose(torch.nn.Module):
    """A pose encoder that puts the same landmarks on every image."""

    def __init__(self, points):
        super().__init__()
        self.points = points

    def forward(self, images):
        return self.points.expand(len(images), -1, -1), None


def test_the_template_face_depends_on_the_pose_alone():
    model = _c3()
    model.model.pose = _FixedPose(torch.rand(1, 10, 2) - 0.5)
    first, second = torch.rand(2, 3, 80, 80), torch.rand(2, 3, 80, 80) * 0.5
    # same landmarks, different appearance: the full decoding differs, the template does not
    with torch.no_grad():
        full = [model.decode(c["appearance"], c["maps"]) for c in (model.encode(model.to_view(x)) for x in (first, second))]
    assert not torch.allclose(full[0], full[1], atol=1e-4)
    assert torch.allclose(model.decode_isolated(first, keep="pose"), model.decode_isolated(second, keep="pose"), atol=1e-6)
    assert not torch.allclose(model.decode_isolated(first, keep="appearance"),
                              model.decode_isolated(second, keep="appearance"), atol=1e-4)
    with pytest.raises(ValueError, match="keep"):
        model.decode_isolated(first, keep="both")
