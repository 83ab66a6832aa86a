"""The memory-mapped image cache: bitwise the folder's images, reused while valid, rebuilt when files change."""

import os

import numpy as np
import torch
from PIL import Image

from unsup3d.config import build_config
from unsup3d.data import ImageFolderDataset
from unsup3d.data.cache import open_cache
from unsup3d.engine.trainer import Trainer

TINY = {"depth_nf": 4, "albedo_nf": 4, "encoder_nf": 4, "conf_nf": 4, "autoencoder_zdim": 8, "conf_zdim": 8}


def photos(folder, count=6, size=(90, 70)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(folder / f"{i}.jpg", quality=90)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


def test_cache_is_bitwise_the_folder_and_is_reused(tmp_path):
    dataset = ImageFolderDataset(photos(tmp_path / "photos"), image_size=64, crop=60)
    dataset.scan()
    cached = open_cache(dataset, tmp_path / "cache")
    assert len(cached) == len(dataset) == 6
    for i in range(len(dataset)):
        assert torch.equal(cached[i]["image"], dataset[i]["image"]) and cached[i]["index"] == i
    array = tmp_path / "cache" / "images_64.npy"
    built = array.stat().st_mtime_ns
    open_cache(dataset, tmp_path / "cache")
    assert array.stat().st_mtime_ns == built  # still valid: not rebuilt


def test_cache_is_rebuilt_when_a_file_changes(tmp_path):
    folder = photos(tmp_path / "photos")
    dataset = ImageFolderDataset(folder, image_size=64)
    dataset.scan()
    open_cache(dataset, tmp_path / "cache")
    Image.new("RGB", (90, 70), (255, 0, 0)).save(folder / "2.jpg")
    os.utime(folder / "2.jpg", ns=(1, 1))  # a different modification time even on coarse clocks
    dataset = ImageFolderDataset(folder, image_size=64)
    dataset.scan()
    cached = open_cache(dataset, tmp_path / "cache")
    assert torch.equal(cached[2]["image"], dataset[2]["image"])
    assert cached[2]["image"][0].mean() > 0.95  # the new, red image


def test_training_from_the_cache_matches_training_from_the_folder(tmp_path):
    folder = photos(tmp_path / "photos", count=8)
    weights = []
    for name, cache in (("plain", None), ("cached", str(tmp_path / "cache"))):
        config = build_config(
            {
                "model": TINY,
                "train": {"batch_size": 4, "iterations": 3, "num_workers": 0, "threads": 1},
                "data": {"train_dir": str(folder), "val_fraction": 0.0, "cache_dir": cache},
            }
        )
        trainer = Trainer(config, tmp_path / name, progress=False)
        trainer.fit()
        weights.append(trainer.model.state_dict())
    for key, value in weights[0].items():
        assert torch.equal(weights[1][key], value), key
