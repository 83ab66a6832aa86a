"""Tests of the built-in synthetic face dataset: determinism, ranges, exact depth, conventions, file layout."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from unsup3d.data import synthetic as syn
from unsup3d.data import synthetic_shapes as shapes
from unsup3d.data.synthetic_dataset import write_dataset
from unsup3d.geometry import focal_length, project, transform_points


@pytest.fixture(scope="module")
def samples():
    """Three fully rendered 64×64 samples with their parameters."""
    params = [syn.sample_params(np.random.default_rng(seed), 64) for seed in (3, 4, 5)]
    return params, syn.render_params(params, 64)


def _ray_depths(vertices: np.ndarray, faces: np.ndarray, pixels: np.ndarray, size: int, fov: float, eps: float):
    """Brute-force float64 ray casting: per pixel centre (P, 2) ``(u, v)``, the depths (P, F) at which its ray
    meets each triangle (inf where it misses), with the inside test relaxed by ``eps`` (barycentric units)."""
    f, c = focal_length(size, fov), (size - 1) / 2
    rays = np.stack([(pixels[:, 0] - c) / f, (pixels[:, 1] - c) / f, np.ones(len(pixels))], 1)  # (P, 3), d_z = 1
    a, b, d = (vertices[faces[:, k]] for k in range(3))  # (F, 3) each
    e1, e2 = b - a, d - a
    p = np.cross(rays[:, None], e2[None])  # (P, F, 3)
    det = (p * e1[None]).sum(-1)
    det = np.where(np.abs(det) < 1e-300, 1e-300, det)
    s = -a[None]  # ray origin at 0
    w1 = (p * s).sum(-1) / det
    q = np.cross(s, e1[None])
    w2 = (q * rays[:, None]).sum(-1) / det
    t = (q * e2[None]).sum(-1) / det  # depth, since the ray has unit z
    inside = (w1 >= -eps) & (w2 >= -eps) & (w1 + w2 <= 1 + eps) & (t > 0)
    return np.where(inside, t, np.inf)


def _check_exact_depth(params, batch, index: int, pixels: np.ndarray, size: int, fov: float = 10.0):
    vertices, faces = syn.mesh_in_view([params], size)
    vertices, faces = vertices[0].double().numpy(), faces.numpy()
    depth = batch.depth[index].double().numpy()
    for chunk in np.array_split(pixels, max(1, len(pixels) // 32)):
        strict = _ray_depths(vertices, faces, chunk.astype(np.float64), size, fov, eps=-1e-9).min(1)
        relaxed = _ray_depths(vertices, faces, chunk.astype(np.float64), size, fov, eps=1e-5)
        rendered = depth[chunk[:, 1], chunk[:, 0]]
        hit = np.isfinite(rendered)
        # A strict hit must be rendered, at the nearest depth (up to surfaces a rounding error from the ray).
        assert np.all(hit[np.isfinite(strict)])
        assert np.all(rendered[hit] <= strict[hit] + 1e-5)
        # A rendered depth must be the depth of some triangle that the ray meets (within rounding).
        assert np.all(np.abs(relaxed[hit] - rendered[hit, None]).min(1) <= 1e-5)


def test_depth_is_exact_brute_force_all_pixels():
    size = 24
    params = syn.sample_params(np.random.default_rng(11), size)
    params = replace(params, view=np.array([0.2, -0.6, 0.1, 0.01, -0.005, 0.01], dtype=np.float32))
    batch = syn.render_params([params], size, canonical=False)
    pixels = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="xy"), -1).reshape(-1, 2)
    _check_exact_depth(params, batch, 0, pixels, size)
    assert batch.mask[0].sum() > 0.4 * size * size


def test_depth_is_exact_on_random_pixels(samples):
    params, batch = samples
    rng = np.random.default_rng(0)
    for k in range(2):
        pixels = rng.integers(0, 64, size=(96, 2))
        _check_exact_depth(params[k], batch, k, pixels, 64)


def test_shapes_dtypes_and_ranges(samples):
    params, batch = samples
    s = batch.sample(0)
    assert s.image.shape == (3, 64, 64) and s.image.dtype == torch.float32
    assert s.depth.shape == (64, 64) and s.depth.dtype == torch.float32
    assert s.mask.dtype == torch.bool and torch.equal(s.mask, torch.isfinite(s.depth))
    assert s.canonical_depth.shape == (64, 64) and s.albedo.shape == (3, 64, 64)
    assert float(batch.image.min()) >= 0.0 and float(batch.image.max()) <= 1.0
    assert float(batch.albedo.min()) >= 0.0 and float(batch.albedo.max()) <= 1.0
    finite = batch.depth[torch.isfinite(batch.depth)]
    assert float(finite.min()) > 0.85 and float(finite.max()) < 1.15
    for k, (lo, hi) in enumerate(syn.POSE_RANGES.values()):
        assert torch.all((batch.view[:, k] >= lo) & (batch.view[:, k] <= hi))
    for k, (lo, hi) in enumerate(syn.LIGHT_RANGES.values()):
        assert torch.all((batch.light[:, k] >= lo) & (batch.light[:, k] <= hi))
    # The object covers a good part of the frame and the background is visible.
    coverage = batch.mask.float().mean((1, 2))
    assert torch.all((coverage > 0.35) & (coverage < 0.95))


def test_identity_view_renders_canonical_depth():
    params = syn.sample_params(np.random.default_rng(2), 32)
    params = replace(params, view=np.zeros(6, dtype=np.float32))
    batch = syn.render_params([params], 32)
    assert torch.equal(torch.isfinite(batch.depth), torch.isfinite(batch.canonical_depth))
    m = batch.mask
    assert torch.allclose(batch.depth[m], batch.canonical_depth[m], atol=1e-6)


def test_deterministic_and_batch_independent():
    a = syn.render_sample(np.random.default_rng(7), 32)
    b = syn.render_sample(np.random.default_rng(7), 32)
    for field in ("image", "depth", "view", "light", "canonical_depth", "albedo"):
        assert torch.equal(torch.nan_to_num(getattr(a, field)), torch.nan_to_num(getattr(b, field))), field
    batch = syn.render_batch([np.random.default_rng(1), np.random.default_rng(7)], 32)
    assert torch.allclose(batch.image[1], a.image, atol=1e-5)
    assert torch.equal(batch.mask[1], a.mask)
    c = syn.render_sample(np.random.default_rng(8), 32)
    assert not torch.allclose(a.image, c.image)


def test_positive_yaw_moves_nose_tip_towards_minus_u():
    size = 64
    base = syn.sample_params(np.random.default_rng(21), size)
    points, _, _ = shapes.object_mesh(shapes.stack_params([base.shape]), size)
    tip = points[0, points[0, :, 2].argmin()]  # canonical nose tip: the nearest vertex
    columns = {}
    for yaw in (0.3, -0.3):
        view = np.array([0.0, yaw, 0.0, 0.0, 0.0, 0.0], dtype=np.float32)
        batch = syn.render_params([replace(base, view=view)], size, canonical=False)
        depth = torch.nan_to_num(batch.depth[0], nan=10.0)
        row, col = divmod(int(depth.argmin()), size)
        expected = project(transform_points(tip.view(1, 1, 3), torch.from_numpy(view)[None]), size)[0, 0]
        assert abs(col - float(expected[0])) <= 1.5 and abs(row - float(expected[1])) <= 1.5
        columns[yaw] = col
    assert columns[0.3] < (size - 1) / 2 - 3 < (size - 1) / 2 + 3 < columns[-0.3]


def test_nose_and_relief_statistics():
    rng = np.random.default_rng(5)
    shape = shapes.stack_params([shapes.sample_shape(rng) for _ in range(64)])
    rows, cols = shapes.head_grid(64)
    x, y = shapes.head_points(shape, rows, cols)
    h = shapes.head_height(x, y, shape)
    without_nose = shapes.head_height(x, y, {**shape, "nose_height": torch.zeros_like(shape["nose_height"])})
    prominence = (h - without_nose).amax(1)  # how far the nose stands out of the face, metres
    assert float(prominence.min()) > 0.012 and float(prominence.max()) < 0.03
    assert abs(float(prominence.mean()) - 0.02) < 0.003
    relief = h.amax(1) - h.amin(1)  # nose tip to silhouette
    assert float(relief.min()) > 0.045 and float(relief.max()) < 0.09
    # The symmetric part is symmetric: mirror the asymmetric terms away and compare h(x) with h(-x).
    sym = {**shape, "bumps": torch.zeros_like(shape["bumps"]), "nose_bend": torch.zeros_like(shape["nose_bend"])}
    sym.update(mouth_tilt=torch.zeros_like(shape["mouth_tilt"]), hair_tilt=torch.zeros_like(shape["hair_tilt"]))
    sym.update(fringe=torch.zeros_like(shape["fringe"]))
    assert torch.allclose(shapes.head_height(x, y, sym), shapes.head_height(-x, y, sym), atol=1e-7)
    asym = (h - shapes.head_height(x, y, sym)).abs().amax(1)
    assert float(asym.median()) > 0.001  # a few millimetres of asymmetry


def test_train_and_test_streams_are_disjoint():
    train, test = syn.split_generators(0, 50, 50)
    views = [syn.sample_params(r, 16).view.tobytes() for r in train + test]
    assert len(set(views)) == 100
    again, _ = syn.split_generators(0, 50, 50)
    assert syn.sample_params(again[3], 16).view.tobytes() == views[3]


def test_write_dataset_round_trip(tmp_path):
    out = write_dataset(tmp_path / "synth", n_train=5, n_test=3, size=32, seed=1, progress=False, batch_size=2)
    assert sorted(p.name for p in (out / "train").iterdir()) == [f"{k:05d}.png" for k in range(5)]
    for k in range(3):
        name = f"{k:05d}"
        image = np.asarray(Image.open(out / "test" / "image" / f"{name}.png"))
        depth = np.load(out / "test" / "depth" / f"{name}.npy")
        mask = np.asarray(Image.open(out / "test" / "mask" / f"{name}.png"))
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8
        assert depth.shape == (32, 32) and depth.dtype == np.float32 and np.isnan(depth).any()
        assert np.array_equal(mask > 127, np.isfinite(depth))
    meta = [json.loads(line) for line in (out / "test" / "meta.jsonl").read_text().splitlines()]
    assert [m["name"] for m in meta] == ["00000", "00001", "00002"]
    assert all(len(m["view"]) == 6 and len(m["light"]) == 4 for m in meta)
    info = json.loads((out / "dataset.json").read_text())
    assert (info["seed"], info["n_train"], info["n_test"], info["size"]) == (1, 5, 3, 32)
    assert (out / "README.txt").read_text().startswith("unsup3d synthetic faces")
    # Deterministic, independent of the batch size; the test samples match render_sample on their streams.
    again = write_dataset(tmp_path / "again", n_train=5, n_test=3, size=32, seed=1, progress=False, batch_size=8)
    np.testing.assert_array_equal(np.load(again / "test/depth/00002.npy"), np.load(out / "test/depth/00002.npy"))
    assert (again / "train/00004.png").read_bytes() == (out / "train/00004.png").read_bytes()
    _, test_rngs = syn.split_generators(1, 5, 3)
    sample = syn.render_sample(test_rngs[1], 32)
    np.testing.assert_array_equal(sample.depth.numpy(), np.load(out / "test/depth/00001.npy"))
    assert np.allclose(meta[1]["view"], sample.view.numpy()) and not math.isnan(meta[1]["light"][0])


def test_identity_view_follows_the_methods_image_formation():
    """At the identity view, the image is albedo · (ka + kd · max(0, ⟨n, l⟩)) with n from the canonical depth map
    by the method's own normals (docs/conventions.md); a mirrored light explains it much worse."""
    from unsup3d.geometry import normals_from_depth
    from unsup3d.render import light_direction

    errors = {1.0: [], -1.0: []}
    for seed in range(3):
        params = syn.sample_params(np.random.default_rng(100 + seed), 64)
        params = replace(params, view=np.zeros(6, np.float32), blur=0.0, noise_sigma=0.0, jpeg_quality=0)
        params.light[2:] = [0.7, -0.5]  # a strong oblique light
        batch = syn.render_params([params], 64)
        depth = batch.canonical_depth
        mask = torch.isfinite(depth)
        inner = -torch.nn.functional.max_pool2d(-mask[:, None].float(), 5, 1, 2)[:, 0] > 0.5  # eroded by 2 px
        normals = normals_from_depth(torch.nan_to_num(depth, nan=1.1))  # (1, H, W, 3)
        ka, kd = float(batch.light[0, 0]), float(batch.light[0, 1])
        for sign in errors:
            direction = light_direction(torch.tensor([[sign * 0.7, -0.5]]))
            diffuse = (normals * direction[:, None, None, :]).sum(-1).clamp(min=0)
            predicted = batch.albedo * (ka + kd * diffuse[:, None])
            errors[sign].append((predicted - batch.image).abs().mean(1)[inner])
    right, mirrored = torch.cat(errors[1.0]), torch.cat(errors[-1.0])
    assert float(right.median()) < 0.01
    assert float(mirrored.median()) > 4 * float(right.median())
