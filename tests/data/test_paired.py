import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from unsup3d.data import ImageLoadError, PairedDepthDataset
from unsup3d.data.paired import decode_png_depth

SIZE = 16


def foreground() -> np.ndarray:
    """(16, 16) bool: an object covering rows 4..11 and columns 2..13, in 2 × 2 blocks."""
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[4:12, 2:14] = True
    return mask


def save_image(path: Path, mask: np.ndarray) -> None:
    """An RGB image whose red channel marks the object, so crops can be checked against the depth."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.zeros(mask.shape + (3,), dtype=np.uint8)
    rgb[mask, 0] = 255
    rgb[..., 2] = 90
    Image.fromarray(rgb).save(path)


def npy_depth(mask: np.ndarray) -> np.ndarray:
    rows = np.arange(SIZE, dtype=np.float32)[:, None] // 2  # constant on 2 × 2 blocks
    cols = np.arange(SIZE, dtype=np.float32)[None, :] // 2
    depth = (0.95 + 0.01 * rows + 0.001 * cols).astype(np.float32)
    return np.where(mask, depth, np.float32(np.nan)).astype(np.float32)


def png_gray(mask: np.ndarray) -> np.ndarray:
    gray = (np.arange(SIZE * SIZE).reshape(SIZE, SIZE) % 250 + 5).astype(np.uint8)
    return np.where(mask, gray, 0).astype(np.uint8)


def make_paired(root: Path) -> dict[str, np.ndarray]:
    mask = foreground()
    save_image(root / "image" / "sub" / "0001_image.png", mask)
    (root / "depth" / "sub").mkdir(parents=True)
    np.save(root / "depth" / "sub" / "0001_depth.npy", npy_depth(mask))
    save_image(root / "image" / "sub" / "0002_image.png", mask)
    Image.fromarray(png_gray(mask)).convert("RGB").save(root / "depth" / "sub" / "0002_depth.png")
    save_image(root / "image" / "0003_image.png", mask)  # no depth: left out
    return {"npy": npy_depth(mask), "png": png_gray(mask)}


def test_pairs_names_and_skipped(tmp_path, caplog):
    make_paired(tmp_path)
    with caplog.at_level(logging.WARNING):
        dataset = PairedDepthDataset(tmp_path, image_size=SIZE)
    assert len(dataset) == 2
    assert [path for path, _ in dataset.skipped] == [tmp_path / "image" / "0003_image.png"]
    assert "no depth file" in caplog.text
    assert [dataset[i]["name"] for i in range(2)] == ["sub/0001_image", "sub/0002_image"]
    assert dataset.pairs[0][1].suffix == ".npy" and dataset.pairs[1][1].suffix == ".png"


def test_npy_depth_is_exact_with_nan_background(tmp_path):
    expected = make_paired(tmp_path)["npy"]
    item = PairedDepthDataset(tmp_path, image_size=SIZE)[0]
    assert item["image"].shape == (3, SIZE, SIZE) and item["depth"].shape == (SIZE, SIZE)
    assert item["depth"].dtype == torch.float32
    np.testing.assert_array_equal(item["depth"].numpy(), expected)


def test_png_depth_decodes_original_encoding(tmp_path):
    gray = make_paired(tmp_path)["png"]
    depth = PairedDepthDataset(tmp_path, image_size=SIZE)[1]["depth"]
    expected = 1.1 - 0.2 * (gray.astype(np.float64) / 255.0)
    assert torch.equal(torch.isnan(depth), torch.from_numpy(gray == 0))
    np.testing.assert_allclose(depth.numpy()[gray > 0], expected[gray > 0], atol=1e-6)
    assert depth[5, 3].item() == pytest.approx(1.1 - 0.2 * gray[5, 3] / 255.0, abs=1e-6)


def test_decode_png_depth_extremes():
    depth = decode_png_depth(torch.tensor([[0.0, 1.0, 0.5]]))
    assert torch.isnan(depth[0, 0])
    assert depth[0, 1].item() == pytest.approx(0.9)
    assert depth[0, 2].item() == pytest.approx(1.0)


def test_resize_npy_nearest_and_png_bilinear(tmp_path):
    data = make_paired(tmp_path)
    dataset = PairedDepthDataset(tmp_path, image_size=SIZE // 2)
    npy, png = dataset[0]["depth"], dataset[1]["depth"]
    assert npy.shape == png.shape == (SIZE // 2, SIZE // 2)
    # 2 × 2 blocks shrink to one pixel each under nearest neighbour: values unchanged, NaN never mixed in
    np.testing.assert_array_equal(npy.numpy(), data["npy"][::2, ::2])
    # the PNG is resized as the original did (8-bit bilinear) before decoding; far background stays NaN
    assert torch.isnan(png[0]).all() and torch.isfinite(png[3, 3])
    assert ((png[torch.isfinite(png)] >= 0.9) & (png[torch.isfinite(png)] < 1.1)).all()


def test_crop_applies_identically_to_image_and_depth(tmp_path):
    make_paired(tmp_path)
    for crop in (10, [3, 1, 9, 9]):
        dataset = PairedDepthDataset(tmp_path, image_size=9 if isinstance(crop, list) else 10, crop=crop)
        for index in range(2):
            item = dataset[index]
            marked = item["image"][0] > 0.5  # red marks the object
            assert torch.equal(marked, torch.isfinite(item["depth"])), (crop, index)


def test_loader_batches_paired_items(tmp_path):
    make_paired(tmp_path)
    batch = next(iter(DataLoader(PairedDepthDataset(tmp_path, image_size=8), batch_size=2)))
    assert batch["image"].shape == (2, 3, 8, 8) and batch["depth"].shape == (2, 8, 8)
    assert batch["name"] == ["sub/0001_image", "sub/0002_image"]


def test_bad_depth_files_raise(tmp_path):
    mask = foreground()
    save_image(tmp_path / "image" / "a_image.png", mask)
    save_image(tmp_path / "image" / "b_image.png", mask)
    save_image(tmp_path / "image" / "c_image.png", mask)
    (tmp_path / "depth").mkdir()
    np.save(tmp_path / "depth" / "a_depth.npy", np.ones((8, 8), np.float32))  # wrong size
    Image.fromarray(np.full((SIZE, SIZE), 1000, np.uint16)).save(tmp_path / "depth" / "b_depth.png")  # 16-bit
    (tmp_path / "depth" / "c_depth.npy").write_bytes(b"garbage")
    dataset = PairedDepthDataset(tmp_path, image_size=SIZE)
    for index, match in enumerate(["8x8", "16-bit", "c_depth"]):
        with pytest.raises(ImageLoadError, match=match):
            dataset[index]


def test_missing_layout_raises(tmp_path):
    save_image(tmp_path / "image" / "a.png", foreground())
    with pytest.raises(NotADirectoryError):
        PairedDepthDataset(tmp_path)
    (tmp_path / "depth").mkdir()
    with pytest.raises(ValueError, match="no image/depth pairs"):
        PairedDepthDataset(tmp_path)


# ---------------------------------------------------------------------- keypoints
def write_meta(root: Path, records: list) -> None:
    import json

    (root / "meta.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))


def keypoint_record(name: str, uv, depth=None, visible=None) -> dict:
    entry = {"uv": uv, "depth": depth or [1.0] * len(uv)}
    if visible is not None:
        entry["visible"] = visible
    return {"name": name, "keypoints": entry}


def test_no_meta_file_means_no_keypoints(tmp_path):
    make_paired(tmp_path)
    dataset = PairedDepthDataset(tmp_path, image_size=SIZE)
    assert not dataset.has_keypoints and "keypoints" not in dataset[0]
    write_meta(tmp_path, [{"name": "sub/0001_image", "view": [0] * 6}])  # a meta file without keypoints
    assert not PairedDepthDataset(tmp_path, image_size=SIZE).has_keypoints


def test_keypoints_follow_crop_and_resize(tmp_path):
    from unsup3d.data.paired import move_keypoints

    make_paired(tmp_path)
    uv = [[2.0, 4.0], [13.0, 11.0], [0.0, 15.0]]
    write_meta(tmp_path, [keypoint_record("sub/0001_image", uv, [0.9, 1.0, 1.1], [True, True, False]),
                          keypoint_record("sub/0002_image", uv)])  # fmt: skip
    same = PairedDepthDataset(tmp_path, image_size=SIZE)[0]
    assert torch.allclose(same["keypoints"], torch.tensor(uv)) and same["keypoints"].dtype == torch.float32
    assert same["keypoint_depth"].tolist() == pytest.approx([0.9, 1.0, 1.1])
    assert same["keypoint_visible"].tolist() == [True, True, False]
    cropped = PairedDepthDataset(tmp_path, image_size=9, crop=[3, 1, 9, 9])[1]  # rows 3..11, columns 1..9
    assert torch.allclose(cropped["keypoints"], torch.tensor(uv) - torch.tensor([1.0, 3.0]))
    assert cropped["keypoint_visible"].tolist() == [True, False, False]  # (12, 8) and (-1, 12) fall outside
    half = PairedDepthDataset(tmp_path, image_size=SIZE // 2)[1]
    assert torch.allclose(half["keypoints"], (torch.tensor(uv) + 0.5) / 2 - 0.5)
    # A blob's centre moves as its keypoint does under PIL's resize (pixel centres at integers on both sides).
    image = np.zeros((16, 16), np.float32)
    image[4:8, 8:12] = 1.0  # centre (u, v) = (9.5, 5.5)
    small = np.asarray(Image.fromarray(image).resize((8, 8), Image.Resampling.BILINEAR), dtype=np.float64)
    rows, cols = np.mgrid[0:8, 0:8]
    centre = [(small * cols).sum() / small.sum(), (small * rows).sum() / small.sum()]
    moved = move_keypoints(np.array([[9.5, 5.5]], np.float32), (16, 16), 8, None)[0]
    assert np.allclose(moved, centre, atol=1e-6)


def test_synthetic_test_split_carries_its_keypoints(tmp_path):
    import json

    from unsup3d.synthetic.dataset import write_dataset

    out = write_dataset(tmp_path / "synth", n_train=0, n_test=3, size=24, seed=2, progress=False)
    dataset = PairedDepthDataset(out / "test", image_size=24)
    assert dataset.has_keypoints
    meta = [json.loads(line) for line in (out / "test/meta.jsonl").read_text().splitlines()]
    batch = next(iter(DataLoader(dataset, batch_size=3)))
    count = len(meta[0]["keypoints"]["uv"])
    assert batch["keypoints"].shape == (3, count, 2) and batch["keypoint_visible"].dtype == torch.bool
    for k, record in enumerate(meta):
        assert torch.allclose(batch["keypoints"][k], torch.tensor(record["keypoints"]["uv"]))
        assert torch.allclose(batch["keypoint_depth"][k], torch.tensor(record["keypoints"]["depth"]))
        assert batch["keypoint_visible"][k].tolist() == record["keypoints"]["visible"]


def test_keypoints_of_only_some_images_are_not_used(tmp_path, caplog):
    make_paired(tmp_path)
    write_meta(tmp_path, [keypoint_record("sub/0001_image", [[1.0, 1.0]])])
    with caplog.at_level(logging.WARNING):
        dataset = PairedDepthDataset(tmp_path, image_size=SIZE)
    assert not dataset.has_keypoints and "1 of 2 image(s) have no keypoints" in caplog.text


def test_bad_keypoint_files_raise(tmp_path):
    from unsup3d.data import DataError

    make_paired(tmp_path)
    cases = {
        "different numbers": [keypoint_record("sub/0001_image", [[1.0, 1.0]]),
                              keypoint_record("sub/0002_image", [[1.0, 1.0], [2.0, 2.0]])],
        "line 2": [keypoint_record("sub/0001_image", [[1.0, 1.0]]), keypoint_record("sub/0002_image", [[1.0]])],
        "true/false": [keypoint_record("sub/0001_image", [[1.0, 1.0]], visible=[1])],
    }  # fmt: skip
    for match, records in cases.items():
        write_meta(tmp_path, records)
        with pytest.raises(DataError, match=match):
            PairedDepthDataset(tmp_path, image_size=SIZE)
    (tmp_path / "meta.jsonl").write_text("{not json\n")
    with pytest.raises(DataError, match="line 1"):
        PairedDepthDataset(tmp_path, image_size=SIZE)
