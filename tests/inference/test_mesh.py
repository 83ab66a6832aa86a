import numpy as np
import pytest
import torch
import torch.nn.functional as F

from unsup3d.geometry import focal_length, normals_from_depth
from unsup3d.inference import depth_grid_mesh, grid_vertex_normals, read_obj, write_obj
from unsup3d.inference.mesh import face_normals

S = 16
FOV = 10.0


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
