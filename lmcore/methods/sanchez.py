"""Sanchez & Tzimiropoulos 2019: object landmark discovery through unsupervised adaptation.

A landmark detector trained *with labels* on another category (the ``pose`` parent run, people)
is adapted to faces *without labels*, through Jakab et al.'s conditional image generation (§3):
the generator must render a mildly warped view of a face from the appearance of a more warped
view and the landmarks of the first, and the detector learns whatever landmarks make that
possible. Three modes, as the paper compares them:

* ``proposed``: every convolution of the frozen core carries a learnt C_out x C_out projection,
  initialised to the identity (:func:`lmcore.models.projected.make_adaptable`); the projections,
  batch norm and a new K-channel head are trained (~9% of the parameters at the paper's width);
* ``finetune``: the core's weights, all trainable, with a new head;
* ``scratch``: the same network randomly initialised (the core run is then unused).

The generator, the Gaussian bottleneck and the perceptual loss are those of :mod:`.jakab` (the
code's generator is an image-to-image network with residual blocks; this book reuses Jakab's so
that the three methods differ only in the detector). The frozen core comes from the parent run
named in ``config["parents"]["core"]``, trained (or reused) before this run.
"""
from __future__ import annotations

import copy

from torch import nn

from ..config import deep_update
from ..errors import ConfigError
from ..models.fan import FAN
from ..models.projected import fold_projections, make_adaptable
from ..config import Between, OneOf
from .base import Budget
from .jakab import BEFORE_AUDIT, BEFORE_AUDIT_CPU, BEFORE_AUDIT_PAPER, Jakab
from .jakab import PROFILE_CONFIGS as JAKAB_PROFILES

MODES = ("proposed", "finetune", "scratch")


def _profile(jakab: dict, view_size: int, core_width: int, core_overrides: dict) -> dict:
    # Jakab's generator, loss and warps as the book had them before the fidelity audit of the Jakab
    # chapter: the authors' Sanchez code has a generator of its own, which the Sanchez chapter takes up
    return deep_update(jakab, {
        "method": {"mode": "proposed", "projected": "all", "view_size": view_size, "core_width": core_width,
                   "core_depth": 4, "core_landmarks": 14, "temperature": 0.1},
        # step: adopt the core at one of its kept checkpoints (None: its final weights; Tables 4-5)
        "parents": {"core": {"method": "pose", "name": "core", "overrides": core_overrides, "step": None}},
    })


# Paper profile: 128 px, the paper's core width 256 and its adaptation optimiser (Adam, betas
# (0, 0.9), lr 1e-3, weight decay 5e-4, gradient clip 1).
_PAPER = deep_update(_profile(deep_update(JAKAB_PROFILES["paper"], BEFORE_AUDIT_PAPER), 128, 256, {}), {
    "train": {"betas": [0.0, 0.9], "weight_decay": 5e-4, "steps": 100000, "lr_milestones": [60000]},
})
# CPU: the Jakab chapter's generator at a 64 px view (a FAN of depth 4 needs multiples of 64), the
# core of the pose run's cpu profile (width 64); batches of 8 (a step of 16 costs 0.9 s on the 2-core
# machine: more, smaller steps learn more per CPU second) and 500 steps, so that the chapter's three
# modes, its core-quality runs and the shoes fit its 12 minutes
_CPU = deep_update(_profile(deep_update(JAKAB_PROFILES["cpu"], BEFORE_AUDIT_CPU), 64, 64, {}), {
    # lr 1e-3 as the paper's adaptation, whatever the Jakab cpu profile's rate
    "train": {"betas": [0.0, 0.9], "lr": 1e-3, "steps": 500, "batch_size": 8, "lr_milestones": [350], "checkpoint_every": 250,
              "eval_every": 250},
})
_SMOKE = deep_update(_profile(deep_update(JAKAB_PROFILES["smoke"], BEFORE_AUDIT), 64, 16, {}),
                     {"train": {"betas": [0.0, 0.9]}})
PROFILE_CONFIGS = {"paper": _PAPER, "cpu": _CPU, "smoke": _SMOKE}


def _generalisation(steps: int) -> dict:
    """§4.4 the other way round: a core trained with MTFL-80's face labels (``face_core``) adapted,
    without labels, to Fashion-MNIST footwear (grey, padded 28 -> 56 px; no landmark labels, so
    the chapter shows it qualitatively)."""
    return {"data": {"source": "fashion_footwear", "split": "train"},
            "method": {"view_crop": 1.0, "core_landmarks": 5},
            "parents": {"core": {"method": "face_core", "name": "face-core"}},
            "train": {"steps": steps, "eval_every": 0}}


