"""Training-step profile: time per step for each preset and image size, split into networks, renderer stages
(rasterize, interpolate, warp, shading), perceptual network, loss and optimiser; the FLOPs of the step counted
by ``torch.utils.flop_counter``; this machine's measured matmul and convolution throughput; the achieved FLOP/s
as a fraction of it; peak memory; and the reconstruction throughput (forward without the flipped branch, no
gradient). CPU by default; ``--device cuda`` on a GPU.

    python benchmarks/speed/step_time.py --presets paper cpu --sizes 64 --batch-size 64
    python benchmarks/speed/step_time.py --presets cpu --sizes 64 128 256 --batch-size 16
    python benchmarks/speed/step_time.py --presets paper --set train.channels_last=false   # the layout before

Each (preset, size) runs in a fresh process, so its peak memory is its own: the peak resident set on CPU
(including the ~0.3 GB of the interpreter and libraries), the peak allocated tensor memory on CUDA. Stages are
timed separately (forward and backward, the medians of ``--repeats`` runs after a warm-up), so they do not add up
to the step exactly. ``paper`` uses VGG16 with random weights, the cost of ImageNet's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from unsup3d.config import Config, build_config, load_preset, parse_overrides
from unsup3d.engine.training import build_training, configure_process, train_step
from unsup3d.geometry import depth_to_points, normals_from_depth, project, transform_points
from unsup3d.losses import Objective
from unsup3d.model import Prediction
from unsup3d.nets import EfficientNetLite0Stride4, VGG16Relu33
from unsup3d.ops import to_signed
from unsup3d.render import (
    diffuse_shading,
    grid_faces,
    interpolate_depth,
    inverse_warp_grid,
    lambertian,
    rasterize_grid,
    sample_canonical,
)

COLUMNS = [
    ("step", "step s"),
    ("networks", "nets"),
    ("rasterize", "raster"),
    ("interpolate", "interp"),
    ("warp", "warp"),
    ("shading", "shading"),
    ("perceptual", "percept"),
    ("loss", "loss"),
    ("optimiser", "optim"),
]


def timed(fn, device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def machine_peak(device: torch.device, repeats: int) -> dict[str, float]:
    """Measured float32 FLOP/s of a large matmul and of a 3x3 convolution (forward) on ``device``."""
    n = 4096 if device.type == "cuda" else 2048
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    matmul = 2 * n**3 / timed(lambda: a @ b, device, repeats)
    batch = 256 if device.type == "cuda" else 32
    x = torch.randn(batch, 128, 32, 32, device=device)
    w = torch.randn(128, 128, 3, 3, device=device)
    conv_flops = 2 * batch * 128 * 128 * 9 * 32 * 32
    conv = conv_flops / timed(lambda: F.conv2d(x, w, padding=1), device, repeats)
    return {"matmul": matmul, "conv": conv}


def perceptual_net(name: str):
    if name == "vgg16":
        return VGG16Relu33()
    if name == "efficientnet_lite0":
        return EfficientNetLite0Stride4()
    return None


def leaf(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.detach().clone().requires_grad_(tensor.is_floating_point())


def profile(preset: str, size: int, args) -> dict[str, float]:
    """Times (s), FLOPs and peak memory of one training step of ``preset`` at ``size`` × ``size``."""
    device, batch, repeats = torch.device(args.device), args.batch_size, args.repeats
    config = build_config(load_preset(preset), {"model": {"image_size": size}}, parse_overrides(args.overrides))
    config.train.seed = 0
    configure_process(config.train)
    training = build_training(config, device, perceptual=perceptual_net(config.model.perceptual))
    model, objective, optimizer = training.model, training.objective, training.optimizer
    perceptual = objective.perceptual
    images = torch.rand(batch, 3, size, size, device=device)

    def step():  # the trainer's step after the depth-prior iterations; the stages below run in float32
        train_step(training, images, config.train.depth_prior_iterations)

    result = {"step": timed(step, device, repeats)}
    with FlopCounterMode(display=False) as counter:
        step()
    result["flops"] = float(counter.get_total_flops())
    result.update(stage_times(model, objective, perceptual, images, device, repeats))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    result["optimiser"] = timed(optimizer.step, device, repeats)

    def reconstruct():
        with torch.no_grad():
            model(images, with_flip=False)

    result["recon_rate"] = batch / timed(reconstruct, device, repeats)  # inference images/s
    if device.type == "cuda":
        result["peak_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    else:
        result["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux
    return result


def detach_prediction(pred: Prediction) -> Prediction:
    """A copy of ``pred`` whose tensors are new leaves (the loss alone is timed on it)."""

    def leaves(item):
        values = {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
        return {k: leaf(v) if isinstance(v, torch.Tensor) or v is None else leaves(v) for k, v in values.items()}

    def rebuild(item, values):
        nested = {k: rebuild(getattr(item, k), v) if isinstance(v, dict) else v for k, v in values.items()}
        return dataclasses.replace(item, **nested)

    return rebuild(pred, leaves(pred))


def stage_times(model, objective, perceptual, images, device, repeats) -> dict[str, float]:
    """Forward + backward times of the step's stages, each on inputs detached from the others."""
    cfg = model.config
    x = to_signed(images)
    nets = [model.depth_net, model.albedo_net, model.light_net, model.view_net]
    nets += [model.conf_net] if model.conf_net is not None else []

    def networks():
        outputs = [net(x) for net in nets]
        sum(o.float().mean() for out in outputs for o in (out if isinstance(out, tuple) else (out,))).backward()

    with torch.no_grad():
        pred = model(images)
    halves = (pred.recon, pred.recon_flipped)  # the renderer runs on both at once

    def both(name: str) -> torch.Tensor:
        return leaf(torch.cat([getattr(half, name) for half in halves]))

    depth, canonical_image, recon_depth = both("canonical_depth"), both("canonical_image"), both("depth")
    views = leaf(pred.view.repeat(2, 1))
    size = depth.shape[-1]
    faces = grid_faces(size, size, device=device)

    def screen():
        points = transform_points(depth_to_points(depth, cfg.fov), views)
        return project(points, size, cfg.fov)  # (B, S, S, 3)

    with torch.no_grad():
        fragments = rasterize_grid(screen(), size, size)
    light = pred.light_direction.detach().repeat(2, 1)
    ambient, diffuse = pred.ambient.detach().repeat(2), pred.diffuse.detach().repeat(2)

    def interpolate():
        interpolate_depth(screen().flatten(1, 2), faces, fragments).mean().backward()

    def warp():
        sample_canonical(canonical_image, inverse_warp_grid(recon_depth, views, cfg.fov)).mean().backward()

    def shading():
        normal = normals_from_depth(depth, cfg.fov)
        lambertian(diffuse_shading(normal, light), ambient, diffuse).mean().backward()

    plain = Objective(Config(model=cfg)).to(device)  # without the perceptual network, timed on its own
    detached = detach_prediction(pred)
    features_in = torch.rand(3 * images.shape[0], 3, size, size, device=device, requires_grad=True)
    times = {
        "networks": timed(networks, device, repeats),
        "rasterize": timed(lambda: rasterize_grid(screen().detach(), size, size), device, repeats),
        "interpolate": timed(interpolate, device, repeats),
        "warp": timed(warp, device, repeats),
        "shading": timed(shading, device, repeats),
        "loss": timed(lambda: plain.image_terms(detached, images)["total"].backward(), device, repeats),
        "perceptual": 0.0,
    }
    if perceptual is not None:
        times["perceptual"] = timed(lambda: perceptual(features_in).mean().backward(), device, repeats)
    return times


