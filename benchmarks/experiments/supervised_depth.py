"""Supervised reference: the same depth network trained on ground-truth depth, for the same time budget.

The paper's supervised baseline (Table 2) as the package trains it, ``unsup3d train --supervised``
(:mod:`unsup3d.engine.supervised`): the preset's model (same widths, same output range) with its view fixed to
the identity, only its depth network trained, L1 on the ground-truth input-view depth of paired synthetic
images, at the preset's batch and peak learning rate decayed by a cosine over ``--iterations``, without warm-up.
Every ``--eval-every`` iterations and at the end it prints the test SIDE/MAD, which bound what the architecture
can reach in the budget. Paired training data come from ``unsup3d synth`` with a different seed (its ``test/``
split holds images and depth):

    unsup3d synth --out data/synth_sup --n-train 1 --n-test 4000 --seed 7
    python benchmarks/experiments/supervised_depth.py --train data/synth_sup/test --test data/synth/test --minutes 20

The run directory (``--out``) holds the checkpoints, which ``unsup3d evaluate`` and ``unsup3d reconstruct`` read.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from unsup3d.config import build_config, load_preset, parse_overrides
from unsup3d.data import PairedDepthDataset
from unsup3d.engine.trainer import Trainer
from unsup3d.evaluation import evaluate_depth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=Path("data/synth_sup/test"))
    parser.add_argument("--test", type=Path, default=Path("data/synth/test"))
    parser.add_argument("--out", type=Path, default=Path("runs/supervised"), help="run directory (a fresh one)")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--iterations", type=int, default=3300, help="cosine learning-rate schedule length")
    parser.add_argument("--eval-every", type=int, default=550)
    args = parser.parse_args()

    supervised = {
        "model": {"use_conf": False},
        "train": {"supervised": True, "lr_schedule": "cosine", "lr_warmup": 0, "iterations": args.iterations},
        "data": {"train_dir": str(args.train), "val_fraction": 0.0},
    }
    config = build_config(load_preset(args.preset), supervised, parse_overrides(args.overrides))
    trainer = Trainer(config, args.out, progress=False)
    test_set = PairedDepthDataset(args.test, config.model.image_size)
    print(f"train {len(trainer.train_set)} pairs, test {len(test_set)}, threads {torch.get_num_threads()}")
    print(" ".join(f"{h:>7}" for h in ["iter", "min", "SIDE", "MAD"]))
    start = time.monotonic()
    while trainer.iteration < args.iterations and not trainer.interrupted:
        left = args.minutes - (time.monotonic() - start) / 60
        if left <= 0:
            break
        trainer.fit(until=trainer.iteration + args.eval_every, minutes=left)
        scores = evaluate_depth(trainer.model, test_set, 100, trainer.device)
        side, mad = float(scores["side"].nanmean()) * 100, float(scores["mad"].nanmean())
        minutes = (time.monotonic() - start) / 60
        print(f"{trainer.iteration:>7} {minutes:>7.2f} {side:>7.3f} {mad:>7.2f}", flush=True)


if __name__ == "__main__":
    main()
