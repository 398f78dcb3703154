"""Data and run safety of issue 29, items 6, 7 and 10: labels out of the image frame, silent data
fall-backs (a cut label file without splits/, an incomplete data-root copy, an untrusted image
cache), and one-line errors for refused checkpoints and full or read-only disks.

MTFL-80 copies are its label files (and split lists) with the image folders symlinked to the
read-only shared copy; image-cache tests use a few 8 x 8 images. The file runs in a few seconds.
"""
import errno
import json
import os
import pickle
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import lmcore.train
import lmcore.training
import lmcore.training.runs
from lmcore.data import MTFL80, folders
from lmcore.data import mtfl as mtfl_module
from lmcore.data import images as images_module
from lmcore.data.images import load_image_stack
from lmcore.data.mtfl import derive_splits, read_label_file
from lmcore.data.sources import get_source
from lmcore.errors import CorruptCheckpointError, CorruptDataError, MissingDataError
from lmcore.paths import SHARED_DATA, find_dataset
from lmcore.training import checkpoint
from conftest import copy_mtfl

FETCH = "python data_scripts/fetch_mtfl.py"




def _cut(path, rows):
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:rows]))  # cut at a line boundary: parses cleanly


def _one_line(exc_info):
    message = str(exc_info.value)
    assert len(message.splitlines()) == 1, message
    return message


# --------------------------------------------------------------------------- 6. labels out of the frame


def test_the_bounds_are_the_80px_frame_with_a_10px_margin_and_admit_the_shipped_labels(mtfl):
    assert (mtfl_module.COORD_MIN, mtfl_module.COORD_MAX) == (-10.0, 90.0)
    assert folders.COORD_RANGE == (-80.0, 160.0)  # the folder sets keep their own range
    values = np.stack([*mtfl.training.values(), *mtfl.testing.values()])
    assert -10 < values.min() <= -7.5 and values.max() < 70  # the shipped span: -7.5 .. 69.8 px


def test_labels_shifted_out_of_the_frame_are_refused_naming_the_line(mtfl, tmp_path):
    """The reported defect: +45 px on test_mtfl's x values passed the old bounds [-40, 120]."""
    root = copy_mtfl(mtfl.root, tmp_path / "mtfl80")
    path = root / "new_training.txt"
    lines = path.read_text().split("\n")
    test_rows = set(mtfl.splits["test_mtfl"])
    first = None
    for i, line in enumerate(lines):
        parts = line.split(" ")
        if parts[0] in test_rows:
            shifted = [float(v) + 45 for v in parts[1:6]]
            assert max(shifted) <= 120  # accepted before the fix
            parts[1:6] = [repr(v) for v in shifted]
            lines[i] = " ".join(parts)
            if first is None and max(shifted) > 90:
                first = (i + 1, next(repr(v) for v in shifted if v > 90))
    path.write_text("\n".join(lines))
    lineno, token = first
    with pytest.raises(CorruptDataError) as info:
        MTFL80(root)
    message = _one_line(info)
    assert re.search(rf"new_training.txt:{lineno}: value {re.escape(token)} is outside the image frame "
                     r"\(80 px with a 10 px margin\) \[-10, 90\]", message), message


@pytest.mark.parametrize("token, refused", [("90.5", True), ("-10.5", True), ("90.0", False), ("-10.0", False)])
def test_a_value_just_outside_the_frame_is_refused(tmp_path, token, refused):
    path = tmp_path / "new_training.txt"
    path.write_text(f"lfw_5590/a.jpg {token} 47.28 40.4 34.0 45.04 34.8 36.24 46.0 50.8 52.08\n")
    if refused:
        with pytest.raises(CorruptDataError, match=rf"new_training.txt:1: value {token} is outside the image frame"):
            read_label_file(path)
    else:
        assert read_label_file(path)["lfw_5590/a.jpg"][0, 0] == float(token)


# --------------------------------------------------------------------------- 7a. row counts and splits/


def test_the_row_counts_are_the_readmes(mtfl):
    assert mtfl_module.ROW_COUNTS == {"new_training.txt": 10_000, "new_testing.txt": 2_995}
    assert (len(mtfl.training), len(mtfl.testing)) == (10_000, 2_995)


