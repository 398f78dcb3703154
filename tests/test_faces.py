"""lmcore.faces (the face finder, the crop, the photo detector) and lmcore.placed_faces (the whole
pipeline scored on MTFL-80 faces placed in larger photos)."""
import re

import matplotlib.cbook
import numpy as np
import pytest
from PIL import Image

from lmcore import faces, zoo
from lmcore.training.run_record import RunRecord
from lmcore.placed_faces import (PlacedFaces, calibrate_crop, cut_crops, find_placed, match_face, model_errors,
                                 placed_photos, placed_quality)

GRACE_HOPPER = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)  # a portrait, shoulders and flag
NO_FACE_PHOTO = matplotlib.cbook.get_sample_data("Minduka_Present_Blue_Pack.png", asfileobj=False)  # a gift box


@pytest.fixture(scope="module")
def finder():
    return faces.FaceFinder()


@pytest.fixture(scope="module")
def quality(finder):
    """The pipeline on 16 test_mtfl faces placed in photos (placed, found and scored once, for the
    tests of the placement and of the quality table)."""
    return placed_quality(["zhang/k10"], count=16, seed=4, finder=finder)


def test_a_crop_maps_its_points_back_to_the_photo():
    """A point drawn in the photo is found in the 80 px crop where crop_to_photo sends it back."""
    photo = np.zeros((300, 400, 3), dtype=np.uint8)
    photo[148:153, 248:253] = 255  # a bright 5 px square centred on (250, 150)
    square = faces.crop_square((200.0, 100.0, 300.0, 220.0))
    crop = faces.crop_face(Image.fromarray(photo), square).mean(-1)
    y, x = np.unravel_index(np.argmax(crop), crop.shape)
    back = faces.crop_to_photo(np.array([[x + 0.5, y + 0.5]]), square)[0]
    assert np.abs(back - [250.5, 150.5]).max() < faces.pixel_square(square)[2] / 80  # within one crop pixel


def test_the_crop_is_the_boxs_centre_grown_by_the_calibrated_scale():
    left, top, side = faces.crop_square((100.0, 50.0, 200.0, 170.0))  # 100 x 120: size 110
    assert side == pytest.approx(110 * faces.CROP_SCALE)
    assert left + side / 2 == pytest.approx(150 + faces.CROP_SHIFT[0] * 110)
    assert top + side / 2 == pytest.approx(110 + faces.CROP_SHIFT[1] * 110)


def test_the_crop_framing_is_what_the_calibration_measures(finder):
    """CROP_SCALE and CROP_SHIFT came from 400 placed regressor_train faces; other faces of the same
    split, placed anew, give the same numbers (the scale to 5 %: MTFL-80 has two framings, and the
    share of each in 40 faces moves the mean a little)."""
    placed = placed_photos("regressor_train", 40, seed=5)
    matches, _ = find_placed(placed, finder)
    measured = calibrate_crop(placed, matches)
    assert measured["faces"] >= 38
    assert measured["scale"] == pytest.approx(faces.CROP_SCALE, rel=0.05)
    assert np.allclose(measured["shift"], faces.CROP_SHIFT, atol=0.05)


def test_a_placed_face_is_matched_by_the_box_around_it_and_not_by_others():
    points = np.array([[40.0, 40], [60, 40], [50, 50], [42, 60], [58, 60]])  # IOD 20, centre (50, 50)
    found = [faces.FoundFace((0.0, 0.0, 200.0, 200.0), 0.99, None),  # holds the centre but 10 IODs wide
             faces.FoundFace((60.0, 30.0, 100.0, 70.0), 0.99, None),  # the right size, beside the face
             faces.FoundFace((28.0, 26.0, 72.0, 74.0), 0.95, None)]
    assert match_face(found, points) is found[2]
    assert match_face(found[:2], points) is None


def test_placed_photos_put_each_face_where_its_points_say(quality):
    """Cut at the square where it was pasted, a face gives the detector what its own crop gave:
    the placement, the crop and the mapping back to the photo agree."""
    placed, matches = quality.placed, quality.matches
    assert isinstance(placed, PlacedFaces) and placed.photos.shape == (16, 320, 320, 3)
    assert placed.photos.tobytes() == placed_photos("test_mtfl", 16, seed=4).photos.tobytes()  # deterministic in its seed
    errors = model_errors(zoo.load_detector("zhang/k10"), placed, cut_crops(placed, matches))
    assert abs(errors["exact square"] - errors["crop"]).mean() < 0.5
    assert np.isfinite(errors["pipeline"]).sum() == sum(m is not None for m in matches) >= 15


def test_the_quality_table_sets_the_pipeline_beside_the_crops_and_the_baselines(quality):
    table = quality.table
    assert list(table.index) == ["zhang/k10", "mean shape", "MTCNN's own 5 points"]
    assert table["faces found"].iloc[0] >= 0.9
    zhang, mean_shape = table.loc["zhang/k10"], table.loc["mean shape"]
    assert zhang["pipeline, found faces"] < mean_shape["pipeline, found faces"] - 5
    supervised = RunRecord.from_file(zoo.record_path("supervised/reference"))["metrics"]["forward"]["test_mtfl"]["mean"]
    assert quality.supervised == supervised
    assert zhang["pipeline - supervised"] == pytest.approx(zhang["pipeline, found faces"] - supervised)


def test_a_portrait_gets_its_points_inside_the_face_and_a_gift_box_none():
    """Grace Hopper's portrait (matplotlib's sample data) shows her shoulders, a flag and a cap: one
    face, and its eyes above its nose above its mouth, inside the finder's box."""
    detector = zoo.load("zhang/k10")
    found = detector(GRACE_HOPPER)
    assert len(found) == 1
    face = found[0]
    left, top, right, bottom = face.box
    eyes, nose, mouth = face.points[:2], face.points[2], face.points[3:]
    assert ((face.points >= [left, top]) & (face.points <= [right, bottom])).all()
    assert eyes[0, 0] < eyes[1, 0] and mouth[0, 0] < mouth[1, 0]
    assert eyes[:, 1].max() < nose[1] < mouth[:, 1].min()
    assert detector(NO_FACE_PHOTO) == []


@pytest.mark.parametrize("image, says", [
    (np.zeros((10, 10, 2), dtype=np.uint8), "H x W"),
    (np.full((10, 10, 3), 2.0), "in [0, 1]"),
    (np.zeros((10, 10, 3), dtype=np.int64), "uint8 or float"),
    (Image.new("I;16", (10, 10)), "unsupported image mode"),
])
def test_an_image_that_is_not_a_photo_is_refused_in_one_line(image, says):
    with pytest.raises(faces.PhotoError, match=re.escape(says)):
        faces.as_photo(image)
