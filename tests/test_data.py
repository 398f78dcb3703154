"""MTFL-80: the derived splits equal the shipped lists; bad input gives clear errors."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from lmcore.data import MTFL80
from lmcore.data import images as images_module
from lmcore.data.images import load_image_stack, read_rgb
from lmcore.errors import CorruptDataError, MissingDataError
from lmcore.paths import find_dataset
from conftest import copy_mtfl


@pytest.mark.parametrize("split", ["unsup_train", "regressor_train", "test_mtfl", "test_aflw", "excluded_bad_labels",
                                   "tune_fit", "tune_val"])
def test_derived_splits_equal_the_shipped_lists_name_for_name(mtfl, split):
    shipped = [line.strip() for line in open(mtfl.root / "splits" / f"{split}.txt") if line.strip()]
    assert mtfl.splits[split] == shipped


def test_split_sizes_follow_the_protocol(mtfl):
    assert mtfl.describe() | {"root": None} == {
        "root": None, "unsup_train": 9043, "regressor_train": 6696, "test_mtfl": 957,
        "test_aflw": 2995, "excluded_bad_labels": 2347, "tune_fit": 5356, "tune_val": 1340}


def test_tuning_splits_partition_regressor_train_and_avoid_the_test_sets(mtfl):
    fit, val = mtfl.splits["tune_fit"], mtfl.splits["tune_val"]
    assert sorted(fit + val) == sorted(mtfl.splits["regressor_train"]) and not set(fit) & set(val)
    assert val[:2] == mtfl.splits["regressor_train"][0:6:5]  # positions 0 and 5
    assert not set(fit + val) & set(mtfl.splits["test_mtfl"] + mtfl.splits["test_aflw"])


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


# --------------------------------------------------------------------------- label validation




def _edit_token(path, lineno, column, token):
    """Replace value ``column`` (1..10) of line ``lineno`` (1-based) by ``token``."""
    lines = path.read_text().split("\n")
    parts = lines[lineno - 1].split(" ")
    parts[column] = token
    lines[lineno - 1] = " ".join(parts)
    path.write_text("\n".join(lines))


def test_a_valid_copy_loads_with_the_same_fingerprint(mtfl, tmp_path):
    copy = MTFL80(copy_mtfl(mtfl.root, tmp_path / "mtfl80"))
    assert copy.fingerprint() == mtfl.fingerprint() and len(mtfl.fingerprint()) == 64
    assert copy.splits == mtfl.splits


def test_a_label_file_cut_at_a_line_boundary_is_refused(mtfl, tmp_path):
    root = copy_mtfl(mtfl.root, tmp_path / "mtfl80")
    lines = (root / "new_training.txt").read_text().splitlines(keepends=True)
    (root / "new_training.txt").write_text("".join(lines[:9000]))  # parses cleanly on its own
    with pytest.raises(CorruptDataError, match=r"new_training.txt has 9000 rows; splits/unsup_train.txt "
                                               r"\+ splits/test_mtfl.txt expect 10000 \(1000 missing"):
        MTFL80(root)


def test_a_truncated_copy_without_lists_is_refused_by_its_row_count(mtfl, tmp_path):
    root = copy_mtfl(mtfl.root, tmp_path / "mtfl80", splits=False)
    lines = (root / "new_training.txt").read_text().splitlines(keepends=True)
    (root / "new_training.txt").write_text("".join(lines[:9000]))
    with pytest.raises(CorruptDataError, match="has 9000 rows; MTFL-80 has 10000"):
        MTFL80(root)


def test_a_split_list_that_differs_names_the_split_and_the_label_file(mtfl, tmp_path):
    root = copy_mtfl(mtfl.root, tmp_path / "mtfl80")
    shipped = (root / "splits" / "tune_val.txt").read_text().splitlines()
    (root / "splits" / "tune_val.txt").write_text("\n".join(shipped[1:] + shipped[:1]) + "\n")
    with pytest.raises(CorruptDataError, match=r"new_training.txt gives 1340 rows for 'tune_val'; "
                                               r"splits/tune_val.txt expects 1340 \(the same names in another order"):
        MTFL80(root)


@pytest.mark.parametrize("cut, message", [
    # the last value "21.0" cut to "2" (no line end): a non-canonical number
    (lambda data: data[:-5] + b"2", r"new_training.txt:10000: '2' is not written as the file's numbers are"),
    # the same cut inside the file (line end kept)
    (lambda data: data[:-5] + b"2\n", r"new_training.txt:10000: '2' is not written"),
    # cut right after "21.0": every value is canonical, only the missing line end tells
    (lambda data: data[:-1], r"new_training.txt:10000: the last row has no line end"),
], ids=["cut-number", "cut-number-with-line-end", "cut-line-end"])
def test_a_file_cut_inside_its_last_row_names_the_line(mtfl, tmp_path, cut, message):
    root = copy_mtfl(mtfl.root, tmp_path / "mtfl80")
    data = (root / "new_training.txt").read_bytes()
    assert data.endswith(b" 21.0\n")  # the shipped file's last value
    (root / "new_training.txt").write_bytes(cut(data))
    with pytest.raises(CorruptDataError, match=message):
        MTFL80(root)


@pytest.mark.parametrize("token, message", [
    ("nan", r"new_training.txt:2: non-finite value 'nan'"),
    ("inf", r"new_training.txt:2: non-finite value 'inf'"),
    ("-inf", r"new_training.txt:2: non-finite value '-inf'"),
    ("1e5", r"new_training.txt:2: value 1e5 is outside the image frame .*\[-10, 90\]"),
    ("100000.0", r"new_training.txt:2: value 100000.0 is outside"),
    ("46.", r"new_training.txt:2: '46.' is not written as the file's numbers are"),  # "46.96" cut
    ("4", r"new_training.txt:2: '4' is not written"),
])
def test_a_bad_value_names_the_file_and_line(mtfl, tmp_path, token, message):
    root = copy_mtfl(mtfl.root, tmp_path / "mtfl80")
    _edit_token(root / "new_training.txt", 2, 2, token)
    with pytest.raises(CorruptDataError, match=message):
        MTFL80(root)


def test_the_bounds_admit_the_known_bad_rows_of_the_real_file(mtfl):
    # the net_7876 rows with wrong labels sit above the face: they must still load (and be excluded)
    bad = np.stack([mtfl.training[n] for n in mtfl.splits["excluded_bad_labels"]])
    assert bad[..., 1].min() < 0 and len(bad) == 2347


def test_a_repeated_path_names_both_lines(tmp_path):
    row = "lfw_5590/a.jpg 34.32 47.28 40.4 34.0 45.04 34.8 36.24 46.0 50.8 52.08\n"
    (tmp_path / "new_training.txt").write_text(row + row)
    (tmp_path / "new_testing.txt").write_text("")
    with pytest.raises(CorruptDataError, match="new_training.txt:2: lfw_5590/a.jpg repeats line 1"):
        MTFL80(tmp_path)


# --------------------------------------------------------------------------- the image cache's temp files


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temp_files_of_dead_writers_are_removed_on_write_and_on_read(tmp_path, monkeypatch):
    from PIL import Image

    cache = tmp_path / "cache"
    monkeypatch.setenv("LMBOOK_CACHE", str(cache))
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(image)
    cache.mkdir()
    dead, alive = _dead_pid(), os.getppid()  # the parent (pytest's shell or runner) outlives this test
    orphan = cache / f"mtfl80-0123456789abcdef.tmp{dead}.npy"
    in_progress = cache / f"mtfl80-0123456789abcdef.tmp{alive}.npy"
    unrelated = cache / "notes.tmp.npy"
    for p in (orphan, in_progress, unrelated):
        p.write_bytes(b"x")
    first = load_image_stack([image], (8, 8), "tiny")  # decodes and writes the cache
    assert not orphan.exists() and in_progress.exists() and unrelated.exists()
    orphan.write_bytes(b"x")
    second = load_image_stack([image], (8, 8), "tiny")  # reads the cache
    assert not orphan.exists() and in_progress.exists()
    assert (np.asarray(second) == first).all() and first[0, :, 0, 0].tolist() == [10, 20, 30]


def test_a_failed_cache_write_leaves_no_temp_file(tmp_path, monkeypatch):
    from PIL import Image

    cache = tmp_path / "cache"
    monkeypatch.setenv("LMBOOK_CACHE", str(cache))
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)

    def interrupted_save(path, array):  # killed politely (Ctrl-C) half-way through the write
        open(path, "wb").write(b"\x93NUMPY partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(images_module.np, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        load_image_stack([image], (8, 8), "tiny")
    assert list(cache.iterdir()) == []
