"""Geometry: coordinate conventions, soft-argmax, map moments, heatmaps and warps (kornia-style small ops)."""
from . import draws
from .draws import batch_shard
from .coords import normalized_to_pixels, pixel_centres, pixels_to_normalized
from .heatmaps import gaussian_densities, gaussian_heatmaps, squared_distance_maps
from .moments import landmark_statistics, map_grid_and_unit
from .softargmax import expected_coordinates, marginal_soft_argmax, soft_argmax, spatial_softmax
from .warps import (
    AffineWarp,
    ComposedWarp,
    TPSWarp,
    Warp,
    WarpedPair,
    WarpSpec,
    crop_warp,
    random_similarity,
    random_tps,
    regular_grid,
    synthesize_pair,
    warp_image,
)

__all__ = [
    "AffineWarp", "batch_shard", "ComposedWarp", "draws", "crop_warp", "TPSWarp", "Warp", "WarpedPair", "WarpSpec",
    "expected_coordinates", "gaussian_densities", "gaussian_heatmaps", "landmark_statistics",
    "map_grid_and_unit", "marginal_soft_argmax", "normalized_to_pixels", "pixel_centres",
    "pixels_to_normalized", "random_similarity", "random_tps", "regular_grid", "soft_argmax",
    "spatial_softmax", "squared_distance_maps", "synthesize_pair", "warp_image",
]
