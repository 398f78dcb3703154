"""Chapter 3, Jakab et al. 2018: the method's settings per profile, the chapter's budgets and its
tuning sweep, and its headline runs (K = 10 and K = 30, the face chapters' few-shot sizes; C3's
chapter evaluates the same runs as its baselines).

The ``paper`` profile is the authors' released configuration (tomasjakab/imm,
``configs/experiments/celeba-10pts.yaml`` with the CelebA dataset's defaults): where that code and
the paper's text disagree, the code produced the published numbers. Each departure, from the paper
or from the code, is a row of the chapter's fidelity table (:mod:`lmcore.experiments.fidelity.jakab`), which a
test checks against these configs.
"""
from __future__ import annotations

import math

from ..config import deep_update
from .base import FACE_FEW_SHOT, BookRun, Budget, Claim, Experiment, MethodSettings, num_landmarks

#: the released code's warps (imm/datasets/tps_dataset.py:19-21, 34-40 and
#: imm/utils/tps_sampler.py:168-189), in this book's units: a 10 x 10 grid of kernel weights drawn
#: directly (std 0.001, plus 0.005 / 0.01 on a random half), translation N(0, 0.1) per axis in
#: [-1, 1] units (0.05 of the edge); the source adds rotation N(0, 5 deg) and scale 1 + N(0, 0.1)
#: (here 2^N(0, 0.1 / ln 2), equal to first order), and is warped from the target
CODE_TARGET_WARP = {"rotation_deg": 0.0, "log2_scale": 0.0, "translation": 0.05, "translation_distribution": "normal",
                    "tps_kind": "kernel", "tps_grid": 10, "tps_std": 0.001, "tps_sparse_std": 0.005,
                    "distribution": "normal"}
CODE_SOURCE_WARP = {**CODE_TARGET_WARP, "rotation_deg": 5.0, "log2_scale": 0.1 / math.log(2), "tps_sparse_std": 0.01}
#: the released code's perceptual normalisers' starting values (imm_model.py:131): the pixel term's
#: 100 is for [0, 255] pixels, here [0, 1]
CODE_NORMALISERS = [100 / 255**2, 1.6, 2.3, 1.8, 2.8, 100.0]
#: the released code's batch norm, TensorFlow's defaults (nn_utils.py:201-202): decay 0.99, i.e. a
#: momentum of 0.01 in PyTorch's convention, and eps 1e-3; PyTorch's own are 0.1 and 1e-5
CODE_BATCH_NORM = {"batch_norm_momentum": 0.01, "batch_norm_eps": 1e-3}
TORCH_BATCH_NORM = {"batch_norm_momentum": 0.1, "batch_norm_eps": 1e-5}

