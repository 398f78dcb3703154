"""The model zoo (lmcore.zoo) and its command line (python -m lmcore.detect)."""
import json
import shutil

import numpy as np
import pytest
import torch

from lmcore import zoo, zoo_export
from lmcore.detect import main as detect_main
from lmcore.evaluation.protocol import normalised_errors
from lmcore.paths import RESULTS_DIR
from lmcore.training.run_record import RunRecord

MODELS = zoo.available()


def one_per_method_and_mode(names: list[str]) -> list[str]:
    """The first model of each method and mode (Sanchez's three): its seeds, longer runs, K = 30 and
    ablations run the same code on other weights, whose files the digests above pin."""
    chosen = {}
    for name in sorted(names, key=lambda n: (len(n), n)):  # the plain name before its -seed1, -long, ...
        record = json.loads(zoo.record_path(name).read_text())
        chosen.setdefault((record["method"], record["config"]["method"].get("mode")), name)
    return sorted(chosen.values())


def test_the_weights_files_are_small_by_design():
    files = sorted(RESULTS_DIR.glob("*/*" + zoo.WEIGHTS_SUFFIX))
    for path in files:
        assert path.stat().st_size <= zoo.MAX_FILE_BYTES, path
    assert sum(p.stat().st_size for p in files) <= zoo.MAX_TOTAL_BYTES


def test_every_weights_file_has_its_record_and_the_records_digest():
    from lmcore.files import file_sha256

    for path in RESULTS_DIR.glob("*/*" + zoo.WEIGHTS_SUFFIX):
        record = RunRecord.from_file(path.with_suffix(".json"))
        assert record["weights_sha256"] == file_sha256(path), path
        assert record["weights_dtype"] in ("fp16", "fp32")
        # fp16 only where it moved test_mtfl (a pose core: its PCK) by less than the tolerance, measured when exported
        check = record["weights_check"]
        if zoo.kind_of(record) == zoo.POSE:
            assert abs(check["pck_val_fp32"] - record["metrics"]["pck_val"]["pck"]) <= zoo.REPRODUCE_TOLERANCE
            if record["weights_dtype"] == "fp16":
                assert abs(check["pck_val_fp16"] - check["pck_val_fp32"]) < zoo.FP16_PCK_TOLERANCE
            continue
        assert abs(check["test_mtfl_fp32"] - record["metrics"]["forward"]["test_mtfl"]["mean"]) <= zoo.REPRODUCE_TOLERANCE
        if record["weights_dtype"] == "fp16":
            assert abs(check["test_mtfl_fp16"] - check["test_mtfl_fp32"]) < zoo.FP16_TOLERANCE


def test_the_zoo_has_models():
    assert "zhang/k10" in MODELS


@pytest.mark.parametrize("name", one_per_method_and_mode(MODELS))
def test_a_model_regresses_the_test_faces_to_its_records_error(name):
    """Re-detected from the committed weights, the 5 regressed points on all of test_mtfl score the
    record's forward error (to the fp16 tolerance: the regressor is the protocol's own fit); face
    by face, what an ordering over seeds resamples (:func:`lmcore.zoo.per_face_errors`)."""
    from lmcore.data.sources import get_source

    record = zoo.load_detector(name).record
    test = get_source(record["config"]["data"]["source"]).split("test_mtfl")
    per_face = zoo.per_face_errors(name)
    assert per_face.shape == (len(test),)
    assert per_face.mean() == pytest.approx(record["metrics"]["forward"]["test_mtfl"]["mean"], abs=2 * zoo.FP16_TOLERANCE)


def test_the_errors_face_by_face_are_the_protocols_normalised_errors_of_the_regressed_points():
    """per_face_errors normalises each face's error by its own inter-ocular distance, as the protocol's
    normalised_errors does with the annotated points (checked on the cheapest model)."""
    from lmcore.data.sources import get_source

    detector = zoo.load_detector("fse/k10")
    test = get_source(detector.record["config"]["data"]["source"]).split("test_mtfl")
    images = test.images.float() / 255.0
    points = torch.cat([detector.points(images[i:i + 512]) for i in range(0, len(images), 512)])
    assert points.shape == (len(test), 5, 2)
    errors = normalised_errors(points.numpy(), test.points.numpy(), normaliser_points=test.points.numpy()).mean(1)
    assert np.allclose(zoo.per_face_errors("fse/k10"), errors, atol=1e-4)


