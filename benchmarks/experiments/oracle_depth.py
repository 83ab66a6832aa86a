"""Where does the depth error come from? Oracle combinations of shape and view on the synthetic test set.

The synthetic generator can redraw the test set's exact canonical depth and view from its seed. This renders
canonical depth maps with views and scores them against the input-view ground truth (SIDE ×1e-2, MAD °):
the true shape, the mean canonical shape of the test set, a flat face, each with the true view or with no
rotation; and, given a checkpoint, the model's own shape with the true view and the mean shape with the model's
view, which separates shape errors from view errors. Per-|yaw| rows give the slope of predicted on true yaw.

    python benchmarks/experiments/oracle_depth.py --seed 0 --n-test 300 [--checkpoint runs/cpu20]
"""

from __future__ import annotations

import argparse
import math

import torch

from unsup3d.inference import Reconstructor
from unsup3d.metrics import depth_metrics
from unsup3d.render import render_depth
from unsup3d.synthetic.generator import render_params, sample_generator, sample_params

FAR = (1.1, 1.3)  # two depths given to pixels without a surface: rendered pixels that depend on them are invalid


def test_set(seed: int, count: int, size: int) -> dict[str, torch.Tensor]:
    """Images, input-view depth, canonical depth (NaN background) and views of the synthetic test split."""
    params = [sample_params(sample_generator(seed, 1, k), size) for k in range(count)]
    batches = [render_params(params[i : i + 50], size) for i in range(0, count, 50)]
    return {
        "image": torch.cat([b.image for b in batches]),
        "depth": torch.cat([b.depth for b in batches]),
        "canonical": torch.cat([b.canonical_depth for b in batches]),
        "view": torch.cat([b.view for b in batches]),
    }


def mean_shape(canonical: torch.Tensor) -> torch.Tensor:
    """(N, S, S) → (N, S, S): the per-pixel mean over the set where at least half the shapes cover the pixel."""
    covered = torch.isfinite(canonical).double().mean(0)
    mean = torch.nanmean(canonical, 0)
    mean = torch.where(covered > 0.5, mean, torch.full_like(mean, math.nan))
    return mean.expand_as(canonical).clone()


def score(canonical: torch.Tensor, view: torch.Tensor, gt: torch.Tensor, fov: float) -> tuple[float, float]:
    """Render canonical depth (N, S, S) with views (N, 6); mean SIDE (×1e-2) and MAD against gt (N, S, S)."""
    depth, other = (
        render_depth(
            torch.where(torch.isfinite(canonical), canonical, torch.full_like(canonical, far)).float(),
            view.float(),
            fov,
        )
        for far in FAR
    )
    valid = ((depth - other).abs() < 1e-6) & (depth < FAR[0])  # not depending on, nor being, background
    scores = depth_metrics(depth.double(), gt.double(), valid, fov)
    return float(scores["side"].nanmean()) * 100, float(scores["mad"].nanmean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed the test set was generated with")
    parser.add_argument("--n-test", type=int, default=300)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--fov", type=float, default=10.0)
    parser.add_argument("--checkpoint", default=None, help="also analyse this model (file or run directory)")
    args = parser.parse_args()

    data = test_set(args.seed, args.n_test, args.size)
    gt, canonical, view = data["depth"], data["canonical"], data["view"]
    no_rotation = view.clone()
    no_rotation[:, :3] = 0
    flat = torch.where(torch.isfinite(canonical), torch.ones_like(canonical), canonical)
    rows = {
        "true shape, true view": (canonical, view),
        "mean shape, true view": (mean_shape(canonical), view),
        "flat face, true view": (flat, view),
        "true shape, no rotation": (canonical, no_rotation),
        "mean shape, no rotation": (mean_shape(canonical), no_rotation),
    }
    if args.checkpoint is not None:
        model = Reconstructor.from_checkpoint(args.checkpoint, device="cpu").model
        with torch.no_grad():
            pred = model(data["image"], with_flip=False)
        shape, predicted = pred.recon.canonical_depth.double(), pred.view.double()
        rows["model shape, model view"] = (shape, predicted)
        rows["model shape, true view"] = (shape, view)
        rows["mean shape, model view"] = (mean_shape(canonical), predicted)
    print(f"{'combination':<28} {'SIDE':>7} {'MAD':>7}")
    for name, (shape, views) in rows.items():
        side, mad = score(shape, views, gt, args.fov)
        print(f"{name:<28} {side:>7.3f} {mad:>7.2f}")
    if args.checkpoint is not None:
        true_yaw, yaw = view[:, 1].double(), predicted[:, 1]
        for low, high in [(0, 15), (15, 30), (30, 46)]:
            inside = (true_yaw.abs() >= math.radians(low)) & (true_yaw.abs() < math.radians(high))
            k = float((yaw[inside] * true_yaw[inside]).sum() / (true_yaw[inside] ** 2).sum())
            print(f"|yaw| {low:>2}–{high:<2}°: {int(inside.sum()):>4} images, predicted/true yaw {k:.2f}")


if __name__ == "__main__":
    main()
