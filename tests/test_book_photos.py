"""The page "Landmarks on your photo" (lmcore.book.photos): which models it scores and its verdict."""
import numpy as np
import pandas as pd

from lmcore import zoo
from lmcore.book import photos
from lmcore.placed_faces import FINDER_ROW, MEAN_SHAPE_ROW, PlacedFaces, PlacedQuality, quality_row


def test_the_page_scores_the_leaderboards_runs_that_have_weights():
    models = photos.page_models("reference")
    assert "zhang/k10" in models and "fse/k10" in models
    assert set(models) <= set(zoo.available())
    assert "supervised/reference" in zoo.available() and "supervised/reference" not in models  # the baseline, not a row
    assert photos.page_models("smoke") == list(photos.SMOKE_MODELS)


def _quality(pipeline_errors: dict, n=60, seed=0):
    """A PlacedQuality whose models have the given mean pipeline errors, with per-face noise."""
    rng = np.random.default_rng(seed)
    found = np.ones(n, dtype=bool)
    errors = {name: {"crop": np.full(n, 10.0) + rng.normal(0, 0.5, n),
                     "exact square": np.full(n, 10.0), "pipeline": mean + rng.normal(0, 2.0, n)}
              for name, mean in pipeline_errors.items()}
    errors[MEAN_SHAPE_ROW] = {"crop": np.full(n, 21.0), "exact square": np.full(n, 21.0), "pipeline": np.full(n, 22.0)}
    errors[FINDER_ROW] = {"pipeline": np.full(n, 8.0)}
    table = pd.DataFrame.from_dict({k: quality_row(e, found, 6.27) for k, e in errors.items()}, orient="index")
    table.insert(0, "faces found", 1.0)
    placed = PlacedFaces(np.zeros((n, 1, 1, 3)), np.zeros((n, 3)), np.zeros((n, 5, 2)), None)
    return PlacedQuality(table, errors, placed, [None] * n, 3, 6.27)


def test_the_verdict_picks_the_lowest_pipeline_error_and_names_the_models_it_cannot_tell_apart():
    quality = _quality({"a/k10": 12.0, "b/k10": 9.0, "c/k10": 9.1, "d/k10": 20.0})
    best, tied = photos.best_models(quality)
    assert best == "b/k10" and tied == ["c/k10"]
    text = photos.verdict(quality)
    assert text.startswith("**Pick b/k10**") and "cannot tell it from c/k10" in text
    assert "supervised baseline's 6.27" in text


def test_a_clear_winner_has_no_tie_in_the_verdict():
    quality = _quality({"a/k10": 12.0, "b/k10": 9.0})
    assert photos.best_models(quality) == ("b/k10", [])
    assert "cannot tell" not in photos.verdict(quality)
