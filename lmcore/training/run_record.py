"""A run record as the chapters read it: the JSON fields, plus typed accessors.

:class:`RunRecord` is the dict written to ``record.json`` (so tables can still read any field)
with accessors for what chapters ask of it, and the run folder it came from (``None`` for a
committed reference, which carries no weights)::

    record.forward("test_mtfl")        # mean forward error, % of IOD
    record.few_shot("test_aflw")       # the few-shot curve: [{"n", "mean", "std", ...}, ...]
    record.checkpoint                  # Path of the final weights, or None
    record.learning_curve()            # [(minutes, forward error on test_mtfl), ...]
"""
from __future__ import annotations

from pathlib import Path

from ..methods.base import LEARNING_CURVE_KEY, PCK_KEY, SNAPSHOT_KEY
from .records import read_record


class RunRecord(dict):
    """One run's record (see :mod:`lmcore.training.records` for the fields)."""

    def __init__(self, fields: dict, run_dir: Path | str | None = None, path: Path | str | None = None):
        super().__init__({k: v for k, v in fields.items() if not k.startswith("_")})
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.path = Path(path) if path is not None else (self.run_dir / "record.json" if self.run_dir else None)
        #: True when :func:`~lmcore.training.run_method` returned a finished run instead of training it
        self.reused = False

    @classmethod
    def from_file(cls, path: Path | str, run_dir: Path | str | None = None, check_digest: bool = True) -> "RunRecord":
        """Read a record; ``run_dir`` (the folder with its checkpoint) for a run, None for a reference.
        A record whose fields no longer match its digest is refused (``check_digest``)."""
        return cls(read_record(Path(path), check_digest=check_digest), run_dir=run_dir, path=path)

    # ------------------------------------------------------------------ who and how

    @property
    def method(self) -> str:
        return self["method"]

    @property
    def profile(self) -> str:
        return self["profile"]

    @property
    def run_name(self) -> str:
        return self.get("run_name", "?")

    @property
    def config(self) -> dict:
        return self["config"]

    @property
    def num_landmarks(self) -> int | None:
        return self["config"]["method"].get("num_landmarks")

    @property
    def steps(self) -> int | None:
        return self.get("steps")

    @property
    def is_reference(self) -> bool:
        """A committed reference (``results/``): a record without its run folder."""
        return self.run_dir is None

    @property
    def checkpoint(self) -> Path | None:
        """The final checkpoint of the run, where it exists."""
        if self.run_dir is None:
            return None
        path = self.run_dir / "checkpoint.pt"
        return path if path.exists() else None

    def kept_checkpoints(self) -> list[tuple[int, Path]]:
        """(step, path) of the checkpoint copies the run kept (``train.keep_every``), in step order."""
        if self.run_dir is None:
            return []
        return sorted((int(p.stem.split("-")[1]), p) for p in self.run_dir.glob("checkpoint-*.pt"))

    # ------------------------------------------------------------------ numbers

    def metric(self, metric: str, split: str) -> dict:
        try:
            return self["metrics"][metric][split]
        except KeyError:
            raise KeyError(f"run {self.method}/{self.run_name} [{self.profile}] has no {metric} error on {split}") from None

    def forward(self, split: str) -> float:
        return float(self.metric("forward", split)["mean"])

    def backward(self, split: str) -> float:
        return float(self.metric("backward", split)["mean"])

    def consistency(self, split: str) -> float:
        return float(self.metric("consistency", split)["mean"])

    def tune_error(self) -> float | None:
        """Forward error on tune_val (regressor fitted on tune_fit): the score settings are chosen
        by. None for records made before it was recorded, or without the face protocol."""
        value = self.get("metrics", {}).get("tune", {}).get("tune_val", {}).get("mean")
        return None if value is None else float(value)

    def tuning_score(self) -> tuple[str, float, bool] | None:
        """What a tuning sweep chooses this run's settings by: ``(name, value, higher_is_better)``.
        A landmark method's tune_val forward error (lower is better); a supervised pose core's
        PCK@0.2 on LSPET val, its own validation split (higher is better). None without either."""
        error = self.tune_error()
        if error is not None:
            return "tune_val forward (%)", error, False
        pck = self.get("metrics", {}).get(PCK_KEY, {}).get("pck")
        return None if pck is None else ("LSPET val PCK@0.2 (%)", 100 * float(pck), True)

    def few_shot(self, split: str) -> list[dict]:
        try:
            return self["metrics"]["few_shot"][split]
        except KeyError:
            raise KeyError(f"run {self.method}/{self.run_name} [{self.profile}] has no few-shot curve on {split}; "
                           "ask run_method for one with few_shot=...") from None

    @property
    def history(self) -> list[dict]:
        return self.get("history", [])

    def learning_curve(self) -> list[tuple[float, float]]:
        """(training minutes, forward error on test_mtfl) at each evaluation of the run."""
        return [(h["wall_time_s"] / 60, h[LEARNING_CURVE_KEY]) for h in self.history if LEARNING_CURVE_KEY in h]

    def snapshots(self) -> list[dict]:
        """History entries that carry landmarks of a few test faces (for the training scrubber)."""
        return [h for h in self.history if SNAPSHOT_KEY in h]
