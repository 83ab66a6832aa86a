"""Training-data throughput: images per second delivered by the DataLoader from a folder of photos, decoded
and resized every time, against the memory-mapped cache (``data.cache_dir``).

    python benchmarks/speed/data_loading.py --count 512 --source-size 512 --workers 0 2

It writes ``--count`` random-texture JPEGs of ``--source-size`` pixels (the size of typical photo crops) into a
temporary folder, then reads one epoch at batch 64 in each mode.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import DataLoader

from unsup3d.data import ImageFolderDataset
from unsup3d.data.cache import open_cache


def write_photos(folder: Path, count: int, size: int) -> None:
    rng = np.random.default_rng(0)
    small = size // 8
    for i in range(count):
        texture = rng.integers(0, 256, (small, small, 3), dtype=np.uint8)
        Image.fromarray(texture).resize((size, size), Image.Resampling.BICUBIC).save(
            folder / f"{i:05d}.jpg", quality=90
        )


def rate(dataset, workers: int, batch: int) -> float:
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers)
    start = time.perf_counter()
    count = sum(item["image"].shape[0] for item in loader)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=512)
    parser.add_argument("--source-size", type=int, default=512)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "photos").mkdir()
        write_photos(root / "photos", args.count, args.source_size)
        folder = ImageFolderDataset(root / "photos", args.image_size)
        folder.scan()
        start = time.perf_counter()
        cached = open_cache(folder, root / "cache")
        build = time.perf_counter() - start
        print(f"{args.count} JPEGs of {args.source_size}px -> {args.image_size}px; cache built in {build:.1f} s")
        print(f"{'workers':>7} {'folder img/s':>13} {'cache img/s':>12}")
        for workers in args.workers:
            print(
                f"{workers:>7} {rate(folder, workers, args.batch_size):>13.0f} "
                f"{rate(cached, workers, args.batch_size):>12.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
