"""Cropping photos in the wild to the square the model was trained on: detect, square up, pad, resize.

The pretrained models saw tightly cropped, roughly centred faces (or cat faces). A photo in the wild is first
searched for one with OpenCV's Haar cascades (the ``crop`` extra, ``opencv-python-headless<5``), then cut to
the original demo's square (``demo/demo.py``, which used an MTCNN detector instead):

- the detection box ``(x, y, w, h)`` gives the half-size ``c = 1.1 · (w + h) / 4`` (1.1 × the mean side, halved);
- the square's centre is the box centre moved down by ``0.15 c``: ``(x + w / 2, y + h / 2 + 0.15 c)``, which
  keeps the chin in;
- where the ``2c × 2c`` square leaves the photo, border pixels are replicated (edge padding), as the demo did;
- the square is resized to ``size × size`` with an antialiased filter (:func:`resize_antialiased`).

The cascades find frontal faces that lie wholly inside the photo, with some margin. Close-ups whose face fills
the frame (scikit-image's ``chelsea``, with the ears cut off, finds no cat face) are not found: crop those with
``kind="none"``, since they are already framed like the training images.

Frames and units: boxes, centres and half-sizes are in pixels of the full-resolution photo, in PIL's and
OpenCV's *edge* frame: x right, y down, pixel ``(i, j)`` covers ``[i, i + 1) × [j, j + 1)``, so the photo spans
``[0, W] × [0, H]`` and a box ``(x, y, w, h)`` covers ``[x, x + w] × [y, y + h]``.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

from unsup3d.data.images import resize_square, to_rgb
from unsup3d.extras import require

__all__ = [
    "CROP_FALLBACKS",
    "CROP_KINDS",
    "NoDetectionError",
    "crop_photo",
    "crop_square",
    "detect",
    "resize_antialiased",
    "square_box",
]

Box = tuple[float, float, float, float]

CROP_KINDS = ("face", "cat", "none")
"""What :func:`crop_photo` looks for: a human face, a cat's face, or nothing (the whole photo is resized)."""

CROP_FALLBACKS = ("skip", "none")
"""What :func:`crop_photo` does when nothing is found: raise :class:`NoDetectionError` (the caller skips the
photo), or process the whole photo uncropped."""

CASCADES: dict[str, tuple[str, ...]] = {
    "face": ("haarcascade_frontalface_default.xml",),
    "cat": ("haarcascade_frontalcatface.xml", "haarcascade_frontalcatface_extended.xml"),
}
"""Haar cascade files (in ``cv2.data.haarcascades``) for each kind, tried in order until one finds something."""

DETECT_MAX_SIDE = 640
"""Photos are searched at most this many pixels on their longest side (downscaled for speed); boxes are mapped
back to full resolution."""

SCALE_FACTOR = 1.1
"""Step between the cascade's search scales (``detectMultiScale(scaleFactor=...)``)."""

MIN_NEIGHBORS = 5
"""Overlapping raw hits needed to keep a detection (``detectMultiScale(minNeighbors=...)``); fewer gives more
false positives."""

MIN_SIZE_FRACTION = 0.08
"""Smallest box searched, as a fraction of the photo's shorter side (and never under the cascades' 24 pixels).
Smaller faces would give crops too coarse to reconstruct, and the smallest windows are where most of the search
time goes (on a 512 × 512 photo, 41 pixels instead of 24 saves about a third)."""

_NOUNS = {"face": "face", "cat": "cat face"}
_DETECT_LOCK = threading.Lock()  # one detectMultiScale at a time: a shared classifier is not documented thread-safe


class NoDetectionError(ValueError):
    """No face (or cat face) was found in a photo.

    Attributes:
        name: the photo, as named in the message (usually its file name).
        kind: ``"face"`` or ``"cat"``.
    """

    def __init__(self, name: str, kind: str):
        self.name = str(name)
        self.kind = kind
        noun = _NOUNS.get(kind, kind)
        super().__init__(
            f"no {noun} found in {self.name} (try --crop none, or --crop-fallback none to process it uncropped)"
        )

    def __reduce__(self):  # picklable with its arguments, like ImageLoadError
        return (type(self), (self.name, self.kind))


