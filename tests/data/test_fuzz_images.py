"""Property-based: whatever bytes a file with an image extension holds, loading returns an RGB image or raises
ImageLoadError with a reason, never anything else."""

import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from unsup3d.data import ImageLoadError, load_image, resize_square, to_tensor

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"BM", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"GIF89a"]
MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"]


def valid_image_bytes(mode: str, width: int, height: int, fmt: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    elif mode in ("I", "F"):
        image = image.convert(mode)
    else:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def check_load(path, intact_size: tuple[int, int] | None = None) -> None:
    """Load ``path``; an image given its ``intact_size`` (width, height) must load, at that size."""
    try:
        image = load_image(path)
    except ImageLoadError as error:
        assert intact_size is None, f"an intact image failed to load: {error}"
        assert error.reason and error.path == path
        return
    assert image.mode == "RGB" and min(image.size) >= 1
    if intact_size is not None:
        assert image.size == intact_size
    tensor = to_tensor(resize_square(image, 8))
    assert tensor.shape == (3, 8, 8) and 0 <= float(tensor.min()) <= float(tensor.max()) <= 1


@SETTINGS
@given(magic=st.sampled_from(MAGIC), body=st.binary(max_size=300), suffix=st.sampled_from([".png", ".jpg", ".bmp"]))
def test_random_bytes(tmp_path, magic, body, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(magic + body)
    check_load(path)


@SETTINGS
@given(
    mode=st.sampled_from(MODES),
    width=st.integers(1, 24),
    height=st.integers(1, 24),
    fmt=st.sampled_from(["PNG", "TIFF", "BMP", "JPEG", "WEBP"]),
    seed=st.integers(0, 1000),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.integers(0, 10_000), max_size=4),
)
def test_valid_damaged_and_truncated_images(tmp_path, mode, width, height, fmt, seed, cut, flips):
    try:
        data = bytearray(valid_image_bytes(mode, width, height, fmt, seed))
    except (OSError, ValueError, KeyError):
        return  # this format cannot store this mode: nothing to load
    path = tmp_path / "image.png"
    path.write_bytes(bytes(data))
    check_load(path, intact_size=(width, height))  # every mode a format can store must load back
    for position in flips:
        data[position % len(data)] ^= 0xFF
    path.write_bytes(bytes(data[: max(1, int(len(data) * cut))]))
    check_load(path)
