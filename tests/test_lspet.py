"""LSPET-128: splits, checks of joints.csv, joint order, and the PCK score."""
import hashlib
import re

import numpy as np
import pytest
import torch

from lmcore.data.lspet import FLIP_PERMUTATION, HEADER, JOINT_NAMES, JOINTS_SHA256, LSPET128
from lmcore.errors import CorruptDataError, MissingDataError
from lmcore.evaluation.pose import pck
from lmcore.paths import fetch_command


@pytest.fixture(scope="module")
def lspet():
    return LSPET128()


@pytest.fixture()
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMBOOK_CACHE", str(tmp_path / "cache"))


def test_splits_follow_the_rule_and_equal_the_shipped_lists(lspet):
    for split, count in (("train", 9000), ("val", 1000)):
        shipped = [line.strip() for line in open(lspet.root / "splits" / f"{split}.txt") if line.strip()]
        assert lspet.splits[split] == shipped and len(shipped) == count
    assert lspet.splits["val"][:2] == ["images/im00001.jpg", "images/im00011.jpg"]  # rows 0 and 10


def test_the_pinned_sha256_is_the_readme_s(lspet):
    readme = (lspet.root / "README.md").read_text()
    assert re.search(r"sha256 of joints.csv: ([0-9a-f]{64})", readme).group(1) == JOINTS_SHA256
    assert lspet.labels_sha256() == JOINTS_SHA256 == hashlib.sha256((lspet.root / "joints.csv").read_bytes()).hexdigest()
    assert lspet.fingerprint() != lspet.labels_sha256()  # the images are part of the data's identity too


def test_a_split_holds_images_joints_and_visibility(lspet, tmp_cache):
    val = lspet.split("val", every=10)
    assert val.names == lspet.splits["val"][::10] and len(val) == 100
    assert val.images.shape == (100, 3, 128, 128) and val.images.dtype == torch.uint8
    assert val.points.shape == (100, 14, 2) and val.visible.shape == (100, 14) and val.visible.dtype == torch.bool
    # the first val row is im00001 (see joints.csv): right ankle invisible, right knee at (15.35, 92.35)
    assert not val.visible[0, 0] and val.visible[0, 1]
    assert val.points[0, 1].tolist() == pytest.approx([15.35, 92.35])
    seen = val.points[val.visible]
    assert seen.min() >= 0 and seen.max() <= 128
    assert val.images.float().std() > 10  # real photographs, not a blank decode
    sub = val.subset([3, 1])
    assert sub.names == [val.names[3], val.names[1]] and torch.equal(sub.visible, val.visible[[3, 1]])


def test_flip_permutation_swaps_left_and_right(tmp_path):
    swap = {"left": "right", "right": "left"}
    for j, k in enumerate(FLIP_PERMUTATION):
        side, _, part = JOINT_NAMES[j].partition(" ")
        expected = f"{swap[side]} {part}" if side in swap else JOINT_NAMES[j]
        assert JOINT_NAMES[k] == expected
    assert [FLIP_PERMUTATION[k] for k in FLIP_PERMUTATION] == list(range(14))


def test_missing_data_names_the_set(tmp_path, monkeypatch):
    monkeypatch.setenv("LMBOOK_DATA_ROOT", str(tmp_path))
    monkeypatch.setattr("lmcore.paths.SHARED_DATA", tmp_path / "shared")
    expected = re.escape("data set 'lspet128' not found") + ".*" + re.escape(fetch_command("lspet128"))
    with pytest.raises(MissingDataError, match=expected):
        LSPET128()


# --------------------------------------------------------------------------- a small editable copy


