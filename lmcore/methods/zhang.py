"""Zhang, Guo, Jin, Luo, He & Lee 2018: unsupervised discovery of landmarks as structural
representations.

An autoencoder whose bottleneck is K landmarks (plus a small descriptor per landmark): the
detector must put landmarks where the decoder can rebuild the image from them, while
concentration (Eq. 5), separation (Eq. 7) and equivariance (Eq. 8) keep them valid landmarks.
Objective (Eq. 15): ``l_recon L_recon + l_conc L_conc + l_sep L_sep + l_eqv L_eqv``, with the
reconstruction weight raised twice during training (App. G.3).

Each setting below is a choice the released code or the paper makes; which values each profile
takes (the ``paper`` profile: the authors' released configuration) is :mod:`lmcore.experiments.zhang`.
"""
from __future__ import annotations

import torch

from ..config import Between, ListOf, OneOf
from ..errors import ConfigError
from ..geometry import ComposedWarp, WarpSpec, draws, random_tps, warp_image
from ..losses.zhang import (EQUIVARIANCE_CODE_SCALE, concentration_loss, equivariance_loss, reconstruction_loss,
                            separation_loss)
from ..models.landmark_autoencoder import DECODER_MAPS, DESCRIPTOR_POOLING, LandmarkAutoencoder
from .base import COMMON_RANGES, WARP_RANGES, LandmarkMethod

_NET_RANGES = {"width": Between(1, 1024), "max_width": Between(1, 2048), "depth": Between(1, 6),
               "block_convs": Between(1, 4), "skip_convs": Between(1, 4)}