def test_a_whole_copy_without_splits_is_refused_naming_the_fetch_command(mtfl, tmp_path):
    root = copy_mtfl(mtfl.root, tmp_path / "mtfl80", splits=False)
    with pytest.raises(CorruptDataError) as info:
        MTFL80(root)
    message = _one_line(info)
    assert f"{root} has no splits/ folder" in message and "incomplete copy" in message and FETCH in message


def test_a_label_file_cut_to_9000_rows_without_splits_is_refused(mtfl, tmp_path):
    """The reported defect: this copy trained on 8,043 faces and re-derived another test split."""
    root = copy_mtfl(mtfl.root, tmp_path / "mtfl80", splits=False)
    _cut(root / "new_training.txt", 9000)
    with pytest.raises(CorruptDataError) as info:
        MTFL80(root)
    message = _one_line(info)
    assert "new_training.txt has 9000 rows; MTFL-80 has 10000 (its README)" in message and FETCH in message


@pytest.mark.parametrize("label_file, rows", [("new_training.txt", 9000), ("new_testing.txt", 2994)])
def test_a_copy_cut_together_with_its_split_lists_is_refused(mtfl, tmp_path, label_file, rows):
    """Split lists re-derived from the cut file agree with it: only the README's count tells."""
    root = copy_mtfl(mtfl.root, tmp_path / "mtfl80")
    _cut(root / label_file, rows)
    splits = derive_splits(read_label_file(root / "new_training.txt"), read_label_file(root / "new_testing.txt"))
    for split, names in splits.items():
        (root / "splits" / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
    expected = mtfl_module.ROW_COUNTS[label_file]
    with pytest.raises(CorruptDataError, match=rf"{label_file} has {rows} rows; MTFL-80 has {expected}"):
        MTFL80(root)


# --------------------------------------------------------------------------- 7b. no fall-back to ../shared


def test_an_incomplete_data_root_copy_is_an_error_not_a_fall_back(tmp_path, monkeypatch):
    root = tmp_path / "data_root"
    (root / "mtfl80").mkdir(parents=True)
    shutil.copyfile(SHARED_DATA / "mtfl80" / "new_testing.txt", root / "mtfl80" / "new_testing.txt")
    monkeypatch.setenv("LMBOOK_DATA_ROOT", str(root))  # sources are cached per data root: a new root reads afresh
    with pytest.raises(MissingDataError) as info:
        find_dataset("mtfl80", marker="new_training.txt")
    message = _one_line(info)
    assert str(root / "mtfl80") in message and "new_training.txt is missing" in message and FETCH in message
    with pytest.raises(MissingDataError, match="incomplete copy"):
        MTFL80()
    with pytest.raises(MissingDataError, match="incomplete copy"):
        get_source("mtfl80")


def test_a_data_root_without_the_folder_still_falls_back_and_a_whole_copy_is_used(tmp_path, monkeypatch):
    root = tmp_path / "data_root"
    root.mkdir()
    monkeypatch.setenv("LMBOOK_DATA_ROOT", str(root))
    assert find_dataset("mtfl80", marker="new_training.txt") == SHARED_DATA / "mtfl80"
    (root / "mtfl80").mkdir()
    (root / "mtfl80" / "new_training.txt").write_text("")
    assert find_dataset("mtfl80", marker="new_training.txt") == root / "mtfl80"


# --------------------------------------------------------------------------- 7c. the decoded-image cache


COLOURS = [(10, 20, 30), (200, 100, 50), (0, 255, 7)]


@pytest.fixture
def three_images(tmp_path, monkeypatch):
    monkeypatch.setenv("LMBOOK_CACHE", str(tmp_path / "cache"))
    paths = []
    for i, colour in enumerate(COLOURS):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (8, 8), colour).save(paths[-1])
    return paths


def _cache_files(folder):
    arrays = [p for p in folder.glob("*.npy") if ".tmp" not in p.name]
    assert len(arrays) == 1, sorted(folder.iterdir())
    return arrays[0], arrays[0].with_suffix(".json")


