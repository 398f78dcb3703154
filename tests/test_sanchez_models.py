"""Sanchez & Tzimiropoulos 2019: the FAN core (§4.1) and its adaptation by projection (§3)."""
import math

import pytest
import torch
from torch import nn

from lmcore.models.fan import FAN, gaussian_targets
from lmcore.models.projected import (
    ProjectedConv2d,
    fold_projections,
    make_adaptable,
    parameter_counts,
    trainable_share,
)


def trained_like(core: FAN, seed: int = 0) -> FAN:
    """Give a small core non-trivial batch-norm affine parameters and running statistics, as a
    trained core has (fresh BN is the identity in eval mode and would hide a BN mix-up)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in core.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
        core.train()
        for _ in range(2):
            core(torch.rand(4, 3, 64, 64, generator=g))
    return core.eval()


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny tensors, one thread


@pytest.fixture(scope="module")
def small_core() -> FAN:
    torch.manual_seed(0)
    return trained_like(FAN(num_landmarks=7, width=32))


def test_a_128px_image_gives_32x32_heatmaps_and_points_inside_the_image():
    model = FAN(num_landmarks=5, width=32).eval()
    with torch.no_grad():
        maps = model(torch.rand(2, 3, 128, 128))
        points = model.landmarks(torch.rand(2, 3, 64, 64))
    assert maps.shape == (2, 5, 32, 32)
    assert points.shape == (2, 5, 2) and points.abs().max() < 1
    with pytest.raises(ValueError, match="divisible by 64"):
        model(torch.rand(1, 3, 96, 96))


def test_the_core_at_the_papers_width_has_the_codes_6_2m_parameters_and_51_3x3_convolutions():
    core = FAN(num_landmarks=16, width=256)  # the MPII core: 16 joints
    count = sum(p.numel() for p in core.parameters())
    assert 6.1e6 < count < 6.35e6, count  # the code's FAN(1): ~6.2M; §3: "roughly ~6M"
    assert sum(isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) for m in core.modules()) == 51


def test_soft_argmax_of_a_single_peak_returns_its_normalised_centre_at_beta_10():
    model = FAN(num_landmarks=2, width=32)
    logits = torch.zeros(1, 2, 32, 32)
    logits[0, 0, 5, 20] = 50.0  # sharp: row 5, column 20
    logits[0, 1, 25, 3] = 1.0  # soft: beta = 10 leaves e^10 against 1023 ones
    points, probs = model.heatmaps_to_points(logits)
    sharp = torch.tensor([(2 * 20 + 1) / 32 - 1, (2 * 5 + 1) / 32 - 1])  # (x, y)
    assert torch.allclose(points[0, 0], sharp, atol=1e-6)
    # the other pixel centres sum to minus the peak's, so the mean is peak * (e^10 - 1) / (e^10 + 1023)
    peak = torch.tensor([(2 * 3 + 1) / 32 - 1, (2 * 25 + 1) / 32 - 1])
    shrink = (math.exp(10) - 1) / (math.exp(10) + 1023)
    assert torch.allclose(points[0, 1], peak * shrink, atol=1e-5)
    assert torch.allclose(probs.sum((-1, -2)), torch.ones(1, 2))


def test_gaussian_targets_follow_exp_of_minus_d2_over_half_a_pixel_squared():
    i, j = 10, 17  # row, column of a 32 x 32 map
    point = torch.tensor([[[(2 * j + 1) / 32 - 1, (2 * i + 1) / 32 - 1]]])
    maps = gaussian_targets(point, 32, 32)[0, 0]
    assert maps[i, j] == pytest.approx(1.0)
    for di, dj, d2 in [(0, 1, 1), (1, 0, 1), (1, 1, 2), (0, -2, 4)]:
        assert maps[i + di, j + dj] == pytest.approx(math.exp(-d2 / 0.5), rel=1e-4)
    # a non-square map measures d in pixels on each axis
    wide = gaussian_targets(torch.tensor([[[(2 * 5 + 1) / 64 - 1, (2 * 3 + 1) / 16 - 1]]]), 16, 64)[0, 0]
    assert wide[3, 5] == pytest.approx(1.0)
    assert wide[4, 5] == pytest.approx(math.exp(-2), rel=1e-4) and wide[3, 6] == pytest.approx(math.exp(-2), rel=1e-4)


def test_a_projected_conv_is_its_projection_applied_to_the_frozen_conv_output_bias_included():
    torch.manual_seed(1)
    conv = nn.Conv2d(5, 6, 3, stride=2, padding=1, bias=True)
    projected = ProjectedConv2d(conv)
    with torch.no_grad():
        projected.projection.copy_(torch.randn(6, 6))
    x = torch.randn(2, 5, 9, 9)
    expected = torch.einsum("oj,bjhw->bohw", projected.projection, conv(x))
    assert torch.allclose(projected(x), expected, atol=1e-5)
    assert [n for n, _ in projected.named_parameters()] == ["projection"]
    with pytest.raises(ValueError):
        ProjectedConv2d(nn.Conv2d(4, 4, 3, groups=2))


@pytest.mark.parametrize("projected", ["all", "3x3"])
def test_identity_projections_reproduce_the_core_exactly(small_core, projected):
    adapted = make_adaptable(small_core, projected=projected).eval()
    convs = [m for m in small_core.modules() if isinstance(m, nn.Conv2d)]
    wanted = len(convs) - 1 if projected == "all" else sum(m.kernel_size == (3, 3) for m in convs)
    assert sum(isinstance(m, ProjectedConv2d) for m in adapted.modules()) == wanted
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(adapted(x), small_core(x))


@pytest.mark.parametrize("projected", ["all", "3x3"])
def test_only_projections_batch_norm_and_the_head_learn(small_core, projected):
    core_before = {k: v.clone() for k, v in small_core.state_dict().items()}
    adapted = make_adaptable(small_core, num_landmarks=4, projected=projected).train()
    maps = adapted(torch.rand(2, 3, 64, 64))
    assert maps.shape == (2, 4, 16, 16)
    adapted.heatmaps_to_points(maps)[0].square().sum().backward()

    def learns(name: str, module: nn.Module) -> bool:
        if isinstance(module, (ProjectedConv2d, nn.BatchNorm2d)) or name.startswith("head"):
            return True
        return projected == "3x3" and isinstance(module, nn.Conv2d)  # the code trains 7x7 and 1x1

    for name, module in adapted.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            assert p.requires_grad == learns(name, module), f"{name}.{pname}"
            assert (p.grad is not None and p.grad.abs().sum() > 0) == learns(name, module), f"{name}.{pname}"
    frozen = [b for m in adapted.modules() if isinstance(m, ProjectedConv2d) for b in (m.frozen_weight, m.frozen_bias)
              if b is not None]
    assert frozen and all(not b.requires_grad and b.grad is None for b in frozen)
    assert not {id(b) for b in frozen} & {id(p) for p in adapted.parameters()}
    # a step of an optimiser over all parameters (with weight decay) leaves the core's weights alone
    before = [b.clone() for b in frozen]
    torch.optim.SGD(adapted.parameters(), lr=0.1, weight_decay=0.1).step()
    assert all(torch.equal(a, b) for a, b in zip(before, frozen))
    assert all(torch.equal(v, small_core.state_dict()[k]) for k, v in core_before.items())  # the core is a copy
    assert all(p.requires_grad for p in small_core.parameters())


@pytest.mark.parametrize("projected, projections", [("all", 532_480), ("3x3", 380_928)])
def test_the_trainable_share_at_the_papers_width_is_its_half_million_of_six(projected, projections):
    adapted = make_adaptable(FAN(num_landmarks=16, width=256), num_landmarks=10, projected=projected)
    counts = parameter_counts(adapted)
    # sum of C_out^2: 51 3x3 convs (code) = 380,928; with the 7x7 stem (64^2), the two 1x1 shortcuts
    # (128^2, 256^2) and conv_last (256^2) (paper) = 532,480
    assert counts["projections"] == projections
    assert counts["network"] == sum(p.numel() for p in FAN(num_landmarks=10, width=256).parameters())
    # §3: "~6M ... reduces to ~0.5M", "~10% compared to fine-tuning": 0.55M (8.8%) / 0.51M (8.3%)
    assert 0.45e6 < counts["trainable"] < 0.6e6, counts
    assert 0.07 < trainable_share(adapted) < 0.10
    assert trainable_share(FAN(num_landmarks=10, width=32)) == 1.0


def test_folding_random_projections_keeps_the_function_and_the_cores_size(small_core):
    adapted = make_adaptable(small_core, num_landmarks=3)
    torch.manual_seed(2)
    with torch.no_grad():
        for m in adapted.modules():
            if isinstance(m, ProjectedConv2d):
                m.projection.add_(0.1 * torch.randn_like(m.projection))
    adapted.eval()
    folded = fold_projections(adapted).eval()
    assert not any(isinstance(m, ProjectedConv2d) for m in folded.modules())
    assert sum(p.numel() for p in folded.parameters()) == parameter_counts(adapted)["network"]
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        out, reference = folded(x), adapted(x)
    assert torch.allclose(out, reference, atol=1e-5)
    assert (out - make_adaptable(small_core, num_landmarks=3).eval()(x)).abs().max() > 1e-3  # P matters


def test_make_adaptable_gives_a_new_head_of_k_maps_and_leaves_the_cores_head(small_core):
    adapted = make_adaptable(small_core, num_landmarks=4)
    assert small_core.head.out_channels == 7 and adapted.head.out_channels == 4 and adapted.num_landmarks == 4
    with pytest.raises(ValueError, match="proposed"):
        make_adaptable(small_core, mode="finetune")