def test_one_model_of_each_method_and_mode_is_re_detected():
    chosen = one_per_method_and_mode(MODELS)
    assert {"fse/k10", "zhang/k10", "jakab/k10", "c3/k10", "sanchez/proposed", "sanchez/finetune",
            "sanchez/scratch", "supervised/reference"} <= set(chosen) and "sanchez/proposed-seed1" not in chosen


def test_a_supervised_detectors_points_are_its_landmarks():
    """The supervised reference predicts the 5 points themselves: its zoo regressor is the identity."""
    detector = zoo.load_detector("supervised/reference")
    assert zoo.is_direct(detector.record) and not zoo.is_direct(zoo.load_detector("fse/k10").record)
    images = torch.rand(3, 3, 80, 80)
    assert torch.allclose(detector.points(images), detector(images), atol=1e-4)


@pytest.fixture
def zoo_copy(tmp_path):
    for suffix in (".json", zoo.WEIGHTS_SUFFIX):
        (tmp_path / "zhang").mkdir(exist_ok=True)
        shutil.copy2(RESULTS_DIR / "zhang" / f"k10{suffix}", tmp_path / "zhang" / f"k10{suffix}")
    return tmp_path


def test_a_changed_weights_file_is_refused(zoo_copy):
    path = zoo_copy / "zhang" / ("k10" + zoo.WEIGHTS_SUFFIX)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(zoo.ZooError, match="sha256 differs"):
        zoo.load_detector("zhang/k10", root=zoo_copy)


def test_a_record_this_lmcore_cannot_build_names_the_commit(zoo_copy):
    from lmcore.training.records import read_record, write_record

    path = zoo_copy / "zhang" / "k10.json"
    record = read_record(path)
    record["config"]["method"]["num_landmarks"] = "ten"  # no model of this lmcore has it
    write_record(path, record)
    with pytest.raises(zoo.ZooError, match=f"check out commit {record['git_commit'][:10]}"):
        zoo.load_detector("zhang/k10", root=zoo_copy)


def test_an_unknown_model_lists_the_known_ones(zoo_copy):
    with pytest.raises(zoo.ZooError, match="zhang/k10"):
        zoo.load_detector("zhang/k99", root=zoo_copy)


@pytest.mark.parametrize("suffix", [zoo.WEIGHTS_SUFFIX, ".json"])
def test_a_model_file_that_is_a_folder_is_one_line(zoo_copy, suffix):
    """results/jakab/k10.safetensors as a folder was an IsADirectoryError (issue 43, item 10)."""
    path = zoo_copy / "zhang" / f"k10{suffix}"
    path.unlink()
    path.mkdir()
    for load in (lambda: zoo.load_detector("zhang/k10", root=zoo_copy),
                 lambda: zoo.ancestor_of("zhang/k10", "zhang", root=zoo_copy)):
        with pytest.raises(zoo.ZooError) as info:
            load()
        message = str(info.value)
        assert len(message.splitlines()) == 1 and f"{path} is a folder, not a file of the model 'zhang/k10'" in message


def _test_photos(tmp_path, n=3):
    from PIL import Image

    from lmcore.data.sources import get_source

    test = get_source("mtfl80").split("test_mtfl", limit=n)
    paths = []
    for i in range(n):
        # a larger, non-square photo: the face crop in its centre, padded left and right
        face = Image.fromarray(test.images[i].permute(1, 2, 0).numpy()).resize((160, 160))
        photo = Image.new("RGB", (200, 160))
        photo.paste(face, (20, 0))
        paths.append(tmp_path / f"face{i}.png")
        photo.save(paths[-1])
    return paths, test.points * 2 + torch.tensor([20.0, 0.0])  # labels in the photo's pixels


def test_detect_finds_the_five_points_on_photos_in_the_photos_coordinates(tmp_path, capsys):
    paths, labels = _test_photos(tmp_path)
    # face crops padded to a larger photo: --crop takes each photo's centre square as its face
    assert detect_main(["--model", "zhang/k10", *map(str, paths), "--crop", "--json", "--out", str(tmp_path / "out")]) == 0
    results = json.loads(capsys.readouterr().out)
    predicted = np.array([list(r["faces"][0]["points"].values()) for r in results])
    errors = normalised_errors(predicted, labels.numpy(), normaliser_points=labels.numpy())
    record = RunRecord.from_file(RESULTS_DIR / "zhang" / "k10.json")
    # three faces: within twice the reference's mean error (its per-face spread is wide)
    assert errors.mean() < 2 * record["metrics"]["forward"]["test_mtfl"]["mean"]
    assert all((tmp_path / "out" / f"face{i}-landmarks.png").exists() for i in range(3))
    assert len(results[0]["faces"][0]["landmarks"]) == 10