def _cv2() -> ModuleType:
    return require("cv2", "Face and cat cropping (--crop)")


@functools.lru_cache(maxsize=8)
def _cascade(filename: str):
    """The OpenCV cascade classifier in ``cv2.data.haarcascades/filename``, loaded once."""
    cv2 = _cv2()
    path = Path(cv2.data.haarcascades) / filename
    classifier = cv2.CascadeClassifier(str(path))
    if classifier.empty():
        raise RuntimeError(f"cannot load the OpenCV cascade {path}; opencv-python-headless<5 ships it")
    return classifier


def _detection_image(image: Image.Image) -> tuple[np.ndarray, float, float]:
    """A grayscale, histogram-equalised copy of ``image`` no longer than :data:`DETECT_MAX_SIDE`.

    Returns:
        ``(gray, sx, sy)``: uint8 ``(h, w)`` array, and its width and height over the full image's (≤ 1).
    """
    gray = to_rgb(image).convert("L")
    width, height = gray.size
    scale = min(1.0, DETECT_MAX_SIDE / max(width, height))
    if scale < 1.0:
        small = (max(1, round(width * scale)), max(1, round(height * scale)))
        gray = gray.resize(small, Image.Resampling.BOX)  # area average: antialiased and fast
    equalised = _cv2().equalizeHist(np.asarray(gray, dtype=np.uint8))
    return equalised, gray.size[0] / width, gray.size[1] / height


def detect(image: Image.Image, kind: str) -> Box | None:
    """The largest face (``kind="face"``) or cat face (``kind="cat"``) in ``image``, by box area.

    Args:
        image: PIL image of any mode, W × H pixels.
        kind: ``"face"`` or ``"cat"``; cat photos try each cascade of :data:`CASCADES` in turn.
    Returns:
        ``(x, y, w, h)`` in full-resolution pixels (edge frame, see the module doc), or ``None`` if nothing found.
    Raises:
        ValueError: ``kind`` is not ``"face"`` or ``"cat"``.
        unsup3d.extras.MissingExtraError: OpenCV (the ``crop`` extra) is not installed.
    """
    if kind not in CASCADES:
        raise ValueError(f"detect kind must be one of {tuple(CASCADES)}, got {kind!r}")
    gray, sx, sy = _detection_image(image)
    min_side = max(24, round(MIN_SIZE_FRACTION * min(gray.shape)))
    for filename in CASCADES[kind]:
        with _DETECT_LOCK:
            found = _cascade(filename).detectMultiScale(
                gray, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBORS, minSize=(min_side, min_side)
            )  # (N, 4) int array of (x, y, w, h), or an empty tuple
        if len(found):
            x, y, w, h = max(np.asarray(found).tolist(), key=lambda b: b[2] * b[3])
            return (x / sx, y / sy, w / sx, h / sy)
    return None


def square_box(box: Box, enlarge: float = 1.1, shift: float = 0.15) -> tuple[float, float, float]:
    """The original demo's crop square around a detection box.

    Args:
        box: ``(x, y, w, h)`` in pixels (edge frame).
        enlarge: half-size over half the box's mean side.
        shift: downward shift of the centre, as a fraction of the half-size.
    Returns:
        ``(cx, cy, half)``: ``half = enlarge · (w + h) / 4``, ``cx = x + w / 2``, ``cy = y + h / 2 + shift · half``,
        in pixels.
    """
    x, y, w, h = (float(v) for v in box)
    if w <= 0 or h <= 0:
        raise ValueError(f"box width and height must be positive, got {box}")
    half = enlarge * (w + h) / 4.0
    return (x + w / 2.0, y + h / 2.0 + shift * half, half)


