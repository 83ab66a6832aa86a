"""Reading image files robustly, finding them in folders, and the crop / resize / tensor transform.

The transform follows the original loader: an optional crop (an int is a centre crop, four ints are
``top, left, height, width``), then PIL's bilinear resize to ``size × size`` (PIL widens the filter when it
shrinks, so the resize is antialiased), then a ``(3, H, W)`` float tensor in [0, 1].
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

__all__ = [
    "ANIMATED_FRAMES",
    "IMAGE_EXTENSIONS",
    "MIN_PHOTO_SIDE",
    "DataError",
    "ImageLoadError",
    "check_photo_size",
    "crop_box",
    "crop_image",
    "find_images",
    "frame_count",
    "iter_frames",
    "load_image",
    "open_image",
    "resize_square",
    "to_rgb",
    "to_tensor",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
"""File suffixes taken as images, compared case-insensitively."""

MAX_PIXELS = 64_000_000
"""Images with more pixels than this are refused before decoding (a decompression bomb, or simply too big to be
a training photo: 8000 × 8000)."""

MIN_PHOTO_SIDE = 16
"""Photos to reconstruct need at least this many pixels on each side (:func:`check_photo_size`). The smallest
model input is 64 × 64: a 16-pixel photo is already blown up 4 ×, and below that the input is a blur of a few
coloured squares with nothing to recover a shape from (the face detector's smallest window is 24 pixels, too).
Training folders keep the original loader's rule: any size is resized."""

ANIMATED_FRAMES = ("first", "all")
"""What to take from an animated image (GIF, WebP, APNG): the first frame only, or every frame as its own photo
(:func:`iter_frames`)."""

BACKGROUND = (255, 255, 255)
"""Colour that transparent pixels are composited onto (white, like a page or a product shot)."""

Crop = int | Sequence[int] | None

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
WIDE_GRAY_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}


class DataError(ValueError):
    """A dataset that cannot be used as a whole: no images found, none readable, no image/depth pairs."""


class ImageLoadError(OSError):
    """An image file that cannot be read or decoded.

    Attributes:
        path: the file.
        reason: what went wrong, in words.
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot load image {self.path}: {reason}")

    def __reduce__(self):  # keep it picklable across DataLoader worker processes
        return (type(self), (self.path, self.reason))


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open an image file and decode all of it, in the file's own mode (no EXIF rotation, no conversion). For an
    animated file this is the first frame.

    Raises:
        ImageLoadError: missing, empty, unreadable, not a file, corrupt or truncated, or more than
            :data:`MAX_PIXELS` pixels (checked from the header, before decoding).
    """
    with _opened(path) as image:
        try:
            image.load()  # decode now: corrupt and truncated data fail here, not later
            return image.copy()
        except Exception as error:  # noqa: BLE001 - decoders fail in many ways (struct.error, IndexError...)
            raise ImageLoadError(path, f"{type(error).__name__}: {error}") from error


@contextlib.contextmanager
def _opened(path: str | os.PathLike) -> Iterator[Image.Image]:
    """The file opened by PIL (header read, pixels not decoded), after the checks of :func:`open_image`."""
    path = Path(path)
    try:
        if not path.is_file():
            reason = "broken symbolic link" if path.is_symlink() else "not a file" if path.exists() else "no such file"
            raise ImageLoadError(path, reason)
        if path.stat().st_size == 0:
            raise ImageLoadError(path, "file is empty (0 bytes)")
        with warnings.catch_warnings():  # PIL warns about large images; the size check below refuses them
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(path)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as error:
        raise ImageLoadError(path, f"image too large: {error}") from error
    except Exception as error:  # noqa: BLE001 - unreadable files and unknown formats fail in many ways
        raise ImageLoadError(path, f"{type(error).__name__}: {error}") from error
    with opened as image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            too_large = f"image too large: {width}x{height} pixels, more than {MAX_PIXELS}"
            raise ImageLoadError(path, f"{too_large} (possible decompression bomb)")
        yield image


