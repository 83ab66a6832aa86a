import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unsup3d.geometry import focal_length, normals_from_depth
from unsup3d.outputs import read_obj, write_obj
from unsup3d.outputs.mesh import (
    canonical_mesh,
    resampled_trim_border,
    sample_texture,
    upsample_canonical,
)
from unsup3d.render.grid_mesh import depth_grid_mesh, grid_vertex_normals

S = 16
FOV = 10.0


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3) unit normals of triangles by their winding: ``(b − a) × (c − a)``, normalised."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    normal = np.cross(b - a, c - a)
    return normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-20)


def plane(depth=1.05, size=S):
    return torch.full((size, size), depth, dtype=torch.float64)


def bumpy(size=S, seed=0):
    noise = torch.randn(1, 1, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    smooth = F.avg_pool2d(noise, 5, 1, 2, count_include_pad=False)[0, 0]
    return 1.0 + 0.05 * smooth / smooth.abs().max()


def test_fronto_parallel_plane():
    vertices, faces, uvs = depth_grid_mesh(plane(1.05), FOV)
    assert vertices.shape == (S * S, 3) and uvs.shape == (S * S, 2)
    assert faces.shape == (2 * (S - 1) ** 2, 3) and faces.dtype == np.int64
    np.testing.assert_allclose(vertices[:, 2], 1.0 - 1.05, atol=1e-12)  # OBJ z = 1 − depth, constant
    normals = face_normals(vertices, faces)
    np.testing.assert_allclose(normals, np.tile([0.0, 0.0, 1.0], (len(faces), 1)), atol=1e-9)


def test_vertex_positions_and_axes():
    vertices, _, _ = depth_grid_mesh(plane(1.0), FOV)
    grid = vertices.reshape(S, S, 3)
    f, c = focal_length(S, FOV), (S - 1) / 2
    np.testing.assert_allclose(grid[3, 5], [(5 - c) / f, -(3 - c) / f, 0.0], atol=1e-12)
    assert grid[0, -1, 0] > 0 and grid[0, -1, 1] > 0  # top-right pixel: x right, y up
    # nearer surfaces come toward the viewer (+z)
    near, _, _ = depth_grid_mesh(plane(0.95), FOV)
    assert (near[:, 2] > 0).all()


def test_uvs_put_pixel_centres_on_texel_centres():
    _, _, uvs = depth_grid_mesh(plane(), FOV)
    grid = uvs.reshape(S, S, 2)
    np.testing.assert_allclose(grid[0, 0], [0.5 / S, 1 - 0.5 / S])  # top-left pixel, top of the texture
    np.testing.assert_allclose(grid[-1, -1], [1 - 0.5 / S, 0.5 / S])
    assert (uvs > 0).all() and (uvs < 1).all()


def test_trim_border_drops_columns():
    depth = bumpy()
    vertices, faces, uvs = depth_grid_mesh(depth, FOV, trim_border=2)
    width = S - 4
    assert vertices.shape == (S * width, 3) and faces.shape == (2 * (S - 1) * (width - 1), 3)
    full, _, full_uvs = depth_grid_mesh(depth, FOV)
    np.testing.assert_allclose(vertices.reshape(S, width, 3), full.reshape(S, S, 3)[:, 2:-2])
    np.testing.assert_allclose(uvs.reshape(S, width, 2), full_uvs.reshape(S, S, 2)[:, 2:-2])
    with pytest.raises(ValueError, match="trim_border"):
        depth_grid_mesh(depth, FOV, trim_border=S // 2)


def test_vertex_normals_face_the_viewer():
    normals = normals_from_depth(plane()[None], FOV)[0]
    np.testing.assert_allclose(grid_vertex_normals(normals), np.tile([0.0, 0.0, 1.0], (S * S, 1)), atol=1e-9)
    depth = bumpy(seed=1)
    vertices, faces, _ = depth_grid_mesh(depth, FOV)
    vertex_normals = grid_vertex_normals(normals_from_depth(depth[None], FOV)[0])
    normals = face_normals(vertices, faces)
    agreement = (normals * vertex_normals[faces].mean(axis=1)).sum(axis=1)
    assert (agreement > 0).all() and agreement.mean() > 0.8  # winding and vertex normals agree
    camera = np.array([0.0, 0.0, 1.0])  # the camera centre in the OBJ frame
    to_camera = camera - vertices[faces].mean(axis=1)
    assert ((normals * to_camera).sum(axis=1) > 0).all()  # every face shows its front to the camera


def test_rejects_bad_depth():
    with pytest.raises(ValueError, match="S, S"):
        depth_grid_mesh(torch.ones(4, 5), FOV)
    with pytest.raises(ValueError, match="finite"):
        depth_grid_mesh(torch.full((4, 4), float("nan")), FOV)


@pytest.mark.parametrize("with_normals", [True, False])
def test_obj_round_trip(tmp_path, with_normals):
    depth = bumpy(seed=2)
    vertices, faces, uvs = depth_grid_mesh(depth, FOV)
    normals = grid_vertex_normals(normals_from_depth(depth[None], FOV)[0]) if with_normals else None
    path = write_obj(tmp_path / "mesh.obj", vertices, faces, uvs, normals, "skin", "albedo.png")
    read_vertices, read_faces = read_obj(path)
    np.testing.assert_allclose(read_vertices, vertices, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(read_faces, faces)
    text = path.read_text().splitlines()
    assert sum(line.startswith("vt ") for line in text) == len(uvs)
    assert sum(line.startswith("vn ") for line in text) == (len(vertices) if with_normals else 0)
    first_face = next(line for line in text if line.startswith("f "))
    assert first_face == ("f 1/1/1 17/17/17 2/2/2" if with_normals else "f 1/1 17/17 2/2")
    assert "usemtl skin" in text and "mtllib mesh.mtl" in text
    mtl = (tmp_path / "mesh.mtl").read_text()
    assert "newmtl skin" in mtl and "map_Kd albedo.png" in mtl


def test_write_obj_without_material_and_read_polygons(tmp_path):
    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=float)
    path = write_obj(tmp_path / "quad.obj", vertices, np.array([[0, 1, 2]]), vertices[:, :2], texture_filename=None)
    assert not (tmp_path / "quad.mtl").exists() and "mtllib" not in path.read_text()
    (tmp_path / "poly.obj").write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1 2 3 4\nf -4/1 -3/2 -2/3\n")
    read_vertices, read_faces = read_obj(tmp_path / "poly.obj")
    np.testing.assert_array_equal(read_vertices, vertices)
    np.testing.assert_array_equal(read_faces, [[0, 1, 2], [0, 2, 3], [0, 1, 2]])
    with pytest.raises(ValueError, match="out of range"):
        write_obj(tmp_path / "bad.obj", vertices, np.array([[0, 1, 4]]), vertices[:, :2])


@pytest.mark.parametrize("size", [31, 40, 9])
def test_upsampled_plane_stays_the_same_plane(size):
    depth, _ = upsample_canonical(plane(1.05), size=size)
    assert depth.shape == (size, size)
    vertices, faces, _ = depth_grid_mesh(depth, FOV)
    original, _, _ = depth_grid_mesh(plane(1.05), FOV)
    assert vertices.shape == (size * size, 3) and faces.shape == (2 * (size - 1) ** 2, 3)
    np.testing.assert_allclose(vertices[:, 2], 1.0 - 1.05, atol=1e-12)  # still the plane z = 1 − d
    np.testing.assert_allclose(vertices.min(0), original.min(0), atol=1e-12)  # same corner rays: same extent
    np.testing.assert_allclose(vertices.max(0), original.max(0), atol=1e-12)
    np.testing.assert_allclose(face_normals(vertices, faces)[:, 2], 1.0, atol=1e-9)


def test_upsampled_grid_keeps_the_old_vertices():
    depth = bumpy(seed=3)
    fine, _ = upsample_canonical(depth, size=2 * S - 1)  # N − 1 = 2·(S − 1): every other vertex is an old one
    vertices = depth_grid_mesh(fine, FOV)[0].reshape(2 * S - 1, 2 * S - 1, 3)
    original = depth_grid_mesh(depth, FOV)[0].reshape(S, S, 3)
    np.testing.assert_allclose(vertices[::2, ::2], original, atol=1e-12)
    middle = (original[:, :-1] + original[:, 1:]) / 2  # new vertices lie by the old edges' midpoints
    np.testing.assert_allclose(vertices[::2, 1::2], middle, atol=1e-4)  # off by Δdepth·Δray/4 (bilinear)


def test_upsample_shapes_batches_and_albedo():
    depth = torch.stack([bumpy(seed=4), plane()]).float()  # (2, S, S)
    albedo = torch.rand(2, 3, S, S, generator=torch.Generator().manual_seed(0))
    fine_depth, fine_albedo = upsample_canonical(depth, albedo, size=24)
    assert fine_depth.shape == (2, 24, 24) and fine_albedo.shape == (2, 3, 24, 24)
    assert fine_depth.dtype == torch.float32 and fine_albedo.min() >= 0 and fine_albedo.max() <= 1
    single_depth, single_albedo = upsample_canonical(depth[1], albedo[1], size=24)
    assert torch.allclose(single_depth, fine_depth[1])
    assert torch.allclose(single_albedo, fine_albedo[1])
    assert torch.allclose(fine_albedo[..., 0, 0], albedo[..., 0, 0])  # corners are kept
    same_depth, same_albedo = upsample_canonical(depth, albedo, size=S)
    assert torch.equal(same_depth, depth) and torch.equal(same_albedo, albedo)
    with pytest.raises(ValueError, match="S, S"):
        upsample_canonical(torch.ones(4, 5), size=8)
    with pytest.raises(ValueError, match="canonical_albedo"):
        upsample_canonical(depth, albedo[..., :-1, :-1], size=8)
    with pytest.raises(ValueError, match="size"):
        upsample_canonical(depth, size=1)


def test_resampled_trim_border_drops_the_same_columns():
    assert resampled_trim_border(2, 64, 64) == 2 and resampled_trim_border(0, 64, 256) == 0
    assert resampled_trim_border(2, 64, 127) == 4  # (N − 1)/(S − 1) = 2: column 4 is old column 2
    assert resampled_trim_border(2, 64, 128) == 5  # column 5 lies at u = 2.02, the first at or past u = 2
    depth = bumpy(seed=5)
    for size in (31, 40):
        trim = resampled_trim_border(2, S, size)
        fine, _ = upsample_canonical(depth, size=size)
        left_x = depth_grid_mesh(fine, FOV, trim)[0].reshape(size, -1, 3)[:, 0, 0] / fine[:, trim].numpy()
        old_x = depth_grid_mesh(depth, FOV, 2)[0].reshape(S, -1, 3)[0, 0, 0] / depth[0, 2].item()  # x / depth
        step = 2 * np.tan(np.radians(FOV) / 2) / (size - 1)  # x / depth across one new column
        assert np.all(left_x >= old_x - 1e-12) and np.all(left_x < old_x + step)  # first ray at or inside u = 2


def test_canonical_mesh_matches_the_grid_mesh_and_resamples():
    depth = bumpy(seed=6).float()
    albedo = torch.rand(3, S, S, generator=torch.Generator().manual_seed(1))
    normal = normals_from_depth(depth[None], FOV)[0]
    mesh = canonical_mesh(depth, albedo, FOV, canonical_normal=normal, trim_border=2)
    vertices, faces, uvs = depth_grid_mesh(depth, FOV, 2)
    np.testing.assert_array_equal(mesh.vertices, vertices)
    np.testing.assert_array_equal(mesh.faces, faces)
    np.testing.assert_array_equal(mesh.uvs, uvs)
    np.testing.assert_allclose(mesh.normals, grid_vertex_normals(normal, 2))
    assert torch.equal(mesh.texture, albedo)
    fine = canonical_mesh(depth, albedo, FOV, size=40)
    assert fine.vertices.shape == (1600, 3) and fine.faces.shape == (2 * 39**2, 3) and fine.texture.shape == (3, 40, 40)
    np.testing.assert_allclose(np.linalg.norm(fine.normals, axis=1), 1.0, atol=1e-9)
    flat = canonical_mesh(plane(), albedo, FOV, size=40)
    np.testing.assert_allclose(flat.normals, np.tile([0.0, 0.0, 1.0], (1600, 1)), atol=1e-9)


def test_sample_texture_returns_each_vertex_pixel():
    albedo = torch.rand(3, S, S, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    _, _, uvs = depth_grid_mesh(plane(), FOV)
    colours = sample_texture(albedo, uvs)  # (S·S, 3), row-major like the vertices
    np.testing.assert_allclose(colours, albedo.permute(1, 2, 0).reshape(-1, 3).numpy(), atol=1e-6)
    corner = sample_texture(albedo, np.array([[0.0, 1.0], [1.0, 0.0]]))  # past the texel centres: edges clamp
    np.testing.assert_allclose(corner, albedo[:, [0, -1], [0, -1]].T.numpy(), atol=1e-6)
