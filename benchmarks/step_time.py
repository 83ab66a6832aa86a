"""Time one training step per preset, split into networks, renderer, perceptual network and optimiser, and
the reconstruction throughput. CPU by default; ``--device cuda`` on a GPU.

    python benchmarks/step_time.py --presets paper cpu --batch-size 64 --repeats 3

The split runs each stage's forward and backward separately (the renderer: rasterize + interpolate + warp +
shading + normals on both halves of the batch; perceptual: the frozen feature network on 3B images with the
gradient to its input). ``paper`` uses VGG16 (random weights stand in for ImageNet's: same cost).
"""

from __future__ import annotations

import argparse
import time

import torch

from unsup3d.config import build_config, load_preset
from unsup3d.geometry import normals_from_depth
from unsup3d.losses import Objective
from unsup3d.model import PhotoGeometricAutoencoder
from unsup3d.nets import EfficientNetLite0Stride4, VGG16Relu33
from unsup3d.render import diffuse_shading, lambertian


def timed(fn, device, repeats: int) -> float:
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


def perceptual_net(name: str):
    if name == "vgg16":
        return VGG16Relu33()
    if name == "efficientnet_lite0":
        return EfficientNetLite0Stride4()
    return None


def step_breakdown(preset: str, batch: int, device, repeats: int) -> dict[str, float]:
    config = build_config(load_preset(preset))
    torch.manual_seed(0)
    model = PhotoGeometricAutoencoder(config.model).to(device)
    perceptual = perceptual_net(config.model.perceptual)
    objective = Objective(config.model, perceptual.to(device) if perceptual is not None else None).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=5e-4)
    images = torch.rand(batch, 3, 64, 64, device=device)

    def full_step():
        pred = model(images)
        loss = objective(pred, images)["total"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    x = images * 2 - 1
    nets = [model.depth_net, model.albedo_net, model.light_net, model.view_net]
    nets += [model.conf_net] if model.conf_net is not None else []

    def networks():
        outputs = [net(x) for net in nets]
        total = sum(o.float().mean() for out in outputs for o in (out if isinstance(out, tuple) else (out,)))
        total.backward()

    with torch.no_grad():
        pred = model(images)
    depth = pred.canon_depth.detach().clone().requires_grad_(True)
    albedo = pred.canon_albedo.detach().clone().requires_grad_(True)
    views = pred.view.detach().repeat(2, 1).requires_grad_(True)
    light = pred.light_dir.detach().repeat(2, 1)
    ambient, diffuse = pred.ambient.detach().repeat(2), pred.diffuse.detach().repeat(2)

    def renderer():
        normal = normals_from_depth(depth, config.model.fov)
        shading = lambertian(diffuse_shading(normal, light), ambient, diffuse)
        canon = (albedo / 2 + 0.5) * shading * 2 - 1
        recon_depth, recon, _ = model.reproject(depth, canon, views)
        (recon.mean() + recon_depth.mean()).backward()

    feats_in = torch.rand(3 * batch, 3, 64, 64, device=device, requires_grad=True)

    def perceptual_pass():
        perceptual(feats_in).mean().backward()

    for p in model.parameters():
        p.grad = torch.zeros_like(p)

    def optimiser():
        optimizer.step()

    result = {"step": timed(full_step, device, repeats), "networks": timed(networks, device, repeats)}
    result["renderer"] = timed(renderer, device, repeats)
    result["perceptual"] = timed(perceptual_pass, device, repeats) if perceptual is not None else 0.0
    result["optimiser"] = timed(optimiser, device, repeats)
    return result


def reconstruction_rate(preset: str, batch: int, device, repeats: int) -> float:
    config = build_config(load_preset(preset))
    model = PhotoGeometricAutoencoder(config.model).to(device).eval()
    images = torch.rand(batch, 3, 64, 64, device=device)

    def forward():
        with torch.no_grad():
            model(images, with_flip=False)

    return batch / timed(forward, device, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["paper", "cpu"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch_size}")
    print(
        f"{'preset':<8} {'step s':>8} {'networks':>9} {'renderer':>9} {'perceptual':>11} {'optimiser':>10} "
        f"{'renderer %':>11} {'recon img/s':>12}"
    )
    for preset in args.presets:
        r = step_breakdown(preset, args.batch_size, device, args.repeats)
        rate = reconstruction_rate(preset, args.batch_size, device, args.repeats)
        print(
            f"{preset:<8} {r['step']:>8.3f} {r['networks']:>9.3f} {r['renderer']:>9.3f} {r['perceptual']:>11.3f} "
            f"{r['optimiser']:>10.3f} {100 * r['renderer'] / r['step']:>10.1f}% {rate:>12.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
