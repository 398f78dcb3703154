"""Xu, Yang, Liu, Dai & Zhou 2020 (C3): landmarks from *unpaired* images by cross-image cycle
consistency and a cross-image flow module. The authors released no code; this is a reading of the
paper, and what it leaves open is chosen here and said in the chapter.

Two methods, each a run the next one builds on:

* :class:`C3Flow` (``c3_flow``): the cross-image flow module of §3.2 (Eq. 3) on frozen ImageNet
  VGG16 features, pre-trained on synthetic pairs ``B = A o g`` whose true flow is known (the paper
  pre-trains it "following NC-Net", whose weak supervision needs matching and non-matching pairs;
  the book departs from it, see :func:`lmcore.losses.c3.flow_supervision_loss`);
* :class:`C3` (``c3``): starts from a Jakab run (its parent ``pairs``: E_p, E_a and D pre-trained on
  synthetic pairs, as the appendix says) and the flow run (parent ``flow``), and trains on pairs of
  *different* faces (the loop hands ``(images_a, images_b)``, :attr:`trains_on_pairs`) with

  ``L = w_paired L_paired + w_cycle L_cycle (Eq. 1) + w_inv L_inv (Eq. 2) + w_equiv L_equiv (Eq. 4)``

  (Eq. 5 plus Jakab's paired reconstruction, which the paper's ablation keeps: "without C3 our
  models can only learn from synthesized image pairs").

Architecture, where the book departs from the paper: E_p, E_a and D are Jakab's networks (each
encoder with its own convolutional trunk), so that a Jakab run *is* the pre-training; the backbone
N of the paper feeds only the flow module here, and is frozen ImageNet VGG16 (NC-Net also freezes
its backbone and learns only the 4D filter). Its features ``f'`` are the activations of
``method.flow_layer``: ``relu3_3`` (stride 4) at the 32 px ``cpu`` view (the Jakab chapter's) gives 8 x 8 maps,
``relu4_3`` (stride 8) at the 128 px ``paper`` view 16 x 16: the size of the pose encoder's coarsest
Gaussian maps, on which Eq. 4 compares poses.

The paper's backbone, ImageNet ResNet-50 with ``layer3`` (its second-last residual stage) giving
``f'``, is ``method.flow_backbone: resnet50`` (:class:`lmcore.models.backbones.ResNet50Features`),
loaded where a user has torchvision's ImageNet file: at 128 px ``layer3`` gives 8 x 8 maps,
``layer2`` 16 x 16. No profile uses it, as no machine of the project can fetch those weights.
"""
from __future__ import annotations

import contextlib
import copy

import torch

from ..config import Between, ListOf, OneOf, Optional
from ..errors import ConfigError
from ..geometry import WarpSpec, random_tps, synthesize_pair, warp_image
from ..losses.c3 import (cross_image_cycle_loss, equivariance_loss, flow_supervision_loss,
                         pose_invariance_loss)
from ..losses.perceptual import VGG16_LAYERS, VGG16Features
from ..models.backbones import RESNET50_LAYERS, ResNet50Features
from ..models.flow import CrossImageFlow, flow_of_warp, transfer_points
from .base import COMMON_RANGES, WARP_RANGES, LandmarkMethod
from .jakab import Jakab

#: the history key of the flow run's learning curve (end-point error on test_mtfl pairs, in cells)
FLOW_EPE_KEY = "flow_epe_cells"
#: the faces whose synthetic pairs score the flow run
FLOW_EVAL_SPLIT = "tune_val"
#: the backbones N that can feed the flow: name -> (frozen module, the activations it offers as f')
FLOW_BACKBONES = {"vgg16": (VGG16Features, tuple(VGG16_LAYERS)),
                  "resnet50": (ResNet50Features, tuple(RESNET50_LAYERS))}


