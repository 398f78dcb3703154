"""Chapter 0's tables and figures (lmcore.book.protocol)."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lmcore.book import protocol
from lmcore.data import LandmarkSet
from lmcore.evaluation import mean_shape_error
from lmcore.geometry.coords import pixels_to_normalized


def _faces(n=6, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    points = 8 + 16 * torch.rand(n, 5, 2, generator=g)
    images = torch.randint(0, 255, (n, 3, size, size), generator=g, dtype=torch.uint8)
    return LandmarkSet("faces", [f"f{i}.jpg" for i in range(n)], images, points)


def test_shipped_split_lists_are_checked_and_a_difference_is_named(tmp_path):
    (tmp_path / "splits").mkdir()
    splits = {"test_mtfl": ["a.jpg", "b.jpg"], "tune_val": ["c.jpg"]}
    for name, names in splits.items():
        (tmp_path / "splits" / f"{name}.txt").write_text("\n".join(names) + "\n")
    data = SimpleNamespace(root=tmp_path, splits=splits)
    assert protocol.check_shipped_splits(data) == ["test_mtfl", "tune_val"]
    (tmp_path / "splits" / "tune_val.txt").write_text("d.jpg\n")
    with pytest.raises(ValueError, match="tune_val") as raised:
        protocol.check_shipped_splits(data)
    assert "test_mtfl" not in str(raised.value)


def test_mean_shape_table_holds_the_mean_shapes_errors():
    train, test = _faces(seed=1), _faces(seed=2)
    table = protocol.mean_shape_table(train, {"test_mtfl": test})
    expected = mean_shape_error(train.points, test.points)
    assert table.loc["mean (% IOD)", "test_mtfl"] == round(expected["mean"], 2)
    assert list(table["test_mtfl"].iloc[1:]) == [round(v, 2) for v in expected["per_point"]]
    assert len(table) == 6


def test_faces_are_drawn_from_one_generator_in_turn():
    faces = _faces(n=20)
    rng = np.random.default_rng(0)
    first, second = protocol.sample_faces(faces, 8, rng), protocol.sample_faces(faces, 8, rng)
    assert len(set(first)) == 8 and not np.array_equal(first, second)  # the second draw continues the first
    assert np.array_equal(protocol.sample_faces(faces, 8), first)  # the default is the chapter's seed


def test_face_browser_labels_each_face_with_the_detectors_error():
    faces = _faces(n=3)

    class Perfect:  # a detector that returns the annotated points
        def detect(self, batch):
            index = [next(i for i in range(len(faces)) if torch.equal(faces.images[i].float() / 255, b)) for b in batch]
            return pixels_to_normalized(faces.points[index], faces.image_size)

    shown = {"faces": (faces, np.array([0, 2]))}
    slider, captions, frames = protocol.face_browser(shown, Perfect(), "smoke").children
    assert [c.value for c in captions.children] == [
        "<b>faces image 0: supervised error 0.0 % IOD (smoke profile)</b>",
        "<b>faces image 2: supervised error 0.0 % IOD (smoke profile)</b>"]
    assert len(frames.children) == 2 and slider.max == 1
    _, captions, _ = protocol.face_browser(shown, None, "smoke").children  # no detector: the labels only
    assert [c.value for c in captions.children] == ["<b>faces image 0</b>", "<b>faces image 2</b>"]
