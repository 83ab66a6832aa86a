"""Messy photo folders: every kind of bad file is reported with a reason and skipped; training goes on."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unsup3d.config import build_config
from unsup3d.data import ImageFolderDataset, ImageLoadError, load_image
from unsup3d.data import images as images_module
from unsup3d.engine.trainer import Trainer

TINY = {"depth_nf": 4, "albedo_nf": 4, "encoder_nf": 4, "conf_nf": 4, "autoencoder_zdim": 8, "conf_zdim": 8}


def noise_image(size=(64, 64), seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size[::-1], 3), dtype=np.uint8))


def write_messy_folder(root: Path) -> tuple[list[Path], dict[Path, str]]:
    """Readable images of many kinds, and bad files of every kind, each with a word its reason must contain."""
    root.mkdir(parents=True, exist_ok=True)
    good = []
    for i, mode in enumerate(["RGB", "L", "LA", "P", "RGBA", "CMYK", "I;16", "1"]):
        image = noise_image(seed=i)
        image = image.convert("I") if mode == "I;16" else image.convert(mode)
        if mode == "I;16":
            image = Image.fromarray(np.asarray(image, dtype=np.uint16) * 257)
        name = f"good_{i}_{mode.replace(';', '')}.{'jpg' if mode == 'CMYK' else 'png'}"
        image.save(root / name)
        good.append(root / name)
    Image.new("RGB", (1, 1), (9, 9, 9)).save(root / "tiny_1x1.png")
    Image.new("RGB", (3, 2), (9, 9, 9)).save(root / "tiny_3x2.bmp")
    exif = Image.Exif()
    exif[0x0112] = 8
    noise_image((40, 20)).save(root / "rotated.jpg", exif=exif)
    good += [root / "tiny_1x1.png", root / "tiny_3x2.bmp", root / "rotated.jpg"]

    bad: dict[Path, str] = {}
    (root / "empty.png").write_bytes(b"")
    bad[root / "empty.png"] = "empty"
    (root / "text.jpg").write_text("not a JPEG at all\n")
    bad[root / "text.jpg"] = "cannot identify"
    noise_image().save(root / "cut.png")
    data = (root / "cut.png").read_bytes()
    (root / "cut.png").write_bytes(data[: len(data) // 3])
    bad[root / "cut.png"] = "truncated"
    noise_image().save(root / "garbled.jpg")
    data = bytearray((root / "garbled.jpg").read_bytes())
    data[200:] = bytes(len(data) - 200)  # header intact, entropy-coded data zeroed and cut short
    (root / "garbled.jpg").write_bytes(bytes(data[: len(data) // 2]))
    bad[root / "garbled.jpg"] = "Error"
    (root / "gone.png").symlink_to(root / "does_not_exist.png")
    bad[root / "gone.png"] = "broken symbolic link"
    (root / "folder.png").mkdir()  # a folder named like an image is walked into, not read
    noise_image(seed=9).save(root / "folder.png" / "inside.png")
    good.append(root / "folder.png" / "inside.png")
    Image.new("1", (9000, 9000)).save(root / "bomb.png")  # 81 Mpx, a few kB on disk
    bad[root / "bomb.png"] = "too large"
    return good, bad


def test_every_bad_kind_is_reported_with_its_reason(tmp_path):
    good, bad = write_messy_folder(tmp_path / "messy")
    dataset = ImageFolderDataset(tmp_path / "messy", image_size=64)
    dropped = dict(dataset.scan())
    assert set(dropped) == set(bad)
    for path, word in bad.items():
        assert word.lower() in dropped[path].lower(), (path.name, dropped[path])
    assert sorted(dataset.paths) == sorted(good)
    images = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
    assert images.shape == (len(good), 3, 64, 64) and torch.isfinite(images).all()


def test_exif_rotation_is_applied_and_a_folder_is_not_an_image(tmp_path):
    write_messy_folder(tmp_path)
    assert load_image(tmp_path / "rotated.jpg").size == (20, 40)  # stored 40x20, EXIF orientation 8 turns it
    with pytest.raises(ImageLoadError, match="not a file"):
        load_image(tmp_path / "folder.png")


def test_decompression_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    Image.new("RGB", (50, 50)).save(tmp_path / "big.png")
    monkeypatch.setattr(images_module, "MAX_PIXELS", 2499)
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self) or None)
    with pytest.raises(ImageLoadError, match="too large: 50x50"):
        load_image(tmp_path / "big.png")
    assert not decoded


def test_unreadable_file_is_reported(tmp_path, monkeypatch):
    noise_image().save(tmp_path / "locked.png")
    noise_image(seed=1).save(tmp_path / "open.png")
    if os.geteuid() != 0:  # a real permission error; root reads anything, so there it is simulated below
        (tmp_path / "locked.png").chmod(0)
    else:
        real_open = Image.open

        def denied(path, *args, **kwargs):
            if Path(path).name == "locked.png":
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(images_module.Image, "open", denied)
    dataset = ImageFolderDataset(tmp_path, image_size=8)
    dropped = dataset.scan()
    assert [(path.name, "Permission denied" in reason) for path, reason in dropped] == [("locked.png", True)]


def test_training_on_a_messy_folder_reports_skipped_files_and_runs(tmp_path):
    good, bad = write_messy_folder(tmp_path / "messy")
    config = build_config(
        {
            "model": TINY,
            "train": {"batch_size": 4, "iterations": 3, "num_workers": 0, "threads": 1},
            "data": {"train_dir": str(tmp_path / "messy"), "val_fraction": 0.0},
        }
    )
    trainer = Trainer(config, tmp_path / "run", progress=False)
    trainer.fit()
    assert trainer.iteration == 3
    report = (tmp_path / "run" / "skipped_files.txt").read_text().splitlines()
    assert {Path(line.split("\t")[0]) for line in report} == set(bad)
    assert all(line.split("\t")[1] for line in report)
