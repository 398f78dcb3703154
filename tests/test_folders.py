"""LandmarkFolder reads what data_scripts/_common.write_landmark_folder writes."""
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from lmcore.data.folders import LandmarkFolder
from lmcore.errors import CorruptDataError, MissingDataError
from lmcore.paths import fetch_command

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "data_scripts"))
import _common  # noqa: E402  (the writer the data scripts use)

N_IMAGES, N_POINTS = 12, 3


def _source_image(path, points, size=(160, 120)):
    """A dark photo with a bright disc on point 0, to see where it lands after cropping."""
    image = Image.new("RGB", size, (20, 20, 20))
    x, y = points[0]
    ImageDraw.Draw(image).ellipse((x - 6, y - 6, x + 6, y + 6), fill=(255, 255, 255))
    image.save(path)


def _write(root, name="cats", with_labels=True, nan_row=None):
    """A folder as fetch_cats.py writes it: crops resized to 80x80, labels.txt, splits by modulo_split."""
    src = root.parent / f"src-{name}"
    src.mkdir(parents=True)
    items, expected = [], {}
    rng = np.random.default_rng(0)
    for i in range(N_IMAGES):
        points = rng.uniform(40, 80, size=(N_POINTS, 2))
        _source_image(src / f"{i}.png", points)
        box = (20.0, 10.0, 120.0, 110.0)  # a 100 px square: points map by (p - (20, 10)) * 0.8
        rel = f"CAT_00/img {i:02d}.jpg" if not with_labels else f"CAT_00/{i:02d}.jpg"
        if nan_row == i:
            points[1] = np.nan  # a point that is not annotated (AFLW)
        items.append((rel, src / f"{i}.png", points if with_labels else None, box))
        expected[rel] = (points - (20.0, 10.0)) * 0.8
    with _common.atomic_dir(root / name) as tmp:
        _common.write_landmark_folder(tmp, items, _common.modulo_split, {"x.zip": "0" * 64}, with_labels=with_labels)
    return root / name, expected


@pytest.fixture()
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("LMBOOK_DATA_ROOT", str(root))
    monkeypatch.setenv("LMBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("lmcore.paths.SHARED_DATA", tmp_path / "shared")
    return root


def test_reader_and_writer_agree_on_names_splits_points_and_pixels(data_root):
    folder, expected = _write(data_root)
    cats = LandmarkFolder("cats")  # found under the data root
    assert cats.root == folder and cats.num_points == N_POINTS
    written = sorted(expected)
    assert cats.splits == _common.modulo_split(written) and len(cats.splits["test"]) == 2
    test = cats.split("test")
    assert test.names == written[::10]
    assert test.images.shape == (2, 3, 80, 80) and test.images.dtype == torch.uint8
    assert test.points.shape == (2, N_POINTS, 2) and bool(test.visible.all())
    for k, name in enumerate(test.names):
        np.testing.assert_allclose(test.points[k].numpy(), expected[name], atol=1e-4)
        # the disc drawn on point 0 of the source lands on point 0 of the read image: x, y order agrees
        grey = test.images[k].float().mean(0).numpy()
        ys, xs = np.nonzero(grey > 0.6 * grey.max())
        assert np.linalg.norm([xs.mean() + 0.5 - test.points[k, 0, 0], ys.mean() + 0.5 - test.points[k, 0, 1]]) < 1.5


def test_every_nth_row_is_the_same_face_as_in_the_whole_split(data_root):
    _write(data_root)
    cats = LandmarkFolder("cats")
    whole, every = cats.split("train"), cats.split("train", every=3)
    assert every.names == whole.names[::3] and len(every) == 4
    assert torch.equal(every.images, whole.images[::3]) and torch.equal(every.points, whole.points[::3])


def test_a_missing_point_is_nan_and_not_visible(data_root):
    folder, expected = _write(data_root, name="aflw", nan_row=0)
    aflw = LandmarkFolder("aflw")
    test = aflw.split("test")  # row 0 is a test row (every 10th)
    assert test.names[0] == sorted(expected)[0]
    assert test.visible[0].tolist() == [True, False, True] and bool(test.visible[1].all())
    assert torch.isnan(test.points[0, 1]).all() and not torch.isnan(test.points[0, 0]).any()


def test_a_folder_without_labels_gives_no_points(data_root):
    _write(data_root, name="shoes", with_labels=False)
    shoes = LandmarkFolder("shoes")
    train = shoes.split("train")
    assert train.points.shape == (10, 0, 2) and train.visible is None
    assert train.names[0] == "CAT_00/img 01.jpg"  # paths with spaces survive images.txt


def test_a_missing_folder_names_the_fetch_script(data_root):
    with pytest.raises(MissingDataError, match=re.escape(fetch_command("cats"))):
        LandmarkFolder("cats")
    assert "fetch_cats.py" in fetch_command("cats")


def test_the_fingerprint_follows_the_labels_and_the_lists(data_root, tmp_path):
    folder, _ = _write(data_root)
    first = LandmarkFolder("cats").fingerprint()
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    assert LandmarkFolder("cats", root=copy).fingerprint() == first
    train = (copy / "splits" / "train.txt").read_text().splitlines()
    (copy / "splits" / "train.txt").write_text("\n".join(train[:-1]) + "\n")  # a shorter list
    assert LandmarkFolder("cats", root=copy).fingerprint() != first


def _label_text(folder):
    return (folder / "labels.txt").read_text()


@pytest.mark.parametrize("damage, message", [
    (lambda text: text[:-1], r"labels.txt:12: the last row has no line end"),
    (lambda text: text[:text.rindex(" ") + 2], r"labels.txt:12: '\d' is not written as"),  # a number cut short
    (lambda text: text.replace(text.split(" ")[1], "inf", 1), r"labels.txt:1: non-finite value 'inf'"),
    (lambda text: text.replace(text.split(" ")[1], "1e5", 1), r"labels.txt:1: value 1e5 is outside"),
    (lambda text: text.replace("\n", " 1.0 2.0\n", 1), r"labels.txt:2: 3 points, the first row has 4"),
    (lambda text: text + text.splitlines()[0] + "\n", r"labels.txt:13: CAT_00/00.jpg repeats line 1"),
], ids=["no-line-end", "cut-number", "inf", "1e5", "point-count", "repeat"])
def test_a_damaged_label_file_names_the_line(data_root, damage, message):
    folder, _ = _write(data_root)
    (folder / "labels.txt").write_text(damage(_label_text(folder)))
    with pytest.raises(CorruptDataError, match=message):
        LandmarkFolder("cats")


def test_a_split_naming_an_unknown_image_is_refused(data_root):
    folder, _ = _write(data_root)
    with open(folder / "splits" / "test.txt", "a") as fh:
        fh.write("CAT_00/99.jpg\n")
    with pytest.raises(CorruptDataError, match=r"splits/test.txt names 1 path\(s\) not in labels.txt, first CAT_00/99.jpg"):
        LandmarkFolder("cats")