def _small_copy(lspet, dst, rows=20):
    """The first ``rows`` rows of joints.csv (CRLF, as shipped), lists by the rule, images linked."""
    dst.mkdir()
    lines = (lspet.root / "joints.csv").read_bytes().split(b"\r\n")
    (dst / "joints.csv").write_bytes(b"\r\n".join(lines[:rows + 1]) + b"\r\n")
    (dst / "images").symlink_to(lspet.root / "images", target_is_directory=True)
    names = lspet.names[:rows]
    (dst / "splits").mkdir()
    (dst / "splits" / "val.txt").write_text("".join(n + "\n" for i, n in enumerate(names) if i % 10 == 0))
    (dst / "splits" / "train.txt").write_text("".join(n + "\n" for i, n in enumerate(names) if i % 10))
    return dst


def _edit(path, lineno, field, token):
    lines = path.read_bytes().decode().split("\r\n")
    fields = lines[lineno - 1].split(",")
    fields[field] = token
    lines[lineno - 1] = ",".join(fields)
    path.write_bytes("\r\n".join(lines).encode())


def test_a_small_copy_loads_without_the_pin_and_is_refused_with_it(lspet, tmp_path, tmp_cache):
    root = _small_copy(lspet, tmp_path / "lspet128")
    small = LSPET128(root, sha256=None)
    assert small.splits == {"train": lspet.names[1:10] + lspet.names[11:20], "val": [lspet.names[0], lspet.names[10]]}
    val = small.split("val")
    assert torch.equal(val.points, lspet.split("val", limit=2).points)
    with pytest.raises(CorruptDataError, match=r"joints.csv: sha256 [0-9a-f]{64} differs from the data README's"):
        LSPET128(root)


def test_a_valid_edit_is_caught_by_the_sha256(lspet, tmp_path):
    root = tmp_path / "lspet128"
    root.mkdir()
    data = (lspet.root / "joints.csv").read_bytes()
    (root / "joints.csv").write_bytes(data.replace(b",15.35,92.35,1,", b",15.36,92.35,1,", 1))
    with pytest.raises(CorruptDataError, match="differs from the data README's"):
        LSPET128(root)


def test_a_file_cut_at_a_line_boundary_is_refused(lspet, tmp_path):
    root = _small_copy(lspet, tmp_path / "lspet128")
    lines = (root / "joints.csv").read_bytes().split(b"\r\n")
    (root / "joints.csv").write_bytes(b"\r\n".join(lines[:16]) + b"\r\n")  # header + 15 rows
    with pytest.raises(CorruptDataError, match=r"joints.csv has 15 rows; splits/train.txt \+ splits/val.txt expect 20"):
        LSPET128(root, sha256=None)


@pytest.mark.parametrize("lineno, field, token, message", [
    (2, 4, "nan", r"joints.csv:2: x2 is non-finite"),
    (3, 5, "inf", r"joints.csv:3: y2 is non-finite"),
    (2, 4, "1e5", r"joints.csv:2: x2=1e5 is outside a visible joint's sane range \[0, 128\]"),
    (2, 1, "100000.00", r"joints.csv:2: x1=100000.00 is outside an invisible joint's sane range"),  # v1 = 0
    (2, 4, "-1.00", r"joints.csv:2: x2=-1.00 is outside a visible joint's"),
    (2, 4, "15.3", r"joints.csv:2: x2='15.3' is not written with two decimals"),  # 15.35 cut short
    (2, 4, "1", r"joints.csv:2: x2='1' is not written with two decimals"),
    (4, 3, "2", r"joints.csv:4: v1='2', expected 0 or 1"),
    (3, 0, "images/im00001.jpg", r"joints.csv:3: images/im00001.jpg repeats line 2"),
])
def test_a_bad_row_names_the_file_and_line(lspet, tmp_path, lineno, field, token, message):
    root = _small_copy(lspet, tmp_path / "lspet128")
    _edit(root / "joints.csv", lineno, field, token)
    with pytest.raises(CorruptDataError, match=message):
        LSPET128(root, sha256=None)


