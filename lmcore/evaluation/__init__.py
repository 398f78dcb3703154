"""The evaluation protocol (forward / backward / consistency errors in % of IOD)."""
from .protocol import (
    CONSISTENCY_WARPS,
    LinearMap,
    ProtocolResult,
    RegressionOptions,
    backward_error,
    consistency_error,
    detect_all,
    evaluate_detector,
    few_shot_curve,
    fit_linear_map,
    forward_error,
    inter_ocular_distance,
    mean_shape_error,
    normalised_errors,
)

__all__ = [
    "CONSISTENCY_WARPS", "LinearMap", "ProtocolResult", "RegressionOptions", "backward_error",
    "consistency_error", "detect_all", "evaluate_detector", "few_shot_curve", "fit_linear_map",
    "forward_error", "inter_ocular_distance", "mean_shape_error", "normalised_errors",
]
