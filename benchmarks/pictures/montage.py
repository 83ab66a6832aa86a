"""Assemble reconstruction outputs of several images into one PNG: rows input, recon, canonical image,
shading, canonical depth, normals, input-view depth; for eyeballing failure modes (domes, stripes, hollow faces).

    python benchmarks/pictures/montage.py RECON_DIR OUT.png [--gt TESTDIR]
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--gt", type=Path, help="synthetic test folder: adds a row of ground-truth depth")
    args = parser.parse_args()
    items = sorted(p for p in args.folder.iterdir() if p.is_dir())
    names = ["input", "reconstruction", "canonical_image", "albedo", "shading", "canonical_depth", "normal", "depth"]
    rows = []
    for name in names:
        rows.append(np.concatenate([_rgb(item / f"{name}.png") for item in items], axis=1))
    if args.gt is not None:
        tiles = []
        for item in items:
            depth = np.load(args.gt / "depth" / f"{item.name}.npy")
            finite = np.isfinite(depth)
            lo, hi = depth[finite].min(), depth[finite].max()
            grey = np.where(finite, (hi - depth) / max(hi - lo, 1e-8), 0)
            tiles.append(np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=2))
        rows.append(np.concatenate(tiles, axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).resize((len(items) * 128, len(rows) * 128), Image.NEAREST).save(
        args.out
    )


def _rgb(path: Path) -> np.ndarray:
    image = Image.open(path).convert("RGB")
    if image.size != (64, 64):
        image = image.resize((64, 64))
    return np.asarray(image)


if __name__ == "__main__":
    main()
