"""A supervised human-pose detector: the *core* that Sanchez & Tzimiropoulos 2019 adapt.

The FAN-style hourglass of §4.1 (:class:`lmcore.models.fan.FAN`) trained *with labels* on another
object category than the target: here LSPET-128's 14 joints (the paper: MPII's 16). Loss: mean
squared error between the heatmap logits and Gaussian targets ``exp(-d^2 / 0.5)`` on the map grid
(§4.1), over visible joints only. Augmentation: random similarities with rotations drawn from
N(0, 30 deg) (the code clips them at 40 deg; not here) and no flips. Its evaluation is PCK@0.2 of the torso on LSPET's val
split, as the data set's README defines it.

No face label reaches this network: it only ever sees people.
"""
from __future__ import annotations

import torch

from ..geometry import ComposedWarp, WarpSpec, pixels_to_normalized, random_similarity, warp_image
from ..geometry.coords import normalized_to_pixels
from ..models.fan import FAN, gaussian_targets
from ..config import Between
from .base import COMMON_RANGES, PCK_KEY, WARP_RANGES, LandmarkMethod


class PoseCore(LandmarkMethod):
    """FAN trained by heatmap regression on LSPET-128's joints (a parent run of ``sanchez``)."""

    name = "pose"
    data_source = "lspet128"
    train_split = "train"
    trains_with_labels = True
    evaluation_summary = "PCK@0.2 on LSPET val"
    ranges = {**COMMON_RANGES, "width": Between(8, 1024), "depth": Between(1, 6), "temperature": Between(0, 100, above=True),
              "sigma": Between(0, 100, above=True), "coordinate_weight": Between(0, 1e4), "augment": WARP_RANGES}

    def __init__(self, config: dict):
        super().__init__(config)
        m = config["method"]
        self.core = FAN(m["num_landmarks"], m["width"], m["depth"], m["temperature"])
        self.augment = WarpSpec(**m["augment"])

    @classmethod
    def check_config(cls, config: dict) -> None:
        super().check_config(config)
        from ..errors import ConfigError

        m = config["method"]
        unit = 4 * 2 ** m["depth"]
        if m["view_size"] % unit:
            raise ConfigError(f"setting 'method.view_size' must be a multiple of {unit} for a FAN of depth "
                              f"{m['depth']}, got {m['view_size']}")
        if m["width"] % 8:
            raise ConfigError(f"setting 'method.width' must be a multiple of 8, got {m['width']}")

    @classmethod
    def training_targets(cls, train_set) -> torch.Tensor:
        """``N x J x 3``: the joints' normalised (x, y) and their visibility (1 or 0). Normalised,
        not pixels, because the loop resizes the images to ``train.resolution``."""
        points = pixels_to_normalized(train_set.points.float(), train_set.image_size)
        return torch.cat([points, train_set.visible[..., None].float()], -1)

    def landmarks(self, images):
        return self.core.landmarks(images)

    def forward(self, batch, generator, step):
        images, targets = batch
        points, visible = targets[..., :2], targets[..., 2]
        jitter = random_similarity(self.augment, len(images), generator, images.device)
        view = self.view_warp(len(images), images.device)
        warped = warp_image(images, ComposedWarp(jitter, view), size=self.view_size)
        target_points = view.transport(jitter.transport(points))
        logits = self.core(warped)
        target = gaussian_targets(target_points, logits.shape[-2], logits.shape[-1], self.config["method"]["sigma"])
        per_joint = ((logits - target) ** 2).mean((-2, -1))  # B x J
        count = visible.sum().clamp(min=1)
        heatmap_loss = (per_joint * visible).sum() / count
        terms = {"heatmap": heatmap_loss.detach()}
        loss = heatmap_loss
        weight = self.config["method"]["coordinate_weight"]
        if weight:
            points = self.core.heatmaps_to_points(logits)[0]
            coordinate_loss = ((points - target_points).abs().sum(-1) * visible).sum() / count
            loss = loss + weight * coordinate_loss
            terms["coordinate"] = coordinate_loss.detach()
        return {"loss": loss, **terms}

    def pck(self, split, threshold: float = 0.2) -> dict:
        """PCK@``threshold`` (of the torso) of this detector on a LandmarkSet with visibility."""
        from ..evaluation import detect_all
        from ..evaluation.pose import pck

        predicted = detect_all(self.detect, split.images)
        return pck(predicted, split.points, split.visible, threshold)

    def evaluate(self, source, options=None, few_shot=None, subsample: int = 1) -> dict:
        """PCK@0.2 on LSPET's val split (the face protocol does not apply to people)."""
        return {PCK_KEY: self.pck(source.split("val", every=subsample))}

    def learning_curve(self, source, subsample: int = 1, n_train: int = 0):
        val = source.split("val", every=2 * subsample)  # 500 people: a cheap, stable estimate

        def evaluate(method) -> dict:
            return {PCK_KEY: method.pck(val)["pck"]}

        return evaluate

    @torch.no_grad()
    def predict_pixels(self, images: torch.Tensor) -> torch.Tensor:
        """Joints ``B x J x 2`` in pixels of ``images`` (uint8 or float)."""
        size = images.shape[-1]
        images = images.float() / 255 if images.dtype == torch.uint8 else images
        return normalized_to_pixels(self.detect(images).cpu(), size)


# The paper's "generalisation" case the other way round (§4.4, Fig. 4: a face core adapted to
# bodies): here a core trained with MTFL-80's five face labels, adapted without labels to shoes.
# Faces are then the *source* category, so their labels may train it; they never reach a face
# chapter's adaptation. Its evaluation: the direct error of its five points on test_mtfl (% IOD).
FACE_KEY = "direct_error_test_mtfl"


class FaceCore(PoseCore):
    """The same FAN trained by heatmap regression on MTFL-80's five labelled face points."""

    name = "face_core"
    evaluation_summary = "the five points' direct error on test_mtfl"
    data_source = "mtfl80"
    train_split = "regressor_train"  # MTFL-80's clean labelled training rows

    @classmethod
    def training_targets(cls, train_set) -> torch.Tensor:
        points = pixels_to_normalized(train_set.points.float(), train_set.image_size)
        return torch.cat([points, torch.ones(*points.shape[:2], 1)], -1)

    def direct_error(self, split) -> float:
        """Mean error of the five predicted points on a labelled face split, % of the inter-ocular distance."""
        from ..evaluation import detect_all, normalised_errors

        predicted = detect_all(self.detect, split.images)
        return float(normalised_errors(predicted, split.points).mean())

    def evaluate(self, source, options=None, few_shot=None, subsample: int = 1) -> dict:
        return {FACE_KEY: self.direct_error(source.split("test_mtfl", every=subsample))}

    def learning_curve(self, source, subsample: int = 1, n_train: int = 0):
        test = source.split("test_mtfl", every=2 * subsample)

        def evaluate(method) -> dict:
            return {FACE_KEY: method.direct_error(test)}

        return evaluate