def test_detect_lists_the_models(capsys):
    assert detect_main(["--list"]) == 0
    assert "zhang/k10: K = 10" in capsys.readouterr().out


@pytest.mark.parametrize("case, says", [
    ("not_an_image", "not a readable image"),
    ("missing", "no such file"),
    ("sixteen_bit", "unsupported image mode"),
    ("folder", "is a folder"),
    ("unknown_model", "no model"),
    ("no_photo", "give --model"),
    ("pose_core", "not a face detector"),
])
def test_detect_user_errors_are_one_line_and_exit_2(case, says, tmp_path, capsys):
    from PIL import Image

    photo = tmp_path / "x.png"
    model = "zhang/k10"
    if case == "not_an_image":
        photo.write_text("hello")
    elif case == "sixteen_bit":
        Image.new("I;16", (40, 40)).save(photo)
    elif case == "folder":
        photo = tmp_path
    elif case == "unknown_model":
        Image.new("RGB", (40, 40)).save(photo)
        model = "zhang/k99"
    elif case == "pose_core":  # the committed pose core is in the zoo, but detects people's joints
        Image.new("RGB", (40, 40)).save(photo)
        model = "pose/core"
    elif case == "missing":
        photo = tmp_path / "missing.png"
    argv = ["--model", model] + ([] if case == "no_photo" else [str(photo)])
    assert detect_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1


def test_a_run_started_from_a_reference_starts_from_its_weights_and_names_its_ancestor(tmp_path, monkeypatch):
    """--init-from: the run's weights begin as the reference's (a step at a negligible learning rate
    leaves them there; running statistics move with the step's batch, so only parameters are
    compared), its record names the ancestor and the lineage's steps, and its identity differs from
    the same run started from scratch."""
    from lmcore.train import main as train_main
    from lmcore.training.runs import resolve_config, run_identity

    monkeypatch.setenv("LMBOOK_RUNS", str(tmp_path / "runs"))
    same_architecture = ["--set", "method.width=16", "--set", "method.max_width=64"]
    argv = ["jakab", "--profile", "smoke", "--name", "grown", *same_architecture, "--set", "train.steps=1",
            "--set", "train.lr=1e-12", "--set", "train.lr_milestones=[]", "--set", "train.eval_every=0"]
    assert train_main(argv + ["--init-from", "jakab/k10"]) == 0
    run = next((tmp_path / "runs" / "smoke" / "jakab").glob("grown-*"))
    record = RunRecord.from_file(run / "record.json", run_dir=run)
    reference = RunRecord.from_file(RESULTS_DIR / "jakab" / "k10.json")
    assert record["ancestor"]["name"] == "jakab/k10" and record["ancestor"]["lineage_steps"] == reference["steps"]
    assert record["ancestor"]["weights_sha256"] == reference["weights_sha256"]
    from lmcore.training.runs import load_trained

    trained = dict(load_trained(record).named_parameters())
    start = dict(zoo.load_model("jakab/k10").named_parameters())  # the whole model, as --init-from loads it
    assert set(trained) == set(start) and len(start) > 10
    assert all(torch.allclose(trained[k], start[k], atol=1e-6) for k in start)
    # and the step did not simply leave a fresh initialisation in place
    from lmcore.methods import build_method

    fresh = dict(build_method("jakab", record.config).named_parameters())
    assert not all(torch.allclose(fresh[k], start[k], atol=1e-3) for k in start)
    config = resolve_config("jakab", "smoke", {"method": {"width": 16, "max_width": 64}})
    grown = resolve_config("jakab", "smoke", {"method": {"width": 16, "max_width": 64}, "train": {"init_from": "jakab/k10"}})
    assert run_identity("jakab", "smoke", config) != run_identity("jakab", "smoke", grown)


@pytest.mark.parametrize("model, says", [("jakab/k99", "no model"), ("zhang/k10", "is a zhang model"),
                                         ("not a name", "train.init_from")])
def test_init_from_a_missing_or_foreign_model_is_one_line(model, says, capsys, tmp_path, monkeypatch):
    from lmcore.train import main as train_main

    monkeypatch.setenv("LMBOOK_RUNS", str(tmp_path / "runs"))
    assert train_main(["jakab", "--profile", "smoke", "--init-from", model]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("checkpoint.pt"))


