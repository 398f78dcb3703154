"""Figures, tables and widgets shared by the chapters: ``basics`` (drawing helpers and widgets
that work in the static book) and ``figures`` (the chapters' figures built on them)."""
from .basics import (
    POINT_COLOURS,
    STAND_IN_CLASS,
    StandIn,
    code_excerpt,
    figure_png,
    image_grid,
    landmark_colours,
    pair_stack,
    profile_note,
    show_code,
    show_landmarks,
    slider_stack,
    to_hwc,
)
from .figures import (
    checkpoint_scrubber,
    few_shot_plot,
    landmarks_on_instances,
    landmarks_under_warps,
    learning_curves,
    regression_on_faces,
    regressor_graph,
)

__all__ = [
    "POINT_COLOURS", "STAND_IN_CLASS", "StandIn", "checkpoint_scrubber", "code_excerpt", "few_shot_plot", "figure_png",
    "image_grid", "landmark_colours",
    "landmarks_on_instances", "landmarks_under_warps", "learning_curves", "pair_stack", "profile_note",
    "regression_on_faces", "regressor_graph", "show_code", "show_landmarks", "slider_stack", "to_hwc",
]