class C3Flow(LandmarkMethod):
    """The cross-image flow module on frozen ImageNet VGG16 features, trained on synthetic pairs.

    ``flow_between(views_a, views_b)`` returns the flow module's dict (``T_ab``: for each cell of
    A, its correspondent in B in B's normalised view coordinates; see :mod:`lmcore.models.flow`).
    """

    name = "c3_flow"
    frozen_prefixes = ("backbone.body.",)
    ranges = {**COMMON_RANGES, "flow_backbone": OneOf(*FLOW_BACKBONES),
              "flow_layer": OneOf(*(layer for _, layers in FLOW_BACKBONES.values() for layer in layers)),
              "filter_channels": ListOf(Between(1, 256), 0, 8), "filter_kernels": ListOf(Between(1, 9), 0, 8),
              "temperature": Between(0, 100, above=True), "window": Optional(Between(1, 64)),
              "pair_warp": WARP_RANGES, "first_warp": WARP_RANGES}

    def __init__(self, config: dict):
        super().__init__(config)
        m = config["method"]
        self.flow_layer = m["flow_layer"]
        backbone, _ = FLOW_BACKBONES[m["flow_backbone"]]
        self.backbone = backbone((m["flow_layer"],))
        self.flow = CrossImageFlow(tuple(m["filter_channels"]), tuple(m["filter_kernels"]), m["symmetric"],
                                   m["temperature"], m["window"])
        self.pair_warp = WarpSpec(**m["pair_warp"])
        self.first_warp = WarpSpec(**m["first_warp"])

    @classmethod
    def check_config(cls, config: dict) -> None:
        super().check_config(config)
        m = config["method"]
        _, layers = FLOW_BACKBONES[m["flow_backbone"]]
        if m["flow_layer"] not in layers:
            raise ConfigError(f"setting 'method.flow_layer' must be a {m['flow_backbone']} activation "
                              f"({', '.join(layers)}), got '{m['flow_layer']}'")
        if len(m["filter_channels"]) != len(m["filter_kernels"]) or (m["filter_channels"] and m["filter_channels"][-1] != 1):
            raise ConfigError("settings 'method.filter_channels' and 'method.filter_kernels' need one entry per layer, "
                              "the last layer with 1 channel (or both empty: the raw correlation)")
        if any(k % 2 == 0 for k in m["filter_kernels"]):
            raise ConfigError(f"setting 'method.filter_kernels' must hold odd sizes, got {m['filter_kernels']}")

    def features(self, views: torch.Tensor) -> torch.Tensor:
        """``f'``: the frozen backbone's ``flow_layer`` activations of views (RGB in [0, 1])."""
        with torch.no_grad():
            return self.backbone(views)[self.flow_layer]

    def flow_between(self, views_a: torch.Tensor, views_b: torch.Tensor) -> dict:
        return self.flow(self.features(views_a), self.features(views_b))

    def synthetic_pairs(self, images: torch.Tensor, generator) -> tuple[torch.Tensor, torch.Tensor, object]:
        """(A, B, g): views of the images, and ``B = A o g`` (g in view coordinates)."""
        pair = synthesize_pair(images, self.first_warp, self.pair_warp, generator,
                               view=self.view_warp(len(images), images.device), size=self.view_size)
        return pair.first, pair.second, pair.warp

    def forward(self, images, generator, step):
        views_a, views_b, warp = self.synthetic_pairs(images, generator)
        out = self.flow_between(views_a, views_b)
        h, w = out["T_ab"].shape[1:3]
        true_ab, true_ba = flow_of_warp(warp, h, w)
        loss = flow_supervision_loss(out["T_ab"], true_ab) + flow_supervision_loss(out["T_ba"], true_ba)
        return {"loss": loss, "epe_cells": loss.detach() * w / 4}  # mean of the two directions, in cells

    def end_point_error(self, images: torch.Tensor, seed: int = 0, batch_size: int = 64,
                        raw: bool = False) -> float:
        """Mean end-point error (both directions, in cells of the map) on synthetic pairs of
        ``images`` (uint8 or float) drawn with ``seed``; ``raw``: of the unfiltered correlation."""
        device = next(self.parameters()).device
        generator = torch.Generator(device=device).manual_seed(seed)
        total, count = 0.0, 0
        was_training = self.training
        self.eval()
        flow = CrossImageFlow((), (), temperature=0.05).to(device) if raw else self.flow
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                chunk = images[start:start + batch_size].to(device)
                chunk = chunk.float() / 255 if chunk.dtype == torch.uint8 else chunk
                a, b, warp = self.synthetic_pairs(chunk, generator)
                out = flow(self.features(a), self.features(b))
                h, w = out["T_ab"].shape[1:3]
                true_ab, true_ba = flow_of_warp(warp, h, w)
                epe = flow_supervision_loss(out["T_ab"], true_ab) + flow_supervision_loss(out["T_ba"], true_ba)
                total += float(epe) * w / 4 * len(chunk)
                count += len(chunk)
        self.train(was_training)
        return total / count

    def evaluate(self, source, options, few_shot=None, subsample: int = 1) -> dict:
        """End-point errors on synthetic pairs of tune_val faces (this run's length and filter are
        settings, chosen there, never on a test set), of the learnt filter and of the raw cosine
        correlation (soft-argmax at temperature 0.05), in cells of the flow's map."""
        faces = source.split(FLOW_EVAL_SPLIT, every=subsample)
        return {FLOW_EPE_KEY: {FLOW_EVAL_SPLIT: {"filtered": self.end_point_error(faces.images),
                                                 "raw_correlation": self.end_point_error(faces.images, raw=True)}}}

    def learning_curve(self, source, subsample: int = 1, n_train: int = 2000):
        faces = source.split(FLOW_EVAL_SPLIT, every=max(subsample, 4))
        return lambda method: {FLOW_EPE_KEY: method.end_point_error(faces.images)}