def load_image(path: str | os.PathLike) -> Image.Image:
    """Read an image file as an 8-bit RGB PIL image, upright according to its EXIF orientation (the first frame
    of an animated file).

    Any mode is accepted; see :func:`to_rgb` for how each becomes RGB. The pixels stay 8-bit: a 3840 × 2160 photo
    costs 25 MB (briefly a few copies of that while decoding), and no float copy is made before it is resized.

    Raises:
        ImageLoadError: missing, empty, unreadable, corrupt or truncated file, or a mode that cannot become
            RGB.
    """
    return _upright_rgb(open_image(path), path)


def _upright_rgb(image: Image.Image, path: str | os.PathLike) -> Image.Image:
    try:
        image = ImageOps.exif_transpose(image)
        return to_rgb(image)
    except Exception as error:  # noqa: BLE001 - bad EXIF or mode data fails in many ways
        raise ImageLoadError(path, f"{type(error).__name__}: {error}") from error


def frame_count(path: str | os.PathLike) -> int:
    """The number of frames of an image file: 1 for a still image, more for an animated GIF, WebP or PNG.

    Raises:
        ImageLoadError: as :func:`open_image`, or frames that cannot be counted (a damaged animation).
    """
    with _opened(path) as image:
        return _count_frames(image, path)


def _count_frames(image: Image.Image, path: str | os.PathLike) -> int:
    try:
        return max(1, int(getattr(image, "n_frames", 1)))
    except Exception as error:  # noqa: BLE001 - counting seeks through the file, which may be damaged
        raise ImageLoadError(path, f"{type(error).__name__}: {error}") from error


def iter_frames(path: str | os.PathLike) -> Iterator[Image.Image]:
    """Every frame of an image file, in order, as 8-bit RGB PIL images upright by EXIF (one for a still image,
    the same as :func:`load_image`). Frames are decoded one at a time, so a long animation never sits in memory.

    Raises:
        ImageLoadError: the file cannot be opened (before the first frame), or frame ``k`` cannot be decoded: the
            frames before it have been yielded, and the reason starts with ``"frame k: "``.
    """
    with _opened(path) as image:
        for index in range(_count_frames(image, path)):
            try:
                image.seek(index)
                image.load()
                frame = image.copy()  # the composited frame, in its own mode
            except Exception as error:  # noqa: BLE001 - decoders fail in many ways on bad data
                raise ImageLoadError(path, f"frame {index}: {type(error).__name__}: {error}") from error
            yield _upright_rgb(frame, path)


