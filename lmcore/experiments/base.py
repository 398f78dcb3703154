"""What an experiment declares: a chapter's headline runs and the few-shot sizes it evaluates them at."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import deep_update
from ..methods import get_method

#: the few-shot regression sizes of the face chapters (``None``: every regressor_train face), each
#: size fitted on ``repeats`` random draws
FACE_FEW_SHOT = {"sizes": [1, 5, 10, 100, 500, 1000, None], "repeats": 10}


@dataclass(frozen=True)
class BookRun:
    """One headline run of a chapter: ``run_method(method, profile, name, overrides)`` with the
    method's budget ``variant`` (e.g. ``"k30"``) merged under ``overrides``."""

    label: str
    method: str
    name: str
    num_landmarks: int | None
    overrides: dict = field(default_factory=dict, hash=False, compare=False)
    variant: str | None = None
    chapter: str = ""

    @property
    def key(self) -> str:
        return f"{self.method}/{self.name}"

    def resolved_overrides(self, profile: str) -> dict:
        """The overrides that give this run in ``profile``: its budget variant's, then its own."""
        base = get_method(self.method).budget(profile).variant(self.variant) if self.variant else {}
        return deep_update(base, self.overrides)


@dataclass(frozen=True)
class Experiment:
    """A chapter's headline runs (in the order its tables show them) and the few-shot sizes it
    evaluates them at (None: no few-shot curve)."""

    chapter: str
    runs: tuple[BookRun, ...]
    few_shot: dict | None = None

    def run(self, name: str) -> BookRun:
        """The headline run called ``name``."""
        for run in self.runs:
            if run.name == name:
                return run
        raise KeyError(f"{self.chapter} has no headline run '{name}' (it has {', '.join(r.name for r in self.runs)})")


def num_landmarks(k: int) -> dict:
    """The overrides of a run with ``k`` landmarks."""
    return {"method": {"num_landmarks": k}}