def run_child(args) -> None:
    print(json.dumps(profile(args.child[0], int(args.child[1]), args)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["paper", "cpu"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[64])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--child", nargs=2, metavar=("PRESET", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(args)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    peak = machine_peak(device, args.repeats)
    best = max(peak.values())
    print(f"device {device} ({name}), torch {torch.__version__}, batch {args.batch_size}, set {args.overrides}")
    print(f"measured float32 peak: matmul {peak['matmul'] / 1e9:.1f} GFLOP/s, conv {peak['conv'] / 1e9:.1f} GFLOP/s")
    header = " ".join(f"{label:>8}" for _, label in COLUMNS)
    tail = f"{'render %':>8} {'GFLOP':>8} {'GFLOP/s':>8} {'of peak':>7} {'peak GB':>7} {'recon/s':>7}"
    print(f"{'preset':<7} {'size':>4} {header} {tail}")
    for preset in args.presets:
        for size in args.sizes:
            command = [sys.executable, __file__, "--child", preset, str(size), "--batch-size", str(args.batch_size)]
            command += ["--repeats", str(args.repeats), "--device", args.device, "--set", *args.overrides]
            r = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
            render = sum(r[k] for k in ("rasterize", "interpolate", "warp", "shading"))
            achieved = r["flops"] / r["step"]
            cells = " ".join(f"{r[key]:>8.3f}" for key, _ in COLUMNS)
            print(
                f"{preset:<7} {size:>4} {cells} {100 * render / r['step']:>7.1f}% {r['flops'] / 1e9:>8.1f} "
                f"{achieved / 1e9:>8.1f} {100 * achieved / best:>6.1f}% {r['peak_gb']:>7.2f} {r['recon_rate']:>7.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
