"""Shared pieces of the multi-process training tests: a folder of noise images and a tiny model."""

from pathlib import Path

import numpy as np
import yaml
from PIL import Image

TINY_MODEL = {"depth_nf": 4, "albedo_nf": 4, "encoder_nf": 4, "conf_nf": 4, "autoencoder_zdim": 8, "conf_zdim": 8}


def noise_images(folder: Path, count: int, seed: int = 0) -> Path:
    """Write ``count`` 64×64 RGB noise PNGs into ``folder`` (created); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return folder


def write_run_config(root: Path, images: int, **train) -> Path:
    """``root/images`` with ``images`` noise pictures and ``root/config.yaml`` training the tiny model on them
    single-threaded, without validation or image logs, with ``train`` settings on top; returns ``root``."""
    settings = {"threads": 1, "num_workers": 0, "validate_every": 1000, "image_log_every": 1000, **train}
    config = {
        "model": TINY_MODEL,
        "train": settings,
        "data": {"train_dir": str(noise_images(root / "images", images)), "val_fraction": 0.0},
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    return root
