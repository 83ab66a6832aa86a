"""A dataset over a folder of images of one category, and a seeded DataLoader for it."""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from unsup3d.data.images import Crop, DataError, ImageLoadError, find_images, load_image, resize_square, to_tensor

__all__ = ["ImageFolderDataset", "make_loader", "seed_worker"]

logger = logging.getLogger(__name__)


class ImageFolderDataset(Dataset):
    """Every image under ``root`` (recursively, see :func:`unsup3d.data.images.find_images`).

    Each item is ``{"image": (3, S, S) float32 in [0, 1], "index": int}``: the file is read as RGB (EXIF
    orientation applied), cropped (``crop``: None, an int for a centre crop, or ``(top, left, h, w)``),
    resized bilinearly to ``S = image_size`` and, when ``hflip``, mirrored left-right with probability 0.5.
    The flip draws from torch's global RNG, which DataLoader seeds per worker, so a seeded
    :func:`make_loader` repeats its flips (with ``num_workers=0`` they follow ``torch.manual_seed``).

    Unreadable files:
        - :meth:`scan` reads every file once, drops the ones that fail and records them in ``skipped`` as
          ``(path, reason)``. Call it before training to know up front what is left out.
        - Without a scan, or if a file fails later anyway, ``__getitem__`` does not raise: it logs a warning
          and returns the next readable file instead (wrapping around); ``"index"`` is then that file's index.
          It raises only when no file at all can be read.
    """

    def __init__(self, root: str | os.PathLike, image_size: int = 64, crop: Crop = None, hflip: bool = False) -> None:
        if image_size <= 0:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.root = Path(root)
        self.paths: list[Path] = find_images(self.root)
        self.image_size = image_size
        self.crop = crop
        self.hflip = hflip
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
            if self.hflip and torch.rand(()) < 0.5:
                image = image.flip(-1)
            return {"image": image, "index": candidate}
        raise RuntimeError(f"no readable image left in {self.root}")


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed Python's and NumPy's RNGs from the worker's torch seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    num_workers: int = 0,
    seed: int = 0,
    drop_last: bool = False,
    pin_memory: bool | None = None,
) -> DataLoader:
    """A DataLoader whose order and per-worker RNGs follow ``seed``.

    Its own ``torch.Generator`` seeded with ``seed`` drives the shuffle and the workers' base seed, and
    :func:`seed_worker` seeds NumPy and ``random`` in each worker. ``pin_memory`` defaults to whether CUDA
    is available.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        drop_last=drop_last,
        generator=generator,
        worker_init_fn=seed_worker,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
    )
