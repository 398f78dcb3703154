"""Semantic alignment (Xu 2020, Table 3 offline): pairs, affine transfer, PCK, the whole score."""
import json
import math

import pytest
import torch

from lmcore.evaluation.alignment import (
    affine_from_landmarks,
    alignment_scores,
    fixed_pairs,
    landmark_transfer,
    pck,
    transfer_by_landmarks,
    transfer_identity,
)

# a 5-point face in pixels: eyes 6 px apart (IOD 6), box 6 x 7 px (diagonal sqrt(85))
FACE = torch.tensor([[5.0, 4.0], [11.0, 4.0], [8.0, 7.0], [6.0, 11.0], [10.0, 11.0]])
IOD, BOX = 6.0, math.sqrt(85.0)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Tiny tensors: a second thread only waits on the shared machine."""


def test_fixed_pairs_seeded_and_of_different_faces():
    pairs = fixed_pairs(50, 200, seed=3)
    assert pairs.shape == (200, 2) and pairs.dtype == torch.long
    assert torch.equal(pairs, fixed_pairs(50, 200, seed=3))
    assert not torch.equal(pairs, fixed_pairs(50, 200, seed=4))
    assert (pairs[:, 0] != pairs[:, 1]).all()
    assert pairs.min() >= 0 and pairs.max() < 50
    assert len({tuple(p) for p in pairs.tolist()}) == 200  # distinct while 200 <= 50 * 49


def test_fixed_pairs_small_sets():
    every = fixed_pairs(3, 6)  # all 3 x 2 ordered pairs, each once
    assert sorted(map(tuple, every.tolist())) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    more = fixed_pairs(2, 5)  # only (0, 1) and (1, 0) exist: repeats, never a face with itself
    assert more.shape == (5, 2) and (more[:, 0] != more[:, 1]).all()
    with pytest.raises(ValueError, match="n_faces"):
        fixed_pairs(1, 3)


def _random_affines(n, generator):
    linear = torch.eye(2) + 0.3 * torch.randn(n, 2, 2, generator=generator)
    return torch.cat([linear, 0.2 * torch.randn(n, 2, 1, generator=generator)], dim=2)


def _apply(matrices, points):
    return torch.einsum("bij,bkj->bki", matrices[:, :, :2], points) + matrices[:, :, 2].unsqueeze(1)


def test_affine_from_landmarks_recovers_a_known_map():
    generator = torch.Generator().manual_seed(0)
    truth = _random_affines(4, generator)
    landmarks_a = torch.rand(4, 10, 2, generator=generator) * 2 - 1
    fitted = affine_from_landmarks(landmarks_a, _apply(truth, landmarks_a))
    assert fitted.shape == (4, 2, 3)
    assert torch.allclose(fitted, truth, atol=1e-5)
    others = torch.rand(4, 5, 2, generator=generator) * 2 - 1
    carried = transfer_by_landmarks(others, landmarks_a, _apply(truth, landmarks_a))
    assert torch.allclose(carried, _apply(truth, others), atol=1e-5)


def test_affine_from_one_landmark_is_a_translation():
    # K = 1 is degenerate: the ridge must give the translation, not collapse the points
    carried = transfer_by_landmarks(FACE[None], torch.tensor([[[0.0, 0.0]]]), torch.tensor([[[2.0, -1.0]]]))
    assert torch.allclose(carried, FACE[None] + torch.tensor([2.0, -1.0]), atol=1e-4)


def test_transfer_identity_returns_points_a():
    assert torch.equal(transfer_identity(FACE[None]), FACE[None])


def test_pck_hand_computed():
    shift = torch.tensor([1.0, 0.0])
    errors = torch.tensor([0.5, 2.0, 0.5, 2.0, 1.2])  # px; IOD 6: threshold 0.6 px, box: 0.922 px
    predicted = FACE + errors[:, None] * shift
    iod = pck(predicted[None], FACE[None], normaliser="iod")
    assert iod["pck"] == pytest.approx(40.0)  # 0.5, 0.5
    assert iod["per_point"] == pytest.approx([100.0, 0.0, 100.0, 0.0, 0.0])
    assert iod["mean_error"] == pytest.approx(100 * 1.24 / IOD)
    box = pck(predicted[None], FACE[None], normaliser="box", threshold=0.15)  # 1.383 px: 1.2 passes too
    assert box["pck"] == pytest.approx(60.0)
    assert box["mean_error"] == pytest.approx(100 * 1.24 / BOX)


def test_pck_two_pairs_half_correct():
    truth = torch.stack([FACE, 2 * FACE])  # IODs 6 and 12
    predicted = truth + torch.tensor([[[0.3, 0.0]], [[0.0, 2.4]]])  # 0.05 and 0.2 IOD
    result = pck(predicted, truth)
    assert result["pck"] == pytest.approx(50.0)
    assert result["per_point"] == pytest.approx([50.0] * 5)
    assert result["mean_error"] == pytest.approx(12.5)
    with pytest.raises(ValueError, match="iod.*box"):
        pck(predicted, truth, normaliser="eyes")


def _indexed_images(n, height=16, width=16):
    """Image i is constant i / 255 (uint8 i): a transfer can read which face it was given."""
    return torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, height, width).contiguous()


def _index(images):
    assert images.dtype == torch.float32 and images.max() <= 1.0  # uint8 was scaled to [0, 1]
    return (images[:, 0, 0, 0] * 255).round().long()


def _normalised(points, width, height):  # written out here, not through lmcore.geometry.coords
    return points / torch.tensor([width, height]) * 2 - 1


def test_alignment_scores_perfect_and_identity():
    n = 6
    points = torch.stack([FACE + torch.tensor([3.0 * i, 0.0]) for i in range(n)])  # faces 0.5 IOD apart
    images = _indexed_images(n)
    pairs = fixed_pairs(n, 10, seed=1)

    def oracle(images_a, images_b, points_a):
        return _normalised(points[_index(images_b)], 16, 16)

    perfect = alignment_scores(oracle, images, points, pairs, batch_size=4)
    assert perfect["n_pairs"] == 10
    assert perfect["iod"]["pck"] == pytest.approx(100.0) and perfect["box"]["pck"] == pytest.approx(100.0)
    assert perfect["iod"]["mean_error"] == pytest.approx(0.0, abs=1e-4)
    json.dumps(perfect)
    identity = alignment_scores(transfer_identity, images, points, pairs, batch_size=4)
    assert identity["iod"]["pck"] == 0.0 and identity["box"]["pck"] == 0.0


def test_alignment_scores_pixel_conversion_on_non_square_images():
    n, height, width = 5, 12, 20
    offsets = torch.tensor([[2.0 * i, 1.0 * i] for i in range(n)])  # px: x and y scale differently
    points = FACE + offsets[:, None]
    images = _indexed_images(n, height, width)
    pairs = fixed_pairs(n, 8)

    def carry(images_a, images_b, points_a, error_px=0.0):
        # the true pixel displacement A -> B, in normalised units, plus a known x error in pixels
        move = offsets[_index(images_b)] - offsets[_index(images_a)] + torch.tensor([error_px, 0.0])
        return points_a + (move * torch.tensor([2.0 / width, 2.0 / height]))[:, None]

    assert alignment_scores(carry, images, points, pairs)["iod"]["pck"] == pytest.approx(100.0)
    near = alignment_scores(lambda **k: carry(**k, error_px=0.3), images, points, pairs, thresholds=(0.04, 0.1))
    assert near["iod"]["mean_error"] == pytest.approx(5.0, abs=1e-3)  # 0.3 px / IOD 6
    assert near["box"]["mean_error"] == pytest.approx(100 * 0.3 / BOX, abs=1e-3)
    assert near["by_threshold"]["iod"] == {"0.04": 0.0, "0.1": 100.0}
    far = alignment_scores(lambda **k: carry(**k, error_px=0.9), images, points, pairs)  # 0.15 IOD, 0.098 box
    assert far["iod"]["pck"] == 0.0 and far["box"]["pck"] == 100.0


def test_landmark_transfer_carries_labels_through_detected_landmarks():
    generator = torch.Generator().manual_seed(1)
    n, size = 4, 16
    affines = torch.cat([torch.eye(2) + 0.1 * torch.randn(n, 2, 2, generator=generator),
                         torch.randn(n, 2, 1, generator=generator)], dim=2)  # pixel affines of each face
    template = torch.rand(1, 8, 2, generator=generator) * size
    points = _apply(affines, FACE.expand(n, 5, 2))
    landmarks = _normalised(_apply(affines, template.expand(n, 8, 2)), size, size)

    def detect(images):
        return landmarks[_index(images)]

    pairs = fixed_pairs(n, 6)
    scores = alignment_scores(landmark_transfer(detect), _indexed_images(n), points, pairs)
    assert scores["iod"]["mean_error"] == pytest.approx(0.0, abs=1e-3)
    assert alignment_scores(transfer_identity, _indexed_images(n), points, pairs)["iod"]["mean_error"] > 1.0


def test_cross_image_consistency_measures_how_far_carried_landmarks_land_from_b_own():
    from lmcore.evaluation.alignment import cross_image_consistency

    n = 6
    images = _indexed_images(n)
    labels = FACE.expand(n, -1, -1).clone()  # IOD 6 px on a 16 px image
    landmarks = torch.rand(n, 4, 2, generator=torch.Generator().manual_seed(0)) - 0.5

    def detect(batch):
        return landmarks[_index(batch)]

    def exact(images_a, images_b, points_a):  # carries each landmark of A onto the same landmark of B
        return landmarks[_index(images_b)]

    shift = 0.3 * 2 / 16  # 0.3 px in normalised units of a 16 px image

    def shifted(images_a, images_b, points_a):
        return landmarks[_index(images_b)] + torch.tensor([shift, 0.0])

    pairs = fixed_pairs(n, 10)
    assert cross_image_consistency(detect, exact, images, labels, pairs)["mean"] < 1e-4
    off = cross_image_consistency(detect, shifted, images, labels, pairs)
    assert off["mean"] == pytest.approx(100 * 0.3 / IOD, rel=1e-4)  # 5 % of the IOD
    assert len(off["per_landmark"]) == 4 and off["n_pairs"] == 10
    # the identity transfer scores the landmarks' true displacement between the faces
    moved = cross_image_consistency(detect, transfer_identity, images, labels, pairs)
    a, b = pairs.unbind(1)
    expected = ((landmarks[a] - landmarks[b]) * 8).norm(dim=-1).mean() * 100 / IOD
    assert moved["mean"] == pytest.approx(float(expected), rel=1e-4)


def test_correlation_cost_grows_with_the_fourth_power_of_the_side():
    from lmcore.training.bench import correlation_cost

    small = correlation_cost(4, channels=8, pairs=1, steps=1, warmup=0)
    large = correlation_cost(8, channels=8, pairs=1, steps=1, warmup=0)
    assert large["correlation_mb_per_pair"] == pytest.approx(16 * small["correlation_mb_per_pair"])
    assert large["saved_for_backward_mb_per_pair"] > 8 * small["saved_for_backward_mb_per_pair"] > 0


def _pf_pascal_folder(root, pairs):
    """A prepared PF-PASCAL folder (the layout of data_scripts/fetch_pf_pascal.py) of plain images."""
    from PIL import Image

    folder = root / "pf_pascal"
    (folder / "JPEGImages").mkdir(parents=True)
    (folder / "pairs").mkdir()
    sizes = {"a.jpg": (200, 100), "b.jpg": (100, 200)}
    for name in sizes:
        Image.new("RGB", (80, 80), (120, 60, 30)).save(folder / "JPEGImages" / name)
    (folder / "images.txt").write_text("".join(f"{n} {w} {h}\n" for n, (w, h) in sizes.items()))
    rows = []
    for source, target, cls, pa, pb in pairs:
        lists = [pa[:, 0], pa[:, 1], pb[:, 0], pb[:, 1]]
        rows.append(" ".join([source, target, str(cls)] + [";".join(str(float(v)) for v in x) for x in lists]))
    (folder / "pairs" / "test.txt").write_text("\n".join(rows) + "\n")
    return folder


def test_pair_pck_scores_in_the_targets_original_pixels(tmp_path, monkeypatch):
    from lmcore.data.pf_pascal import load_pf_pascal
    from lmcore.evaluation.alignment import pair_pck

    monkeypatch.setenv("LMBOOK_DATA_ROOT", str(tmp_path))
    monkeypatch.setenv("LMBOOK_CACHE", str(tmp_path / "cache"))
    points_a = torch.tensor([[20.0, 10.0], [180.0, 90.0], [100.0, 50.0]])
    exact_b = points_a * torch.tensor([0.5, 2.0])  # the same normalised places in a 100 x 200 image
    shifted_b = exact_b + torch.tensor([12.0, 0.0])  # B's keypoint box: 80 x 160 px, so L = 160
    _pf_pascal_folder(tmp_path, [("a.jpg", "b.jpg", 3, points_a, exact_b), ("a.jpg", "b.jpg", 5, points_a, shifted_b)])
    pairs = load_pf_pascal("test")
    assert len(pairs) == 2 and pairs.images.shape == (2, 3, 80, 80) and pairs.points_b[1].shape == (3, 2)
    loose = pair_pck(transfer_identity, pairs, threshold=0.1)  # 12 px < 16 px
    tight = pair_pck(transfer_identity, pairs, threshold=0.05)  # 12 px > 8 px
    assert loose["pck"] == pytest.approx(100.0) and loose["n_points"] == 6
    assert tight["pck"] == pytest.approx(50.0) and tight["per_class"] == {3: 100.0, 5: 0.0}


def test_a_missing_pf_pascal_names_its_fetch_command(tmp_path, monkeypatch):
    from lmcore.data.pf_pascal import load_pf_pascal
    from lmcore.errors import MissingDataError

    monkeypatch.setenv("LMBOOK_DATA_ROOT", str(tmp_path))
    with pytest.raises(MissingDataError, match="python data_scripts/fetch_pf_pascal.py"):
        load_pf_pascal("test")
