import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unsup3d.data import (
    IMAGE_EXTENSIONS,
    ImageFolderDataset,
    ImageLoadError,
    find_images,
    load_image,
    resize_square,
    to_tensor,
)


def save_rgb(path: Path, size=(20, 12), color=(200, 30, 60)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def save_truncated_png(path: Path) -> Path:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def make_bad_files(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    corrupt = root / "corrupt.png"
    corrupt.write_bytes(np.random.default_rng(1).integers(0, 256, 500, dtype=np.uint8).tobytes())
    empty = root / "empty.jpg"
    empty.write_bytes(b"")
    text = root / "notes.jpg"
    text.write_text("this is a text file, not a JPEG\n")
    return {"corrupt": corrupt, "empty": empty, "text": text, "truncated": save_truncated_png(root / "cut.png")}


# ---------------------------------------------------------------- load_image


def test_load_image_converts_every_mode_to_rgb(tmp_path):
    rgba = Image.new("RGBA", (6, 5), (255, 0, 0, 128))
    la = Image.new("LA", (6, 5), (100, 0))  # fully transparent
    palette = Image.new("P", (6, 5), 3)
    palette.putpalette([0, 0, 0] * 3 + [10, 20, 30] + [0, 0, 0] * 252)
    palette_alpha = palette.copy()
    palette_alpha.info["transparency"] = 3
    cases = {
        "l.png": (Image.new("L", (6, 5), 77), (77, 77, 77)),
        "la.png": (la, (255, 255, 255)),
        "p.png": (palette, (10, 20, 30)),
        "p_alpha.png": (palette_alpha, (255, 255, 255)),
        "rgba.png": (rgba, (255, 127, 127)),
        "i16.png": (Image.fromarray(np.full((5, 6), 257 * 100, np.uint16)), (100, 100, 100)),
        "cmyk.jpg": (Image.new("CMYK", (6, 5), (0, 255, 255, 0)), (255, 0, 0)),
        "one.bmp": (Image.new("1", (6, 5), 1), (255, 255, 255)),
        "rgb.webp": (Image.new("RGB", (6, 5), (0, 128, 255)), (0, 128, 255)),
    }
    for name, (image, expected) in cases.items():
        image.save(tmp_path / name, **({"lossless": True} if name.endswith(".webp") else {}))
        loaded = load_image(tmp_path / name)
        assert loaded.mode == "RGB" and loaded.size == (6, 5), name
        assert np.abs(np.subtract(loaded.getpixel((2, 2)), expected)).max() <= 2, name


def test_sixteen_bit_gray_uses_the_full_range(tmp_path):
    ramp = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    loaded = np.asarray(load_image(tmp_path / "ramp.png"))[0, :, 0]
    assert loaded.tolist() == [0, 1, 128, 255]


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 10, 10))  # red top-left corner as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    loaded = load_image(tmp_path / "rotated.jpg")
    assert loaded.size == (20, 40)  # width, height swapped
    top_right = np.asarray(loaded)[2, -3]
    assert top_right[0] > 200 and top_right[2] < 60  # red moved to the top-right corner
    assert np.asarray(loaded)[2, 2][2] > 200  # top-left is now blue


@pytest.mark.parametrize("kind", ["corrupt", "empty", "text", "truncated"])
def test_bad_files_raise_image_load_error(tmp_path, kind):
    path = make_bad_files(tmp_path)[kind]
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert info.value.path == path
    assert info.value.reason
    assert str(path) in str(info.value)
    assert isinstance(info.value, OSError)


def test_missing_file_raises_image_load_error(tmp_path):
    with pytest.raises(ImageLoadError):
        load_image(tmp_path / "nope.png")


# ---------------------------------------------------------------- find_images


