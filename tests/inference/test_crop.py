"""Cropping photos in the wild: the demo's crop geometry, edge padding, antialiased resize, Haar detection."""

import pickle
import sys

import numpy as np
import pytest
from PIL import Image

from unsup3d.data.images import resize_square
from unsup3d.extras import MissingExtraError
from unsup3d.inference import crop
from unsup3d.inference.crop import (
    CROP_KINDS,
    NoDetectionError,
    crop_photo,
    crop_square,
    detect,
    resize_antialiased,
    square_box,
)

skimage_data = pytest.importorskip("skimage.data")

# Where the astronaut's face is in the 512 × 512 `astronaut` (x0, y0, x1, y1 in pixels, read off the photo): the
# detected box centre must fall inside.
ASTRONAUT_FACE = (185, 85, 265, 150)


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(skimage_data.astronaut())


@pytest.fixture(scope="module")
def astronaut_box(astronaut):
    pytest.importorskip("cv2")
    return detect(astronaut, "face")


@pytest.fixture(scope="module")
def chelsea() -> Image.Image:
    return Image.fromarray(skimage_data.chelsea())


def _gradient(width: int, height: int) -> np.ndarray:
    """A (H, W, 3) uint8 image whose every pixel differs: red = 10·x, green = 10·y, blue = x + y."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([10 * x, 10 * y, x + y], axis=-1).astype(np.uint8)


def _centre_in(box, region) -> bool:
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    return region[0] <= cx <= region[2] and region[1] <= cy <= region[3]


# --- geometry -------------------------------------------------------------------------------------------------


def test_square_box_follows_the_demo_formula():
    cx, cy, half = square_box((10.0, 20.0, 40.0, 60.0))
    assert half == pytest.approx(1.1 * (40 + 60) / 2 / 2)  # 27.5
    assert cx == pytest.approx(10 + 40 / 2)
    assert cy == pytest.approx(20 + 60 / 2 + 0.15 * 27.5)
    assert square_box((0, 0, 10, 10), enlarge=1.0, shift=0.0) == pytest.approx((5.0, 5.0, 5.0))


@pytest.mark.parametrize("box", [(0, 0, 0, 10), (0, 0, 10, -1)])
def test_square_box_rejects_empty_boxes(box):
    with pytest.raises(ValueError, match="positive"):
        square_box(box)


def test_crop_square_inside_the_image_is_a_plain_crop():
    array = _gradient(20, 12)
    out = crop_square(Image.fromarray(array), cx=9.0, cy=6.0, half=3.0)  # columns 6..11, rows 3..8
    assert out.size == (6, 6) and out.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(out), array[3:9, 6:12])


@pytest.mark.parametrize(
    ("cx", "cy", "half"),
    [(0.0, 0.0, 3.0), (7.0, 5.0, 6.0), (6.5, -2.0, 2.5), (30.0, 40.0, 2.0), (-9.0, 2.0, 1.0)],
    ids=["top-left corner", "larger than the image", "above", "far below right", "far left"],
)
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_crop_square_replicates_edges_like_np_pad(cx, cy, half, mode):
    array = _gradient(7, 5)
    if mode == "L":
        array = array[..., 0]
    out = np.asarray(crop_square(Image.fromarray(array), cx, cy, half))
    side = round(2 * half)
    left, top = round(cx - side / 2), round(cy - side / 2)
    pad = 64  # reference: pad the whole image by more than any square leaves it, then slice
    widths = ((pad, pad), (pad, pad)) + (((0, 0),) if array.ndim == 3 else ())
    padded = np.pad(array, widths, mode="edge")
    expected = padded[top + pad : top + pad + side, left + pad : left + pad + side]
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)


def test_crop_square_off_the_corner_repeats_the_corner_pixel():
    array = _gradient(7, 5)
    out = np.asarray(crop_square(Image.fromarray(array), cx=0.0, cy=0.0, half=2.0))  # rows, columns -2..1
    np.testing.assert_array_equal(out[:3, :3], np.broadcast_to(array[0, 0], (3, 3, 3)))  # corner replicated
    np.testing.assert_array_equal(out[0, 2:], array[0, 0:2])  # top row replicated upwards
    np.testing.assert_array_equal(out[2:, 0], array[0:2, 0])  # left column replicated leftwards
    np.testing.assert_array_equal(out[2:, 2:], array[:2, :2])


def test_crop_square_rejects_bad_input():
    with pytest.raises(ValueError, match="half-size"):
        crop_square(Image.new("RGB", (8, 8)), 4, 4, 0.0)
    with pytest.raises(ValueError, match="mode"):
        crop_square(Image.new("P", (8, 8)), 4, 4, 2.0)


# --- resize ---------------------------------------------------------------------------------------------------


def test_resize_antialiased_size_and_no_aliasing():
    y, x = np.mgrid[0:256, 0:384]
    checker = Image.fromarray(((x + y) % 2 * 255).astype(np.uint8))  # one-pixel checkerboard, mean 127.5
    out = np.asarray(resize_antialiased(checker, 16), dtype=np.float64)
    assert out.shape == (16, 16)
    assert np.abs(out - 127.5).max() < 2.0  # averaged to grey everywhere
    aliased = np.asarray(checker.resize((16, 16), Image.Resampling.NEAREST), dtype=np.float64)
    assert np.abs(aliased - 127.5).min() > 100  # what point sampling would give: pure black or white


def test_resize_antialiased_is_the_training_loader_filter(astronaut):
    np.testing.assert_array_equal(
        np.asarray(resize_antialiased(astronaut, 64)), np.asarray(resize_square(astronaut, 64))
    )


# --- detection ------------------------------------------------------------------------------------------------


def test_detect_finds_the_astronauts_face(astronaut_box):
    assert astronaut_box is not None
    assert _centre_in(astronaut_box, ASTRONAUT_FACE), astronaut_box
    assert 60 < astronaut_box[2] < 130 and astronaut_box[2] == astronaut_box[3]  # a face-sized square


def test_detect_maps_boxes_back_to_full_resolution(astronaut, astronaut_box):
    canvas = Image.new("RGB", (1600, 1024), (128, 128, 128))  # searched at 640 × 410: downscaled by 2.5
    canvas.paste(astronaut.resize((1024, 1024), Image.Resampling.BICUBIC), (300, 0))
    big = detect(canvas, "face")
    assert big is not None
    x, y, w, h = astronaut_box
    expected = (2 * x + 300, 2 * y, 2 * w, 2 * h)
    np.testing.assert_allclose(big, expected, atol=0.15 * expected[2])  # within the cascade's scale steps


def test_cat_close_up_is_not_detected(chelsea):
    # The Haar cat cascades need the whole cat face, ears included, inside the photo; `chelsea` is a close-up
    # whose face fills the frame with the ears cut off, and no cascade finds it (padding the photo does not help:
    # only the muzzle is ever found, and only with looser settings than ours).
    pytest.importorskip("cv2")
    with pytest.raises(NoDetectionError, match=r"no cat face found in chelsea\.png"):
        crop_photo(chelsea, "cat", 64, name="chelsea.png")


def test_face_cascade_does_not_fire_on_a_cat(chelsea):
    pytest.importorskip("cv2")
    assert detect(chelsea, "face") is None


def test_detect_finds_nothing_in_a_blank_image():
    pytest.importorskip("cv2")
    assert detect(Image.new("RGB", (300, 200), (90, 90, 90)), "face") is None
    assert detect(Image.new("RGB", (300, 200), (90, 90, 90)), "cat") is None


def test_detect_rejects_other_kinds():
    with pytest.raises(ValueError, match="face"):
        detect(Image.new("RGB", (8, 8)), "none")


# --- crop_photo -----------------------------------------------------------------------------------------------


def test_crop_photo_face_is_detect_square_crop_resize(astronaut, astronaut_box):
    out = crop_photo(astronaut, "face", 64)
    assert out.size == (64, 64) and out.mode == "RGB"
    expected = resize_antialiased(crop_square(astronaut, *square_box(astronaut_box)), 64)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(expected))


def test_crop_photo_none_resizes_the_whole_photo(chelsea):
    out = crop_photo(chelsea.convert("RGBA"), "none", 32)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(resize_square(chelsea, 32)))


def test_crop_photo_without_detection_raises_or_falls_back():
    pytest.importorskip("cv2")
    blank = Image.new("RGB", (120, 90), (200, 180, 160))
    with pytest.raises(NoDetectionError, match=r"no face found in blank\.png .*--crop-fallback none"):
        crop_photo(blank, "face", 64, name="blank.png")
    with pytest.raises(NoDetectionError, match=r"no cat face found in image"):
        crop_photo(blank, "cat", 64)
    out = crop_photo(blank, "face", 64, fallback="none")
    np.testing.assert_array_equal(np.asarray(out), np.asarray(resize_square(blank, 64)))


def test_no_detection_error_is_a_picklable_value_error():
    error = NoDetectionError("photo.jpg", "face")
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.name, copy.kind, str(copy)) == ("photo.jpg", "face", str(error))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"kind": "dog"}, "face', 'cat', 'none"), ({"fallback": "crop"}, "skip', 'none"), ({"size": 0}, "positive")],
)
def test_crop_photo_rejects_bad_arguments(kwargs, match):
    arguments = {"kind": "face", "size": 64, **kwargs}
    with pytest.raises(ValueError, match=match):
        crop_photo(Image.new("RGB", (8, 8)), **arguments)
    assert set(CROP_KINDS) == {"face", "cat", "none"}


def test_missing_opencv_names_the_crop_extra(monkeypatch):
    crop._cascade.cache_clear()
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` now fails as if it were not installed
    try:
        with pytest.raises(MissingExtraError, match=r"unsup3d\[crop\]"):
            detect(Image.new("RGB", (64, 64)), "face")
        with pytest.raises(MissingExtraError, match="opencv-python-headless"):
            crop_photo(Image.new("RGB", (64, 64)), "cat", 64)
        assert crop_photo(Image.new("RGB", (64, 64)), "none", 32).size == (32, 32)  # no OpenCV needed
    finally:
        crop._cascade.cache_clear()