@pytest.mark.parametrize("cut, message", [
    (lambda data: data[:-2], r"joints.csv:21: the last row has no line end"),  # ...,1 then CRLF lost
    (lambda data: data[:-2].rsplit(b",", 1)[0] + b"\r\n", r"joints.csv:21: expected 43 fields .*, got 42"),
    (lambda data: data.replace(b"\r\n", b"\r\nimages/x.jpg,1.00\r\n", 1), r"joints.csv:2: expected 43 fields"),
    (lambda data: data.replace(b"path,", b"name,", 1), r"joints.csv:1: expected the header"),
], ids=["no-line-end", "short-row", "stray-row", "header"])
def test_a_damaged_file_names_the_line(lspet, tmp_path, cut, message):
    root = _small_copy(lspet, tmp_path / "lspet128")
    (root / "joints.csv").write_bytes(cut((root / "joints.csv").read_bytes()))
    with pytest.raises(CorruptDataError, match=message):
        LSPET128(root, sha256=None)


def test_the_header_is_the_readme_s():
    assert HEADER.startswith("path,x1,y1,v1,x2,y2,v2,") and HEADER.endswith(",x14,y14,v14")


# --------------------------------------------------------------------------- PCK


def _pose(n=3):
    """n people, 14 joints at distinct places; torso = |joint 8 - joint 3| = 50 px (30-40-50)."""
    truth = np.tile(np.arange(28, dtype=np.float64).reshape(14, 2)[None], (n, 1, 1)) + 20
    truth[:, 8] = (10.0, 10.0)
    truth[:, 3] = (40.0, 50.0)
    return truth, np.ones((n, 14), dtype=bool)


def test_perfect_predictions_score_one():
    truth, visible = _pose()
    result = pck(torch.tensor(truth), torch.tensor(truth), torch.tensor(visible))
    assert result["pck"] == 1.0 and result["per_joint"] == [1.0] * 14
    assert (result["images"], result["skipped"], result["joints"]) == (3, 0, 42)


@pytest.mark.parametrize("offset, correct", [(9.99, True), (10.0, False), (10.01, False)])
def test_an_offset_just_under_the_threshold_counts_and_one_at_or_over_does_not(offset, correct):
    truth, visible = _pose(1)
    predicted = truth.copy()
    predicted[0, 12] += np.array([0.6, 0.8]) * offset  # 0.2 x 50 px = 10 px
    result = pck(predicted, truth, visible)
    assert result["per_joint"][12] == (1.0 if correct else 0.0)
    assert result["pck"] == pytest.approx((13 + correct) / 14)


def test_the_threshold_scales_with_the_torso():
    truth, visible = _pose(1)
    predicted = truth.copy()
    predicted[0, 0, 0] += 15.0  # wrong at 0.2 (10 px), right at 0.4 (20 px)
    assert pck(predicted, truth, visible)["per_joint"][0] == 0.0
    assert pck(predicted, truth, visible, threshold=0.4)["per_joint"][0] == 1.0


def test_invisible_joints_do_not_count():
    truth, visible = _pose(2)
    predicted = truth.copy()
    predicted[:, 5] += 1000.0
    visible[:, 5] = False
    result = pck(predicted, truth, visible)
    assert result["pck"] == 1.0 and result["joints"] == 26 and np.isnan(result["per_joint"][5])


def test_images_without_both_torso_joints_are_skipped():
    truth, visible = _pose(3)
    predicted = truth.copy()
    predicted[1] += 1000.0  # person 1 is all wrong, but its left hip is not visible
    visible[1, 3] = False
    result = pck(predicted, truth, visible)
    assert result["pck"] == 1.0 and (result["images"], result["skipped"], result["joints"]) == (2, 1, 28)
    visible[1, 3] = True  # scored again: its 14 wrong joints count
    assert pck(predicted, truth, visible)["pck"] == pytest.approx(28 / 42)


def test_pck_on_the_labels_of_lspet_val(lspet, tmp_cache):
    val = lspet.split("val", limit=200)
    result = pck(val.points, val.points, val.visible)
    truth, visible = val.points.numpy(), val.visible.numpy()
    torso = visible[:, 8] & visible[:, 3]
    assert result["pck"] == 1.0 and result["skipped"] == int((~torso).sum()) > 0
    assert result["joints"] == int(visible[torso].sum())
