"""Chapter 0: the supervised yardstick, a detector trained with MTFL-80's labels: its settings
per profile and its run."""
from __future__ import annotations

from ..config import deep_update
from .base import BookRun, Budget, Experiment, MethodSettings

_PAPER = {
    "method": {"num_landmarks": 5, "view_crop": 0.7, "view_size": 80, "widths": [20, 48, 64, 80, 256],
               "kernel_sizes": [5, 5, 3, 3, 3, 1],
               "augment": {"rotation_deg": 15.0, "log2_scale": 0.1, "translation": 0.03}},
    "train": {"steps": 20000, "batch_size": 32, "lr": 1e-3, "weight_decay": 5e-4, "lr_milestones": [15000],
              "checkpoint_every": 2000, "eval_every": 0, "log_every": 100},
}
# CPU: 2,000 steps (the committed reference's budget), channels-last weights (a step costs 0.75x the
# standard layout's on the 2-core machine)
_CPU = deep_update(_PAPER, {"method": {"view_size": 40},
                            "train": {"steps": 2000, "batch_size": 32, "lr_milestones": [1600], "checkpoint_every": 500,
                                      "channels_last": True}})
_SMOKE = deep_update(_CPU, {"method": {"view_size": 32},
                            "train": {"steps": 20, "batch_size": 8, "lr_milestones": [], "checkpoint_every": 10, "log_every": 5}})
PROFILE_CONFIGS = {"paper": _PAPER, "cpu": _CPU, "smoke": _SMOKE}
BUDGETS = {"smoke": Budget(eval_subsample=8)}

SETTINGS = {"supervised": MethodSettings("supervised", PROFILE_CONFIGS, BUDGETS)}

EXPERIMENT = Experiment("00_data_and_protocol", (
    BookRun("supervised (direct)", "supervised", "reference", None, chapter="00_data_and_protocol"),
))