def test_a_learning_curve_shows_the_whole_lineage(tmp_path):
    """The curve of a run started from a reference begins where its ancestor's training time ends,
    and the ancestor's own curve is drawn before it."""
    import matplotlib

    matplotlib.use("Agg")
    from lmcore.training.records import write_record
    from lmcore.book.viz.figures import learning_curves

    curve = lambda times: [{"wall_time_s": t, zoo_curve_key(): 20.0 - t / 60} for t in times]
    base = {"run_name": "base", "profile": "cpu", "wall_time_s": 600.0, "history": curve([60, 300, 600])}
    (tmp_path / "jakab").mkdir()
    reference = RunRecord.from_file(RESULTS_DIR / "jakab" / "k10.json")  # a whole record, its curve replaced
    write_record(tmp_path / "jakab" / "base.json", {**dict(reference), **base})
    grown = {"run_name": "grown", "profile": "cpu", "wall_time_s": 120.0, "history": curve([60, 120]),
             "ancestor": {"name": "jakab/base", "lineage_steps": 100}}
    assert [r["run_name"] for r in zoo.lineage(grown, tmp_path)] == ["base", "grown"]
    ax = learning_curves([grown], root=tmp_path)
    ancestor_line, own_line = ax.get_lines()[:2]
    assert list(ancestor_line.get_xdata()) == [1.0, 5.0, 10.0]
    assert list(own_line.get_xdata()) == [11.0, 12.0]  # after the ancestor's 10 minutes
    assert ancestor_line.get_color() == own_line.get_color()


def zoo_curve_key():
    from lmcore.methods.base import LEARNING_CURVE_KEY

    return LEARNING_CURVE_KEY


def test_a_pose_core_is_exported_checked_by_its_pck_and_refused_as_a_face_detector(tmp_path, monkeypatch, capsys):
    """A pose core goes into the zoo so that it can be trained further: its PCK on LSPET val must
    come back from the weights; it has no face regressor, and the face tools say so in one line."""
    from lmcore.train import main as train_main
    from lmcore.training.records import write_record

    monkeypatch.setenv("LMBOOK_RUNS", str(tmp_path / "runs"))
    assert train_main(["pose", "--profile", "smoke", "--name", "core"]) == 0
    run = next((tmp_path / "runs" / "smoke" / "pose").glob("core-*"))
    record_file = tmp_path / "results" / "pose" / "core.json"  # as published (which needs committed code)
    record_file.parent.mkdir(parents=True)
    write_record(record_file, dict(RunRecord.from_file(run / "record.json")))
    done = zoo_export.export_weights(record_file)
    assert zoo_export.check_summary(done).startswith("PCK@0.2 on LSPET val")  # what --publish prints
    assert done["pck_val_fp32"] == pytest.approx(RunRecord.from_file(record_file)["metrics"]["pck_val"]["pck"], abs=1e-9)
    root = tmp_path / "results"
    assert zoo.available(root) == [] and zoo.available(root, kind=zoo.POSE) == ["pose/core"]
    checked = zoo.verify("pose/core", root=root)
    assert checked["difference"] <= zoo.VERIFY_TOLERANCE and checked["score"].startswith("PCK")
    detector = zoo.load_detector("pose/core", root=root)
    assert detector.regressor is None and detector(torch.rand(2, 3, 128, 128)).shape == (2, 14, 2)
    with pytest.raises(zoo.ZooError, match="no regressor"):
        detector.points(torch.rand(1, 3, 128, 128))
    # the committed weights are not changed by any of this; a changed file is refused
    path = root / "pose" / ("core" + zoo.WEIGHTS_SUFFIX)
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(zoo.ZooError, match="sha256 differs"):
        zoo.load_detector("pose/core", root=root)


def test_a_supervised_references_detections_are_scored_as_they_are():
    """Its points are scored directly, as its own evaluation did, not through a fitted regressor."""
    from lmcore.book.references import reference_detections, reference_record
    from lmcore.data.sources import get_source

    record = reference_record("supervised", "reference")
    source = get_source("mtfl80")
    test = source.split("test_mtfl")
    detections = reference_detections(record, source.split("regressor_train"), {"test_mtfl": test})
    assert detections.kind == "direct"
    assert detections.error("test_mtfl")["mean"] == pytest.approx(record.forward("test_mtfl"), abs=2 * zoo.FP16_TOLERANCE)
