"""MTFL-80: the derived splits equal the shipped lists; bad input gives clear errors."""
import pytest

from lmcore.data import MTFL80
from lmcore.data.images import load_image_stack, read_rgb
from lmcore.errors import CorruptDataError, MissingDataError
from lmcore.paths import find_dataset


@pytest.mark.parametrize("split", ["unsup_train", "regressor_train", "test_mtfl", "test_aflw", "excluded_bad_labels"])
def test_derived_splits_equal_the_shipped_lists_name_for_name(mtfl, split):
    shipped = [line.strip() for line in open(mtfl.root / "splits" / f"{split}.txt") if line.strip()]
    assert mtfl.splits[split] == shipped


def test_split_sizes_follow_the_protocol(mtfl):
    assert mtfl.describe() | {"root": None} == {
        "root": None, "unsup_train": 9043, "regressor_train": 6696, "test_mtfl": 957,
        "test_aflw": 2995, "excluded_bad_labels": 2347}


def test_a_split_holds_images_and_points(mtfl):
    test = mtfl.split("test_mtfl", limit=5)
    assert test.images.shape == (5, 3, 80, 80) and test.images.dtype.is_floating_point is False
    assert test.points.shape == (5, 5, 2)
    # the eyes are above the mouth and left of right
    assert (test.points[:, 0, 0] < test.points[:, 1, 0]).all()
    assert (test.points[:, :2, 1].mean(1) < test.points[:, 3:, 1].mean(1)).all()


def test_every_nth_row_of_a_split_is_the_same_face_as_in_the_whole_split(mtfl):
    whole, every = mtfl.split("test_aflw", limit=40), mtfl.split("test_aflw", limit=40, every=8)
    assert every.names == whole.names[::8] and len(every.names) == 5
    assert (every.images == whole.images[::8]).all() and (every.points == whole.points[::8]).all()


def test_missing_data_names_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("LMBOOK_DATA_ROOT", str(tmp_path))
    with pytest.raises(MissingDataError, match="python data_scripts/fetch_mnist.py"):
        find_dataset("mnist", "mnist.npz")


def test_a_corrupt_image_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LMBOOK_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(CorruptDataError, match="broken.jpg"):
        read_rgb(bad)
    with pytest.raises(CorruptDataError, match="broken.jpg"):
        load_image_stack([bad], (80, 80), "tiny")


def test_an_image_of_the_wrong_size_names_the_file(tmp_path):
    from PIL import Image

    path = tmp_path / "small.png"
    Image.new("RGB", (40, 40)).save(path)
    with pytest.raises(CorruptDataError, match="small.png is 40x40"):
        read_rgb(path, (80, 80))


def test_a_folder_without_labels_is_refused(tmp_path):
    with pytest.raises(CorruptDataError, match="new_training.txt is missing"):
        MTFL80(tmp_path)


def test_a_malformed_label_row_names_the_line(tmp_path):
    (tmp_path / "new_training.txt").write_text("a.jpg 1 2 3\n")
    (tmp_path / "new_testing.txt").write_text("")
    with pytest.raises(CorruptDataError, match="new_training.txt:1"):
        MTFL80(tmp_path)
