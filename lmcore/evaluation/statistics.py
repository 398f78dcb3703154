"""Statistics over test faces: how sure a mean error is, whether two detectors really differ,
how errors are distributed, and whether two protocols rank methods alike.

All functions take per-face errors (``N``, % of the normaliser: one number per test image, the
mean over its points) as :meth:`lmcore.evaluation.Detections.per_image` returns them. Intervals
are percentile bootstraps over the test faces with a fixed seed, so a re-run gives the same
interval; they say how much the mean would move on another draw of test faces like these, not
how much it would move with another training run (a different source of spread, which the
book measures only where it repeats a run).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

BOOTSTRAP_SAMPLES = 1000
FAILURE_THRESHOLD = 10.0
"""A face fails when its mean error exceeds 10 % of the IOD (the face-alignment convention)."""


def _errors(values) -> np.ndarray:
    errors = np.asarray(values, dtype=np.float64).ravel()
    if errors.size == 0:
        raise ValueError("no per-face errors: an interval over zero faces is undefined")
    if not np.all(np.isfinite(errors)):
        raise ValueError("per-face errors contain NaN or infinity")
    return errors


def _resampled_means(errors: np.ndarray, samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    chunk = max(1, 2_000_000 // errors.size)  # bounded memory for large test sets
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        means[start:stop] = errors[rng.integers(0, errors.size, size=(stop - start, errors.size))].mean(1)
    return means


def bootstrap_interval(per_face, level: float = 0.95, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> list[float]:
    """Percentile bootstrap interval ``[low, high]`` of the mean of ``per_face`` (``N``): the test
    faces are resampled with replacement ``samples`` times."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), not {level}")
    errors = _errors(per_face)
    means = _resampled_means(errors, samples, seed)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return [float(low), float(high)]


def paired_difference(per_face_a, per_face_b, level: float = 0.95, samples: int = BOOTSTRAP_SAMPLES,
                      seed: int = 0) -> dict:
    """How much detector A's mean error exceeds B's on the *same* faces, with a paired bootstrap
    interval (the faces are resampled together, so the difference of two close methods can be
    certain although their own intervals overlap).

    Returns ``{"difference", "low", "high", "certain"}``; ``certain``: the interval excludes 0.
    """
    a, b = _errors(per_face_a), _errors(per_face_b)
    if a.shape != b.shape:
        raise ValueError(f"paired errors need the same faces: {a.size} against {b.size}")
    difference = a - b
    low, high = bootstrap_interval(difference, level, samples, seed)
    return {"difference": float(difference.mean()), "low": low, "high": high, "certain": bool(low > 0 or high < 0)}


def paired_difference_over_seeds(per_seed_a, per_seed_b, level: float = 0.95, samples: int = BOOTSTRAP_SAMPLES,
                                 seed: int = 0) -> dict:
    """How much method A's mean error exceeds B's when each was trained several times (seeds):
    ``per_seed_a`` is ``S_a x N`` (one row of per-face errors per training run), ``per_seed_b``
    ``S_b x N`` on the same faces. The bootstrap resamples each method's runs and the faces (the
    same faces for both), so the interval holds the spread between training runs as well as the
    spread over faces; with one run each it is :func:`paired_difference`.

    Returns ``{"difference", "low", "high", "certain", "runs"}``; ``certain``: the interval excludes 0.
    """
    a = np.asarray(per_seed_a, dtype=np.float64)
    b = np.asarray(per_seed_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or a.size == 0 or b.size == 0:
        raise ValueError(f"per-seed errors must be runs x faces on the same faces, got {a.shape} and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("per-face errors contain NaN or infinity")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), not {level}")
    rng = np.random.default_rng(seed)
    n = a.shape[1]
    differences = np.empty(samples)
    for i in range(samples):
        faces = rng.integers(0, n, n)
        runs_a = rng.integers(0, a.shape[0], a.shape[0])
        runs_b = rng.integers(0, b.shape[0], b.shape[0])
        differences[i] = a[runs_a][:, faces].mean() - b[runs_b][:, faces].mean()
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    return {"difference": float(a.mean() - b.mean()), "low": float(low), "high": float(high),
            "certain": bool(low > 0 or high < 0), "runs": (a.shape[0], b.shape[0])}


def cumulative_error_distribution(per_face, thresholds: Sequence[float]) -> np.ndarray:
    """The fraction of faces whose error is at most each threshold (the CED curve)."""
    errors = _errors(per_face)
    return np.array([(errors <= t).mean() for t in thresholds])


def failure_rate(per_face, threshold: float = FAILURE_THRESHOLD) -> float:
    """The fraction of faces whose error exceeds ``threshold`` (% of the normaliser)."""
    return float((_errors(per_face) > threshold).mean())


def ranking(scores: Mapping[str, float]) -> list[str]:
    """Names from the lowest error to the highest (ties keep their order)."""
    return sorted(scores, key=lambda name: scores[name])


def kendall_tau(scores_a: Mapping[str, float], scores_b: Mapping[str, float]) -> float:
    """Kendall's tau-b between two scorings of the same methods: 1 = the same ranking, -1 = the
    reverse. Only the names both score are compared."""
    from scipy.stats import kendalltau

    names = [n for n in scores_a if n in scores_b]
    if len(names) < 2:
        raise ValueError("a ranking needs at least two methods scored both ways")
    return float(kendalltau([scores_a[n] for n in names], [scores_b[n] for n in names]).statistic)  # NaN if all tie


def ranking_changes(reference: Mapping[str, float], other: Mapping[str, float]) -> list[tuple[str, str]]:
    """Pairs ``(a, b)`` that ``reference`` orders a before b (a lower error) and ``other`` orders
    b before a: what a change of protocol does to the ranking, said pair by pair."""
    names = [n for n in ranking(reference) if n in other]
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
            if reference[a] < reference[b] and other[a] > other[b]]
