"""Facts of Sanchez & Tzimiropoulos's released code (ESanchezLozano/SAIC-Unsupervised-landmark-
detection-NeurIPS2019 at f85093f) that lmcore.models.sanchez_generator reproduces: the expected
values below are worked out from the code's layers and formulas, not from lmcore's output."""
import math

import pytest
import torch
from torch import nn

from lmcore.geometry import AffineWarp, draws, gaussian_heatmaps, soft_argmax
from lmcore.models.fan import FAN
from lmcore.models.projected import ProjectedConv2d, make_adaptable, parameter_counts
from lmcore.models.sanchez_generator import (
    CODE_VGG_LAYERS,
    SanchezGenerator,
    SanchezLoss,
    clipped_rotations,
    code_map_std,
    margin_scales,
    sanchez_loss,
    sanchez_loss_terms,
    sanchez_maps,
    sanchez_pair_warps,
    vgg_raw_input,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny tensors, one thread

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


# --------------------------------------------------------------------------- generator (model.py:11-64, 94, 143)


def code_generator_parameters(k: int, w: int = 32) -> int:
    """Parameters of the code's Generator(conv_dim=w, c_dim=k, repeat_num=6), counted from its
    layers: bias-free convolutions, affine batch norms (2 per channel)."""
    c = 4 * w + k  # bottleneck channels after the concatenation
    convs = (3 * w * 49 + w * 2 * w * 16 + 2 * w * 4 * w * 16  # 7x7, two 4x4 stride 2
             + 6 * 2 * c * c * 9  # six residual blocks of two 3x3
             + c * (c // 2) * 16 + (c // 2) * (c // 2 // 2) * 16  # two 4x4 transposed
             + (c // 2 // 2) * 3 * 49)  # 7x7 to RGB
    norms = 2 * (w + 2 * w + 4 * w + c + 6 * 2 * c + c // 2 + c // 2 // 2)
    return convs + norms


def test_generator_layers_shapes_and_range_at_128px_with_32px_maps():
    torch.manual_seed(0)
    g = SanchezGenerator(num_landmarks=10)
    assert sum(p.numel() for p in g.parameters()) == code_generator_parameters(10) == 2424424
    assert g.bottleneck_channels == 138
    ups = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.stride) for m in ups] == [
        (138, 69, (4, 4), (2, 2)), (69, 34, (4, 4), (2, 2))]
    convs = [m for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert all(m.bias is None for m in convs) and len(convs) == 3 + 12 + 2 + 1
    assert not any(isinstance(m, (nn.InstanceNorm2d, nn.GroupNorm)) for m in g.modules())
    assert isinstance(g.decoder[0], nn.BatchNorm2d) and g.decoder[0].num_features == 138  # BN on the concatenation
    assert g.map_size(128) == 32

    appearance = torch.rand(2, 3, 128, 128)
    points = torch.rand(2, 10, 2) * 1.6 - 0.8
    maps = sanchez_maps(points, 32).requires_grad_(True)
    out = g(appearance, maps)
    assert out.shape == (2, 3, 128, 128)
    assert out.min() >= 0 and out.max() <= 1 and out.std() > 0.01
    out.sum().backward()
    assert maps.grad.abs().sum() > 0  # the maps reach the image
    with pytest.raises(ValueError):
        g(appearance, sanchez_maps(points, 16))  # the maps must be at S/4


def test_generator_output_is_half_tanh_plus_one():
    g = SanchezGenerator(num_landmarks=3, width=8, blocks=1)
    with torch.no_grad():
        g.decoder[-2].weight.zero_()  # the last 7x7 convolution: tanh(0) = 0 -> 0.5
    out = g(torch.rand(2, 3, 32, 32), torch.zeros(2, 3, 8, 8))
    assert torch.allclose(out, torch.full_like(out, 0.5))


# --------------------------------------------------------------------------- bottleneck (utils.py:24-74)


def test_gaussian_map_value_at_a_known_distance_is_exp_minus_d2_over_half():
    size, col, row = 32, 10, 12
    offset = torch.tensor([0.3, -0.4])  # map pixels from the centre of pixel (col, row)
    index = torch.tensor([col, row], dtype=torch.float32) + offset
    point = ((2 * index + 1) / size - 1).view(1, 1, 2)  # lmcore: index i at (2 i + 1) / size - 1
    maps = sanchez_maps(point, size)
    assert maps.shape == (1, 1, 32, 32)
    assert maps[0, 0, row, col].item() == pytest.approx(math.exp(-(0.3**2 + 0.4**2) / 0.5), rel=1e-5)
    assert maps[0, 0, row, col + 3].item() == pytest.approx(math.exp(-(2.7**2 + 0.4**2) / 0.5), rel=1e-4)
    assert maps[0, 0, row - 2, col].item() == pytest.approx(math.exp(-(0.3**2 + 1.6**2) / 0.5), rel=1e-4)
    on_centre = sanchez_maps(((2 * torch.tensor([[[5.0, 7.0]]]) + 1) / size - 1), size)[0, 0]
    assert on_centre[7, 5].item() == pytest.approx(1.0)
    assert on_centre[7, 6].item() == pytest.approx(math.exp(-2.0), rel=1e-5)  # one pixel: e^-2
    # std 0.5 map px = 1/32 of the 2-wide normalised image
    assert code_map_std(32) == pytest.approx(1 / 32)
    pts = torch.rand(2, 4, 2) * 2 - 1
    assert torch.allclose(sanchez_maps(pts, size), gaussian_heatmaps(pts, size, size, code_map_std(size)), atol=1e-6)


def test_soft_argmax_matches_the_codes_index_expectation():
    """The code: softmax over all positions of logits / 0.1, expected column and row index."""
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 32, 32) * 0.3
    p = torch.softmax(logits.view(2, 3, -1) / 0.1, -1).view(2, 3, 32, 32)
    idx = torch.arange(32.0)
    code = torch.stack([(p.sum(2) * idx).sum(-1), (p.sum(3) * idx).sum(-1)], -1)  # (column, row)
    points, _ = soft_argmax(logits, 0.1)
    assert torch.allclose((points + 1) * 16 - 0.5, code, atol=1e-4)


# --------------------------------------------------------------------------- loss (model.py:114-124, 144)


class NormalisingStub(nn.Module):
    """Stands for VGG16Features: normalises with ImageNet statistics, then two 'layers'."""

    def forward(self, x):
        z = (x - IMAGENET_MEAN) / IMAGENET_STD
        return {"a": 2 * z, "b": z.sum(1, keepdim=True)}


def test_loss_equals_a_hand_computation_on_a_tiny_input():
    generated = torch.tensor([0.2, 0.4, 0.6, 0.8] * 3).view(1, 3, 2, 2)
    target = torch.tensor([0.0, 0.5, 0.5, 1.0] * 3).view(1, 3, 2, 2)
    # per position differences 0.2, -0.1, 0.1, -0.2 in every channel
    pixels = (0.04 + 0.01 + 0.01 + 0.04) / 4  # 0.025
    a = 4 * pixels  # (2 d)^2: the stub's ImageNet normalisation undone
    b = 9 * pixels  # the sum of three equal channel differences, squared
    terms = sanchez_loss_terms(generated, target, NormalisingStub(), layers=("a", "b"))
    assert terms["pixels"].item() == pytest.approx(0.025)
    assert terms["a"].item() == pytest.approx(a) and terms["b"].item() == pytest.approx(b)
    assert sanchez_loss(generated, target, NormalisingStub(), layers=("a", "b")).item() == pytest.approx(
        0.025 + 0.1 + 0.225)
    normalised = sanchez_loss(generated, target, NormalisingStub(), ("a", "b"), imagenet_normalised=True)
    assert normalised.item() != pytest.approx(0.35)  # the ImageNet statistics would rescale the terms
    assert torch.allclose(vgg_raw_input(generated), generated * IMAGENET_STD + IMAGENET_MEAN)


def test_loss_is_mse_on_raw_vgg16_relu_layers():
    """Against torchvision's VGG16 features fed [0, 1] images directly (the code's LossNetwork:
    indices 3, 8, 15, 22 of vgg16().features)."""
    try:
        from lmcore.losses.perceptual import load_vgg16_imagenet

        state, _ = load_vgg16_imagenet()
    except Exception as error:  # pragma: no cover - depends on the fetched weights
        pytest.skip(f"ImageNet VGG16 weights unavailable: {error}")
    import torchvision

    vgg = torchvision.models.vgg16(weights=None).features
    vgg.load_state_dict(state)
    vgg.eval()
    g = torch.Generator().manual_seed(0)
    generated, target = torch.rand(1, 3, 16, 16, generator=g), torch.rand(1, 3, 16, 16, generator=g)

    def taps(x):
        out = []
        for i, layer in enumerate(vgg[:23]):
            x = layer(x)
            if i in (3, 8, 15, 22):
                out.append(x.clone())
        return out

    with torch.no_grad():
        expected = ((generated - target) ** 2).mean() + sum(
            ((f - r) ** 2).mean() for f, r in zip(taps(generated), taps(target)))
        loss = SanchezLoss()
        assert loss.layers == CODE_VGG_LAYERS
        got = loss(generated, target)
        normalised = SanchezLoss(imagenet_normalised=True)(generated, target)
    assert got.item() == pytest.approx(expected.item(), rel=1e-4)
    assert abs(normalised.item() - expected.item()) > 0.05 * expected.item()


# --------------------------------------------------------------------------- pairs (databases.py:25-30, utils.py:100-106)


def test_rotation_draws_have_the_codes_stds_and_never_pass_40_degrees():
    n = 20000
    for std in (30.0, 15.0):
        free = clipped_rotations(n, std, None, torch.Generator().manual_seed(3))
        clipped = clipped_rotations(n, std, 40.0, torch.Generator().manual_seed(3))
        assert free.std().item() == pytest.approx(std, rel=0.02) and abs(free.mean().item()) < 0.05 * std
        assert torch.equal(clipped, free.clamp(-40, 40)) and clipped.abs().max().item() <= 40.0
        tail = 2 * (1 - 0.5 * (1 + math.erf(40 / std / math.sqrt(2))))  # P(|N(0, std)| > 40)
        assert (clipped.abs() == 40).float().mean().item() == pytest.approx(tail, abs=0.01)

    pair = sanchez_pair_warps(n, torch.Generator().manual_seed(5), margin_std=0.0)
    g = torch.Generator().manual_seed(5)
    target_free, appearance_free = clipped_rotations(n, 30.0, None, g), clipped_rotations(n, 15.0, None, g)
    assert torch.equal(pair.target_deg, target_free.clamp(-40, 40))  # target first, then appearance
    assert torch.equal(pair.appearance_deg, appearance_free.clamp(-40, 40))
    assert pair.target_deg.abs().max() <= 40 and pair.appearance_deg.abs().max() <= 40
    assert torch.equal(pair.target_scale, torch.ones(n))
    assert abs(torch.corrcoef(torch.stack([pair.target_deg, pair.appearance_deg]))[0, 1].item()) < 0.03

    # a point of the original at (0.5, 0) lies, in the target view, rotated by the target's angle
    p = torch.tensor([[[0.5, 0.0]]]).expand(n, 1, 2)
    moved = pair.target.transport(p)[:, 0]
    angle = torch.deg2rad(pair.target_deg)
    assert isinstance(pair.target, AffineWarp)
    assert torch.allclose(moved, 0.5 * torch.stack([torch.cos(angle), torch.sin(angle)], -1), atol=1e-5)


def test_margin_jitter_zooms_by_the_codes_crop_ratio():
    n = 20000
    scales = margin_scales(n, 70.0, 4.0, torch.Generator().manual_seed(7))
    z = draws.normal((n,), torch.Generator().manual_seed(7))
    m = torch.trunc(70 + 4 * z)
    assert torch.allclose(scales, 2.4 / (1 + 2 * m / 100))
    assert 0.028 < scales.std().item() < 0.038  # ~0.08 / 2.4 = 3.3 %
    assert torch.equal(margin_scales(5, 70.0, 0.0), torch.ones(5))


def test_pair_draws_shard_like_one_process():
    whole = sanchez_pair_warps(8, torch.Generator().manual_seed(11))
    with draws.batch_shard(1, 2):
        half = sanchez_pair_warps(4, torch.Generator().manual_seed(11))
    # inside the shard every draw is made for all 8 rows and rows 4..7 kept, so the generator
    # advances as in the one-process draw and each quantity is the whole draw's second half
    assert torch.equal(half.target_deg, whole.target_deg[4:])
    assert torch.equal(half.target_scale, whole.target_scale[4:])
    assert torch.equal(half.appearance_deg, whole.appearance_deg[4:])
    assert torch.equal(half.appearance_scale, whole.appearance_scale[4:])


# --------------------------------------------------------------------------- projected layers (MTFAN.py:7-20, 58-100, 149-170)


def code_adaptation_trainable(k: int, w: int = 256) -> int:
    """Trainable parameters of the code's FAN after convertLayer (model.py:86-88, train.py:91):
    every 3x3 convolution replaced by an out x out matrix, all else trainable."""
    blocks = [(w // 4, w // 2), (w // 2, w // 2), (w // 2, w)] + [(w, w)] * 14  # conv2-4, 13 hourglass + top_m
    projections = sum((o // 2) ** 2 + 2 * (o // 4) ** 2 for _, o in blocks)
    norms = 2 * (w // 4 + sum(i + o // 2 + o // 4 + (i if i != o else 0) for i, o in blocks) + w)
    shortcuts = sum(i * o for i, o in blocks if i != o)
    stem, conv_last, head = 3 * (w // 4) * 49 + w // 4, w * w + w, w * k + k
    return projections + norms + shortcuts + stem + conv_last + head


def test_only_the_51_3x3_convolutions_are_projected_as_in_the_code():
    torch.manual_seed(0)
    core = FAN(16, width=16, depth=4)
    adapted = make_adaptable(core, 10, projected="3x3")
    projected = [m for m in adapted.modules() if isinstance(m, ProjectedConv2d)]
    assert len(projected) == 17 * 3 == 51  # 17 ConvBlocks (4 + 13 in the depth-4 hourglass), 3 each
    assert all(m.kernel_size == (3, 3) and m.frozen_bias is None for m in projected)
    plain = [m for m in adapted.modules() if isinstance(m, nn.Conv2d)]
    assert sorted(m.kernel_size for m in plain) == [(1, 1)] * 4 + [(7, 7)]  # 2 shortcuts, conv_last, head; stem
    assert all(p.requires_grad for m in plain for p in m.parameters())
    assert len([m for m in make_adaptable(core, 10, projected="all").modules()
                if isinstance(m, ProjectedConv2d)]) == 55


def test_trainable_parameters_equal_the_codes_at_width_256():
    adapted = make_adaptable(FAN(16, width=256, depth=4), 10, projected="3x3")
    counts = parameter_counts(adapted)
    assert counts["trainable"] == code_adaptation_trainable(10) == 514698
    assert counts["projections"] == 380928