# --------------------------------------------------------------------------- C3


_ARCHITECTURE = ("num_landmarks", "view_crop", "view_size", "width", "downsamples", "max_width", "gaussian_std")


class C3(Jakab):
    """Jakab's conditional generator trained on unpaired faces through the cross-image cycle, with
    the cross-image flow module's equivariance."""

    name = "c3"
    trains_on_pairs = True
    # E_p, E_a and D are the Jakab run's networks, and the flow run sees the same view
    shared_with_parents = {"pairs": _ARCHITECTURE, "flow": ("view_crop", "view_size")}
    frozen_prefixes = Jakab.frozen_prefixes + ("flow_run.backbone.body.",)
    ranges = {**Jakab.ranges, **{k: Between(0, 1e6) for k in ("paired_weight", "cycle_weight", "inv_weight", "equiv_weight")},
              "equiv_pairs": OneOf("unpaired", "synthetic")}

    def __init__(self, config: dict):
        super().__init__(config)
        m = config["method"]
        if not m["flow_trainable"]:
            # the pre-trained flow comes from its parent run, not from this run's checkpoints
            self.frozen_prefixes = self.frozen_prefixes + ("flow_run.",)
        self.flow_run: C3Flow | None = None

    @classmethod
    def check_config(cls, config: dict) -> None:
        super().check_config(config)
        m = config["method"]
        if m["paired_weight"] == m["cycle_weight"] == 0:
            raise ConfigError("settings 'method.paired_weight' and 'method.cycle_weight' are both 0: nothing would "
                              "train the generator")

    def adopt_parents(self, parents: dict) -> None:
        """E_p, E_a, D (and the perceptual loss's running scales) from the Jakab run; the flow
        module from the flow run."""
        pairs, flow = parents["pairs"], parents["flow"]
        m, pm = self.config["method"], pairs.config["method"]
        differ = [k for k in _ARCHITECTURE if m[k] != pm[k]]
        if differ:
            raise ConfigError("the pre-training run 'parents.pairs' differs from this run in " + ", ".join(
                f"method.{k} ({pm[k]} vs {m[k]})" for k in differ))
        if (flow.view_crop, flow.view_size) != (self.view_crop, self.view_size):
            raise ConfigError(f"the flow run 'parents.flow' sees a {flow.view_size} px view of crop {flow.view_crop}, "
                              f"this run {self.view_size} px of crop {self.view_crop}: set parents.flow.overrides")
        device = next(self.parameters()).device
        self.model.load_state_dict(pairs.model.state_dict())
        if self.criterion is not None and pairs.criterion is not None:
            self.criterion.load_state_dict(pairs.criterion.state_dict())
        self.flow_run = copy.deepcopy(flow).to(device)
        for p in self.flow_run.parameters():
            p.requires_grad_(bool(m["flow_trainable"]))

    # ------------------------------------------------------------------ the pieces of Fig. 2

    def _require_flow(self) -> C3Flow:
        if self.flow_run is None:
            raise RuntimeError("the C3 method has no flow module: build it with its parent runs "
                               "(lmcore.training.run_method or load_trained)")
        return self.flow_run

    def mild_view(self, images: torch.Tensor, generator) -> torch.Tensor:
        """A view of each image under the Jakab target warp (the mild one)."""
        b = images.shape[0]
        warp = self.in_view(random_tps(self.target_warp, b, generator, images.device), self.view_warp(b, images.device))
        return warp_image(images, warp, size=self.view_size)

    def encode(self, views: torch.Tensor) -> dict:
        """a = E_a(I), landmarks and p (the Gaussian maps at every decoder scale, coarse first)."""
        points, _ = self.model.pose(views)
        maps = self.model.renderer(points, self.model.map_sizes(views.shape[-1]))
        return {"points": points, "maps": maps, "appearance": self.model.appearance(views)}

    def decode(self, appearance: torch.Tensor, maps: list) -> torch.Tensor:
        return self.model.generator(appearance, maps)

    def flow_between(self, views_a: torch.Tensor, views_b: torch.Tensor) -> dict:
        flow = self._require_flow()
        context = contextlib.nullcontext() if self.config["method"]["flow_trainable"] else torch.no_grad()
        with context:
            return flow.flow_between(views_a, views_b)

    def cycle(self, views_i: torch.Tensor, views_j: torch.Tensor, stop_first_swap: bool = True,
              codes: tuple[dict, dict] | None = None) -> dict:
        """The two swapping reconstructions of §3.1: ``I_ij = D(a_i, p_j)``, ``I_ji = D(a_j, p_i)``,
        then ``I'_i = D(a'_i, p'_i)`` and ``I'_j = D(a'_j, p'_j)`` from the codes of the swapped
        images. ``codes``: the encodings of ``views_i`` / ``views_j`` when already computed."""
        ci, cj = codes if codes is not None else (self.encode(views_i), self.encode(views_j))
        with torch.no_grad() if stop_first_swap else contextlib.nullcontext():
            swap_ij = self.decode(ci["appearance"], cj["maps"])
            swap_ji = self.decode(cj["appearance"], ci["maps"])
        from_ij, from_ji = self.encode(swap_ij), self.encode(swap_ji)  # (a'_i, p'_j) and (a'_j, p'_i)
        return {"codes_i": ci, "codes_j": cj, "swap_ij": swap_ij, "swap_ji": swap_ji,
                "pose_i_again": from_ji["maps"], "pose_j_again": from_ij["maps"],
                "points_i_again": from_ji["points"], "points_j_again": from_ij["points"],
                "cycle_i": self.decode(from_ij["appearance"], from_ji["maps"]),
                "cycle_j": self.decode(from_ji["appearance"], from_ij["maps"])}

    def forward(self, batch, generator, step):
        images_a, images_b = batch
        m = self.config["method"]
        terms: dict[str, torch.Tensor] = {}
        total = 0.0
        # Jakab's paired term on A (with its loss mask): the target view x' is also A's view in the cycle
        source, target, mask = self.views(images_a, generator, with_mask=True)
        paired = self.model(source, target)
        if m["paired_weight"]:
            terms["paired"] = self.criterion(paired["generated"], target, mask)
            total = total + m["paired_weight"] * terms["paired"]
        codes_i = None
        if m["cycle_weight"] or m["inv_weight"] or (m["equiv_weight"] and m["equiv_pairs"] == "unpaired"):
            views_j = self.mild_view(images_b, generator)
            codes_i = {"points": paired["points"], "maps": paired["maps"]}
            codes_j = self.encode(views_j) if m["cycle_weight"] or m["inv_weight"] else None
        if m["cycle_weight"] or m["inv_weight"]:
            codes_i["appearance"] = self.model.appearance(target)
            out = self.cycle(target, views_j, m["stop_first_swap"], (codes_i, codes_j))
            if m["cycle_weight"]:
                terms["cycle"] = cross_image_cycle_loss(self.criterion, (target, views_j), (out["cycle_i"], out["cycle_j"]))
                total = total + m["cycle_weight"] * terms["cycle"]
            if m["inv_weight"]:
                terms["inv"] = pose_invariance_loss((codes_i["maps"][0], codes_j["maps"][0]),
                                                    (out["pose_i_again"][0], out["pose_j_again"][0]))
                # Eq. 5's weights are relative to a perceptual loss of unit scale: the paired and
                # cycle terms carry the criterion's loss_scale (the Jakab code's x1000), so these do too
                total = total + m["inv_weight"] * m["loss_scale"] * terms["inv"]
        if m["equiv_weight"]:
            if m["equiv_pairs"] == "unpaired":
                x, y = target, views_j
                maps_x = codes_i["maps"][0]
                maps_y = (codes_j or self.encode(views_j))["maps"][0]
            else:  # the synthetic pair of A: source and target views
                x, y = source, target
                maps_x = self.model.renderer(self.model.pose(source)[0], self.model.map_sizes(source.shape[-1]))[0]
                maps_y = paired["maps"][0]
            flow = self.flow_between(x, y)
            terms["equiv"] = equivariance_loss(maps_x, maps_y, flow["T_ab"], flow["T_ba"])
            total = total + m["equiv_weight"] * m["loss_scale"] * terms["equiv"]
        terms["loss"] = total
        return terms

    # ------------------------------------------------------------------ for the chapter

    @torch.no_grad()
    def transfer(self, images_a: torch.Tensor, images_b: torch.Tensor, points_a: torch.Tensor) -> torch.Tensor:
        """Carry points of A (normalised full-image coordinates, ``B x N x 2``) to B through the
        learnt flow ``T_ab`` between the two views; returns B's full-image coordinates."""
        device = next(self.parameters()).device
        views_a, views_b = self.to_view(images_a.to(device)), self.to_view(images_b.to(device))
        t_ab = self.flow_between(views_a, views_b)["T_ab"]
        view = self.view_warp(len(images_a), device)
        in_view = view.transport(points_a.to(device))
        return view.map(transfer_points(t_ab, in_view))

    @torch.no_grad()
    def cycle_images(self, images_a: torch.Tensor, images_b: torch.Tensor) -> dict:
        """Views, swaps and cycle reconstructions of two batches of full-frame images (eval mode)."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        views_a, views_b = self.to_view(images_a.to(device)), self.to_view(images_b.to(device))
        out = self.cycle(views_a, views_b)
        out.update(views_a=views_a, views_b=views_b)
        self.train(was_training)
        return out

    @torch.no_grad()
    def decode_isolated(self, images: torch.Tensor, keep: str) -> torch.Tensor:
        """§4.3's isolated decoding: D with the appearance (``keep="pose"``) or the pose maps
        (``keep="appearance"``) replaced by zeros; ``keep="pose"`` gives the "template face"."""
        was_training = self.training
        self.eval()
        codes = self.encode(self.to_view(images.to(next(self.parameters()).device)))
        appearance, maps = codes["appearance"], codes["maps"]
        if keep == "pose":
            appearance = torch.zeros_like(appearance)
        elif keep == "appearance":
            maps = [torch.zeros_like(x) for x in maps]
        else:
            raise ValueError(f"keep must be 'pose' or 'appearance', got '{keep}'")
        out = self.decode(appearance, maps)
        self.train(was_training)
        return out


__all__ = ["C3", "C3Flow", "FLOW_EPE_KEY"]
