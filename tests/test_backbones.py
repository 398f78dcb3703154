"""The ResNet-50 backbone option of C3's flow (the paper's network N): loaded from torchvision's
own ImageNet file where a user has it, frozen, giving the stages torchvision's network computes;
a missing or foreign file is one clear error; C3's flow runs on it."""
import pytest
import torch
import torchvision

from lmcore.config import deep_update
from lmcore.errors import ConfigError, CorruptDataError, MissingDataError
from lmcore.methods import build_method, get_method
from lmcore.models.backbones import RESNET50_FILES, RESNET50_LAYERS, ResNet50Features
from lmcore.experiments import method_settings

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny tensors, one thread


@pytest.fixture(scope="module")
def resnet_home(tmp_path_factory):
    """A torch home whose hub cache holds a ResNet-50 file (random weights and batch-norm
    statistics, so that a wrong normalisation or a stage in train mode shows), and that network."""
    torch.manual_seed(0)
    net = torchvision.models.resnet50(weights=None)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    home = tmp_path_factory.mktemp("torch_home")
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(net.state_dict(), home / "hub" / "checkpoints" / RESNET50_FILES[0])
    return home, net.eval()


@pytest.fixture
def with_resnet(resnet_home, monkeypatch):
    home, net = resnet_home
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # get_dir() then reads TORCH_HOME
    return net


def test_resnet50_features_are_torchvisions_stages_of_normalised_images(with_resnet):
    net = with_resnet
    features = ResNet50Features(("layer1", "layer2", "layer3"))
    images = torch.rand(2, 3, 64, 64)
    out = features(images)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        x = net.maxpool(net.relu(net.bn1(net.conv1((images - mean) / std))))
        expected = {}
        for name in ("layer1", "layer2", "layer3"):
            x = getattr(net, name)(x)
            expected[name] = x
    for name, value in expected.items():
        stride, channels = RESNET50_LAYERS[name]
        assert out[name].shape == (2, channels, 64 // stride, 64 // stride)
        torch.testing.assert_close(out[name], value, rtol=1e-4, atol=1e-4)
    assert "layer4" not in out and len(features.body) == 4  # nothing deeper than asked is kept


def test_resnet50_features_stay_frozen_in_train_mode(with_resnet):
    features = ResNet50Features(("layer2",))
    before = {k: v.clone() for k, v in features.state_dict().items()}
    features.train()
    features(torch.rand(4, 3, 32, 32))
    assert not any(p.requires_grad for p in features.parameters())
    for key, value in features.state_dict().items():  # batch-norm statistics included
        assert torch.equal(value, before[key]), key


def test_missing_resnet50_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    with pytest.raises(MissingDataError, match=str(tmp_path / "hub" / "checkpoints")) as error:
        ResNet50Features()
    assert "method.flow_backbone=vgg16" in str(error.value)


def test_a_foreign_weights_file_is_named(tmp_path, monkeypatch):
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save({"conv1.weight": torch.zeros(1)}, folder / RESNET50_FILES[1])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    with pytest.raises(CorruptDataError, match=RESNET50_FILES[1]):
        ResNet50Features()


def test_c3_flow_runs_on_resnet50_and_keeps_it_out_of_checkpoints(with_resnet):
    config = deep_update(method_settings("c3_flow").default_config("smoke"),
                         {"method": {"flow_backbone": "resnet50", "flow_layer": "layer2"}})
    flow = build_method("c3_flow", config).eval()
    size = config["method"]["view_size"]
    views = torch.rand(2, 3, size, size)
    out = flow.flow_between(views, views.flip(-1))
    side = size // RESNET50_LAYERS["layer2"][0]
    assert out["T_ab"].shape == (2, side, side, 2)
    # the checkpointed state is the learnt filter alone: the 23.5 M frozen weights come from their file
    assert not any(k.startswith("backbone.") for k in flow.state_dict())
    assert any(k.startswith("flow.") for k in flow.state_dict())
    assert all(k.startswith("backbone.body.") for k, p in flow.named_parameters() if not p.requires_grad)
    flow.load_state_dict(flow.state_dict())  # a checkpoint without the backbone loads


@pytest.mark.parametrize("change, message", [
    ({"flow_backbone": "resnet50", "flow_layer": "relu3_3"}, "must be a resnet50 activation"),
    ({"flow_backbone": "alexnet"}, "must be one of 'vgg16', 'resnet50'"),
])
def test_a_backbone_layer_that_does_not_exist_is_refused(change, message):
    config = deep_update(method_settings("c3_flow").default_config("smoke"), {"method": change})
    with pytest.raises(ConfigError, match=message):
        get_method("c3_flow").check_config(config)