def check_photo_size(image: Image.Image, name: str | os.PathLike, min_side: int = MIN_PHOTO_SIDE) -> Image.Image:
    """``image`` itself if both its sides have at least ``min_side`` pixels (:data:`MIN_PHOTO_SIDE`).

    Raises:
        ImageLoadError: a smaller image; the reason gives its size and the minimum.
    """
    width, height = image.size
    if min(width, height) < min_side:
        reason = f"image too small ({width}×{height} pixels): at least {min_side} pixels on each side are needed"
        raise ImageLoadError(name, reason)
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert a PIL image of any mode to 8-bit RGB.

    - Transparency (RGBA, LA, PA, and palette or RGB/L images with a transparent colour) is composited onto
      white (:data:`BACKGROUND`): transparent photos are usually cut-outs meant for a light page.
    - 16- and 32-bit integer grayscale (``I;16*``, ``I``) is read as 16-bit: scaled by 255 / 65535, rounded.
    - 32-bit float grayscale (``F``) is read as [0, 1], clipped.
    - Everything else (L, 1, P, CMYK, YCbCr, ...) uses PIL's own conversion.
    """
    if image.mode == "RGB" and "transparency" not in image.info:
        return image
    if image.mode in WIDE_GRAY_MODES or image.mode == "F":
        return _wide_gray_to_rgb(image)
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _wide_gray_to_rgb(image: Image.Image) -> Image.Image:
    values = np.asarray(image, dtype=np.float64)  # (H, W)
    top = 1.0 if image.mode == "F" else 65535.0  # F is read as [0, 1], integer modes as 16-bit
    gray = np.clip(values, 0.0, top) * (255.0 / top)
    gray = np.nan_to_num(np.rint(gray), nan=0.0).astype(np.uint8)
    return Image.fromarray(gray).convert("RGB")


def find_images(root: str | os.PathLike) -> list[Path]:
    """All image files under ``root``, recursively, in the original loader's order.

    The order is that of ``sorted(os.walk(root))`` then sorted file names: files are sorted by
    ``(str(parent folder), file name)``. Symbolic links to folders are not followed.

    Args:
        root: a folder.
    Returns:
        Paths of the files whose suffix is in :data:`IMAGE_EXTENSIONS` (any case).
    Raises:
        FileNotFoundError: ``root`` does not exist.
        NotADirectoryError: ``root`` is not a folder.
        DataError: no image files under ``root``.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"image folder does not exist: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder: {root}")
    found = [
        (folder, name)
        for folder, _, names in os.walk(root)
        for name in names
        if Path(name).suffix.lower() in IMAGE_EXTENSIONS
    ]
    if not found:
        raise DataError(f"no images found in {root} (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return [Path(folder) / name for folder, name in sorted(found)]


def crop_image(image: Image.Image, crop: Crop) -> Image.Image:
    """Crop a PIL image: ``None`` keeps it, an int ``c`` takes the centre ``c × c``, four ints are
    ``(top, left, height, width)``. The crop must lie inside the image (no padding).

    Raises:
        ValueError: a malformed crop, or one that does not fit the image.
    """
    if crop is None:
        return image
    top, left, crop_h, crop_w = crop_box(image.size, crop)
    return image.crop((left, top, left + crop_w, top + crop_h))


def crop_box(size: tuple[int, int], crop: Crop) -> tuple[int, int, int, int]:
    """The ``(top, left, height, width)`` that :func:`crop_image` cuts from an image of ``size = (width, height)``
    (the whole image for ``crop=None``).

    Raises:
        ValueError: a malformed crop, or one that does not fit the image.
    """
    width, height = size
    if crop is None:
        return 0, 0, height, width
    if isinstance(crop, int):
        if crop <= 0:
            raise ValueError(f"centre crop size must be positive, got {crop}")
        top, left = int(round((height - crop) / 2.0)), int(round((width - crop) / 2.0))
        box = (top, left, crop, crop)
    else:
        box = tuple(int(c) for c in crop)
        if len(box) != 4:
            raise ValueError(f"crop must be an int or (top, left, height, width), got {crop!r}")
    top, left, crop_h, crop_w = box
    if crop_h <= 0 or crop_w <= 0 or top < 0 or left < 0 or top + crop_h > height or left + crop_w > width:
        raise ValueError(f"crop (top, left, h, w) = {box} does not fit an image of {width}x{height} (w x h)")
    return box


def resize_square(
    image: Image.Image, size: int, crop: Crop = None, resample: int = Image.Resampling.BILINEAR
) -> Image.Image:
    """Optionally crop (see :func:`crop_image`), then resize to ``size × size``.

    Args:
        image: PIL image of any mode PIL can resize (RGB, L, F, ...).
        size: output side in pixels.
        crop: ``None``, an int (centre crop) or ``(top, left, height, width)``.
        resample: PIL filter; bilinear by default, antialiased when shrinking as in the original.
    Returns:
        PIL image of ``size × size``.
    """
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    image = crop_image(image, crop)
    if image.size == (size, size):
        return image
    return image.resize((size, size), resample=resample)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB PIL image (H × W) as a (3, H, W) float32 tensor in [0, 1]."""
    if image.mode != "RGB":
        raise ValueError(f"expected an RGB image, got mode {image.mode}; use load_image or to_rgb first")
    array = np.asarray(image, dtype=np.uint8)  # (H, W, 3)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous().float().div_(255.0)
