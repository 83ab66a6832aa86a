"""Tests of the synthetic car category: rendering, symmetry, relief, the written set, category errors."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from unsup3d.cli import main
from unsup3d.data.paired import PairedDepthDataset
from unsup3d.synthetic import car_shapes as car
from unsup3d.synthetic import car_textures as car_textures
from unsup3d.synthetic import generator as syn
from unsup3d.synthetic.categories import CATEGORIES, get_category
from unsup3d.synthetic.face_shapes import stack_params

RELIEF_RANGE = (0.045, 0.085)  # metres, the module docstring's "≈ 4.8–8.2 cm" with a margin


@pytest.fixture(scope="module")
def cars():
    """Three fully rendered 64×64 cars with their parameters."""
    params = [syn.sample_params(np.random.default_rng(seed), 64, category="car") for seed in range(3)]
    return params, syn.render_params(params, 64)


def _without_asymmetry(params: syn.SampleParams) -> syn.SampleParams:
    """The same car with zero dent amplitudes and no bumper skew."""
    shape = dict(params.shape, dents=params.shape["dents"] * np.array([1, 1, 1, 0], np.float32))
    return replace(params, shape={**shape, "bumper_skew": np.float32(0.0)})


def _flip_difference(depth: torch.Tensor) -> torch.Tensor:
    """|d − flip(d)| (B, N) on the pixels where both are finite, at least one pixel inside the silhouette."""
    flipped = depth.flip(-1)
    both = (torch.isfinite(depth) & torch.isfinite(flipped)).unsqueeze(1).float()
    inner = -torch.nn.functional.max_pool2d(-both, 3, 1, 1)[:, 0] > 0.5
    return [(depth[k] - flipped[k]).abs()[inner[k]] for k in range(depth.shape[0])]


def test_cars_render_with_valid_ground_truth(cars):
    params, batch = cars
    assert batch.image.shape == (3, 3, 64, 64) and batch.depth.shape == (3, 64, 64)
    assert float(batch.image.min()) >= 0.0 and float(batch.image.max()) <= 1.0
    assert float(batch.albedo.min()) >= 0.0 and float(batch.albedo.max()) <= 1.0
    assert torch.equal(batch.mask, torch.isfinite(batch.depth))
    for depth in (batch.depth, batch.canonical_depth):
        finite = depth[torch.isfinite(depth)]
        assert float(finite.min()) > 0.85 and float(finite.max()) < 1.15
    # The albedo is set exactly where the canonical depth is.
    assert torch.equal(batch.albedo.amax(1) > 0, torch.isfinite(batch.canonical_depth))
    coverage = batch.mask.float().mean((1, 2))
    assert torch.all((coverage > 0.2) & (coverage < 0.7))
    for k, (lo, hi) in enumerate(syn.POSE_RANGES.values()):
        assert torch.all((batch.view[:, k] >= lo) & (batch.view[:, k] <= hi))
    # The mesh that is rendered is the car's: body and both tyres.
    vertices, faces = syn.mesh_in_view(params[:1], 64)
    rows, cols = car.body_grid(64)
    assert vertices.shape[1] == rows * cols + 2 * np.prod(car.tyre_grid(64))
    assert int(faces.max()) == vertices.shape[1] - 1


def test_identity_view_renders_canonical_depth():
    params = syn.sample_params(np.random.default_rng(9), 32, category="car")
    batch = syn.render_params([replace(params, view=np.zeros(6, np.float32))], 32)
    assert torch.equal(batch.mask, torch.isfinite(batch.canonical_depth))
    assert torch.allclose(batch.depth[batch.mask], batch.canonical_depth[batch.mask], atol=1e-6)


def test_height_field_is_symmetric_up_to_the_asymmetric_terms():
    rng = np.random.default_rng(3)
    shape = stack_params([car.sample_shape(rng) for _ in range(32)])
    x, y = car.body_points(shape, *car.body_grid(64))
    sym = {**shape, "bumper_skew": torch.zeros_like(shape["bumper_skew"])}
    sym["dents"] = shape["dents"] * torch.tensor([1.0, 1.0, 1.0, 0.0])
    assert torch.allclose(car.body_height(x, y, sym), car.body_height(-x, y, sym), atol=1e-7)
    lay = car.layout(shape)
    asymmetry = car.asymmetry(x, y, shape, lay)
    assert float(asymmetry.abs().max()) < car.ASYM_LIMIT
    difference = (car.body_height(x, y, shape) - car.body_height(-x, y, shape)).abs().amax(1)
    assert float(difference.max()) <= 2 * car.ASYM_LIMIT
    assert float(difference.median()) > 0.001  # a few millimetres of asymmetry


def test_canonical_depth_is_symmetric_up_to_the_asymmetric_terms(cars):
    params, batch = cars
    symmetric = syn.render_params([_without_asymmetry(p) for p in params], 64, depth=False)
    # Up to the triangulation (one diagonal per cell) at silhouettes and where a tyre meets the body.
    for difference in _flip_difference(symmetric.canonical_depth):
        assert float(difference.quantile(0.98)) < 3e-4
    spreads = [float(d.quantile(0.98)) for d in _flip_difference(batch.canonical_depth)]
    assert max(spreads) <= 2 * car.ASYM_LIMIT
    assert max(spreads) > 1e-3


def test_albedo_is_symmetric_without_its_asymmetric_details():
    tex = car_textures.sample_albedo(np.random.default_rng(4))
    neutral = dict(tex, noise_asym=0 * tex["noise_asym"], fine=0 * tex["fine"])
    neutral["plate_text"] = 0.5 * (tex["plate_text"] + tex["plate_text"][..., ::-1])
    neutral["reflection"] = tex["reflection"] * np.array([1, 1, 1, 0], np.float32)
    neutral["wipers"] = tex["wipers"] * np.array([1, 1, 0], np.float32)
    neutral["plate"] = tex["plate"] * np.array([1, 0, 1], np.float32)
    for key in ("sticker", "mud"):
        neutral[key] = np.concatenate([[0.0], tex[key][1:]]).astype(np.float32)
    neutral["scratches"] = tex["scratches"] * np.array([1, 1, 1, 1, 0], np.float32)
    shape = stack_params([car.sample_shape(np.random.default_rng(4))])
    x, y = car.body_points(shape, *car.body_grid(64))
    on_tyre = torch.zeros_like(x, dtype=torch.bool)
    for texture, symmetric in ((neutral, True), (tex, False)):
        stacked = stack_params([texture])
        left = car_textures.albedo(x, y, on_tyre, stacked, shape, aa=0.001)
        right = car_textures.albedo(-x, y, on_tyre, stacked, shape, aa=0.001)
        assert (float((left - right).abs().max()) < 1e-5) == symmetric


def test_relief_within_the_documented_range():
    rng = np.random.default_rng(5)
    shape = stack_params([car.sample_shape(rng) for _ in range(128)])
    x, y = car.body_points(shape, *car.body_grid(64))
    h = car.body_height(x, y, shape)
    relief = h.amax(1) - h.amin(1)  # bumper to rim
    assert RELIEF_RANGE[0] < float(relief.min()) and float(relief.max()) < RELIEF_RANGE[1]


def test_synth_cli_writes_a_car_set_the_paired_loader_reads(tmp_path):
    out = tmp_path / "cars"
    argv = ["synth", "--category", "car", "--n-train", "4", "--n-test", "4", "--size", "32", "--out", str(out)]
    assert main(argv) == 0
    assert len(list((out / "train").glob("*.png"))) == 4
    info = json.loads((out / "dataset.json").read_text())
    assert info["category"] == "car" and info["keypoints"] is None
    assert info["shape_ranges"] == {k: list(v) for k, v in car.SHAPE_RANGES.items()}
    assert (out / "README.txt").read_text().startswith("unsup3d synthetic cars")
    meta = [json.loads(line) for line in (out / "test" / "meta.jsonl").read_text().splitlines()]
    assert [m["name"] for m in meta] == [f"{k:05d}" for k in range(4)] and "keypoints" not in meta[0]
    dataset = PairedDepthDataset(out / "test", image_size=32)
    assert len(dataset) == 4 and not dataset.skipped
    test_rngs = [syn.sample_generator(0, 1, k) for k in range(4)]
    batch = syn.render_batch(test_rngs, 32, canonical=False, category="car")
    for k in range(4):
        np.testing.assert_array_equal(dataset[k]["depth"].numpy(), batch.depth[k].numpy())
        assert np.allclose(meta[k]["view"], batch.view[k].numpy())


def test_unknown_category_is_a_clear_error(tmp_path, caplog):
    with pytest.raises(ValueError, match="unknown synthetic category 'vase': choose from face, car"):
        get_category("vase")
    with pytest.raises(ValueError, match="choose from face, car"):
        syn.sample_params(np.random.default_rng(0), 16, category="vase")
    code = main(["synth", "--category", "vase", "--n-train", "1", "--n-test", "1", "--out", str(tmp_path / "x")])
    assert code == 2 and not (tmp_path / "x").exists()
    assert "--category" in caplog.text and "'face', 'car'" in caplog.text
    assert list(CATEGORIES) == ["face", "car"]


def test_a_batch_renders_one_category():
    face = syn.sample_params(np.random.default_rng(0), 16)
    vehicle = syn.sample_params(np.random.default_rng(0), 16, category="car")
    with pytest.raises(ValueError, match="one category"):
        syn.render_params([face, vehicle], 16)