class Zhang(LandmarkMethod):
    """Landmark autoencoder with concentration, separation, equivariance and reconstruction."""

    name = "zhang"
    step_settings = ("recon_increase_steps", "landmark_control_after")
    ranges = {**COMMON_RANGES, "detector_net": _NET_RANGES, "feature_net": _NET_RANGES, "decoder_net": _NET_RANGES,
              "image_channels": Between(1, 3), "feature_channels": Between(1, 1024), "descriptor_dim": Between(1, 256),
              "decoder_sigmas": ListOf(Between(0, 2, above=True), 1, 8), "decoder_maps": OneOf(*DECODER_MAPS),
              "descriptor_pooling": OneOf(*DESCRIPTOR_POOLING), "lambda_recon": Between(0, 1e6),
              "recon_increase_steps": ListOf(Between(0), 0, 8), "recon_increase_factors": ListOf(Between(0, 1e6), 0, 8),
              "lambda_conc": Between(0, 1e6), "concentration_sigma": OneOf("variance", "std"),
              "lambda_sep": Between(0, 1e6), "sigma_sep": Between(0, 2, above=True), "lambda_eqv": Between(0, 1e8),
              "equivariance_units": OneOf("edge", "code"), "sigma_color": Between(0, 10, above=True),
              "warp": WARP_RANGES, "landmark_control_fraction": Between(0, 1), "landmark_control_std": Between(0, 1),
              "landmark_control_after": Between(0), "brightness": Between(0, 1), "contrast": Between(0, 1)}

    def __init__(self, config: dict):
        super().__init__(config)
        m = config["method"]
        self.model = LandmarkAutoencoder(
            m["num_landmarks"], m["feature_channels"], m["descriptor_dim"], tuple(m["decoder_sigmas"]),
            m["with_descriptors"], image_channels=m["image_channels"], detector_net=m["detector_net"],
            feature_net=m["feature_net"], decoder_net=m["decoder_net"], descriptor_pooling=m["descriptor_pooling"],
            decoder_maps=m["decoder_maps"])
        self.warp_spec = WarpSpec(**m["warp"])

    @classmethod
    def check_config(cls, config: dict) -> None:
        super().check_config(config)
        m = config["method"]
        if len(m["recon_increase_factors"]) != len(m["recon_increase_steps"]):
            raise ConfigError("settings 'method.recon_increase_steps' and 'method.recon_increase_factors' need one "
                              f"entry each per increase, got {m['recon_increase_steps']} and {m['recon_increase_factors']}")
        for part in ("detector_net", "feature_net", "decoder_net"):
            unit = 2 ** m[part]["depth"]
            if m["view_size"] % unit:
                raise ConfigError(f"setting 'method.view_size' must be a multiple of {unit} for the {part} of depth "
                                  f"{m[part]['depth']}, got {m['view_size']}")

    def landmarks(self, images):
        return self.model.landmarks(self.model.detection_maps(images))[0]

    def recon_weight(self, step: int) -> float:
        """lambda_recon, multiplied by ``recon_increase_factors[i]`` from ``recon_increase_steps[i]``
        on (App. G.3: x10 twice; the released K = 30 configuration: x100, then x1000)."""
        m = self.config["method"]
        passed = sum(step >= s for s in m["recon_increase_steps"])
        return m["lambda_recon"] * (m["recon_increase_factors"][passed - 1] if passed else 1.0)

    def jitter_colours(self, images, generator):
        """Random brightness (``+-brightness``) and contrast (a factor in ``1 +- contrast`` about
        each channel's mean), one draw per image, then clipped to [0, 1] (App. G.3; the released
        code's tf.image.random_brightness / random_contrast)."""
        m = self.config["method"]
        if not m["brightness"] and not m["contrast"]:
            return images
        shape = (images.shape[0], 1, 1, 1)
        brightness = (draws.uniform(shape, generator, images.device) * 2 - 1) * m["brightness"]
        contrast = 1 + (draws.uniform(shape, generator, images.device) * 2 - 1) * m["contrast"]
        mean = images.mean((2, 3), keepdim=True)
        return ((images - mean) * contrast + mean + brightness).clamp(0, 1)

    def forward(self, images, generator, step):
        m = self.config["method"]
        b = images.shape[0]
        images = self.jitter_colours(images, generator)
        view = self.view_warp(b, images.device)
        original = warp_image(images, view, size=self.view_size)
        out = self.model(original)
        # App. F.3: TPS control points on a regular grid, or on the current landmarks (a fraction of
        # the steps, once they have spread out), chosen per step with a draw from the generator
        use_landmarks = step >= m["landmark_control_after"] and float(
            torch.rand((), generator=generator, device=images.device)) < m["landmark_control_fraction"]
        if use_landmarks:
            warp = random_tps(self.warp_spec, b, generator, images.device, control_points=out["points"],
                              control_std=m["landmark_control_std"])
        else:
            warp = random_tps(self.warp_spec, b, generator, images.device)
        warped = warp_image(images, ComposedWarp(view, warp), size=self.view_size)
        detection_w = self.model.detection_maps(warped)
        points_w, variances_w = self.model.landmarks(detection_w)

        # concentration and separation of both views, averaged (the code's doubled batch,
        # keypoint_encoder.py:297-301 and :321)
        from_std = m["concentration_sigma"] == "std"
        conc = (concentration_loss(out["variances"], from_std) + concentration_loss(variances_w, from_std)) / 2
        sep = (separation_loss(out["points"], m["sigma_sep"]) + separation_loss(points_w, m["sigma_sep"])) / 2
        eqv = equivariance_loss(out["points"], points_w, warp,
                                scale=EQUIVARIANCE_CODE_SCALE if m["equivariance_units"] == "code" else 1.0)
        recon = reconstruction_loss(original, out["reconstruction"], m["sigma_color"])
        w_recon = self.recon_weight(step)
        loss = w_recon * recon + m["lambda_conc"] * conc + m["lambda_sep"] * sep + m["lambda_eqv"] * eqv
        return {"loss": loss, "recon": recon.detach(), "conc": conc.detach(), "sep": sep.detach(),
                "eqv": eqv.detach(), "lambda_recon": torch.tensor(w_recon)}

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor, points: torch.Tensor | None = None) -> dict:
        """Encode images (full frame, [0, 1]) and decode, optionally with *other* landmarks (in view
        coordinates): the image manipulation of Fig. 10 / App. A."""
        self.eval()
        device = next(self.parameters()).device
        view_images = self.to_view(images.to(device))
        out = self.model(view_images)
        if points is not None:
            out["reconstruction"] = self.model.decode(points.to(device), out["descriptors"], self.view_size)
            out["points"] = points.to(device)
        out["view"] = view_images
        return out
