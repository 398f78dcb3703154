"""Xu et al. 2020 (C3) against lmbook's profiles. No code was released (the authors' repository holds
a README saying "coming soon"): the ``paper`` profile follows the paper, chooses where it is silent,
and inherits Jakab et al.'s generator, loss and warps from the Jakab chapter, as the paper's
pre-training "as in [Jakab et al.]" does; those rows follow Jakab's released code (tomasjakab/imm,
commit 0fee6b2), like the Jakab chapter's ``paper`` profile.
"""
from __future__ import annotations

from . import FidelityTable, Row

IMM = "tomasjakab/imm "

ROWS = (
    # ---- what C3 adds
    Row("backbone N of the flow module", "ResNet-50 (ImageNet); its last stages give f and f'", None,
        follows="departure", lmbook="frozen ImageNet VGG16, relu4_3 (cpu: relu3_3), in the c3_flow run",
        why="ResNet-50's ImageNet weights cannot be fetched on these machines; frozen ImageNet VGG16 "
            "(sha256-pinned) stands in, and flow_backbone = resnet50 runs where a user has torchvision's file"),
    Row("E_p, E_a, D", "E_a: two 3x3 convolutions to 256 channels on N's features; E_p: the same and a 1x1 to K; "
        "the decoder of App. A", None, follows="departure",
        lmbook="Jakab's pose encoder, appearance encoder and generator, each with its own trunk",
        why="a Jakab run is then the appendix's pre-training of E_p, E_a, D (parents.pairs)"),
    Row("pre-training of E_p, E_a, D", "on paired data, as Jakab et al.", None, follows="paper",
        lmbook="the Jakab chapter's run (parents.pairs)"),
    Row("flow module", "NC-Net: 4D correlation filtered by 4D convolutions (Eq. 3)", None, follows="choice",
        lmbook="cosine 4D correlation and NC-Net's released filter (10, 10, 1 channels, 3⁴ kernels, symmetric)",
        why="the paper names NC-Net without its sizes"),
    Row("the flow's pre-training", "following NC-Net (weakly supervised by matching and non-matching pairs)", None,
        follows="departure", lmbook="supervised by the known flow of synthetic pairs B = A ∘ g (c3_flow)",
        why="a synthetic pair's flow is known exactly; NC-Net's weak supervision needs labelled pairs"),
    Row("how T's argmax is differentiated", "not given", None, follows="choice",
        lmbook="soft argmax (the expectation under the score map)", why="an argmax has no gradient"),
    Row("does Eq. 4 train the flow module?", "not given", None, follows="choice", key="method.flow_trainable",
        value=False, why="otherwise the flow can move towards the landmarks as much as the landmarks towards it"),
    Row("stop-gradient on the first swap", "yes (appendix)", None, follows="paper", key="method.stop_first_swap",
        value=True),
    Row("λ_cycle", "not given (Eq. 5)", None, follows="choice", key="method.cycle_weight", value=1.0,
        why="each term of the order of the perceptual loss at the start; compared on tune_val (chapter 5)"),
    Row("λ_inv", "not given (Eq. 5)", None, follows="choice", key="method.inv_weight", value=100.0,
        why="as λ_cycle, relative to a perceptual loss of unit scale (multiplied by method.loss_scale, "
            "which the paired and cycle terms carry); ten times smaller or larger compared on tune_val"),
    Row("λ_equiv", "not given (Eq. 5)", None, follows="choice", key="method.equiv_weight", value=10.0,
        why="as λ_inv"),
    Row("the paired loss beside Eq. 5", "the ablation's 'without C3' row learns from synthetic pairs", None,
        follows="choice", key="method.paired_weight", value=1.0, why="kept, weight 1"),
    Row("how pairs of faces are drawn", "'sampled from the collection'", None, follows="choice",
        lmbook="uniformly over ordered pairs of different images (training.loop.sample_pairs)", why="the simplest reading"),
    Row("optimiser", "Adam 5·10⁻⁴", None, follows="paper", key="train.lr", value=5e-4),
    Row("learning-rate decay steps", "at epochs 100 and 150 of 200", None, follows="paper",
        key="train.lr_milestones", value=[20000, 30000], why="at 50 % and 75 % of 40k steps"),
    Row("learning-rate decay factor", "divided by 10 at each (§4 and the appendix)", None, follows="paper",
        key="train.lr_gamma", value=0.1,
        why="5·10⁻⁶ at the end; before issue 45 the profiles inherited Jakab's x0.95, which ended the paper "
            "profile at 4.5·10⁻⁴ (the committed c3 references were trained so)"),
    Row("weight decay", "10⁻⁴", None, follows="paper", key="train.weight_decay", value=1e-4),
    Row("weight initialisation", "Gaussian, std 0.01 (appendix)", None, follows="departure",
        lmbook="E_p, E_a and D from the Jakab run, initialised by PyTorch's defaults (Kaiming uniform)",
        why="the Jakab chapter's run is the pre-training, and it initialises as the Jakab chapter does"),
    Row("batch size", "200", None, follows="departure", key="train.batch_size", value=32, why="one GPU's worth"),
    Row("image size", "128 px", None, follows="paper", key="method.view_size", value=128),
    Row("number of landmarks", "10 and 30", None, follows="paper", key="method.num_landmarks", value=10),
    # ---- inherited from Jakab's released code
    Row("Gaussian maps (from Jakab)", "not given", "exp(-d² / std²), std 0.1", IMM + "imm/models/imm_model.py:54-59",
        key="method.map_form", value="code", why="the pre-training's generator"),
    Row("grid of the maps (from Jakab)", "not given", "linspace(-1, 1, n)", IMM + "imm/models/imm_model.py:44-46, 256",
        key="method.map_grid", value="linspace", why="the pre-training's generator"),
    Row("pose maps in the decoder (from Jakab)", "not given", "at the bottleneck only", IMM + "imm/models/imm_model.py:161",
        key="method.maps_at", value="bottleneck"),
    Row("batch norm (from Jakab)", "not given", "TensorFlow's defaults: decay 0.99 (momentum 0.01), eps 10⁻³",
        IMM + "imm/tf_utils/nn_utils.py:198-203", key="method.batch_norm_momentum", value=0.01,
        why="the pre-training's networks; eps 10⁻³ in the row below"),
    Row("batch-norm eps (from Jakab)", "not given", "10⁻³", IMM + "imm/tf_utils/nn_utils.py:198-203",
        key="method.batch_norm_eps", value=1e-3),
    Row("perceptual loss (from Jakab)", "a perceptual loss (layers not given)",
        "squared errors on the input and conv1_2 ... conv5_2, x1000, normalisers from fixed values",
        IMM + "imm/models/imm_model.py:131-150", key="method.perceptual_distance", value="l2",
        why="the paired term also takes Jakab's border mask; the cycle term compares whole images (no mask)"),
    Row("warps of the paired term (from Jakab)", "not given", "kernel-weight TPS, the source warped from the target",
        IMM + "imm/utils/tps_sampler.py:127-189; imm/datasets/tps_dataset.py:82-83", key="method.pair_warps",
        value="code"),
    Row("gradient clipping (from Jakab)", "not stated", "each tensor's gradient clipped at norm 1",
        IMM + "imm/train/cnn_train_multi.py:232-239", follows="choice", key="train.grad_clip_mode", value="per_tensor",
        why="the paper states no clipping; kept from the pre-training's optimisation"),
    Row("gradient clipping norm (from Jakab)", "not stated", "1.0", IMM + "configs/experiments/celeba-10pts.yaml:5",
        follows="choice", key="train.grad_clip", value=1.0, why="as the clipping"),
    Row("which weights decay (from Jakab)", "not stated (its strength: 10⁻⁴)", "convolution kernels only",
        IMM + "imm/models/base_model.py:65; imm/tf_utils/nn_utils.py:44-51", follows="choice",
        key="train.weight_decay_on", value="conv_weights",
        why="the paper gives the strength, not which weights; kept from the pre-training's optimisation"),
    Row("training data", "CelebA (unpaired)", None, follows="departure", lmbook="MTFL-80's 9,043 unsup_train faces",
        why="the book's embedded data (chapter 0)"),
)

TABLE = FidelityTable("c3", ROWS)
