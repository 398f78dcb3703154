"""The evaluation protocol (forward / backward / consistency errors in % of IOD)."""
from .protocol import (
    CONSISTENCY_WARPS,
    NORMALISERS,
    PROTOCOL_VARIANTS,
    RIDGE_GRID,
    RIDGE_SCALES,
    TUNE_MIN_REPEATS,
    LinearMap,
    ProtocolResult,
    RegressionOptions,
    backward_error,
    box_diagonal,
    choose_ridge,
    consistency_error,
    detect_all,
    evaluate_detector,
    few_shot_curve,
    fit_linear_map,
    forward_error,
    gram_scale,
    inter_ocular_distance,
    mean_shape_error,
    normalised_errors,
    normaliser_distance,
    regressor_count,
    tune_forward_error,
    tune_val_error,
    tune_positions,
)
from .rescore import Detections
from .statistics import (FAILURE_THRESHOLD, bootstrap_interval, cumulative_error_distribution, failure_rate,
                         kendall_tau, paired_difference, paired_difference_over_seeds, ranking,
                         ranking_changes)

__all__ = [
    "CONSISTENCY_WARPS", "Detections", "FAILURE_THRESHOLD", "NORMALISERS", "PROTOCOL_VARIANTS", "RIDGE_GRID", "RIDGE_SCALES", "TUNE_MIN_REPEATS", "LinearMap",
    "ProtocolResult", "RegressionOptions", "backward_error", "box_diagonal", "choose_ridge",
    "consistency_error", "detect_all", "evaluate_detector", "few_shot_curve", "fit_linear_map",
    "forward_error", "gram_scale", "inter_ocular_distance", "mean_shape_error", "normalised_errors",
    "normaliser_distance", "regressor_count", "tune_forward_error", "tune_val_error", "tune_positions", "bootstrap_interval",
    "cumulative_error_distribution", "failure_rate", "kendall_tau", "paired_difference", "paired_difference_over_seeds", "ranking", "ranking_changes",
]
