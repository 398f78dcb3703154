"""A supervised reference for chapter 0: the FSE detector architecture with K = 5 maps, trained
on the *labels* of ``regressor_train`` to put its soft-argmax points on the annotated points.

It is the yardstick the unsupervised methods are compared with on MTFL-80 (the papers quote
supervised detectors such as TCDCN and MTCNN trained on far more data). Its error is the
direct prediction error; no regressor is fitted.
"""
from __future__ import annotations

from ..evaluation import RegressionOptions, consistency_error, detect_all, normalised_errors
from ..evaluation.statistics import bootstrap_interval
from ..geometry import ComposedWarp, WarpSpec, pixels_to_normalized, random_similarity, soft_argmax, warp_image
from ..models.fse_detector import FSEDetector
from ..config import Between, ListOf
from .base import COMMON_RANGES, WARP_RANGES, LandmarkMethod


class SupervisedRegressor(LandmarkMethod):
    """FSE-architecture detector trained with annotated points (a supervised yardstick)."""

    name = "supervised"
    train_split = "regressor_train"
    trains_with_labels = True  # the training loop hands it (images, points) batches
    ranges = {**COMMON_RANGES, "widths": ListOf(Between(1, 4096), 5, 5), "kernel_sizes": ListOf(Between(1, 15), 6, 6),
              "augment": WARP_RANGES}

    def __init__(self, config: dict):
        super().__init__(config)
        m = config["method"]
        self.detector = FSEDetector(m["num_landmarks"], tuple(m["widths"]), tuple(m["kernel_sizes"]))
        self.augment = WarpSpec(**m["augment"])

    def landmarks(self, images):
        return soft_argmax(self.detector(images))[0]

    def forward(self, batch, generator, step):
        images, points = batch
        size = images.shape[-1]
        jitter = random_similarity(self.augment, len(images), generator, images.device)
        view = self.view_warp(len(images), images.device)
        warped = warp_image(images, ComposedWarp(jitter, view), size=self.view_size)
        target = view.transport(jitter.transport(pixels_to_normalized(points, size)))
        loss = ((self.landmarks(warped) - target) ** 2).sum(-1).mean()
        return {"loss": loss}

    def evaluate(self, source, options: RegressionOptions | None = None, few_shot: dict | None = None,
                 subsample: int = 1) -> dict:
        """Direct prediction errors (no regressor, so ``options`` and ``few_shot`` do not apply)
        and the consistency error, per test split."""
        metrics: dict = {"forward": {}, "backward": {}, "consistency": {}}
        for name in ("test_mtfl", "test_aflw"):
            test = source.split(name, every=subsample)
            predicted = detect_all(self.detect, test.images)
            errors = normalised_errors(predicted, test.points)
            metrics["forward"][name] = {"mean": float(errors.mean()), "std": 0.0, "ci95": bootstrap_interval(errors.mean(1)),
                                        "per_point": [float(v) for v in errors.mean(0)],
                                        "options": {"direct": True, "normaliser": "eyes"}}
            limit = 1000 // subsample
            metrics["consistency"][name] = consistency_error(self.detect, test.images[:limit], test.points[:limit])
        return metrics
