"""Zhang et al. 2018 against its released code (YutingZhang/lmdis-rep) and lmbook's profiles.

File:line references are to the repository's main branch at commit 2d3830e; ``-10.py`` and
``-30.py`` are ``exp-ae-celeba-mafl-10.py`` and ``exp-ae-celeba-mafl-30.py``, the released CelebA
configurations for K = 10 and K = 30.
"""
from __future__ import annotations

import math

from . import FidelityTable, Row

SQRT2 = math.sqrt(2.0)

ROWS = (
    # ---- the loss terms and their balance
    Row("concentration and separation over the two views",
        "per image (Eq. 5, 7); the paper does not say how the original and warped images combine",
        "one doubled batch (original + warped), each term averaged over it",
        "net_modules/auto_struct/keypoint_encoder.py:297-301, 321",
        lmbook="averaged over the two views", why="lmbook's earlier version added the two halves: 2x both terms"),
    Row("σ_det of the concentration loss", "σ²_det = mean of the two variances (Eq. 5-6)",
        "σ_det = mean of the two standard deviations",
        "keypoint_encoder.py:254-257 with net_modules/keypoints_2d.py:286",
        key="method.concentration_sigma", value="std",
        why="equal for round maps, up to 2x smaller for elongated ones"),
    Row("λ_conc", "100 (Table 7)", "100", "-10.py:57", key="method.lambda_conc", value=100.0),
    Row("λ_sep, K = 10", "16 (Table 7)", "20", "-10.py:32", key="method.lambda_sep", value=20.0),
    Row("σ_sep, K = 10", "0.06 (Table 7)", "0.08 (x 80/96 in the 96 px frame: 0.08 of the 80 px image)",
        "-10.py:31; keypoint_encoder.py:311", key="method.sigma_sep", value=0.08),
    Row("λ_sep, K = 30", "10 (Table 7)", "10", "-30.py:32", key="method.lambda_sep", value=10.0, variant="k30"),
    Row("σ_sep, K = 30", "0.04 (Table 7)", "0.04", "-30.py:31", key="method.sigma_sep", value=0.04, variant="k30"),
    Row("units of the equivariance term",
        "coordinates normalised by the image edge (Table 7 note)",
        "squared errors in [-1, 1] coordinates of the 96 px padded frame, divided by 80/96: 10/3 x the "
        "image-edge value", "keypoint_encoder.py:408-421", key="method.equivariance_units", value="code",
        why="in lmbook's earlier version the term was 0.30x the code's, so its λ_eqv = 10^4 acted like 3.3 x 10^3"),
    Row("λ_eqv", "10^4 (Table 7)", "10^4", "-10.py:15, 61", key="method.lambda_eqv", value=1e4),
    Row("reconstruction term", "Eq. 17: |I - Ĩ|² / σ²_color + ln 2πσ²_color, σ_color = 0.05",
        "0.5 |I - Ĩ|² (+ const): the options set stddev_lower_bound = 0.05, the distribution reads stddev, "
        "which is unset, so σ = 1", "model/options.py:36-43; nets/distribution/gaussian_fixedvar.py:15-18, 71-72; "
        "model/model.py:237", key="method.sigma_color", value=SQRT2,
        why="Eq. 17 with σ_color = √2 has the code's gradient. The code weights reconstruction "
            "~80x less than Eq. 17 with Table 7's λ (slope 0.05 against 4 per unit of squared error)"),
    Row("λ_recon, initial, K = 10", "0.01 (Table 7)", "0.1", "-10.py:17", key="method.lambda_recon", value=0.1),
    Row("λ_recon increases, K = 10", "x10 at 100k and 200k steps (App. G.3, Table 7)", "x10 at 100k, x100 at 200k",
        "-10.py:18-22", key="method.recon_increase_factors", value=[10.0, 100.0]),
    Row("λ_recon increase steps", "100k and 200k (Table 7)", "100k and 200k", "-10.py:18-22",
        key="method.recon_increase_steps", value=[100000, 200000]),
    Row("λ_recon increases, K = 30", "x10 at 100k and 200k steps, from 0.1", "x100 at 100k, x1000 at 200k, from 0.1",
        "-30.py:17-22", key="method.recon_increase_factors", value=[100.0, 1000.0], variant="k30"),
    # ---- optimisation
    Row("optimiser, learning rate, K = 10", "Adam 10^-3, then 10^-4 and 10^-5 (App. G.3)", "Adam 10^-3, x0.1 at 100k and 200k",
        "-10.py:24-29", key="train.lr", value=1e-3),
    Row("learning rate, K = 30", "10^-3 (App. G.3)", "10^-2, x0.1 at 100k and 200k", "-30.py:24-29",
        key="train.lr", value=1e-2, variant="k30"),
    Row("learning-rate decay steps", "100k and 200k (Table 7)", "100k and 200k", "-10.py:25-29",
        key="train.lr_milestones", value=[100000, 200000]),
    Row("learning-rate decay factor", "10^-3, then 10^-4 and 10^-5 (App. G.3)", "x0.1 at each step", "-10.py:24-29",
        key="train.lr_gamma", value=0.1),
    Row("batch size, K = 10", "16 or 32 (App. G.3)", "16", "-10.py:43", key="train.batch_size", value=16),
    Row("batch size, K = 30", "8 for 128 px images (App. G.3)", "8", "-30.py:43", key="train.batch_size", value=8,
        variant="k30"),
    Row("weight decay", "not stated", "10^-6 (L2 in the loss)", "-10.py:47; runner/train_pipeline_traindef.py:300-307",
        key="train.weight_decay", value=1e-6),
    Row("training length", "not stated", "2,000 epochs of CelebA (~20M steps): until stopped", "-10.py:46",
        follows="departure", key="train.steps", value=300000,
        why="300k steps, past the second decay; the cpu profile compresses the schedule"),
    # ---- warps of the equivariance constraint
    Row("warp: translation", "uniform ±0.15 (image edge = 1, App. G.3)",
        "uniform ±0.15 of the 96 px padded frame (±0.3 in [-1, 1]), i.e. ±0.18 of the 80 px image",
        "keypoint_encoder.py:163, 170-174", key="method.warp.translation", value=0.18),
    Row("warp: rotation", "N(0, 10°)", "N(0, 10°)", "keypoint_encoder.py:164, 175", key="method.warp.rotation_deg",
        value=10.0),
    Row("warp: scale", "log2-scale std 1.25 (App. G.3)", "exp(N(0, ln 1.25)): a log2 std of 0.32",
        "keypoint_encoder.py:165, 169, 176", key="method.warp.log2_scale", value=math.log(1.25) / math.log(2),
        why="the paper's 1.25 is the code's scale factor, not a log2 std (lmbook's earlier version used 0.1)"),
    Row("warp: TPS control grid", "a regular grid (size not given)",
        "7 x 7 points at the cell centres of the 96 px frame (±6/7 of it)", "keypoint_encoder.py:126; "
        "net_modules/tps_stn.py:154-170", key="method.warp.tps_grid", value=7),
    Row("warp: TPS grid extent", "-", "±6/7 of the 96 px frame = ±1.03 of the 80 px image (normalised)",
        "net_modules/tps_stn.py:154-170", key="method.warp.tps_extent", value=6 / 7 * 96 / 80),
    Row("warp: TPS jitter", "Gaussian, std 0.1 (image edge = 1)",
        "std 0.1 in [-1, 1] units of the 96 px frame: 0.06 of the 80 px image", "keypoint_encoder.py:127-128",
        key="method.warp.tps_std", value=0.06,
        why="lmbook's earlier version read 0.1 as edge units, judged it folding, and used 0.02 on 5 x 5"),
    Row("warp: how the TPS is evaluated", "a thin-plate spline through the jittered points",
        "solved with d² log d², evaluated with d² log d: half the non-affine part, so it misses its own "
        "control points", "net_modules/tps_stn.py:225-239 (solve, the kernel at 228) against 102-103 (evaluate)",
        key="method.warp.tps_bend", value=0.5,
        why="reproduced because it trained the published models; lmbook measures the code's warps: "
            "non-affine displacement 0.032 of the image edge RMS, 8 % of warps fold somewhere in the image"),
    Row("warp: the TPS's frame", "-", "solved and evaluated in [-1, 1] units of the 96 px padded frame",
        "generic_structure_encoder.py:75, 91; keypoint_encoder.py:125-134; net_modules/tps_stn.py:154-170, 225-239",
        follows="departure",
        lmbook="the same grid and jitter in units of the 80 px view (x 96/80), solved there",
        why="a spline evaluated with half its kernel depends on the frame it is solved in: each warp gains a "
            "constant shift, RMS 0.014 of the image edge (1.1 px of 80, 2.5 px at the 99th percentile); lmcore's "
            "warp code (lmcore.geometry.random_tps) solves every spline in the view's units"),
    Row("warp: the similarity's direction", "-",
        "the image is sampled at the drawn similarity [sR | t] of each output position",
        "keypoint_encoder.py:172-205; net_modules/spatial_transformer.py:127-142", follows="departure",
        lmbook="sampled at the inverse of the similarity drawn (lmcore.geometry.AffineWarp.similarity)",
        why="rotation and log-scale are drawn symmetric, so their distributions are the code's; the translation is "
            "divided by the drawn scale: its RMS is 5 % larger (the root of E[1/s²] = exp(2 ln² 1.25))"),
    Row("warp: order of the TPS and the similarity", "-",
        "the image is sampled through TPS ∘ similarity", "keypoint_encoder.py:130-134, 203-205",
        follows="departure", lmbook="sampled through similarity ∘ TPS (lmcore.geometry.random_tps)",
        why="the same distributions applied in the other order; the frame the TPS jitter is drawn in differs "
            "by the similarity's scale (std 25 %)"),
    Row("landmark-anchored TPS control points", "7:3 grid:landmark after several thousand steps (App. F.3)",
        "switched off: use_lm_tps is set to all False", "keypoint_encoder.py:153-154",
        key="method.landmark_control_fraction", value=0.0, why="Table 5 still trains the ratios as an ablation"),
    Row("landmark control jitter", "std 0.05", "0.05 in [-1, 1] units of the 96 px frame: 0.03 of the image",
        "keypoint_encoder.py:108", key="method.landmark_control_std", value=0.03),
    Row("input padding", "80 → 96 px with edge values (App. G.1, Table 6)",
        "80 → 96 px, padded with edge means; the detector sees 96 px",
        "net_modules/auto_struct/generic_structure_encoder.py:203-240; nets/encoder/general_80x80.py:59-60",
        follows="departure", lmbook="none: the 80 px view is a crop of MTFL-80's larger frame",
        why="warps show the real face context around the view instead of padding"),
    Row("colour jitter", "random brightness and contrast (App. G.3)", "brightness ±32/255, contrast x[0.5, 1.5]",
        "runner/train_pipeline_traindef.py:209-217", key="method.contrast", value=0.5),
    Row("colour jitter: brightness", "random", "±32/255", "runner/train_pipeline_traindef.py:213",
        key="method.brightness", value=32 / 255),
    # ---- architecture
    Row("detector hourglass", "Fig. 40 (widths not in the text); skip links of 3 convolutions",
        "32, 32 | 64, 64 | 64, 64 | 64, 64 channels, 3 poolings, skip links of 3 convolutions; the decoder mirrors "
        "each convolution with a 3x3 transposed one after the skip link is added, the last giving the K + 1 maps",
        "nets/encoder/general_80x80.py:63-80; net_modules/hourglass.py:161-215", follows="departure",
        key="method.detector_net", value={"width": 32, "max_width": 64, "depth": 3, "block_convs": 2, "skip_convs": 3},
        why="the code's widths, poolings and skip links (the key), in lmcore's layout, which repeats one block "
            "shape per level: one 5x5 convolution at full resolution where the code has two 3x3; the decoder's "
            "convolutions before each skip link is added, not after; a 1x1 output convolution, not a 3x3 "
            "transposed one"),
    Row("descriptor hourglass", "Fig. 40; S = 32 in its caption", "32, 64 | 128 | 256 | 512 channels, 3 poolings, "
        "64 output channels (S)", "nets/encoder/general_80x80.py:98-110", key="method.feature_net",
        value={"width": 64, "max_width": 512, "depth": 3, "block_convs": 1, "skip_convs": 2}),
    Row("shared feature channels S", "32 (Fig. 40 caption)", "64 (encoder output and decoder's unpooled features)",
        "nets/encoder/general_80x80.py:99; nets/decoder/general_80x80.py:43-44", key="method.feature_channels",
        value=64),
    Row("decoder hourglass", "Fig. 40", "64, 64 | 128 | 256 | 512 | 512 channels, 4 poolings",
        "nets/decoder/general_80x80.py:48-64", key="method.decoder_net",
        value={"width": 64, "max_width": 512, "depth": 4, "block_convs": 1, "skip_convs": 2}),
    Row("descriptor size C", "8 (Table 7)", "8", "-10.py:13", key="method.descriptor_dim", value=8),
    Row("descriptor pooling", "under the Gaussian fit D̄_k of each map (Eq. 6, 10)", "under the detection map D_k itself",
        "net_modules/auto_struct/generic_encoder.py:76-84", key="method.descriptor_pooling", value="detection"),
    Row("decoder σ_dec", "several values, not given (§3.4)", "(1/8)·√2^i for i = 0..4: 0.125 to 0.5 of the image edge",
        "-10.py:14, 62-63; net_modules/auto_struct/keypoint_decoder.py:86-98; keypoints_2d.py:11",
        key="method.decoder_sigmas", value=[0.125 * 2 ** (i / 2) for i in range(5)],
        why="lmbook's earlier version chose 0.02, 0.05, 0.1"),
    Row("decoder maps' normaliser", "the density N(·; σ²_dec) against a background of 1 (Eq. 11-12)",
        "exp(·) / (2π σ⁴ (HW)²) against a background of 1/(HW): the landmark channels carry 1/(σ² HW) of Eq. 11's",
        "net_modules/keypoints_2d.py:157-158; keypoint_decoder.py:77-83", key="method.decoder_maps", value="code",
        why="kept at the code's 80 x 80 whatever the view (lmcore.models.landmark_autoencoder)"),
    Row("image output", "1x1 convolution, then a sigmoid (App. G.2)",
        "the hourglass's last (transposed 3x3) layer, linear, then a sigmoid",
        "nets/decoder/general_80x80.py:50; nets/distribution/gaussian_fixedvar_in_01.py:26-28",
        follows="departure", lmbook="1x1 convolution, then a sigmoid", why="the paper's; a minor difference"),
    Row("batch-norm statistics", "recomputed on a training subset after training (App. G.3)",
        "moving averages, update rate 0.0003", "nets/encoder/general_80x80.py:42-49",
        follows="departure", lmbook="PyTorch running averages (momentum 0.1)",
        why="not reproduced; evaluation uses the running averages"),
    Row("axis-balancing loss", "-", "weight 200 in the config, never read by any module", "-10.py:58",
        lmbook="none"),
    # ---- data
    Row("training data", "CelebA minus MAFL test, 161,962 faces, 100 → 80 px centre crop (App. G.1)",
        "the same (nets/data/celeba_mafl_100x100_80x80.py)", "nets/data/celeba_mafl_100x100_80x80.py",
        follows="departure", lmbook="MTFL-80's 9,043 unsup_train faces, a central 0.7 view of the 80 px frame",
        why="the book's embedded data (chapter 0)"),
)

TABLE = FidelityTable("zhang", ROWS, repository="YutingZhang/lmdis-rep", commit="2d3830e")
