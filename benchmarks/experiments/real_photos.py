"""How does a model do on real photos, which have no ground-truth depth? Reconstruction error, views, hollow shapes
and the shading's share of the image, over a folder of photos.

    python benchmarks/experiments/real_photos.py --data london/ --crop face       # the shipped faces model
    python benchmarks/experiments/real_photos.py --data cats_val/ --model cats    # photos already cropped
    python benchmarks/experiments/real_photos.py --data london/ --crop face --checkpoint runs/faces_real \
        [--json out.json]

Each photo is prepared as ``unsup3d reconstruct`` prepares it (``--crop face|cat|none``; a photo where the crop
finds nothing is counted and left out) and reconstructed at the model's size. Printed, with
:mod:`unsup3d.photo_metrics`:

- ``face-region error``: mean |input − reconstruction| (0–255) over the central 40 × 40 of a 64 × 64 crop, the
  mean over the photos (and the median); ``whole-crop error``: the same over the whole crop.
- views (degrees): the mean of |yaw|, of pitch (signed: a model that tilts every face shows here) and of |roll|,
  and the standard deviation of each angle over the photos.
- ``hollow``: photos whose face centre lies behind its rim (the training collapse detector's test).
- ``shading share``: ``var(log shading) / (var(log shading) + var(log albedo))`` over the face region, the mean
  over the photos; near 0 the shading is flat and the light went into the albedo. ``contrast``: the standard
  deviation of log shading over the face region (0: flat), the mean over the photos.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from unsup3d.inference import Reconstruction, Reconstructor
from unsup3d.inference.crop import CROP_KINDS
from unsup3d.inference.weights import SHIPPED_MODELS, model_for_crop
from unsup3d.outputs import collect_inputs
from unsup3d.photo_metrics import photo_report, photo_scores


def reconstruct_folder(reconstructor: Reconstructor, paths: list[Path], crop: str) -> tuple[Reconstruction, int]:
    """The reconstructions of the photos the crop finds, as one batch, and how many it did not find."""
    kept, missed = [], 0
    for _, result in reconstructor.reconstruct_paths(paths, batch_size=64, crop=crop):
        if isinstance(result, Reconstruction):
            kept.append(result)
        else:
            missed += 1
    if not kept:
        raise SystemExit(f"no photo could be reconstructed ({missed} failed)")
    return _concatenate(kept), missed


def _concatenate(parts: list[Reconstruction]) -> Reconstruction:
    values = {}
    for name, value in vars(parts[0]).items():
        values[name] = torch.cat([getattr(p, name) for p in parts]) if isinstance(value, torch.Tensor) else value
    return Reconstruction(**values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="folder of photos (recursive)")
    parser.add_argument("--crop", choices=CROP_KINDS, default="none", help="as unsup3d reconstruct --crop")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--model", choices=list(SHIPPED_MODELS), help="default: cats with --crop cat, else faces")
    group.add_argument("--checkpoint", type=Path, help="weights, checkpoint or run directory")
    parser.add_argument("--limit", type=int, help="only the first N photos by sorted path")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    if args.checkpoint is not None:
        reconstructor, name = Reconstructor.from_checkpoint(args.checkpoint, "cpu"), str(args.checkpoint)
    else:
        name = args.model or model_for_crop(args.crop)
        reconstructor = Reconstructor.pretrained(name, "cpu")
    paths = collect_inputs([args.data])[: args.limit]
    started = time.perf_counter()
    rec, missed = reconstruct_folder(reconstructor, paths, args.crop)
    config = reconstructor.config
    values = photo_scores(rec, config.max_depth - config.min_depth)
    print(f"model {name} on {args.data} (crop {args.crop}), {time.perf_counter() - started:.1f} s")
    print(photo_report(values, missed))
    if args.json is not None:
        args.json.write_text(json.dumps({"model": name, "data": str(args.data), "crop": args.crop, **values}, indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