# Paper profile: the released CelebA configuration at 128 px (celeba-10pts.yaml): maps of std 0.1
# in the code's form and on its linspace(-1, 1) grid fed at 16 x 16 only, a linear output,
# TensorFlow's batch-norm settings (decay 0.99, eps 1e-3), the perceptual loss on the input and
# conv1_2 ... conv5_2 (after their ReLU) with squared errors, the code's normalisers, x1000 and its
# border mask, Adam 1e-3 x0.95 every 100k steps, batch 50, each gradient tensor clipped at norm 1,
# weight decay 1e-5 on convolution kernels.
_PAPER = {
    "method": {
        "num_landmarks": 10,
        "view_crop": 0.8,  # the code: 160 px resize, 128 px centre crop
        "view_size": 128,
        "width": 32, "downsamples": 3, "max_width": 256,
        "gaussian_std": 0.1, "map_form": "code", "maps_at": "bottleneck", "upsampling": "bilinear",
        "output": "linear", "map_grid": "linspace", **CODE_BATCH_NORM,
        "loss": "perceptual",  # or "pixel" (the chapter's ablation)
        "vgg_layers": ["relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"],
        "perceptual_distance": "l2", "normaliser_init": list(CODE_NORMALISERS), "loss_scale": 1000.0,
        "vgg_input": "gray", "border_mask": True,
        "target_warp": dict(CODE_TARGET_WARP), "source_warp": dict(CODE_SOURCE_WARP), "pair_warps": "code",
    },
    "train": {"steps": 100000, "batch_size": 50, "lr": 1e-3, "lr_gamma": 0.95, "lr_milestones": [],
              "grad_clip": 1.0, "grad_clip_mode": "per_tensor", "weight_decay": 1e-5, "weight_decay_on": "conv_weights",
              "checkpoint_every": 2000, "eval_every": 2000, "log_every": 100},
}
# CPU profile: 32 px view in batches of 32 (chosen on tune_val over 48 px in batches of 16, at the
# same cost per step), Adam 1e-3, narrow networks, the perceptual loss on the first two VGG16
# blocks; 1,000 steps so that the chapter fits its share of the book's CPU budget. Of the released
# code's settings it keeps the perceptual loss, the optimisation and the output, and takes the book's
# earlier bottleneck and warps: the setting of TUNING with the lowest tune_val error (its margin over
# the earlier settings is inside the spread of two runs of one config). Weights in channels-last
# layout: a step costs about 0.8x the standard layout's on the 2-core machine (`python -m lmcore.bench
# --options`, 2026-11-24). The maps' grid (pixel centres) and the batch norm (PyTorch's) are the
# book's earlier ones, which every row of TUNING below was measured with.
_CPU_CODE = deep_update(_PAPER, {
    "method": {"view_crop": 0.75, "view_size": 32, "width": 16, "downsamples": 2, "max_width": 64,
               "vgg_layers": ["relu1_2", "relu2_2"], "normaliser_init": CODE_NORMALISERS[:3],
               "map_grid": "centres", **TORCH_BATCH_NORM},
    "train": {"steps": 3000, "batch_size": 32, "checkpoint_every": 250, "eval_every": 250, "log_every": 50,
              "channels_last": True},
})
#: K = 30 trains 2,000 steps in the cpu profile (its committed reference's budget; C3's K = 30 starts from it)
K30_CPU = {"method": {"num_landmarks": 30}, "train": {"steps": 2000}}
#: the parts of the released code's configuration the sweep below swaps for the book's earlier ones
CODE_BOTTLENECK = {"map_form": "code", "maps_at": "bottleneck"}
CODE_WARPS = {"target_warp": dict(CODE_TARGET_WARP), "source_warp": dict(CODE_SOURCE_WARP), "pair_warps": "code"}
PERCEPTUAL_KEYS = ("perceptual_distance", "normaliser_init", "loss_scale", "vgg_input", "border_mask")

# The book's generator, loss, warps and optimisation before the fidelity audit (issue 31): maps
# exp(-d^2 / 2 std^2) on pixel centres at every decoder scale, nearest upsampling, a sigmoid,
# PyTorch's batch norm; L1 perceptual terms on relu*_3 layers normalised from the first batch, RGB,
# no mask; similarity + fitted 5 x 5 TPS warps drawn uniformly, both views from the original; a
# global clip, no weight decay, x0.1 at 70 %.
BEFORE_AUDIT = {
    "method": {"map_form": "sigma", "map_grid": "centres", **TORCH_BATCH_NORM, "maps_at": "all",
               "upsampling": "nearest", "output": "sigmoid",
               "perceptual_distance": "l1", "normaliser_init": [], "loss_scale": 1.0, "vgg_input": "rgb",
               "border_mask": False, "pair_warps": "independent",
               "target_warp": {"rotation_deg": 5.0, "log2_scale": 0.05, "translation": 0.03, "tps_grid": 5,
                               "tps_std": 0.01, "tps_kind": "spline", "tps_sparse_std": 0.0, "distribution": "uniform",
                               "translation_distribution": "uniform"},
               "source_warp": {"rotation_deg": 5.0, "log2_scale": 0.1, "translation": 0.1, "tps_grid": 5,
                               "tps_std": 0.02, "tps_kind": "spline", "tps_sparse_std": 0.0, "distribution": "uniform",
                               "translation_distribution": "uniform"}},
    "train": {"lr_gamma": 0.1, "grad_clip_mode": "global", "weight_decay": 0.0, "weight_decay_on": "all"},
}
#: the earlier paper profile's layers (relu*_3; the code's are conv*_2) and its batch (32; the code's 50)
BEFORE_AUDIT_PAPER = deep_update(BEFORE_AUDIT, {"method": {"vgg_layers": ["relu1_2", "relu2_2", "relu3_3", "relu4_3",
                                                                         "relu5_3"]},
                                               "train": {"batch_size": 32, "lr_milestones": [70000]}})
