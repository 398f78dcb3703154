"""What the Sanchez chapter needs from lmcore: early cores (a parent adopted at a kept checkpoint),
re-scoring detections under other protocol options, the step-cost measurement, the face core and
grey images for the shoes."""
import pytest
import torch

from lmcore.data import LandmarkSet
from lmcore.errors import ConfigError
from lmcore.evaluation import Detections, RegressionOptions, backward_error, detect_all, forward_error
from lmcore.geometry.coords import pixels_to_normalized
from lmcore.methods import build_method, get_method
from lmcore.training import load_trained, run_method
from lmcore.training.bench import step_cost
from lmcore.config import TrainConfig
from lmcore.experiments import method_settings


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny tensors, one thread


def _core_weights(model):
    """The frozen core weights inside an adapted (``proposed``) detector, by module name."""
    return {name: m.frozen_weight.clone() for name, m in model.detector.named_modules() if hasattr(m, "frozen_weight")}


def test_a_parent_is_adopted_at_the_kept_checkpoint_its_step_names(isolated_runs):
    fast = {"train": {"steps": 4, "eval_every": 0}}
    early = run_method("sanchez", "smoke", "early", {"parents": {"core": {"step": 6}}, **fast}, progress=False)
    final = run_method("sanchez", "smoke", "final", fast, progress=False)
    core_run = run_method("pose", "smoke", "core", progress=False)
    assert [s for s, _ in core_run.kept_checkpoints()] == [6, 12] and core_run.steps == 12
    assert early["parents"]["core"]["step"] == 6 and final["parents"]["core"]["step"] is None
    assert early["identity"] != final["identity"]

    adopted = _core_weights(load_trained(early))
    expected_core = load_trained(core_run, step=6).core
    final_core = load_trained(core_run).core
    name = "conv1"  # the 7x7 stem, projected in the default ("all") mode
    assert torch.equal(adopted[name], expected_core.conv1.weight.detach())
    assert not torch.equal(adopted[name], final_core.conv1.weight.detach())


def test_a_step_the_parent_did_not_keep_is_refused_with_the_steps_it_kept(isolated_runs):
    with pytest.raises(ConfigError, match=r"keeps checkpoints at steps \[6, 12\].*= 5 is none"):
        run_method("sanchez", "smoke", "bad", {"parents": {"core": {"step": 5}}}, progress=False)
    with pytest.raises(ConfigError, match="positive step"):
        run_method("sanchez", "smoke", "bad", {"parents": {"core": {"step": -2}}}, progress=False)


def _faces(n, seed):
    generator = torch.Generator().manual_seed(seed)
    base = torch.tensor([[30.0, 35.0], [50.0, 35.0], [40.0, 45.0], [32.0, 55.0], [48.0, 55.0]])
    points = base + 3 * torch.randn(n, 5, 2, generator=generator)
    images = torch.zeros(n, 3, 80, 80, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n) % 256  # the detector reads the row's index from the image
    images[:, 1, 0, 0] = torch.arange(n) // 256
    return LandmarkSet("synthetic", [str(i) for i in range(n)], images, points)


def test_detections_rescore_a_detector_like_the_protocol_functions_do():
    train, test = _faces(200, 0), _faces(60, 1)
    # a detector whose 3 points are a fixed linear map of each image's labels (plus a little noise)
    mix = torch.tensor([[0.5, 0.5, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.5, 0.5]])
    noise = torch.Generator().manual_seed(2)
    table = {id(s): (mix @ s.points + 0.3 * torch.randn(len(s), 3, 2, generator=noise)) for s in (train, test)}

    def detect_for(labelled):
        def detect(images):
            index = (images[:, 0, 0, 0] * 255).round().long() + 256 * (images[:, 1, 0, 0] * 255).round().long()
            return pixels_to_normalized(table[id(labelled)][index], 80)
        return detect

    detections = Detections.of(detect_for(train), train, {"test": test})
    detections.test_points["test"] = detect_all(detect_for(test), test.images)
    assert torch.allclose(detections.regressor_points, table[id(train)], atol=1e-3)
    authors = RegressionOptions(intercept=True, ridge=1e-4, ridge_scale="max_entry")
    for options in (RegressionOptions(), authors):
        for direction, score in (("forward", forward_error), ("backward", backward_error)):
            expected = score(detections.regressor_points, train.points, detections.test_points["test"], test.points,
                             options)["mean"]
            assert detections.error("test", direction, options)["mean"] == pytest.approx(expected)
    # the backward map (labels -> these points) is linear: its error is the noise's, far below forward's
    assert detections.error("test", "backward")["mean"] < 0.5 * detections.error("test", "forward")["mean"]
    curve = detections.curve("test", [5, None], repeats=3, direction="backward")
    assert [c["n"] for c in curve] == [5, 200] and curve[0]["mean"] > curve[1]["mean"]
    with pytest.raises(KeyError, match="no detections on 'test_aflw'"):
        detections.error("test_aflw")


