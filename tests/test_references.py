"""The reference profile: chapters get committed references instead of training."""
import pytest

from lmcore.book.chapter import Chapter
from lmcore.errors import ConfigError
from lmcore.book.references import (BOOK_PROFILES, NoReferenceError, has_weights, load_reference_model,
                               number_from_weights, reference_record, resolve_book_profile, settings_profile)


def _chapter(profile):
    return Chapter(profile, None, None, None, None, 0.0, 0.0)


def test_reference_profile_is_a_book_profile_not_a_training_one(monkeypatch):
    from lmcore.profiles import PROFILES

    assert "reference" in BOOK_PROFILES and "reference" not in PROFILES
    assert settings_profile("reference") == "cpu" and settings_profile("smoke") == "smoke"
    monkeypatch.setenv("LMBOOK_PROFILE", "nonsense")
    with pytest.raises(ConfigError):
        resolve_book_profile()
    assert resolve_book_profile("reference") == "reference"


def test_reference_chapter_returns_committed_records_and_none_for_the_rest():
    chapter = _chapter("reference")
    assert not chapter.trains and chapter.settings == "cpu"
    record = chapter.run("zhang", "k10")
    assert record is not None and record.is_reference and record.run_name == "k10"
    assert chapter.run("zhang", "no-such-run") is None
    found = chapter.variants("c3", {"cycle": {}, "no such": {}}, prefix="ablation")
    assert list(found) == ["cycle"]


def test_reference_without_weights_has_no_model():
    record = reference_record("fse", "k30")
    assert record is not None and not has_weights(record)
    assert not _chapter("reference").has_model(record)
    with pytest.raises(NoReferenceError):
        load_reference_model(record)


def test_number_from_weights_follows_the_stored_precision():
    record = reference_record("zhang", "k10")
    fp16 = dict(record, weights_dtype="fp16")
    assert number_from_weights(fp16, "forward", "test_mtfl") == record["weights_check"]["test_mtfl_fp16"]
    assert number_from_weights(fp16, "backward", "test_mtfl") is None
    fp32 = dict(record, weights_dtype="fp32")
    assert number_from_weights(fp32, "backward", "test_mtfl") == record["metrics"]["backward"]["test_mtfl"]["mean"]


def test_reference_detections_detect_each_set_once_across_requests(tmp_path, monkeypatch):
    """A chapter asking for test_mtfl alone and a later one asking for both test sets share the
    pass over test_mtfl; a corrupt cache file is detected again, not read."""
    import torch

    import lmcore.book.references as references
    from lmcore.data.sources import get_source

    monkeypatch.setattr(references, "_cache_dir", lambda: tmp_path)
    source = get_source("mtfl80")
    regressor_set = source.split("regressor_train", every=200)
    test_mtfl, test_aflw = source.split("test_mtfl", every=100), source.split("test_aflw", every=300)
    record = reference_record("jakab", "k10")
    detected = []
    model = load_reference_model(record)

    def counting_detect(images):
        detected.append(len(images))
        return model.detect(images)

    monkeypatch.setattr(references, "load_reference_model", lambda r: type("M", (), {"detect": staticmethod(counting_detect)}))
    first = references.reference_detections(record, regressor_set, {"test_mtfl": test_mtfl})
    assert sum(detected) == len(regressor_set) + len(test_mtfl)
    both = references.reference_detections(record, regressor_set, {"test_mtfl": test_mtfl, "test_aflw": test_aflw})
    assert sum(detected) == len(regressor_set) + len(test_mtfl) + len(test_aflw)  # test_aflw only, the rest cached
    assert torch.equal(both.test_points["test_mtfl"], first.test_points["test_mtfl"])
    assert both.error("test_mtfl")["mean"] == first.error("test_mtfl")["mean"]
    for path in tmp_path.glob("*-points-*.pt"):
        path.write_bytes(b"not a tensor")
    again = references.reference_detections(record, regressor_set, {"test_aflw": test_aflw})
    assert torch.equal(again.test_points["test_aflw"], both.test_points["test_aflw"])
    assert sum(detected) == 2 * (len(regressor_set) + len(test_aflw)) + len(test_mtfl)


def test_reference_variants_take_a_reused_run_whose_config_they_resolve_to():
    """As in a training profile, a variant equal to a run the chapter passes as ``reuse`` is that
    run, not a missing reference."""
    from lmcore.training import resolve_config
    from lmcore.training.run_record import RunRecord

    change = {"method": {"lambda_sep": 0.5}}
    reused = RunRecord({"method": "zhang", "run_name": "k10", "config": resolve_config("zhang", "cpu", change)})
    found = _chapter("reference").variants("zhang", {"same": change, "other": {"method": {"lambda_sep": 0.25}}},
                                           prefix="no-such-prefix", reuse=[reused, None])
    assert list(found) == ["same"] and found["same"] is reused
