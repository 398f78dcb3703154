"""Chapter 2, Zhang et al. 2018: the method's settings per profile, the chapter's budgets (K = 30,
MNIST, the TPS ratios, the tuning sweep) and its headline runs (K = 10 and K = 30, the profile's
K = 30 settings as budget variant ``k30``; few-shot sizes of its Fig. 6).

The ``paper`` profile is the authors' released configuration (YutingZhang/lmdis-rep,
``exp-ae-celeba-mafl-10.py`` / ``-30.py``): where that code and the paper's text disagree, the code
produced the published numbers. Each departure, from the paper or from the code, is a row of the
chapter's fidelity table (:mod:`lmcore.experiments.fidelity.zhang`), which a test checks against these configs.
"""
from __future__ import annotations

import math

from ..config import deep_update
from .base import BookRun, Budget, Claim, Experiment, MethodSettings

#: the released code's 80 px input is edge-padded to 96 px and warped there: lengths of that frame
#: in units of the 80 px image (the view here) are multiplied by this
CODE_FRAME = 96 / 80
#: the released code's random warp (keypoint_encoder.py:126-176), in this book's units: similarity
#: with translation uniform in +-0.15 of the 96 px frame, rotation N(0, 10 deg), scale exp(N(0, ln 1.25))
#: (a log2 std of 0.32); TPS on a 7 x 7 grid of cell centres (+-6/7 of that frame) jittered with
#: std 0.1 in [-1, 1] units of it, evaluated with half the kernel it is solved with (tps_stn.py:103
#: against :228)
CODE_WARP = {"rotation_deg": 10.0, "log2_scale": math.log(1.25) / math.log(2), "translation": 0.15 * CODE_FRAME,
             "tps_grid": 7, "tps_std": 0.05 * CODE_FRAME, "tps_extent": 6 / 7 * CODE_FRAME, "tps_bend": 0.5,
             "distribution": "normal"}
#: the released code's hourglasses (nets/encoder/general_80x80.py:63-80 and :98-110,
#: nets/decoder/general_80x80.py:48-64) as Hourglass shapes
CODE_NETS = {"detector_net": {"width": 32, "max_width": 64, "depth": 3, "block_convs": 2, "skip_convs": 3},
             "feature_net": {"width": 64, "max_width": 512, "depth": 3, "block_convs": 1, "skip_convs": 2},
             "decoder_net": {"width": 64, "max_width": 512, "depth": 4, "block_convs": 1, "skip_convs": 2}}

