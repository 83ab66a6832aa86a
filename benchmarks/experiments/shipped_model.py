"""The shipped model: its size, how far its float16 weights move the outputs from the float32 checkpoint, and how
fast it reconstructs on this machine.

    python benchmarks/experiments/shipped_model.py --data data/synth/test --run runs/shipped [--write-reference]

Prints: the weight file's size; on the test images, the largest and mean |depth difference| (input view,
pixels with a surface in both), the largest view and light differences and SIDE/MAD of float16 against float32;
images/s through the Python API (batches of 64, no files); images/s of ``reconstruct_to_folder`` writing the
maps, depth and OBJ mesh; and seconds per image writing every output (GLB, PLY, GIF + MP4 turntable included).
``--write-reference`` stores the float32 model's outputs on four generated faces for the test that checks the
shipped weights (``tests/inference/data/shipped_reference.npz``).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from unsup3d.data import PairedDepthDataset
from unsup3d.evaluation import evaluate_depth
from unsup3d.inference import Reconstructor, shipped_weights
from unsup3d.outputs import OutputOptions, reconstruct_to_folder
from unsup3d.outputs.write import available_groups

REFERENCE = Path(__file__).resolve().parents[2] / "tests" / "inference" / "data" / "shipped_reference.npz"
REFERENCE_SEEDS = (0, 1, 2, 3)  # sample_generator(seed=7, split=1, index) of the synthetic generator


def reference_images() -> torch.Tensor:
    """(4, 3, 64, 64) synthetic faces, fixed by the generator's seeds (the test regenerates them)."""
    from unsup3d.synthetic.generator import render_batch, sample_generator

    return render_batch([sample_generator(7, 1, k) for k in REFERENCE_SEEDS], 64, depth=False, canonical=False).image


def compare(half: Reconstructor, full: Reconstructor, dataset) -> None:
    """Print the float16 − float32 differences on every test image."""
    depth_diff, view_diff, light_diff = [], [], []
    for batch in DataLoader(dataset, batch_size=100):
        a, b = half(batch["image"]), full(batch["image"])
        both = torch.isfinite(a.depth) & torch.isfinite(b.depth)
        depth_diff.append((a.depth - b.depth).abs()[both])
        view_diff.append((a.view - b.view).abs().amax())
        light_diff.append((a.light_direction - b.light_direction).abs().amax())
    depth = torch.cat(depth_diff)
    print(f"float16 vs float32: |depth| max {float(depth.max()):.2e}, mean {float(depth.mean()):.2e} (depth ~1)")
    print(
        f"float16 vs float32: |view| max {float(torch.stack(view_diff).max()):.2e} rad or depth units, "
        f"|light direction| max {float(torch.stack(light_diff).max()):.2e}"
    )
    for name, rec in (("float16", half), ("float32", full)):
        scores = evaluate_depth(rec.model, dataset, 100, rec.device)
        print(f"{name}: SIDE {float(scores['side'].nanmean()) * 100:.4f}e-2, MAD {float(scores['mad'].nanmean()):.3f}")


def api_rate(rec: Reconstructor, images: torch.Tensor, repeats: int = 3) -> float:
    """Images/s of ``rec(images)`` in batches of 64 (median of ``repeats``)."""
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        for chunk in images.split(64):
            rec(chunk)
        times.append(time.perf_counter() - start)
    return len(images) / sorted(times[1:])[repeats // 2]


def folder_rate(rec: Reconstructor, paths: list[Path], groups: tuple[str, ...]) -> float:
    """Seconds per image of :func:`reconstruct_to_folder` writing ``groups``."""
    out = Path(tempfile.mkdtemp())
    try:
        start = time.perf_counter()
        result = reconstruct_to_folder(rec, paths, out, OutputOptions(groups), progress=False)
        elapsed = time.perf_counter() - start
    finally:
        shutil.rmtree(out)
    assert result.written == len(paths), result.failed
    return elapsed / len(paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/synth/test"))
    parser.add_argument("--run", type=Path, help="the float32 checkpoint or run the weights came from")
    parser.add_argument("--write-reference", action="store_true")
    args = parser.parse_args()
    weights = shipped_weights("faces-synthetic")
    size = weights.stat().st_size + weights.with_suffix(".json").stat().st_size
    print(f"shipped weights {weights.name}: {size / 1e6:.2f} MB, torch threads {torch.get_num_threads()}")
    half = Reconstructor.pretrained("faces-synthetic", device="cpu")
    dataset = PairedDepthDataset(args.data, half.image_size)
    if args.run is not None:
        full = Reconstructor.from_checkpoint(args.run, device="cpu")
        compare(half, full, dataset)
        if args.write_reference:
            write_reference(full)
    images = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
    print(f"Python API, batches of 64, no files: {api_rate(half, images):.1f} images/s")
    paths = sorted((args.data / "image").glob("*.png"))
    core = ("maps", "depth", "obj", "json")
    print(f"reconstruct_to_folder, {'+'.join(core)}: {1 / folder_rate(half, paths[:128], core):.1f} images/s")
    every = available_groups()
    print(f"every output ({' '.join(every)}): {folder_rate(half, paths[:8], every):.2f} s per image")


def write_reference(full: Reconstructor) -> None:
    """Store the float32 model's depth, view and light on :func:`reference_images`."""
    rec = full(reference_images())
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        REFERENCE,
        depth=rec.depth.numpy(),
        canonical_depth=rec.canonical_depth.numpy(),
        canonical_albedo=rec.canonical_albedo.numpy(),
        view=rec.view.numpy(),
        light_direction=rec.light_direction.numpy(),
    )
    print(f"reference outputs written to {REFERENCE}")


if __name__ == "__main__":
    main()
