"""The asymmetric perturbation of the synthetic faces (paper, Table 4), and the unperturbed output it must keep."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unsup3d.cli import main
from unsup3d.synthetic import generator as syn
from unsup3d.synthetic.dataset import write_dataset

# sha256 of the decoded pixels of every PNG (path, then pixels, in sorted path order) of
# write_dataset(n_train=3, n_test=3, size=32, seed=7), computed with the generator as it was before the
# perturbation and the keypoints existed: a change here changes every dataset generated so far.
UNPERTURBED_PIXELS_SHA256 = "032965d13738dec2e985896d7f0d4e2bd5cf815132d6cfc03935de899ddd3bb7"


def _pixels_sha256(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.png")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(np.asarray(Image.open(path)).tobytes())
    return digest.hexdigest()


def test_unperturbed_dataset_is_unchanged(tmp_path):
    out = write_dataset(tmp_path / "synth", n_train=3, n_test=3, size=32, seed=7, progress=False)
    assert _pixels_sha256(out) == UNPERTURBED_PIXELS_SHA256
    assert json.loads((out / "dataset.json").read_text())["perturbation"] is None
    assert all("patch" not in json.loads(line) for line in (out / "test/meta.jsonl").read_text().splitlines())


def test_patch_is_drawn_last_and_ranges_hold():
    size = 50
    for seed in range(15):
        plain = syn.sample_params(np.random.default_rng(seed), size)
        perturbed = syn.sample_params(np.random.default_rng(seed), size, perturb=True)
        assert plain.patch is None
        for field in fields(syn.SampleParams):  # every other choice is the same
            if field.name not in ("patch", "shape", "albedo"):
                a, b = getattr(plain, field.name), getattr(perturbed, field.name)
                assert np.array_equal(np.asarray(a), np.asarray(b)), field.name
        for key in ("shape", "albedo"):
            a, b = getattr(plain, key), getattr(perturbed, key)
            assert all(np.array_equal(a[k], b[k]) for k in a), key
        patch = perturbed.patch
        lo, hi = (round(f * size) for f in syn.PATCH_SIDE)
        assert lo <= patch.height <= hi and lo <= patch.width <= hi
        assert 0 <= patch.top <= size - patch.height and 0 <= patch.left <= size - patch.width
        assert 0.5 <= patch.alpha <= 1.0 and patch.colour.shape == (3,)
        assert np.all((patch.colour >= 0) & (patch.colour <= 1))


def test_patch_sides_are_uniform_between_20_and_50_percent():
    rng = np.random.default_rng(0)
    sides = np.array([[p.height, p.width] for p in (syn.sample_patch(rng, 200) for _ in range(2000))]) / 200
    assert sides.min() >= 0.2 and sides.max() <= 0.5
    assert abs(sides.mean() - 0.35) < 0.01 and abs(sides.std() - 0.3 / np.sqrt(12)) < 0.01  # uniform moments
    alphas = np.array([syn.sample_patch(rng, 200).alpha for _ in range(2000)])
    assert abs(alphas.mean() - 0.75) < 0.01


def test_perturbation_blends_only_inside_the_rectangle():
    """With noise and JPEG on, the perturbed image is the unperturbed one everywhere outside the rectangle, and
    exactly ``(1 − α) · image + α · colour`` inside."""
    size = 32
    for seed in (3, 11):
        plain = syn.sample_params(np.random.default_rng(seed), size)
        perturbed = syn.sample_params(np.random.default_rng(seed), size, perturb=True)
        plain.jpeg_quality = perturbed.jpeg_quality = 80
        batch = syn.render_params([plain, perturbed], size, canonical=False)
        before, after = batch.image[0], batch.image[1]
        patch = perturbed.patch
        inside = torch.zeros(size, size, dtype=torch.bool)
        inside[patch.top : patch.top + patch.height, patch.left : patch.left + patch.width] = True
        assert torch.equal(after[:, ~inside], before[:, ~inside])
        colour = torch.from_numpy(patch.colour)[:, None]
        expected = (1 - patch.alpha) * before[:, inside] + patch.alpha * colour
        assert torch.allclose(after[:, inside], expected, atol=1e-6)
        assert (after[:, inside] - before[:, inside]).abs().amax() > 1e-3  # the patch shows
        assert torch.equal(batch.depth[0].nan_to_num(), batch.depth[1].nan_to_num())  # the ground truth is the face's


def test_perturbed_dataset_records_its_rectangles(tmp_path):
    plain = write_dataset(tmp_path / "plain", n_train=2, n_test=2, size=24, seed=5, progress=False)
    out = tmp_path / "perturbed"
    assert main(["synth", "--out", str(out), "--n-train", "2", "--n-test", "2", "--size", "24", "--seed", "5",
                 "--perturb"]) == 0  # fmt: skip
    info = json.loads((out / "dataset.json").read_text())["perturbation"]
    assert info["side_fraction"] == [0.2, 0.5] and info["alpha"] == [0.5, 1.0]
    assert "perturbation" in (out / "README.txt").read_text()
    for line in (out / "test/meta.jsonl").read_text().splitlines():
        record = json.loads(line)
        patch, name = record["patch"], record["name"]
        before = np.asarray(Image.open(plain / "test/image" / f"{name}.png"), dtype=np.float64) / 255
        after = np.asarray(Image.open(out / "test/image" / f"{name}.png"), dtype=np.float64) / 255
        rows = slice(patch["top"], patch["top"] + patch["height"])
        cols = slice(patch["left"], patch["left"] + patch["width"])
        blended = before.copy()
        blended[rows, cols] = (1 - patch["alpha"]) * before[rows, cols] + patch["alpha"] * np.array(patch["colour"])
        # The blend happens before 8-bit rounding: one level of slack inside, none outside.
        assert np.abs(after - blended).max() <= 1 / 255 + 1e-9
        outside = np.ones(before.shape[:2], dtype=bool)
        outside[rows, cols] = False
        assert np.array_equal(after[outside], before[outside])
        np.testing.assert_array_equal(
            np.load(out / "test/depth" / f"{name}.npy"), np.load(plain / "test/depth" / f"{name}.npy")
        )
    for name in ("00000.png", "00001.png"):  # training images are perturbed too
        assert (out / "train" / name).read_bytes() != (plain / "train" / name).read_bytes()


@pytest.mark.parametrize("size", [2, 5])
def test_patch_fits_tiny_images(size):
    rng = np.random.default_rng(1)
    for _ in range(50):
        patch = syn.sample_patch(rng, size)
        assert 1 <= patch.height <= size and patch.top + patch.height <= size
        assert 1 <= patch.width <= size and patch.left + patch.width <= size