def _no_decoding(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("decoded although the cache is whole")

    monkeypatch.setattr(images_module, "read_rgb", refuse)


def _check_colours(stack):
    assert stack.shape == (3, 3, 8, 8) and stack.dtype == np.uint8
    assert [tuple(int(v) for v in stack[i, :, 3, 3]) for i in range(3)] == COLOURS


def test_the_cache_carries_a_sidecar_and_a_whole_cache_is_read_without_decoding(three_images, tmp_path,
                                                                                  monkeypatch, capsys):
    first = load_image_stack(three_images, (8, 8), "tiny")
    array, sidecar = _cache_files(tmp_path / "cache")
    meta = json.loads(sidecar.read_text())
    assert meta == {"shape": [3, 3, 8, 8], "dtype": "uint8", "sha256": images_module.array_sha256(first)}
    _no_decoding(monkeypatch)
    again = load_image_stack(three_images, (8, 8), "tiny")
    assert isinstance(again, np.memmap)
    _check_colours(again)
    assert capsys.readouterr().out == ""


def _wrong_shape(array, sidecar):
    np.save(array, np.zeros((2, 3, 8, 8), np.uint8))  # the IndexError of the report


def _wrong_shape_with_its_own_sidecar(array, sidecar):
    wrong = np.full((3, 3, 8, 4), 7, np.uint8)  # consistent with its sidecar, not with the images
    np.save(array, wrong)
    sidecar.write_text(json.dumps({"shape": [3, 3, 8, 4], "dtype": "uint8",
                                   "sha256": images_module.array_sha256(wrong)}))


def _all_zero(array, sidecar):
    np.save(array, np.zeros((3, 3, 8, 8), np.uint8))  # right shape, black images: only the digest tells


def _wrong_dtype(array, sidecar):
    np.save(array, np.zeros((3, 3, 8, 8), np.int16))


def _no_sidecar(array, sidecar):
    sidecar.unlink()


def _garbage_sidecar(array, sidecar):
    sidecar.write_text("{not json")


def _truncated(array, sidecar):
    array.write_bytes(array.read_bytes()[:100])


def _one_flipped_byte(array, sidecar):
    data = bytearray(array.read_bytes())
    data[-1] ^= 1
    array.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, why", [
    (_wrong_shape, r"its shape is \[2, 3, 8, 8\] \(sidecar: \[3, 3, 8, 8\]\), expected \[3, 3, 8, 8\]"),
    (_wrong_shape_with_its_own_sidecar, r"its shape is \[3, 3, 8, 4\]"),
    (_all_zero, r"its bytes do not have the sha256 of its sidecar"),
    (_one_flipped_byte, r"its bytes do not have the sha256 of its sidecar"),
    (_wrong_dtype, r"its dtype is int16"),
    (_no_sidecar, r"it has no sidecar tiny-[0-9a-f]+\.json"),
    (_garbage_sidecar, r"its sidecar tiny-[0-9a-f]+\.json is unreadable"),
    (_truncated, r"the array file is unreadable"),
], ids=lambda v: getattr(v, "__name__", "")[1:] if callable(v) else "")
def test_a_cache_that_does_not_match_its_sidecar_is_rebuilt_with_one_line(three_images, tmp_path, monkeypatch,
                                                                         capsys, damage, why):
    load_image_stack(three_images, (8, 8), "tiny")
    array, sidecar = _cache_files(tmp_path / "cache")
    capsys.readouterr()
    damage(array, sidecar)
    rebuilt = load_image_stack(three_images, (8, 8), "tiny")
    _check_colours(rebuilt)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(f"image cache {array} not used: "), out
    assert re.search(why, out[0]) and out[0].endswith("decoding the 3 images again"), out[0]
    _no_decoding(monkeypatch)  # the rebuilt cache and sidecar are whole again
    _check_colours(load_image_stack(three_images, (8, 8), "tiny"))
    assert capsys.readouterr().out == ""
    assert not [p for p in (tmp_path / "cache").iterdir() if ".tmp" in p.name]


