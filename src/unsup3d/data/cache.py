"""A preprocessed cache of a training folder: every readable image decoded, cropped and resized once into one
memory-mapped ``uint8`` array, so that large folders do not pay JPEG decoding and resizing every epoch.

``<cache_dir>/images_<S>.npy`` holds ``(N, S, S, 3)`` uint8 pixels (what :func:`unsup3d.data.images.to_tensor`
would see); ``images_<S>.json`` beside it lists the source files with their sizes and modification times, the
image size and the crop. :func:`open_cache` reuses the cache only when all of these still match, and otherwise
rebuilds it (written to a temporary name and renamed, so an interrupted build leaves no half cache).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from unsup3d.data.folder import ImageFolderDataset

__all__ = ["CachedImageDataset", "open_cache"]

log = logging.getLogger(__name__)


class CachedImageDataset(Dataset):
    """Items ``{"image": (3, S, S) float32 in [0, 1], "index": int}`` read from a memory-mapped cache.

    Bitwise equal to the :class:`ImageFolderDataset` it was built from (without flips).
    """

    def __init__(self, array_path: str | os.PathLike) -> None:
        self.pixels = np.load(array_path, mmap_mode="r")  # (N, S, S, 3) uint8
        if self.pixels.ndim != 4 or self.pixels.shape[-1] != 3 or self.pixels.dtype != np.uint8:
            raise ValueError(f"{array_path} is not an image cache: {self.pixels.dtype} {self.pixels.shape}")

    def __len__(self) -> int:
        return self.pixels.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        pixels = torch.from_numpy(np.array(self.pixels[index]))  # (S, S, 3) copy out of the map
        return {"image": pixels.permute(2, 0, 1).float().div_(255.0), "index": index}


def open_cache(dataset: ImageFolderDataset, cache_dir: str | os.PathLike, progress: bool = False) -> CachedImageDataset:
    """The cache of a (scanned) folder dataset in ``cache_dir``, built or rebuilt when missing or stale.

    Args:
        dataset: the folder dataset; call its ``scan()`` first so that only readable files are cached.
        cache_dir: folder for ``images_<S>.npy`` and ``images_<S>.json``.
        progress: show a progress bar while building.
    """
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    array_path = folder / f"images_{dataset.image_size}.npy"
    index_path = array_path.with_suffix(".json")
    index = _describe(dataset)
    if array_path.is_file() and index_path.is_file():
        try:
            if json.loads(index_path.read_text()) == index:
                return CachedImageDataset(array_path)
        except (ValueError, OSError) as error:
            log.warning("image cache %s unusable (%s): rebuilding it", array_path, error)
        log.info("image cache %s is stale: rebuilding it", array_path)
    _build(dataset, array_path, progress)
    index_path.write_text(json.dumps(index))
    return CachedImageDataset(array_path)


def _describe(dataset: ImageFolderDataset) -> dict:
    """What the cache's pixels depend on: each file's path, size and modification time, the size and crop."""
    files = []
    for path in dataset.paths:
        stat = path.stat()
        files.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    crop = list(dataset.crop) if isinstance(dataset.crop, list | tuple) else dataset.crop
    return {"image_size": dataset.image_size, "crop": crop, "files": files}


def _build(dataset: ImageFolderDataset, array_path: Path, progress: bool) -> None:
    from tqdm.auto import tqdm

    size = dataset.image_size
    tmp = array_path.with_name(f".tmp_{array_path.name}")
    pixels = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(dataset), size, size, 3))
    for i in tqdm(range(len(dataset)), desc="caching images", unit="img", disable=not progress):
        pixels[i] = dataset.load(i).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    pixels.flush()
    del pixels
    os.replace(tmp, array_path)
