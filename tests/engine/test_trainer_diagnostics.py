"""Training logs the collapse statistics at validation time and warns once per run for each detector that fires."""

import json
import logging

import torch
from _tiny_runs import TINY_MODEL, noise_images

from unsup3d.config import build_config
from unsup3d.diagnostics import DETECTORS
from unsup3d.engine.trainer import Trainer


def test_a_flat_model_is_logged_and_warned_about_once(tmp_path, caplog):
    train = {"iterations": 3, "validate_every": 1, "image_log_every": 1000, "depth_prior_iterations": 1}
    train.update({"batch_size": 4, "lr": 1e-9, "num_workers": 0, "threads": 1})
    data = {"train_dir": str(noise_images(tmp_path / "images", 24)), "val_fraction": 0.5}
    trainer = Trainer(
        build_config({"model": TINY_MODEL, "train": train, "data": data}), tmp_path / "run", progress=False
    )
    output = [m for m in trainer.model.depth_net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    torch.nn.init.zeros_(output.weight)  # flat depth; the learning rate keeps it flat for three steps
    with caplog.at_level(logging.WARNING, logger="unsup3d.engine.trainer"):
        trainer.fit()
    flat = [r.getMessage() for r in caplog.records if "collapse detector 'flat'" in r.getMessage()]
    # Validated at iterations 1, 2 and 3; not reported during the depth prior (1), reported once after it.
    assert len(flat) == 1 and "at iteration 2" in flat[0], flat
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    validation = [r for r in records if "val/total" in r]
    assert [r["step"] for r in validation] == [1, 2, 3]
    for record in validation:
        assert record["val/depth_relief"] < 1e-3
        assert {f"val/{d.statistic}" for d in DETECTORS} - set(record) <= {"val/translation_yaw_correlation"}
