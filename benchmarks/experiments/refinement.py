"""Per-photo refinement variants measured: depth accuracy on synthetic faces with true depth, the reconstruction
error on real photos, and seconds per photo.

    python benchmarks/experiments/refinement.py --synthetic data/synth/test --photos LONDON --crop face \\
        --variants 0 50 100 50:0.1:1:4:64 [--limit 300] [--photo-limit 102]

A variant is ``STEPS[:LR[:ANCHOR[:DEPTH_GRID[:ALBEDO_GRID]]]]`` (:class:`unsup3d.inference.refine.RefineSettings`,
its defaults where left out); ``0`` is the network alone.
For each it prints SIDE (× 10⁻²) and MAD (degrees) on the synthetic set with ``--synthetic-model``, hollow faces,
the mean |yaw| and |pitch| in degrees (the view should not drift), the face-region reconstruction error (0–255) on
the photos with ``--photo-model``, and seconds per photo: one photo at a time (median over ``--timed`` photos) and
in batches of ``--batch-size``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from unsup3d.data.paired import PairedDepthDataset
from unsup3d.inference import Reconstruction, Reconstructor
from unsup3d.inference.refine import RefineSettings
from unsup3d.metrics import depth_metrics
from unsup3d.outputs import collect_inputs
from unsup3d.photo_metrics import hollow_count
from unsup3d.photo_metrics import photo_error as photo_error_of


def parse_variant(text: str) -> RefineSettings:
    """``STEPS[:LR[:ANCHOR[:DEPTH_GRID[:ALBEDO_GRID]]]]`` → settings (the defaults where left out)."""
    names, kinds = ("steps", "lr", "anchor", "depth_grid", "albedo_grid"), (int, float, float, int, int)
    parts = text.split(":")
    return RefineSettings(**{name: kind(part) for name, kind, part in zip(names, kinds, parts, strict=False)})


def reconstruct(reconstructor: Reconstructor, images: torch.Tensor, settings: RefineSettings) -> Reconstruction:
    """The reconstructions of (B, 3, S, S) images, refined as ``settings`` say (0 steps: the network alone)."""
    return reconstructor.refine(images, settings.steps, settings)


def synthetic_scores(reconstructor: Reconstructor, data: Path, limit: int, settings, batch_size: int) -> dict:
    """SIDE × 10⁻², MAD, hollow count and mean |yaw|, |pitch| (degrees) over the first ``limit`` test images."""
    dataset = PairedDepthDataset(data, reconstructor.image_size)
    config = reconstructor.config
    sides, mads, hollow, yaw, pitch = [], [], 0, [], []
    seen = 0
    for batch in DataLoader(dataset, batch_size=batch_size):
        images = batch["image"][: limit - seen]
        rec = reconstruct(reconstructor, images, settings)
        valid = torch.isfinite(rec.depth)
        depth = torch.where(valid, rec.depth, torch.ones_like(rec.depth)).double()
        scores = depth_metrics(depth, batch["depth"][: len(images)].double(), valid, config.fov)
        sides.append(scores["side"]), mads.append(scores["mad"])
        hollow += hollow_count(rec.canonical_depth, config.max_depth - config.min_depth)
        pitch.append(rec.view[:, 0].rad2deg().abs()), yaw.append(rec.view[:, 1].rad2deg().abs())
        seen += len(images)
        if seen >= limit:
            break
    return {
        "side": float(torch.cat(sides).mean()) * 100,
        "mad": float(torch.cat(mads).mean()),
        "hollow": hollow,
        "yaw": float(torch.cat(yaw).mean()),
        "pitch": float(torch.cat(pitch).mean()),
    }


def photo_error(reconstructor: Reconstructor, images: torch.Tensor, settings, batch_size: int) -> float:
    """Mean face-region reconstruction error (0–255) over the photos."""
    recs = [reconstruct(reconstructor, chunk, settings) for chunk in images.split(batch_size)]
    errors = [photo_error_of(rec.image, rec.recon_image) for rec in recs]
    return float(torch.cat(errors).mean())


def seconds_per_photo(reconstructor: Reconstructor, images: torch.Tensor, settings, timed: int, batch_size: int):
    """(median seconds for one photo alone, seconds per photo in one batch of ``batch_size``)."""
    alone = []
    for image in images[:timed]:
        started = time.perf_counter()
        reconstruct(reconstructor, image[None], settings)
        alone.append(time.perf_counter() - started)
    batch = images[:batch_size]
    started = time.perf_counter()
    reconstruct(reconstructor, batch, settings)
    return statistics.median(alone), (time.perf_counter() - started) / len(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=Path, help="a paired test set (image/ and depth/)")
    parser.add_argument("--photos", type=Path, help="a folder of real photos")
    parser.add_argument("--crop", default="face", help="crop of the photos, as unsup3d reconstruct --crop")
    parser.add_argument("--synthetic-model", default="faces-synthetic")
    parser.add_argument("--photo-model", default="faces")
    parser.add_argument("--variants", nargs="+", default=["0", "50"])
    parser.add_argument("--limit", type=int, default=300, help="synthetic images used")
    parser.add_argument("--photo-limit", type=int, default=1000)
    parser.add_argument("--timed", type=int, default=5, help="photos timed one at a time")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    synthetic = Reconstructor.pretrained(args.synthetic_model, "cpu") if args.synthetic else None
    photo_model = Reconstructor.pretrained(args.photo_model, "cpu") if args.photos else None
    photos = None
    if args.photos:
        paths = collect_inputs([args.photos])[: args.photo_limit]
        photos = photo_model.load_images(paths, crop=args.crop, crop_fallback="none")
    columns = [
        "steps",
        "lr",
        "anchor",
        "depth grid",
        "albedo grid",
        "SIDE ×10⁻²",
        "MAD",
        "hollow",
        "mean yaw",
        "mean pitch",
        "photo error",
    ]
    columns += ["s/photo alone", "s/photo in a batch"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for text in args.variants:
        settings = parse_variant(text)
        row = [
            str(settings.steps),
            f"{settings.lr:g}",
            f"{settings.anchor:g}",
            str(settings.depth_grid),
            str(settings.albedo_grid),
        ]
        if synthetic is not None:
            s = synthetic_scores(synthetic, args.synthetic, args.limit, settings, args.batch_size)
            row += [f"{s['side']:.3f}", f"{s['mad']:.2f}", str(s["hollow"]), f"{s['yaw']:.2f}", f"{s['pitch']:.2f}"]
        else:
            row += ["–"] * 5
        if photos is not None:
            row.append(f"{photo_error(photo_model, photos, settings, args.batch_size):.2f}")
            alone, batched = seconds_per_photo(photo_model, photos, settings, args.timed, args.batch_size)
            row += [f"{alone:.2f}", f"{batched:.2f}"]
        else:
            row += ["–"] * 3
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