def test_find_images_recursive_sorted_filtered(tmp_path):
    for name in ["b.png", "a.JPG", "sub/z.jpeg", "sub/deeper/c.WebP", "sub-x/d.bmp", "sub/y.png"]:
        save_rgb(tmp_path / name)
    (tmp_path / "readme.txt").write_text("x")
    save_rgb(tmp_path / "anim.gif")
    found = [p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path)]
    # sorted(os.walk) order: folders by their path string ("sub" < "sub-x" < "sub/deeper"), then file names
    assert found == ["a.JPG", "b.png", "sub/y.png", "sub/z.jpeg", "sub-x/d.bmp", "sub/deeper/c.WebP"]
    walked = [Path(folder, name) for folder, _, names in sorted(os.walk(tmp_path)) for name in sorted(names)]
    assert find_images(tmp_path) == [p for p in walked if p.suffix.lower() in IMAGE_EXTENSIONS]
    assert set(IMAGE_EXTENSIONS) == {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def test_find_images_bad_roots(tmp_path):
    with pytest.raises(FileNotFoundError):
        find_images(tmp_path / "missing")
    with pytest.raises(NotADirectoryError):
        find_images(save_rgb(tmp_path / "file.png"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="no images found"):
        find_images(tmp_path / "empty")


# ---------------------------------------------------------------- transform


def test_resize_square_crops_and_resizes():
    image = Image.new("RGB", (30, 20), (0, 0, 0))
    image.paste((255, 255, 255), (10, 5, 20, 15))  # white 10 x 10 square in the centre
    centre = resize_square(image, 10, crop=10)
    assert centre.size == (10, 10) and np.asarray(centre).min() == 255
    box = resize_square(image, 5, crop=[5, 10, 10, 10])  # top, left, h, w
    assert box.size == (5, 5) and np.asarray(box).min() == 255
    assert resize_square(image, 7).size == (7, 7)
    with pytest.raises(ValueError):
        resize_square(image, 8, crop=21)
    with pytest.raises(ValueError):
        resize_square(image, 8, crop=[0, 25, 10, 10])
    with pytest.raises(ValueError):
        resize_square(image, 8, crop=[1, 2, 3])


def test_resize_square_antialiases_when_shrinking():
    checker = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)
    small = np.asarray(resize_square(Image.fromarray(checker).convert("RGB"), 8), dtype=float)
    assert np.abs(small - 127.5).max() < 10


def test_to_tensor_shape_range():
    tensor = to_tensor(Image.new("RGB", (5, 3), (255, 0, 51)))
    assert tensor.shape == (3, 3, 5) and tensor.dtype == torch.float32
    assert torch.allclose(tensor[:, 0, 0], torch.tensor([1.0, 0.0, 0.2]))
    with pytest.raises(ValueError):
        to_tensor(Image.new("L", (5, 3)))


# ---------------------------------------------------------------- dataset


def make_folder(root: Path) -> tuple[list[Path], dict[str, Path]]:
    good = [
        save_rgb(root / "a.png", (24, 24)),
        save_rgb(root / "sub" / "b.jpg", (40, 30)),
        save_rgb(root / "sub" / "c.png", (16, 16)),
    ]
    bad = make_bad_files(root / "bad")
    return good, bad


def test_scan_reports_exactly_the_bad_files(tmp_path, caplog):
    good, bad = make_folder(tmp_path)
    dataset = ImageFolderDataset(tmp_path, image_size=8)
    assert len(dataset) == len(good) + len(bad)
    with caplog.at_level(logging.WARNING):
        dropped = dataset.scan()
    assert {path for path, _ in dropped} == set(bad.values())
    assert dataset.skipped == dropped
    assert all(reason for _, reason in dropped)
    assert "unreadable" in caplog.text
    assert sorted(dataset.paths) == sorted(good)
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["index"] == index
        assert item["image"].shape == (3, 8, 8) and item["image"].dtype == torch.float32
        assert item["image"].min() >= 0.0 and item["image"].max() <= 1.0


def test_scan_of_only_bad_files_raises(tmp_path):
    make_bad_files(tmp_path)
    with pytest.raises(ValueError, match="no readable images"):
        ImageFolderDataset(tmp_path).scan()


def test_scan_drops_images_the_crop_does_not_fit(tmp_path):
    save_rgb(tmp_path / "big.png", (30, 30))
    small = save_rgb(tmp_path / "small.png", (10, 10))
    dataset = ImageFolderDataset(tmp_path, image_size=8, crop=20)
    assert [path for path, _ in dataset.scan()] == [small]


def test_getitem_skips_unreadable_files_without_crashing(tmp_path, caplog):
    save_rgb(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"not a png")
    save_rgb(tmp_path / "c.png", color=(1, 2, 3))
    dataset = ImageFolderDataset(tmp_path, image_size=4)
    with caplog.at_level(logging.WARNING):
        item = dataset[1]
    assert item["index"] == 2
    assert "b.png" in caplog.text
    assert torch.allclose(item["image"][:, 0, 0], torch.tensor([1.0, 2.0, 3.0]) / 255)
    with pytest.raises(IndexError):
        dataset[3]
