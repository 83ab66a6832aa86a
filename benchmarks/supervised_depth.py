"""Supervised reference: the same depth network trained on ground-truth depth, for the same time budget.

The unsupervised model predicts a canonical depth and a view; here the preset's depth network (same widths,
same output range ``mid + half·tanh(raw − mean raw)``, batch and peak learning rate, decayed by a cosine) is
trained to predict the input-view depth directly from paired synthetic images, minimising
``SIDE² + λ·(1 − cos)`` of the normals inside the ground-truth mask.
Its test SIDE/MAD bound what the architecture can reach in the budget. Paired training data come from
``unsup3d synth`` with a different seed (its ``test/`` split holds images and depth):

    unsup3d synth --out data/synth_sup --n-train 1 --n-test 4000 --seed 7
    python benchmarks/supervised_depth.py --train data/synth_sup/test --test data/synth/test --minutes 20
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from unsup3d.config import build_config, load_preset, parse_overrides
from unsup3d.data import PairedDepthDataset
from unsup3d.engine.schedule import learning_rate
from unsup3d.geometry import normals_from_depth
from unsup3d.metrics import depth_metrics, erode_mask, side
from unsup3d.model import bounded_depth, to_signed
from unsup3d.nets import EncoderDecoder


def load_all(folder: Path, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair of a paired folder: images (N, 3, S, S) in [0, 1], depth (N, S, S) with NaN background."""
    dataset = PairedDepthDataset(folder, size)
    items = [dataset[i] for i in range(len(dataset))]
    return torch.stack([x["image"] for x in items]), torch.stack([x["depth"] for x in items])


def predict(net: EncoderDecoder, images: torch.Tensor, min_depth: float, max_depth: float) -> torch.Tensor:
    """(B, 3, S, S) in [0, 1] → (B, S, S) depth in the input view."""
    return bounded_depth(net(to_signed(images))[:, 0], min_depth, max_depth)


def loss_terms(depth: torch.Tensor, gt: torch.Tensor, fov: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SIDE² and mean (1 − cos) of the normals inside the eroded ground-truth mask."""
    inside = erode_mask(torch.isfinite(gt))
    mask = inside.to(depth.dtype)
    cos = (F.normalize(normals_from_depth(depth, fov), dim=-1) * normals_from_depth(gt.nan_to_num(1.0), fov)).sum(-1)
    normal = ((1 - cos) * mask).sum(dim=(1, 2)) / mask.sum(dim=(1, 2)).clamp(min=1)
    return (side(depth, gt, inside) ** 2).mean(), normal.mean()


@torch.no_grad()
def evaluate(net, images, gt, model_config) -> tuple[float, float]:
    """Mean test SIDE (×1e-2) and MAD (degrees), the prediction valid everywhere."""
    sides, mads = [], []
    net.eval()
    for start in range(0, images.shape[0], 100):
        depth = predict(net, images[start : start + 100], model_config.min_depth, model_config.max_depth).double()
        target = gt[start : start + 100].double()
        scores = depth_metrics(depth, target, torch.ones_like(depth, dtype=torch.bool), model_config.fov)
        sides.append(scores["side"])
        mads.append(scores["mad"])
    net.train()
    return float(torch.cat(sides).nanmean()) * 100, float(torch.cat(mads).nanmean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=Path("data/synth_sup/test"))
    parser.add_argument("--test", type=Path, default=Path("data/synth/test"))
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--iterations", type=int, default=3300, help="cosine learning-rate schedule length")
    parser.add_argument("--eval-every", type=int, default=550)
    parser.add_argument("--normal-weight", type=float, default=1.0)
    args = parser.parse_args()

    config = build_config(load_preset(args.preset), parse_overrides(args.overrides))
    schedule = replace(config.train, lr_schedule="cosine", lr_warmup=0, iterations=args.iterations)
    model_config, tc = config.model, config.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    torch.manual_seed(tc.seed)
    train_images, train_depth = load_all(args.train, model_config.image_size)
    test_images, test_depth = load_all(args.test, model_config.image_size)
    net = EncoderDecoder(3, 1, model_config.autoencoder_zdim, model_config.depth_nf, None, model_config.image_size)
    optimizer = torch.optim.Adam(net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    print(f"train {train_images.shape[0]} pairs, test {test_images.shape[0]}, threads {torch.get_num_threads()}")
    print(" ".join(f"{h:>7}" for h in ["iter", "min", "loss", "SIDE", "MAD"]))
    generator = torch.Generator().manual_seed(tc.seed)
    start, iteration = time.monotonic(), 0
    deadline = start + args.minutes * 60
    while time.monotonic() < deadline and iteration < args.iterations:
        index = torch.randint(train_images.shape[0], (tc.batch_size,), generator=generator)
        images, gt = train_images[index], train_depth[index]
        flip = torch.rand(tc.batch_size, generator=generator) < 0.5
        images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        gt = torch.where(flip[:, None, None], gt.flip(-1), gt)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(schedule, iteration)
        side2, normal = loss_terms(
            predict(net, images, model_config.min_depth, model_config.max_depth), gt, model_config.fov
        )
        loss = side2 * 1e4 + args.normal_weight * normal * 10
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        iteration += 1
        if iteration % args.eval_every == 0 or iteration == args.iterations or time.monotonic() >= deadline:
            test_side, test_mad = evaluate(net, test_images, test_depth, model_config)
            minutes = (time.monotonic() - start) / 60
            print(
                f"{iteration:>7} {minutes:>7.2f} {float(loss.detach()):>7.3f} {test_side:>7.3f} {test_mad:>7.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
