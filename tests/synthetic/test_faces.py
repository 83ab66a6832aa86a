"""Tests of the built-in synthetic face dataset: determinism, ranges, exact depth, conventions, file layout."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from unsup3d.geometry import focal_length, project, transform_points
from unsup3d.synthetic import face_shapes as shapes
from unsup3d.synthetic import generator as syn
from unsup3d.synthetic.dataset import write_dataset


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
    a = syn.render_batch([np.random.default_rng(7)], 32).sample(0)
    b = syn.render_batch([np.random.default_rng(7)], 32).sample(0)
    for field in ("image", "depth", "view", "light", "canonical_depth", "albedo"):
        assert torch.equal(torch.nan_to_num(getattr(a, field)), torch.nan_to_num(getattr(b, field))), field
    batch = syn.render_batch([np.random.default_rng(1), np.random.default_rng(7)], 32)
    assert torch.allclose(batch.image[1], a.image, atol=1e-5)
    assert torch.equal(batch.mask[1], a.mask)
    c = syn.render_batch([np.random.default_rng(8)], 32).sample(0)
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
    train, test = ([syn.sample_generator(0, split, k) for k in range(50)] for split in (0, 1))
    views = [syn.sample_params(r, 16).view.tobytes() for r in train + test]
    assert len(set(views)) == 100
    assert syn.sample_params(syn.sample_generator(0, 0, 3), 16).view.tobytes() == views[3]


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
    # Deterministic, independent of the batch size; the test samples match render_batch on their streams.
    again = write_dataset(tmp_path / "again", n_train=5, n_test=3, size=32, seed=1, progress=False, batch_size=8)
    np.testing.assert_array_equal(np.load(again / "test/depth/00002.npy"), np.load(out / "test/depth/00002.npy"))
    assert (again / "train/00004.png").read_bytes() == (out / "train/00004.png").read_bytes()
    test_rngs = [syn.sample_generator(1, 1, k) for k in range(3)]
    sample = syn.render_batch([test_rngs[1]], 32).sample(0)
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


# ---------------------------------------------------------------------- keypoints
@pytest.fixture(scope="module")
def keypoint_samples():
    """Eight 32×32 samples, four of them turned far to each side, with their keypoints."""
    from unsup3d.synthetic.keypoints import face_keypoints

    size = 32
    params = [syn.sample_params(np.random.default_rng(40 + seed), size) for seed in range(8)]
    for k, yaw in enumerate((0.785, -0.785, 0.7, -0.7)):
        params[k] = replace(params[k], view=np.array([0.1, yaw, 0.0, 0.0, 0.0, 0.0], dtype=np.float32))
    return params, face_keypoints(params, size), size


def test_keypoints_are_mesh_points_seen_exactly_when_nothing_hides_them(keypoint_samples):
    """Brute-force ray casting: a visible keypoint is the nearest surface on its ray; a hidden one in the frame
    has a surface more than the tolerance in front of it."""
    from unsup3d.synthetic.keypoints import VISIBILITY_TOLERANCE

    params, keypoints, size = keypoint_samples
    for b, p in enumerate(params):
        vertices, faces = syn.mesh_in_view([p], size)
        vertices, faces = vertices[0].double().numpy(), faces.numpy()
        uv = keypoints.uv[b].double().numpy()
        depth = keypoints.depth[b].double().numpy()
        # Each keypoint is a mesh vertex: (u, v, depth) back-projects onto one.
        f, c = focal_length(size, 10.0), (size - 1) / 2
        points = np.stack([(uv[:, 0] - c) / f * depth, (uv[:, 1] - c) / f * depth, depth], 1)
        assert np.abs(points[:, None] - vertices[None]).sum(-1).min(1).max() < 1e-5
        # The nearest surface on each keypoint's ray (its own triangles may escape the test edge-on).
        nearest = _ray_depths(vertices, faces, uv, size, 10.0, eps=1e-6).min(1)  # (K,)
        visible = keypoints.visible[b].numpy()
        in_frame = np.all((uv >= 0) & (uv <= size - 1), axis=1)
        assert np.all(nearest[visible] >= depth[visible] - VISIBILITY_TOLERANCE - 1e-6)
        hidden = in_frame & ~visible
        assert np.all(nearest[hidden] < depth[hidden] - VISIBILITY_TOLERANCE + 1e-6)
    # A 45° yaw hides the far nostril wing behind the nose in the first two samples; frontal faces hide none.
    assert not keypoints.visible[0, 10] and not keypoints.visible[1, 11] and keypoints.visible[4:].all()


def test_keypoint_landmarks_are_where_the_face_is():
    from unsup3d.synthetic.keypoints import FACE_KEYPOINTS, face_landmarks

    rng = np.random.default_rng(6)
    params = [syn.sample_params(rng, 32) for _ in range(16)]
    shape = shapes.stack_params([p.shape for p in params])
    albedo = shapes.stack_params([p.albedo for p in params])
    straight = {**shape, **{k: torch.zeros_like(shape[k]) for k in ("nose_bend", "mouth_tilt")}}
    points = {name: face_landmarks(straight, albedo)[:, k] for k, name in enumerate(FACE_KEYPOINTS)}  # (B, 2)
    for left in [name for name in FACE_KEYPOINTS if name.endswith("_left")]:
        right = points[left.replace("_left", "_right")]
        assert torch.allclose(points[left], right * torch.tensor([-1.0, 1.0]), atol=1e-7), left
        assert torch.all(points[left][:, 0] < 0)
    for centre in ("nose_bridge", "nose_tip", "upper_lip", "lower_lip", "chin"):
        assert torch.all(points[centre][:, 0] == 0), centre
    rows = ["brow_inner_left", "eye_inner_left", "nose_tip", "ala_left", "upper_lip", "lower_lip", "chin"]
    y = torch.stack([points[name][:, 1] for name in rows], 1)
    assert torch.all(y[:, 1:] > y[:, :-1])  # brows above eyes above the nose tip ... above the chin (y down)
    assert torch.all(points["eye_outer_left"][:, 0] < points["eye_inner_left"][:, 0])
    assert torch.all(points["brow_outer_left"][:, 0] < points["brow_inner_left"][:, 0])
    assert torch.all(points["mouth_left"][:, 0] < points["ala_left"][:, 0])


def test_nose_tip_keypoint_is_near_the_nearest_point_of_a_frontal_face():
    from unsup3d.synthetic.keypoints import FACE_KEYPOINTS, face_keypoints

    size = 32
    params = [syn.sample_params(np.random.default_rng(seed), size) for seed in range(4)]
    params = [replace(p, view=np.zeros(6, np.float32)) for p in params]
    keypoints = face_keypoints(params, size)
    batch = syn.render_params(params, size, canonical=False)
    tip = FACE_KEYPOINTS.index("nose_tip")
    nearest = torch.nan_to_num(batch.depth, nan=10.0).flatten(1).amin(1)
    assert torch.all((keypoints.depth[:, tip] - nearest).abs() < 0.002)  # within 2 mm of the frontmost pixel
    assert torch.all(keypoints.depth[:, tip] == keypoints.depth.amin(1))  # the frontmost keypoint


def test_keypoints_outside_the_frame_are_not_visible():
    from unsup3d.synthetic.keypoints import FACE_KEYPOINTS, face_keypoints

    size = 24
    params = syn.sample_params(np.random.default_rng(3), size)
    low = replace(params, view=np.array([0.0, 0.0, 0.0, 0.0, 0.06, 0.0], dtype=np.float32))  # 6 cm down
    keypoints = face_keypoints([params, low], size)
    chin = FACE_KEYPOINTS.index("chin")
    assert keypoints.uv[1, chin, 1] > size - 1 and not keypoints.visible[1, chin]
    assert keypoints.visible[0, chin]


def test_true_depth_map_at_the_keypoints_correlates_fully():
    """The paper's "ground truth" row of Table 5 on our data: the true depth map sampled at the visible keypoints
    scores nearly K (bilinear interpolation over 1-pixel neighbourhoods is the only difference)."""
    from unsup3d.metrics import keypoint_depth_correlation, sample_depth_at
    from unsup3d.synthetic.keypoints import FACE_KEYPOINTS, face_keypoints

    size = 24
    params = [syn.sample_params(syn.sample_generator(2, 1, k), size) for k in range(12)]
    keypoints = face_keypoints(params, size)
    sampled = sample_depth_at(syn.render_params(params, size, canonical=False).depth, keypoints.uv).double()
    valid = keypoints.visible & torch.isfinite(sampled)
    assert valid.float().mean() > 0.9
    score = float(keypoint_depth_correlation(sampled, keypoints.depth.double(), valid, absolute=False))
    assert len(FACE_KEYPOINTS) - 0.5 < score <= len(FACE_KEYPOINTS)


def test_written_keypoints_match_the_generator(tmp_path):
    from unsup3d.synthetic.keypoints import FACE_KEYPOINTS, face_keypoints

    out = write_dataset(tmp_path / "synth", n_train=0, n_test=3, size=24, seed=4, progress=False, batch_size=2)
    assert json.loads((out / "dataset.json").read_text())["keypoints"]["names"] == list(FACE_KEYPOINTS)
    meta = [json.loads(line) for line in (out / "test/meta.jsonl").read_text().splitlines()]
    rngs = [syn.sample_generator(4, 1, k) for k in range(3)]
    expected = face_keypoints([syn.sample_params(rng, 24) for rng in rngs], 24)
    for k, record in enumerate(meta):
        assert record["keypoints"] == expected.record(k)
        assert len(record["keypoints"]["uv"]) == len(FACE_KEYPOINTS)


def test_keypoints_are_for_faces_only():
    from unsup3d.synthetic.keypoints import face_keypoints

    car = syn.sample_params(np.random.default_rng(0), 16, category="car")
    with pytest.raises(ValueError, match="faces only"):
        face_keypoints([car], 16)


def test_keypoint_visibility_does_not_depend_on_the_pass_size(keypoint_samples, monkeypatch):
    import unsup3d.synthetic.keypoints as kp

    params, keypoints, size = keypoint_samples
    vertices, _ = syn.mesh_in_view(params[:2], size)
    monkeypatch.setattr(kp, "VERTICES_PER_PASS", 5 * vertices.shape[1])  # 5 rays per pass: 34 = 5·6 + 4
    again = kp.face_keypoints(params[:2], size)
    assert torch.equal(again.visible, keypoints.visible[:2]) and not again.visible.all()
