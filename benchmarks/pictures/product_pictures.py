"""The pictures of the README and ``docs/``: the shipped models on a real photo (scikit-image's astronaut, cropped
to her face) and on built-in synthetic test faces, through the same command a user runs.

    python benchmarks/pictures/product_pictures.py --out docs/images [--synthetic data/synth/test]

Runs ``unsup3d reconstruct ... --crop face`` on the astronaut (the shipped ``faces`` model; the synthetic face with
``faces-synthetic``) and writes, per
subject, ``<subject>_maps.png`` (input, symmetry plane, asymmetry, reconstruction, albedo, normals, depth),
``<subject>_relight.png``, ``<subject>_views.png`` and ``<subject>_turntable.png`` (six turntable frames).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from PIL import Image

MAPS = ["input", "symmetry", "asymmetry", "reconstruction", "albedo", "normal", "depth"]
TILE = 128
TURNTABLE_FRAMES = (0, 30, 60, 100, 140, 175)  # morph, sweep to +90°, across to −90°, back


def reconstruct(inputs: list[Path], out: Path, crop: str, model: str) -> None:
    command = [sys.executable, "-m", "unsup3d.cli", "reconstruct", *map(str, inputs), "--output", str(out)]
    subprocess.run([*command, "--crop", crop, "--model", model, "--no-progress"], check=True)


def tile(path: Path, size: int = TILE) -> Image.Image:
    return Image.open(path).convert("RGB").resize((size, size), Image.Resampling.NEAREST)


def strip(images: list[Image.Image], gap: int = 4) -> Image.Image:
    width = sum(im.width for im in images) + gap * (len(images) - 1)
    canvas = Image.new("RGB", (width, max(im.height for im in images)), "white")
    x = 0
    for im in images:
        canvas.paste(im, (x, 0))
        x += im.width + gap
    return canvas


def pictures(folder: Path, out: Path, subject: str) -> None:
    """The four pictures of one reconstructed image folder."""
    strip([tile(folder / f"{name}.png") for name in MAPS]).save(out / f"{subject}_maps.png")
    for name in ("relight", "views"):
        image = Image.open(folder / f"{name}.png")
        image.resize((image.width * 2, image.height * 2), Image.Resampling.NEAREST).save(out / f"{subject}_{name}.png")
    frames = iio.imread(folder / "turntable.mp4", index=None)  # every frame (the GIF merges held ones)
    chosen = [Image.fromarray(np.asarray(frames[k])) for k in TURNTABLE_FRAMES if k < len(frames)]
    strip([im.resize((im.width * 2, im.height * 2)) for im in chosen]).save(out / f"{subject}_turntable.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--synthetic", type=Path, help="a synthetic test set: its first face is shown too")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from skimage import data

    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "astronaut.png"
        Image.fromarray(data.astronaut()).save(photo)
        reconstruct([photo], Path(tmp) / "out", "face", "faces")
        pictures(Path(tmp) / "out" / "astronaut", args.out, "astronaut")
        if args.synthetic is not None:
            face = sorted((args.synthetic / "image").glob("*.png"))[0]
            reconstruct([face], Path(tmp) / "synthetic", "none", "faces-synthetic")
            pictures(Path(tmp) / "synthetic" / face.stem, args.out, "synthetic")
    print(f"pictures written to {args.out}")


if __name__ == "__main__":
    main()