BEFORE_AUDIT_CPU = deep_update(BEFORE_AUDIT, {"train": {"lr_milestones": [700]}})
EARLIER_BOTTLENECK_AND_WARPS = {"method": {k: BEFORE_AUDIT["method"][k] for k in (
    "map_form", "maps_at", "target_warp", "source_warp", "pair_warps")}}
_CPU = deep_update(_CPU_CODE, EARLIER_BOTTLENECK_AND_WARPS)
_SMOKE = deep_update(_CPU, {
    "method": {"view_size": 32, "width": 8, "max_width": 16},
    "train": {"steps": 16, "batch_size": 4, "checkpoint_every": 8, "eval_every": 8, "log_every": 4},
})
PROFILE_CONFIGS = {"paper": _PAPER, "cpu": _CPU, "smoke": _SMOKE}
# The cpu profile's generator, loss, warps and optimisation: the released code's against the book's
# before the audit and against the code's with one part the earlier one, compared on tune_val at the
# chapter's budget by tools/tune_settings.py; then the two combinations those rows pointed to. Rows
# are overrides of the cpu profile (the last but one). Records in results/tuning/jakab/
_CODE = {"method": {**CODE_BOTTLENECK, **CODE_WARPS}}
TUNING = {
    "the code's settings": _CODE,
    "before the audit": BEFORE_AUDIT_CPU,
    "the code's, earlier bottleneck": {"method": CODE_WARPS},
    "the code's, earlier perceptual loss": deep_update(_CODE, {"method": {
        k: BEFORE_AUDIT["method"][k] for k in PERCEPTUAL_KEYS}}),
    "the code's, earlier warps": {"method": CODE_BOTTLENECK},
    "the code's, earlier optimisation": deep_update(_CODE, deep_update(
        {"train": BEFORE_AUDIT_CPU["train"]}, {"method": {"output": "sigmoid", "upsampling": "nearest"}})),
    # after the rows above (the earlier bottleneck and warps each did better with the code's other
    # settings, the earlier perceptual loss worse), the two combinations they point to; the first
    # scored lowest and is the cpu profile
    "the code's perceptual loss, earlier bottleneck and warps": {},
    "before the audit, with the code's perceptual loss": deep_update(BEFORE_AUDIT_CPU, {"method": {
        k: _CPU["method"][k] for k in PERCEPTUAL_KEYS}}),
}

BUDGETS = {
    "smoke": Budget(eval_subsample=8, variants={"tuning": {"before the audit": BEFORE_AUDIT}}),
    # ablations: perceptual vs pixel, 250 steps each
    "cpu": Budget(ablation_steps=250, ablation_train={"eval_every": 0}, tuning_steps=1000,
                  variants={"tuning": TUNING, "k30": K30_CPU}),
    "paper": Budget(),
}

SETTINGS = {"jakab": MethodSettings("jakab", PROFILE_CONFIGS, BUDGETS)}

EXPERIMENT = Experiment("03_jakab", (
    BookRun("Jakab", "jakab", "k10", 10, num_landmarks(10), chapter="03_jakab"),
    BookRun("Jakab", "jakab", "k30", 30, num_landmarks(30), variant="k30", chapter="03_jakab"),
), few_shot=FACE_FEW_SHOT, claims=(
    Claim("conditional image generation beats Zhang et al.'s autoencoder (10 landmarks)", ("jakab/k10",),
          ("zhang/k10",), "Table 1 (with Zhang et al.'s numbers)"),
    Claim("30 landmarks give a lower error than 10", ("jakab/k30",), ("jakab/k10",), "Table 1"),
))
