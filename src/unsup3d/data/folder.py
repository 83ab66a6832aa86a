"""A dataset over a folder of images of one category."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from unsup3d.data.images import Crop, DataError, ImageLoadError, find_images, load_image, resize_square, to_tensor

__all__ = ["ImageFolderDataset"]

logger = logging.getLogger(__name__)


class ImageFolderDataset(Dataset):
    """Every image under ``root`` (recursively, see :func:`unsup3d.data.images.find_images`).

    Each item is ``{"image": (3, S, S) float32 in [0, 1], "index": int}``: the file is read as RGB (EXIF
    orientation applied), cropped (``crop``: None, an int for a centre crop, or ``(top, left, h, w)``) and
    resized bilinearly to ``S = image_size``. Random flips are the trainer's (a function of seed and iteration,
    so resumed runs repeat them), not the dataset's.

    Unreadable files:
        - :meth:`scan` reads every file once, drops the ones that fail and records them in ``skipped`` as
          ``(path, reason)``. Call it before training to know up front what is left out.
        - Without a scan, or if a file fails later anyway, ``__getitem__`` does not raise: it logs a warning
          and returns the next readable file instead (wrapping around); ``"index"`` is then that file's index.
          It raises only when no file at all can be read.
    """

    def __init__(self, root: str | os.PathLike, image_size: int = 64, crop: Crop = None) -> None:
        if image_size <= 0:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.root = Path(root)
        self.paths: list[Path] = find_images(self.root)
        self.image_size = image_size
        self.crop = crop
        self.skipped: list[tuple[Path, str]] = []
        self._failed: set[int] = set()  # indices that failed in this process, not retried

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> torch.Tensor:
        """The (3, S, S) image at ``index``, without flip. Raises :class:`ImageLoadError` if unreadable."""
        path = self.paths[index]
        try:
            image = resize_square(load_image(path), self.image_size, self.crop)
        except ValueError as error:  # a crop that does not fit this file
            raise ImageLoadError(path, str(error)) from error
        return to_tensor(image)

    def scan(self, progress: bool = False) -> list[tuple[Path, str]]:
        """Try every file once; keep the readable ones and record the others.

        Args:
            progress: show a progress bar (worth it on large folders).
        Returns:
            The files dropped by this scan, as ``(path, reason)``; they are also appended to ``self.skipped``.
        Raises:
            DataError: no file under ``root`` is readable.
        """
        from tqdm.auto import tqdm

        kept, dropped = [], []
        for index, path in enumerate(tqdm(self.paths, desc="checking images", unit="img", disable=not progress)):
            try:
                self.load(index)
                kept.append(path)
            except ImageLoadError as error:
                dropped.append((path, error.reason))
        if dropped:
            logger.warning("skipping %d unreadable image(s) of %d under %s", len(dropped), len(self.paths), self.root)
            for path, reason in dropped:
                logger.info("skipped %s: %s", path, reason)
        if not kept:
            reasons = "; ".join(f"{path.name}: {reason}" for path, reason in dropped[:3])
            raise DataError(f"no readable images in {self.root} ({len(dropped)} file(s) failed, e.g. {reasons})")
        self.paths = kept
        self.skipped.extend(dropped)
        self._failed.clear()
        return dropped

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        index %= len(self)
        for offset in range(len(self)):
            candidate = (index + offset) % len(self)
            if candidate in self._failed:
                continue
            try:
                image = self.load(candidate)
            except ImageLoadError as error:
                self._failed.add(candidate)
                logger.warning("%s; using the next readable image instead", error)
                continue
            return {"image": image, "index": candidate}
        raise RuntimeError(f"no readable image left in {self.root}")
