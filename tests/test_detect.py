"""LandmarkMethod.detect: landmarks found in the method's view come back in full-image coordinates."""
import pytest
import torch
from torch import nn

from lmcore.geometry import gaussian_heatmaps, normalized_to_pixels, pixels_to_normalized, soft_argmax
from lmcore.methods.base import LandmarkMethod


class BrightestBlob(LandmarkMethod):
    """One landmark: the soft-argmax of the image's brightness, sharp enough to sit on the brightest blob."""

    name = "brightest-blob"

    def __init__(self, config):
        super().__init__(config)
        self.unused = nn.Parameter(torch.zeros(1))  # detect() finds the device from the parameters

    def landmarks(self, view_images):
        return soft_argmax(view_images.mean(1, keepdim=True), temperature=0.02)[0]


def _blob_images(centres_px, width, height, std_px=2.5):
    """``B x 3 x H x W`` in [0, 1]: one bright Gaussian blob per image at the given pixel position."""
    centres = pixels_to_normalized(torch.tensor(centres_px, dtype=torch.float32)[:, None], (width, height))
    # gaussian_heatmaps takes one isotropic std for both axes: render on a square canvas and crop
    side = max(width, height)
    centres_square = pixels_to_normalized(normalized_to_pixels(centres, (width, height)), side)
    blobs = gaussian_heatmaps(centres_square, side, side, std=2 * std_px / side)[:, :, :height, :width]
    return blobs.expand(-1, 3, -1, -1).contiguous(), centres[:, 0]


# (W, H) of the full image; centres in pixels, off-centre, different in x and y, inside the 0.6 view
@pytest.mark.parametrize("width, height, centres_px", [
    (96, 96, [(62.0, 35.5), (30.25, 58.0)]),
    (120, 90, [(79.0, 30.0), (44.5, 61.0)]),
])
def test_detect_maps_view_coordinates_back_to_the_full_image(width, height, centres_px):
    method = BrightestBlob({"method": {"view_crop": 0.6, "view_size": 40, "num_landmarks": 1}})
    images, truth = _blob_images(centres_px, width, height)

    method.train()
    detected = method.detect(images)
    assert method.training  # detect() puts the method back in the mode it found it in

    assert detected.shape == (2, 1, 2)
    # 0.02 normalised is under a pixel of the full image (1 px = 2 / 96 = 0.021)
    assert torch.allclose(detected[:, 0], truth, atol=0.02), (detected[:, 0], truth)
    in_pixels = normalized_to_pixels(detected[:, 0], (width, height))
    assert torch.allclose(in_pixels, torch.tensor(centres_px), atol=1.0)

    # the view really is a zoom: the same blob sits at truth / 0.6 in view coordinates, so returning
    # view coordinates unmapped would be off by 0.4 * |truth| (at least 0.1 here)
    in_view = method.landmarks(method.to_view(images))[:, 0]
    assert method.to_view(images).shape == (2, 3, 40, 40)
    assert torch.allclose(in_view, truth / 0.6, atol=0.03)
    assert ((in_view - truth).abs().amax(-1) > 0.1).all()