# Variants: "core_steps", the kept checkpoints of the core run adapted in Tables 4-5 (each for the
# ablation length); "generalisation", the shoes run.
BUDGETS = {
    "smoke": Budget(eval_subsample=8, ablation_steps=8, variants={"core_steps": [6], "generalisation": _generalisation(8)}),
    "cpu": Budget(ablation_steps=150, ablation_train={"eval_every": 0},
                  variants={"core_steps": [1000, 3000], "generalisation": _generalisation(150)}),
    "paper": Budget(ablation_steps=20000, ablation_train={"eval_every": 0},
                    variants={"core_steps": [2000, 10000, 20000], "generalisation": _generalisation(20000)}),
}


def _rgb(images):
    """Grey images (Fashion-MNIST footwear, the generalisation case) as three equal channels: the
    core, the generator and the VGG16 of the perceptual loss all read RGB."""
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


class FANPose(nn.Module):
    """The detector as Jakab's generator expects its pose encoder: images -> (points, logits)."""

    def __init__(self, detector: nn.Module, temperature: float):
        super().__init__()
        self.detector = detector
        self.temperature = temperature

    def forward(self, images):
        from ..geometry import soft_argmax

        logits = self.detector(images)
        return soft_argmax(logits, self.temperature)[0], logits


class Sanchez(Jakab):
    """Jakab's conditional generator with a FAN detector adapted from a supervised core."""

    name = "sanchez"
    profiles = PROFILE_CONFIGS
    budgets = BUDGETS
    ranges = {**Jakab.ranges, "mode": OneOf(*MODES), "projected": OneOf("all", "3x3"), "core_width": Between(8, 1024),
              "core_depth": Between(1, 6), "core_landmarks": Between(1, 256), "temperature": Between(0, 100, above=True)}

    def __init__(self, config: dict):
        super().__init__(config)
        m = config["method"]
        # the structure of each mode, so that a checkpoint loads before (or without) the parent
        core = FAN(m["core_landmarks"], m["core_width"], m["core_depth"], m["temperature"])
        self.model.pose = FANPose(self._adapt(core), m["temperature"])

    @classmethod
    def check_config(cls, config: dict) -> None:
        super().check_config(config)
        m = config["method"]
        if m["view_size"] % (4 * 2 ** m["core_depth"]):
            raise ConfigError(f"setting 'method.view_size' must be a multiple of {4 * 2 ** m['core_depth']} for the "
                              f"FAN core, got {m['view_size']}")

    def _adapt(self, core: FAN) -> nn.Module:
        m = self.config["method"]
        if m["mode"] == "proposed":
            return make_adaptable(core, m["num_landmarks"], projected=m["projected"])
        if m["mode"] == "scratch":  # the same network, randomly initialised
            return FAN(m["num_landmarks"], m["core_width"], m["core_depth"], m["temperature"])
        detector = copy.deepcopy(core)
        detector.replace_head(m["num_landmarks"])
        return detector

    def views(self, images, generator, with_mask: bool = False):
        return super().views(_rgb(images), generator, with_mask)

    def to_view(self, images):
        return super().to_view(_rgb(images))

    def adopt_parents(self, parents: dict) -> None:
        """Build the detector from the trained core (``parents["core"]``, a ``pose`` run)."""
        core = parents["core"].core
        m = self.config["method"]
        if (core.width, core.depth, core.num_landmarks) != (m["core_width"], m["core_depth"], m["core_landmarks"]):
            raise ConfigError(f"the core run has width {core.width}, depth {core.depth}, {core.num_landmarks} maps; "
                              f"method.core_width/core_depth/core_landmarks say {m['core_width']}, {m['core_depth']}, "
                              f"{m['core_landmarks']}")
        if m["mode"] != "scratch":
            device = next(self.parameters()).device
            self.model.pose = FANPose(self._adapt(copy.deepcopy(core).cpu()), m["temperature"]).to(device)

    @property
    def detector(self) -> nn.Module:
        return self.model.pose.detector

    def folded_detector(self) -> nn.Module:
        """The detector with its projections folded into plain convolutions (same output; the
        evaluation then costs what the core costs)."""
        return fold_projections(self.detector) if self.config["method"]["mode"] == "proposed" else self.detector