# Paper profile: the released K = 10 configuration at 80 x 80 (exp-ae-celeba-mafl-10.py), Adam 1e-3
# decayed x0.1 at 100k and 200k steps, batch 16.
_PAPER = {
    "method": {
        "num_landmarks": 10,
        "view_crop": 0.7,
        "view_size": 80,
        **CODE_NETS,
        "image_channels": 3,
        "feature_channels": 64, "descriptor_dim": 8,
        # sigma_dec = 1/8 * sqrt(2)^i over 5 levels (keypoint_decoder.py:86-99), edge units
        "decoder_sigmas": [0.125 * 2 ** (i / 2) for i in range(5)],
        "decoder_maps": "code",
        "descriptor_pooling": "detection",
        "with_descriptors": True,
        # lambda_recon 0.1, x10 at 100k and x100 at 200k (Table 7 says 0.01 for K = 10)
        "lambda_recon": 0.1, "recon_increase_steps": [100000, 200000], "recon_increase_factors": [10.0, 100.0],
        "lambda_conc": 100.0, "concentration_sigma": "std",
        "lambda_sep": 20.0, "sigma_sep": 0.08,  # Table 7: 16 and 0.06
        "lambda_eqv": 1e4, "equivariance_units": "code",
        "sigma_color": math.sqrt(2.0),  # the code's NLL with stddev 1 (see losses.zhang.reconstruction_loss)
        "warp": dict(CODE_WARP),
        "landmark_control_fraction": 0.0,  # App. F.3's landmark control points: off in the code (keypoint_encoder.py:154)
        "landmark_control_std": 0.025 * CODE_FRAME,  # 0.05 in [-1, 1] units of the 96 px frame
        "landmark_control_after": 5000,
        "brightness": 32 / 255, "contrast": 0.5,  # train_pipeline_traindef.py:213-216
    },
    "train": {"steps": 300000, "batch_size": 16, "lr": 1e-3, "lr_milestones": [100000, 200000], "weight_decay": 1e-6,
              "checkpoint_every": 5000, "eval_every": 5000, "log_every": 200, "keep_every": 50000},
}
# CPU profile: 40 px view, hourglasses of one convolution per block and 16 channels, the schedule
# compressed to 2,000 steps (the committed references' budget); the loss
# balance, warps and decoder of the book before the audit, which scored lower on tune_val than the
# released code's at this budget, K = 10 and K = 30 (results/tuning/zhang/, the chapter's table).
# CPU: the standard memory layout (channels-last, which speeds up the other methods' steps, makes
# this one 1.09x slower on the 2-core machine: `python -m lmcore.bench --options`, 2026-11-24)
_CPU_NET = {"width": 16, "max_width": 64, "depth": 3, "block_convs": 1, "skip_convs": 1}
# the balance of the book before the fidelity audit: Table 7's weights with the two views' terms
# added (here: the weights doubled over their mean), the paper's Eq. 5 and units, sigma_color 0.05,
# milder warps with landmark control points, the paper's descriptor pooling and decoder maps
BEFORE_AUDIT = {
    "decoder_sigmas": [0.02, 0.05, 0.1], "decoder_maps": "density", "descriptor_pooling": "gaussian",
    "lambda_recon": 0.01, "lambda_conc": 200.0, "concentration_sigma": "variance", "lambda_sep": 32.0,
    "sigma_sep": 0.06, "equivariance_units": "edge", "sigma_color": 0.05,
    "warp": {"rotation_deg": 10.0, "log2_scale": 0.1, "translation": 0.15, "tps_grid": 5, "tps_std": 0.02,
             "tps_extent": 1.0, "tps_bend": 1.0, "distribution": "normal"},
    "landmark_control_fraction": 0.3, "landmark_control_std": 0.05, "brightness": 0.1, "contrast": 0.1,
}
#: the released code's values of the settings above
CODE_BALANCE = {k: _PAPER["method"][k] for k in BEFORE_AUDIT}
_CPU = deep_update(_PAPER, {
    "method": {"view_size": 40, "detector_net": _CPU_NET, "feature_net": _CPU_NET, "decoder_net": _CPU_NET,
               "feature_channels": 32, "recon_increase_steps": [700, 1400], "landmark_control_after": 500,
               **BEFORE_AUDIT},
    "train": {"steps": 2000, "batch_size": 16, "lr_milestones": [1400], "checkpoint_every": 250,
              "eval_every": 250, "log_every": 50, "keep_every": 250},
})
_SMOKE_NET = {"width": 8, "max_width": 16, "depth": 3, "block_convs": 1, "skip_convs": 1}
_SMOKE = deep_update(_CPU, {
    "method": {"view_size": 32, "detector_net": _SMOKE_NET, "feature_net": _SMOKE_NET, "decoder_net": _SMOKE_NET,
               "recon_increase_steps": [10, 20], "landmark_control_after": 5},
    "train": {"steps": 24, "batch_size": 8, "lr_milestones": [], "checkpoint_every": 12, "eval_every": 12,
              "log_every": 4, "keep_every": 12},
})
PROFILE_CONFIGS = {"paper": _PAPER, "cpu": _CPU, "smoke": _SMOKE}

# K = 30 as released (exp-ae-celeba-mafl-30.py): separation 10 / 0.04, reconstruction raised x100 and
# x1000, Adam 1e-2, batch 8 (Table 7: lambda_recon 0.1 raised x10 twice, Adam 1e-3)
K30_CODE = {"method": {"num_landmarks": 30, "sigma_sep": 0.04, "lambda_sep": 10.0,
                       "recon_increase_factors": [100.0, 1000.0]},
            "train": {"lr": 1e-2, "batch_size": 8}}
# K = 30 in the book's balance before the audit: Table 7's separation 10 / 0.04 (here 20 over the two
# views' mean), lambda_recon 0.1 raised x10 twice; batches of 16 like K = 10 (chosen on tune_val
# before the audit: 12.01 against 12.57 in batches of 8), Adam 1e-3
K30_BEFORE_AUDIT = {"method": {"num_landmarks": 30, "sigma_sep": 0.04, "lambda_sep": 20.0, "lambda_recon": 0.1,
                               "recon_increase_factors": [10.0, 100.0]},
                    "train": {"batch_size": 16, "lr": 1e-3}}
