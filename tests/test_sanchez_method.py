"""The pose core and the Sanchez adaptation as methods: parents adopted, modes, trainable parts."""
import pytest
import torch

from lmcore.config import deep_update
from lmcore.errors import ConfigError
from lmcore.methods import build_method
from lmcore.models.projected import ProjectedConv2d
from lmcore.experiments import method_settings


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny tensors, one thread


def _core():
    config = method_settings("pose").default_config("smoke")
    core = build_method("pose", config)
    with torch.no_grad():  # non-trivial batch-norm statistics, so that a copy is visible
        for m in core.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return core.eval()


def _sanchez(mode, core):
    config = deep_update(method_settings("sanchez").default_config("smoke"), {"method": {"mode": mode, "num_landmarks": 5}})
    model = build_method("sanchez", config)
    model.adopt_parents({"core": core})
    return model.eval()


def test_the_pose_loss_counts_visible_joints_only():
    core = build_method("pose", method_settings("pose").default_config("smoke"))
    images = torch.rand(2, 3, 128, 128)
    joints = torch.rand(2, 14, 2) * 1.6 - 0.8  # normalised, as PoseCore.training_targets gives them
    visible = torch.ones(2, 14, 1)
    generator = torch.Generator().manual_seed(0)
    loss = core((images, torch.cat([joints, visible], -1)), generator, 0)["loss"]
    moved = joints.clone()
    moved[:, 3] = -0.95  # a joint moved far away, but invisible: the loss must not see it
    hidden = visible.clone()
    hidden[:, 3] = 0
    generator = torch.Generator().manual_seed(0)
    loss_hidden = core((images, torch.cat([moved, hidden], -1)), generator, 0)["loss"]
    generator = torch.Generator().manual_seed(0)
    loss_shown = core((images, torch.cat([moved, visible], -1)), generator, 0)["loss"]
    assert torch.isfinite(loss) and loss_hidden != loss_shown


@pytest.mark.parametrize("mode", ["proposed", "finetune"])
def test_adapted_detectors_start_from_the_core(mode):
    core = _core()
    model = _sanchez(mode, core)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model.detector.features(x), core.core.features(x), atol=1e-6)
        assert model.detector(x).shape == (2, 5, 16, 16)


def test_scratch_ignores_the_core():
    core = _core()
    model = _sanchez("scratch", core)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(model.detector.features(x), core.core.features(x), atol=1e-3)


def test_only_projections_batch_norm_and_head_of_the_proposed_detector_train():
    model = _sanchez("proposed", _core())
    detector = model.detector
    trainable = {n for n, p in detector.named_parameters() if p.requires_grad}
    assert any(".projection" in n or "projection" in n for n in trainable)
    projected = [m for m in detector.modules() if isinstance(m, ProjectedConv2d)]
    assert projected and all(not any(p is q for q in detector.parameters())
                             for m in projected for p in m.buffers())
    for name, module in detector.named_modules():
        if isinstance(module, torch.nn.Conv2d) and module is not detector.head:
            assert not any(p.requires_grad for p in module.parameters(recurse=False)), name
    finetune = _sanchez("finetune", _core()).detector
    assert all(p.requires_grad for p in finetune.parameters())


def test_folding_keeps_the_landmarks():
    model = _sanchez("proposed", _core())
    with torch.no_grad():
        for m in model.detector.modules():
            if isinstance(m, ProjectedConv2d):
                m.projection.add_(0.05 * torch.randn_like(m.projection))
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model.folded_detector()(x), model.detector(x), atol=1e-4)


def test_a_core_of_another_shape_is_refused():
    core = _core()
    config = deep_update(method_settings("sanchez").default_config("smoke"), {"method": {"core_width": 32}})
    with pytest.raises(ConfigError, match="core run has width 16"):
        build_method("sanchez", config).adopt_parents({"core": core})


def test_unknown_modes_are_refused():
    from lmcore.training import resolve_config

    with pytest.raises(ConfigError, match="method.mode"):
        resolve_config("sanchez", "smoke", {"method": {"mode": "frozen"}})