def test_a_cache_folder_that_is_a_file_is_refused_before_decoding(three_images, tmp_path, monkeypatch):
    """LMBOOK_CACHE naming a file was a FileExistsError after decoding every image (issue 43, item 11)."""
    from lmcore.env import EnvironmentSettingError

    a_file = tmp_path / "cache-file"
    a_file.write_text("")
    monkeypatch.setenv("LMBOOK_CACHE", str(a_file))
    _no_decoding(monkeypatch)
    with pytest.raises(EnvironmentSettingError) as info:
        load_image_stack(three_images, (8, 8), "tiny")
    assert f"LMBOOK_CACHE={a_file} is a file, not a folder" in _one_line(info)


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temp_sidecars_of_dead_writers_are_removed_and_an_interrupted_write_leaves_nothing(three_images, tmp_path,
                                                                                           monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    orphan = cache / f"tiny-0123456789abcdef.tmp{_dead_pid()}.json"
    in_progress = cache / f"tiny-0123456789abcdef.tmp{os.getppid()}.json"
    for p in (orphan, in_progress):
        p.write_text("{}")
    images_module.remove_orphaned_temp_files(cache)
    assert not orphan.exists() and in_progress.exists()
    in_progress.unlink()

    def interrupted(*args, **kwargs):  # Ctrl-C between the array and its sidecar
        raise KeyboardInterrupt

    monkeypatch.setattr(images_module.json, "dumps", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_image_stack(three_images, (8, 8), "tiny")
    assert list(cache.iterdir()) == []


# --------------------------------------------------------------------------- 10. refused checkpoints


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Plain:
    """An ordinary Python object: no checkpoint of lmbook holds one."""


def _state():
    return {"model": {"w": torch.zeros(3)}, "step": 2}


@pytest.mark.parametrize("make", [
    lambda path, marker: torch.save({**_state(), "meta": _Evil(marker)}, path),
    lambda path, marker: torch.save({**_state(), "meta": {"note": _Plain()}}, path),
    lambda path, marker: path.write_bytes(pickle.dumps({"model": _Evil(marker)}, protocol=2)),  # a bare pickle
], ids=["os.system", "python-object", "bare-pickle"])
def test_a_checkpoint_holding_python_objects_is_refused_not_called_truncated(tmp_path, make):
    path, marker = tmp_path / "checkpoint.pt", tmp_path / "pwned"
    make(path, marker)
    with pytest.raises(CorruptCheckpointError) as info:
        checkpoint.load_checkpoint(path)
    message = _one_line(info)
    assert str(path) in message and "holds objects a checkpoint never holds" in message
    assert "refused it without running them" in message and "cut short" not in message
    assert "--force" in message and "\x1b" not in message
    assert not marker.exists()


def test_a_folder_named_like_a_checkpoint_is_one_line(tmp_path):
    """A folder where a checkpoint belongs was an IsADirectoryError (issue 43, item 10)."""
    path = tmp_path / "checkpoint.pt"
    path.mkdir()
    with pytest.raises(CorruptCheckpointError) as info:
        checkpoint.load_checkpoint(path)
    assert f"{path} is a folder, not a checkpoint" in _one_line(info)


def test_vgg16_weights_holding_python_objects_are_refused_in_one_line(tmp_path, monkeypatch):
    """torch's own three lines said that loading with weights_only=False "will likely succeed",
    which would run the payload (issue 43, item 14)."""
    from lmcore.data import weights

    path, marker = tmp_path / "vgg16_features.pt", tmp_path / "pwned"
    torch.save({"0.weight": _Evil(marker)}, path)
    with pytest.raises(CorruptDataError) as info:
        weights.load_vgg16_features_state_dict(path)
    message = _one_line(info)
    assert str(path) in message and "refused it without running them" in message and "system" in message
    assert "weights_only=False" not in message and "likely" not in message and "\x1b" not in message
    assert "fetch_vgg16_weights.py --force" in message and not marker.exists()


@pytest.mark.parametrize("cut", [
    lambda data: data[:300], lambda data: b"", lambda data: data[:-40],
], ids=["first-300-bytes", "empty", "last-40-bytes-lost"])
def test_a_truncated_checkpoint_is_still_called_cut_short(tmp_path, cut):
    path = tmp_path / "checkpoint.pt"
    torch.save(_state(), path)
    path.write_bytes(cut(path.read_bytes()))
    with pytest.raises(CorruptCheckpointError) as info:
        checkpoint.load_checkpoint(path)
    message = _one_line(info)
    assert "cut short" in message and "never holds" not in message


def test_a_truncated_old_format_checkpoint_is_not_called_malicious(tmp_path):
    """A cut pickle of torch's old format can end in a cut global name ("torch._utils._rebui"),
    which the weights-only loader refuses too: without a whole archive that is a cut file."""
    path = tmp_path / "checkpoint.pt"
    torch.save(_state(), path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    cut_at = data.index(b"_rebuild") + 5
    path.write_bytes(data[:cut_at])
    with pytest.raises(CorruptCheckpointError) as info:
        checkpoint.load_checkpoint(path)
    message = _one_line(info)
    assert "cut short" in message and "never holds" not in message


# --------------------------------------------------------------------------- 10. full or read-only disk


def _fail_with(monkeypatch, exc):
    def run_spec(*args, **kwargs):  # what the command line trains a resolved run with
        raise exc

    monkeypatch.setattr(lmcore.training.runs, "run_spec", run_spec)


@pytest.mark.parametrize("exc, says", [
    (OSError(errno.ENOSPC, "No space left on device", "/runs/fse/x/.checkpoint.pt.tmp1"),
     "no space left on the device writing /runs/fse/x/.checkpoint.pt.tmp1"),
    (OSError(errno.EDQUOT, "Disk quota exceeded", "/runs/fse/x/record.json"),
     "disk quota exceeded writing /runs/fse/x/record.json"),
    (OSError(errno.EROFS, "Read-only file system", "/runs/fse/x/.checkpoint.pt.tmp1"),
     "cannot write /runs/fse/x/.checkpoint.pt.tmp1: the file system is read-only"),
    (PermissionError(errno.EACCES, "Permission denied", "/runs/fse/x/.checkpoint.pt.tmp1"),
     "permission denied: /runs/fse/x/.checkpoint.pt.tmp1"),
], ids=["ENOSPC", "EDQUOT", "EROFS", "EACCES"])
def test_a_full_or_read_only_disk_ends_with_one_line_and_exit_code_1(isolated_runs, monkeypatch, capsys, exc, says):
    _fail_with(monkeypatch, exc)
    assert lmcore.train.main(["fse", "--profile", "smoke", "--name", "disk"]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in captured.err, captured.err
    assert err[0].startswith("python -m lmcore.train: error: ") and says in err[0], err[0]
    assert "the previous checkpoint is whole" in err[0] and "run the same command again" in err[0]


def test_a_full_disk_error_without_a_file_name_names_the_runs_folder(isolated_runs, monkeypatch, capsys):
    # torch.save into a full disk raises OSError(ENOSPC) with no file name (measured on /dev/full)
    _fail_with(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    assert lmcore.train.main(["fse", "--profile", "smoke", "--name", "disk"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"runs are written under {isolated_runs}" in err[0] and "free some space" in err[0]


def _cut_short_by_a_full_disk(obj, fh):
    fh.write(b"PK\x03\x04")
    raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")


def test_torch_save_cut_short_by_a_full_disk_is_a_full_disk(tmp_path, monkeypatch):
    """torch.save into a full disk can raise RuntimeError("unexpected pos"), which the OSError
    handler missed (issue 43, item 9): it is ENOSPC naming the checkpoint, and the previous one stays."""
    path = tmp_path / "checkpoint.pt"
    checkpoint.save_checkpoint(_state(), path)
    before = path.read_bytes()
    monkeypatch.setattr(torch, "save", _cut_short_by_a_full_disk)
    with pytest.raises(OSError) as info:
        checkpoint.save_checkpoint(_state(), path)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_a_run_whose_checkpoint_torch_cuts_short_ends_with_one_line(isolated_runs, monkeypatch, capsys):
    monkeypatch.setattr(torch, "save", _cut_short_by_a_full_disk)
    tiny = ["--set", "method.num_landmarks=4", "--set", "method.widths=[4,6,8,8,8]", "--set", "method.view_size=16",
            "--set", "method.padding=same", "--set", "train.resolution=16", "--set", "train.batch_size=4",
            "--set", "train.steps=2", "--set", "train.checkpoint_every=2", "--set", "train.eval_every=0"]
    assert lmcore.train.main(["fse", "--profile", "smoke", "--name", "full", *tiny]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in captured.err, captured.err
    assert "no space left on the device writing" in err[0] and "checkpoint.pt" in err[0]


def test_other_os_errors_are_not_hidden(isolated_runs, monkeypatch):
    _fail_with(monkeypatch, OSError(errno.EIO, "Input/output error", "/dev/sda"))
    with pytest.raises(OSError, match="Input/output error"):
        lmcore.train.main(["fse", "--profile", "smoke", "--name", "disk"])