class _LinearMethod(torch.nn.Module):
    """A method whose forward saves exactly its input for the backward pass (a linear layer)."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3 * 8 * 8, 1, bias=False)
        self.frozen = torch.nn.Linear(3 * 8 * 8, 3 * 8 * 8).requires_grad_(False)

    def forward(self, images, generator, step):
        return {"loss": self.linear(images.flatten(1)).square().mean()}


def test_step_cost_counts_what_autograd_keeps_and_what_the_optimiser_trains():
    method = _LinearMethod()
    images = torch.randint(0, 255, (32, 3, 8, 8), dtype=torch.uint8)
    cost = step_cost(method, images, TrainConfig(batch_size=16, resolution=8), steps=2, warmup=1)
    # saved: the batch (16 x 192 floats) for the weight's gradient and the output (16) for square
    expected_mb = (16 * 192 + 16) * 4 / 2 ** 20
    assert cost["saved_for_backward_mb"] == pytest.approx(expected_mb, abs=0.05)
    assert cost["trainable"] == 192 and cost["parameters"] == 192 + 192 * 192 + 192
    assert cost["step_ms"] > 0 and cost["images_per_s"] > 0


def test_the_face_core_trains_on_all_five_labelled_points():
    cls = get_method("face_core")
    faces = _faces(4, 0)
    targets = cls.training_targets(faces)
    assert targets.shape == (4, 5, 3) and torch.equal(targets[..., 2], torch.ones(4, 5))
    # normalised, not pixels: the loop resizes the 80 px faces to train.resolution, the targets must not move
    assert torch.allclose(targets[..., :2], pixels_to_normalized(faces.points, 80))
    assert method_settings("face_core").default_config("cpu")["train"]["resolution"] == 80
    assert method_settings("face_core").default_config("cpu")["data"] == {"source": "mtfl80", "split": "regressor_train"}


def test_grey_images_reach_the_adapted_detector_as_three_equal_channels():
    model = build_method("sanchez", method_settings("sanchez").variant_config("smoke", "generalisation"))
    grey = torch.rand(2, 1, 56, 56)
    view = model.to_view(grey)
    assert view.shape == (2, 3, 64, 64)
    assert torch.equal(view[:, 0], view[:, 1]) and torch.equal(view[:, 1], view[:, 2])
    assert model.detect(grey).shape == (2, 10, 2)


def test_pose_targets_are_normalised_with_the_visibility_beside_them():
    people = _faces(3, 4)
    people.visible = torch.tensor([[True, False, True, True, True]] * 3)
    targets = get_method("pose").training_targets(people)
    assert torch.allclose(targets[..., :2], pixels_to_normalized(people.points, 80))
    assert targets[0, :, 2].tolist() == [1.0, 0.0, 1.0, 1.0, 1.0]


def test_every_source_reads_only_the_first_rows_a_limit_asks_for():
    from lmcore.data.sources import get_source

    shoes = get_source("fashion_footwear")
    first = shoes.split("train", limit=10)
    assert len(first) == 10 and torch.equal(first.images, shoes.split("train").images[:10])
    assert torch.equal(shoes.split("train", every=2, limit=10).images, first.images[::2])
