"""Does it learn 3D? Train on the built-in synthetic faces and print accuracy curves against ground truth.

Every ``--eval-every`` iterations it evaluates on the synthetic test set and prints: SIDE and MAD (mean over
images) next to the constant-depth and average-depth baselines, the correlation of predicted and true yaw, of
horizontal translation and true yaw (yaw explained by translation), the fraction of inverted (hollow) faces, and
the predicted relief. Run:

    python benchmarks/experiments/learn_synthetic.py --data data/synth --minutes 20 --preset cpu
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from unsup3d.config import build_config, load_preset, parse_overrides
from unsup3d.data import PairedDepthDataset
from unsup3d.engine.trainer import Trainer
from unsup3d.evaluation import baseline_scores, predict_view_depth
from unsup3d.metrics import depth_metrics, evaluation_mask, pearson, slope


@torch.no_grad()
def evaluate(model, dataset, meta, device) -> dict[str, float]:
    """Depth metrics, view correlations and failure-mode indicators on the synthetic test set."""
    sides, mads, corrs, reliefs, views, names = [], [], [], [], [], []
    for batch in DataLoader(dataset, batch_size=100):
        names.extend(batch["name"])
        images, gt = batch["image"].to(device), batch["depth"].to(device).double()
        depth, valid, view = predict_view_depth(model, images)
        depth = depth.double()
        scores = depth_metrics(depth, gt, valid, model.config.fov)
        sides.append(scores["side"].cpu())
        mads.append(scores["mad"].cpu())
        mask = evaluation_mask(gt, valid)
        for b in range(images.shape[0]):
            m = mask[b]
            if m.sum() > 10:
                corrs.append(pearson(-depth[b][m], -gt[b][m]))
                reliefs.append(float(depth[b][m].max() - depth[b][m].min()))
        views.append(view.cpu())
    views = torch.cat(views)
    true = torch.tensor([meta[name]["view"] for name in names], dtype=torch.float64)
    corrs_t = torch.tensor(corrs)
    return {
        "side": float(torch.cat(sides).nanmean()) * 100,
        "mad": float(torch.cat(mads).nanmean()),
        "yaw_corr": pearson(views[:, 1].double(), true[:, 1]),
        "yaw_slope": slope(views[:, 1].double(), true[:, 1]),
        "pitch_corr": pearson(views[:, 0].double(), true[:, 0]),
        "tx_vs_yaw": pearson(views[:, 3].double(), true[:, 1]),
        "depth_corr": float(corrs_t.mean()),
        "hollow": float((corrs_t < 0).double().mean()),
        "relief": float(torch.tensor(reliefs).median()),
    }


HEADER = [
    "iter",
    "min",
    "it/s",
    "loss",
    "SIDE",
    "MAD",
    "yaw_r",
    "yaw_k",
    "pitch_r",
    "tx~yaw",
    "d_corr",
    "hollow",
    "relief",
]
ROW_KEYS = ["side", "mad", "yaw_corr", "yaw_slope", "pitch_corr", "tx_vs_yaw", "depth_corr", "hollow", "relief"]


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/synth"))
    parser.add_argument("--out", type=Path, default=Path("runs/learn_synthetic"))
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument(
        "--iterations", type=int, default=None, help="stop after this many iterations too (and schedule lr over them)"
    )
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--device", default="auto")
    return parser.parse_args()


def load_meta(test_dir: Path) -> dict[str, dict]:
    """The true view and light of each test image, by name (``meta.jsonl`` of the synthetic test set)."""
    records = (json.loads(line) for line in (test_dir / "meta.jsonl").read_text().splitlines())
    return {record["name"]: record for record in records}


def main() -> None:
    args = _arguments()
    config = build_config(
        load_preset(args.preset),
        parse_overrides(args.overrides),
        {
            "data": {"train_dir": str(args.data / "train"), "val_fraction": 0.0},
            "train": {"device": args.device, "validate_every": 10**9, "iterations": args.iterations or 10**9},
        },
    )
    dataset = PairedDepthDataset(args.data / "test", config.model.image_size)
    meta = load_meta(args.data / "test")
    for name, scores in baseline_scores(dataset, config.model.fov).items():
        print(
            f"baseline {name:<9} SIDE {float(scores['side'].nanmean()) * 100:.3f}e-2  "
            f"MAD {float(scores['mad'].nanmean()):.2f}"
        )
    trainer = Trainer(config, args.out, progress=False)
    print(
        f"device {trainer.device}, threads {torch.get_num_threads()}, "
        f"params {sum(p.numel() for p in trainer.model.parameters()) / 1e6:.2f} M"
    )
    print(" ".join(f"{h:>7}" for h in HEADER))
    train_and_report(trainer, args, dataset, meta)


def train_and_report(trainer: Trainer, args: argparse.Namespace, dataset, meta: dict[str, dict]) -> None:
    """Train in slices of ``--eval-every`` iterations within the time budget, printing a row after each."""
    start = time.monotonic()
    deadline = start + args.minutes * 60
    budget = args.iterations or 10**9
    while time.monotonic() < deadline and trainer.iteration < budget:
        t0, i0 = time.monotonic(), trainer.iteration
        remaining_min = (deadline - time.monotonic()) / 60
        trainer.fit(until=min(trainer.iteration + args.eval_every, budget), minutes=remaining_min)
        if trainer.interrupted:
            break
        rate = (trainer.iteration - i0) / max(time.monotonic() - t0, 1e-9)
        row = evaluate(trainer.model, dataset, meta, trainer.device)
        values = [trainer.iteration, (time.monotonic() - start) / 60, rate, _last_loss(args.out)]
        values += [row[key] for key in ROW_KEYS]
        print(" ".join(f"{v:>7.3f}" if isinstance(v, float) else f"{v:>7}" for v in values), flush=True)


def _last_loss(run_dir: Path) -> float:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    for line in reversed(lines):
        record = json.loads(line)
        if "train/total" in record:
            return record["train/total"]
    return math.nan


if __name__ == "__main__":
    main()
