"""Images paired with ground-truth depth, for evaluation (synface-style test sets).

Layout: ``root/image/<sub>/<name>.<ext>`` and ``root/depth/<sub>/<name'>``, where ``<sub>`` mirrors the image
tree and ``name'`` is the file name with every ``"image"`` replaced by ``"depth"`` (as the original loader).
For each image the depth is looked up in this order:

1. ``<stem'>.npy``: float32 (H, W) depth in the input view, NaN on the background (our synthetic format,
   exact);
2. ``<name'>`` (same suffix as the image), then ``<stem'>.png``: the original's 8-bit PNG, channel 0 ``g`` in
   [0, 1] decoded as ``depth = 1.1 − 0.2 g``.

Background in the PNG format: the original marked it with the far value 1.1 (``g == 0``) and found it at
evaluation time as ``depth_gt < max(depth_gt over the batch)``. Here pixels with ``g == 0`` become NaN as the
file is read, so every depth this dataset returns has a NaN background, whatever its format; for a batch
holding any background pixel this is the same foreground as the original's rule.

Resizing depth: the PNG is cropped and resized exactly as the original did, as an 8-bit RGB image with PIL's
bilinear filter, before decoding (so ``g == 0`` after resizing is the original's background too). A ``.npy``
depth is cropped identically and resized with nearest neighbour, which never mixes NaN into the foreground.
Nothing is flipped (evaluation only).

Images without a depth file are left out, recorded in ``skipped`` and logged. An unreadable file raises
:class:`unsup3d.data.images.ImageLoadError`: an evaluation set should not silently change.

Keypoints (optional, for the keypoint depth correlation of the paper's Table 5): ``root/meta.jsonl`` (as
``unsup3d synth`` writes it), one JSON object per line, ``{"name": <image name as below>, "keypoints": {"uv":
[[u, v], ...], "depth": [...], "visible": [...]}}``: K pixel coordinates in the image file (pixel centres at
integers), the true depth of each keypoint in the input view, and optionally whether each is visible (default:
all). They are used when every paired image has K keypoints (the same K); records without keypoints are
ignored; when only some images have them, none are used and a warning is logged. Crop and resize move them with
the image (``depth`` is unchanged), and a keypoint that ends up outside ``[0, S − 1]²`` is marked not visible.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from unsup3d.data.images import (
    WIDE_GRAY_MODES,
    Crop,
    DataError,
    ImageLoadError,
    crop_box,
    find_images,
    load_image,
    open_image,
    resize_square,
    to_tensor,
)

__all__ = ["PairedDepthDataset", "decode_png_depth", "find_depth_file", "load_keypoints"]

logger = logging.getLogger(__name__)

PNG_NEAR, PNG_RANGE = 0.9, 0.2  # depth = (PNG_NEAR + PNG_RANGE) − PNG_RANGE · g
KEYPOINT_FILE = "meta.jsonl"
Keypoints = tuple[np.ndarray, np.ndarray, np.ndarray]  # uv (K, 2), depth (K,), visible (K,) bool


def find_depth_file(image_path: Path, image_root: Path, depth_root: Path) -> Path | None:
    """The depth file paired with ``image_path`` (see the module docstring), or None if there is none."""
    relative = image_path.relative_to(image_root)
    folder = depth_root / relative.parent
    name = relative.name.replace("image", "depth")
    stem = Path(name).stem
    for candidate in (folder / f"{stem}.npy", folder / name, folder / f"{stem}.png"):
        if candidate.is_file():
            return candidate
    return None


def decode_png_depth(gray: torch.Tensor) -> torch.Tensor:
    """Original PNG depth: (H, W) gray ``g`` in [0, 1] → (H, W) ``1.1 − 0.2 g``, NaN where ``g == 0``."""
    depth = (PNG_NEAR + PNG_RANGE) - PNG_RANGE * gray
    return torch.where(gray > 0, depth, torch.full_like(depth, float("nan")))


def load_keypoints(path: Path, names: list[str]) -> dict[str, Keypoints] | None:
    """Keypoints of the images ``names`` from a meta file (format in the module docstring).

    Returns:
        ``{name: (uv (K, 2) float32, depth (K,) float32, visible (K,) bool)}`` for every name, or None when the
        file is missing, holds no keypoints, or lacks them for some of ``names`` (then a warning is logged).
    Raises:
        DataError: a line that is not JSON, malformed keypoints, or different K between images.
    """
    if not path.is_file():
        return None
    found: dict[str, Keypoints] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            record = json.loads(line) if line.strip() else {}
            if "keypoints" in record:
                found[str(record["name"])] = _parse_keypoints(record["keypoints"])
        except (ValueError, KeyError, TypeError) as error:
            raise DataError(f"{path}, line {number}: bad keypoint record ({error})") from error
    if not found:
        return None
    counts = {len(uv) for uv, _, _ in found.values()}
    if len(counts) > 1:
        raise DataError(f"{path}: images have different numbers of keypoints {sorted(counts)}")
    missing = [name for name in names if name not in found]
    if missing:
        logger.warning("%d of %d image(s) have no keypoints in %s; keypoints not used", len(missing), len(names), path)
        return None
    return {name: found[name] for name in names}


def _parse_keypoints(entry: dict) -> Keypoints:
    uv = np.asarray(entry["uv"], dtype=np.float32)
    depth = np.asarray(entry["depth"], dtype=np.float32)
    visible = np.asarray(entry.get("visible", [True] * len(depth)))
    if uv.ndim != 2 or uv.shape[1] != 2 or depth.shape != (len(uv),) or visible.shape != (len(uv),):
        raise ValueError(
            f"expected uv (K, 2), depth (K,), visible (K,); got {uv.shape}, {depth.shape}, {visible.shape}"
        )
    if visible.dtype != np.bool_:
        raise ValueError(f"visible must hold true/false, got {visible.dtype}")
    return uv, depth, visible


def move_keypoints(uv: np.ndarray, image_size: tuple[int, int], size: int, crop: Crop) -> np.ndarray:
    """(K, 2) pixel coordinates in an image of ``image_size = (width, height)`` → in its crop resized to
    ``size × size`` (pixel centres at integers on both sides: ``u' = (u − left + ½) · size / w − ½``)."""
    top, left, height, width = crop_box(image_size, crop)
    scale = np.array([size / width, size / height], dtype=np.float32)
    return (uv - np.array([left, top], dtype=np.float32) + 0.5) * scale - 0.5


class PairedDepthDataset(Dataset):
    """Images and their ground-truth depth under ``root/image`` and ``root/depth``, with optional keypoints.

    Each item is ``{"image": (3, S, S) float32 in [0, 1], "depth": (S, S) float32 with NaN background,
    "name": str, "index": int}`` where ``S = image_size`` and ``name`` is the image path relative to
    ``root/image`` without its suffix (POSIX separators). ``crop`` (None, int centre crop or
    ``(top, left, h, w)``) applies to image and depth alike; they must have the same size in the files.
    When the set has keypoints (``has_keypoints``, see the module docstring), items also hold ``"keypoints"``
    (K, 2) float32 ``(u, v)`` in the S × S image, ``"keypoint_depth"`` (K,) float32 and ``"keypoint_visible"``
    (K,) bool.
    """

    def __init__(self, root: str | os.PathLike, image_size: int = 64, crop: Crop = None) -> None:
        if image_size <= 0:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.root = Path(root)
        self.image_root, self.depth_root = self.root / "image", self.root / "depth"
        if not self.depth_root.is_dir():
            raise NotADirectoryError(f"depth folder missing: {self.depth_root}")
        self.image_size = image_size
        self.crop = crop
        self.pairs: list[tuple[Path, Path]] = []
        self.skipped: list[tuple[Path, str]] = []
        for image_path in find_images(self.image_root):
            depth_path = find_depth_file(image_path, self.image_root, self.depth_root)
            if depth_path is None:
                self.skipped.append((image_path, "no depth file"))
            else:
                self.pairs.append((image_path, depth_path))
        if self.skipped:
            logger.warning("%d image(s) under %s have no depth file; left out", len(self.skipped), self.image_root)
        if not self.pairs:
            raise DataError(f"no image/depth pairs in {self.root}")
        self.keypoints = load_keypoints(self.root / KEYPOINT_FILE, [self._name(path) for path, _ in self.pairs])

    @property
    def has_keypoints(self) -> bool:
        """Whether every item carries keypoints."""
        return self.keypoints is not None

    def _name(self, image_path: Path) -> str:
        return image_path.relative_to(self.image_root).with_suffix("").as_posix()

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str | int]:
        image_path, depth_path = self.pairs[index]
        image = load_image(image_path)
        try:
            depth = self._load_depth(depth_path, image.size)
        except ValueError as error:
            raise ImageLoadError(depth_path, str(error)) from error
        original_size = image.size
        try:
            image = resize_square(image, self.image_size, self.crop)
        except ValueError as error:
            raise ImageLoadError(image_path, str(error)) from error
        name = self._name(image_path)
        item = {"image": to_tensor(image), "depth": depth, "name": name, "index": index % len(self)}
        if self.keypoints is not None:
            item.update(self._item_keypoints(name, original_size))
        return item

    def _item_keypoints(self, name: str, original_size: tuple[int, int]) -> dict[str, torch.Tensor]:
        uv, depth, visible = self.keypoints[name]
        uv = move_keypoints(uv, original_size, self.image_size, self.crop)
        inside = np.all((uv >= 0) & (uv <= self.image_size - 1), axis=1)
        return {
            "keypoints": torch.from_numpy(uv),
            "keypoint_depth": torch.from_numpy(depth),
            "keypoint_visible": torch.from_numpy(visible & inside),
        }

    def _load_depth(self, path: Path, image_size: tuple[int, int]) -> torch.Tensor:
        """(S, S) float32 depth with NaN background from a .npy or an original-format PNG."""
        if path.suffix.lower() == ".npy":
            return self._load_npy_depth(path, image_size)
        gray = open_image(path)
        if gray.mode in WIDE_GRAY_MODES:
            raise ValueError("16-bit depth PNGs are not a ground-truth format; use 8-bit PNG or .npy")
        _check_size(gray.size, image_size)
        gray = resize_square(gray.convert("RGB"), self.image_size, self.crop)  # as the original, bilinear
        channel = torch.from_numpy(np.asarray(gray, dtype=np.uint8)[:, :, 0].copy())
        return decode_png_depth(channel.float() / 255.0)

    def _load_npy_depth(self, path: Path, image_size: tuple[int, int]) -> torch.Tensor:
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            raise ImageLoadError(path, f"{type(error).__name__}: {error}") from error
        if array.ndim != 2 or not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"depth .npy must be a 2-D float array, got {array.dtype} {array.shape}")
        _check_size((array.shape[1], array.shape[0]), image_size)
        depth = Image.fromarray(array.astype(np.float32))  # mode F
        depth = resize_square(depth, self.image_size, self.crop, resample=Image.Resampling.NEAREST)
        return torch.from_numpy(np.asarray(depth, dtype=np.float32).copy())


def _check_size(depth_size: tuple[int, int], image_size: tuple[int, int]) -> None:
    """Both (width, height); the crop only means the same thing on both if they match."""
    if depth_size != image_size:
        raise ValueError(f"depth is {depth_size[0]}x{depth_size[1]} but its image is {image_size[0]}x{image_size[1]}")