def crop_square(image: Image.Image, cx: float, cy: float, half: float) -> Image.Image:
    """The square of side ``n = round(2 · half)`` centred on ``(cx, cy)``, edge-padded where it leaves ``image``.

    The square's left column is ``round(cx - n / 2)`` and its top row ``round(cy - n / 2)`` (edge frame). Pixels
    outside the image take the value of the nearest border pixel, exactly as ``np.pad(..., mode="edge")``; only
    the part of the image under the square is converted to an array, so huge photos stay cheap.

    Args:
        image: PIL image of mode L, RGB, RGBA, I or F, W × H pixels.
        cx, cy, half: centre and half-size in pixels (``half > 0``).
    Returns:
        PIL image of ``n × n`` pixels and the same mode.
    """
    if image.mode not in {"L", "RGB", "RGBA", "I", "F"}:
        raise ValueError(f"crop_square takes L, RGB, RGBA, I or F images, got mode {image.mode}")
    if not half > 0:
        raise ValueError(f"half-size must be positive, got {half}")
    side = max(1, round(2.0 * half))
    left, top = round(cx - side / 2.0), round(cy - side / 2.0)
    width, height = image.size
    cols = np.clip(np.arange(left, left + side), 0, width - 1)  # (n,) source column of each output column
    rows = np.clip(np.arange(top, top + side), 0, height - 1)  # (n,)
    x0, y0 = int(cols[0]), int(rows[0])
    region = np.asarray(image.crop((x0, y0, int(cols[-1]) + 1, int(rows[-1]) + 1)))  # (h', w'[, C])
    square = region[rows - y0][:, cols - x0]  # (n, n[, C])
    return Image.fromarray(np.ascontiguousarray(square)).convert(image.mode)


def resize_antialiased(image: Image.Image, size: int) -> Image.Image:
    """Resize ``image`` to ``size × size`` with PIL's bilinear filter, antialiased.

    PIL widens its bilinear (triangle) filter by the reduction factor when shrinking, so every source pixel
    contributes and fine detail averages out instead of aliasing (unlike ``F.interpolate``, which the original
    demo used with an intermediate 128-pixel step to limit aliasing). It is the filter of the training data
    loader (:func:`unsup3d.data.images.resize_square`), so crops here look like the images the model was trained
    on. No ``reducing_gap`` shortcut: the filter is exact, and a face crop is rarely large enough for it to matter.

    Args:
        image: PIL image, any size and mode PIL resizes.
        size: output side in pixels (> 0).
    Returns:
        PIL image of ``size × size``.
    """
    return resize_square(image, size, resample=Image.Resampling.BILINEAR)


def crop_photo(image: Image.Image, kind: str, size: int, fallback: str = "skip", name: str = "image") -> Image.Image:
    """A photo in the wild as the model's ``size × size`` RGB input.

    Args:
        image: PIL image of any mode (converted to RGB, transparency onto white), W × H pixels.
        kind: one of :data:`CROP_KINDS`; ``"none"`` resizes the whole photo (aspect ratio not kept).
        size: output side in pixels.
        fallback: one of :data:`CROP_FALLBACKS`, used when nothing is detected.
        name: how the photo is named in :class:`NoDetectionError` (e.g. its file name).
    Returns:
        RGB PIL image of ``size × size``.
    Raises:
        NoDetectionError: nothing detected and ``fallback="skip"``.
        ValueError: unknown ``kind`` or ``fallback``, or ``size ≤ 0``.
        unsup3d.extras.MissingExtraError: ``kind`` is ``"face"`` or ``"cat"`` and OpenCV is not installed.
    """
    if kind not in CROP_KINDS:
        raise ValueError(f"crop kind must be one of {CROP_KINDS}, got {kind!r}")
    if fallback not in CROP_FALLBACKS:
        raise ValueError(f"crop fallback must be one of {CROP_FALLBACKS}, got {fallback!r}")
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    image = to_rgb(image)
    if kind == "none":
        return resize_antialiased(image, size)
    box = detect(image, kind)
    if box is None:
        if fallback == "skip":
            raise NoDetectionError(name, kind)
        return resize_antialiased(image, size)
    return resize_antialiased(crop_square(image, *square_box(box)), size)
