"""A picture of the built-in synthetic data: test samples of one category with their exact depth.

    python benchmarks/pictures/synthetic_montage.py --category car --out docs/images/synthetic_car.png

Renders samples ``0 .. n−1`` of the test split of ``--seed`` (the ``test/`` images of ``unsup3d synth --category
NAME --seed SEED``) and writes rows of ``--per-row`` input images, each row followed by the ground-truth depth of
the same samples (near is bright, each map scaled to its own range, background black), at ``--scale`` times the
image size.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image

from unsup3d.synthetic.categories import CATEGORIES
from unsup3d.synthetic.generator import render_batch, sample_generator
from unsup3d.viz import depth_to_image, image_grid, to_uint8


def montage(category: str, n: int, per_row: int, seed: int, size: int) -> torch.Tensor:
    """(3, H, W) grid: rows of images, each followed by the rows' depth maps."""
    batch = render_batch([sample_generator(seed, 1, k) for k in range(n)], size, canonical=False, category=category)
    depth = torch.cat([depth_to_image(d[None]) for d in batch.depth])  # per-sample range
    rows = []
    for start in range(0, n, per_row):
        rows += [batch.image[start : start + per_row], depth[start : start + per_row]]
    return image_grid(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--category", choices=list(CATEGORIES), default="car")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("-n", type=int, default=16, help="samples (a multiple of --per-row)")
    parser.add_argument("--per-row", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--scale", type=int, default=2)
    args = parser.parse_args()
    if args.n % args.per_row:
        parser.error("-n must be a multiple of --per-row")
    grid = montage(args.category, args.n, args.per_row, args.seed, args.size)
    image = Image.fromarray(to_uint8(grid))
    image.resize((image.width * args.scale, image.height * args.scale), Image.NEAREST).save(args.out)
    print(f"{args.out}: {args.n} {CATEGORIES[args.category].plural}, seed {args.seed}")


if __name__ == "__main__":
    main()