# Appendix B: seven landmarks on MNIST digits (padded 28 -> 56) without descriptors
_MNIST = {"data": {"source": "mnist", "split": "train"},
          "method": {"num_landmarks": 7, "image_channels": 1, "with_descriptors": False, "view_crop": 1.0,
                     "brightness": 0.0, "contrast": 0.0, "sigma_sep": 0.08, "lambda_sep": 20.0,
                     "decoder_sigmas": [0.04, 0.08]},
          "train": {"resolution": 56, "eval_every": 0}}

BUDGETS = {
    "smoke": Budget(eval_subsample=8, variants={
        "k30": deep_update(K30_BEFORE_AUDIT, {"train": {"batch_size": 8}}),
        "tuning": {"the code's balance": {"method": CODE_BALANCE}},
        "mnist": deep_update(_MNIST, {"method": {"view_size": 24}, "train": {"steps": 12}}),
        "tps_ratios": {"10:0": 0.0, "7:3": 0.3, "5:5": 0.5, "1:9": 0.9}}),
    "cpu": Budget(ablation_steps=250, ablation_train={"batch_size": 8, "eval_every": 0}, tuning_steps=1000, variants={
        "k30": K30_BEFORE_AUDIT,
        "tuning": {},  # filled below
        "mnist": deep_update(_MNIST, {"method": {"view_size": 32}, "train": {"steps": 300}}),
        "tps_ratios": {"10:0": 0.0, "7:3": 0.3, "5:5": 0.5}}),
    "paper": Budget(variants={
        "k30": K30_CODE,
        # no MNIST configuration was released: the code's 80 px decoder has 4 pooling levels, 56 px takes 3
        "mnist": deep_update(_MNIST, {"method": {"view_size": 56, "decoder_net": {"depth": 3}},
                                      "train": {"steps": 30000}}),
        "tps_ratios": {"10:0": 0.0, "7:3": 0.3, "5:5": 0.5, "1:9": 0.9}}),
}
# The cpu profile's loss balance, warps and decoder: the released code's against the book's before
# the audit (the cpu profile), and the code's with its warps or its decoder put back to the earlier
# ones, compared on tune_val by tools/tune_settings.py zhang at the chapter's budget (1,000 steps),
# K = 10 and K = 30 (records in results/tuning/zhang/). The earlier balance scored lowest for both.
_K30_CODE_CPU = deep_update({"method": CODE_BALANCE}, deep_update(K30_CODE, {"train": {"batch_size": 16, "lr": 1e-3}}))
BUDGETS["cpu"].variants["tuning"].update({
    "K = 10, the code's balance": {"method": CODE_BALANCE},
    "K = 10, before the audit": {},
    "K = 10, the code's balance, earlier warps": {"method": {**CODE_BALANCE, "warp": BEFORE_AUDIT["warp"]}},
    "K = 10, the code's balance, earlier decoder": {"method": {**CODE_BALANCE, **{
        k: BEFORE_AUDIT[k] for k in ("decoder_sigmas", "decoder_maps", "descriptor_pooling")}}},
    "K = 30, the code's balance, Adam 1e-3": _K30_CODE_CPU,
    "K = 30, the code's balance, Adam 1e-2 (as released)": deep_update(_K30_CODE_CPU, {"train": {"lr": 1e-2}}),
    "K = 30, before the audit": K30_BEFORE_AUDIT,
})

SETTINGS = {"zhang": MethodSettings("zhang", PROFILE_CONFIGS, BUDGETS)}

EXPERIMENT = Experiment("02_zhang", (
    BookRun("Zhang", "zhang", "k10", 10, chapter="02_zhang"),
    BookRun("Zhang", "zhang", "k30", 30, variant="k30", chapter="02_zhang"),
), few_shot={"sizes": [1, 5, 10, 50, 100, 500, 1000, None], "repeats": 10}, claims=(
    Claim("30 landmarks give a lower error than 10", ("zhang/k30",), ("zhang/k10",),
          "Table 1"),
    Claim("the released code's loss balance beats the book's (its tune_val choice at 1,000 steps)",
          ("zhang/k10-code-balance-0",), ("zhang/k10",), "the book's own question: the code made the published numbers"),
))
