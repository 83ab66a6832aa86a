import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from unsup3d.extras import MissingExtraError
from unsup3d.outputs.mesh import canonical_mesh, sample_texture, write_obj
from unsup3d.outputs.mesh_files import (
    load_depth_png16,
    save_depth_png16,
    texture_image,
    write_glb,
    write_ply,
)

S = 16
FOV = 10.0


@pytest.fixture
def trimesh():
    return pytest.importorskip("trimesh")


def bumpy(size=S, seed=0):
    noise = torch.randn(1, 1, size, size, generator=torch.Generator().manual_seed(seed))
    smooth = F.avg_pool2d(noise, 5, 1, 2, count_include_pad=False)[0, 0]
    return 1.0 + 0.05 * smooth / smooth.abs().max()


def albedo(size=S, seed=0):
    return torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed))


def texture_tensor(image):
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float64) / 255).permute(2, 0, 1)


@pytest.mark.parametrize("size", [None, 24])
def test_glb_round_trip(tmp_path, trimesh, size):
    mesh = canonical_mesh(bumpy(), albedo(), FOV, size=size)
    n = size or S
    path = write_glb(tmp_path / "mesh.glb", mesh.vertices, mesh.faces, mesh.uvs, mesh.texture, mesh.normals)
    scene = trimesh.load(path, process=False)
    (loaded,) = scene.geometry.values()
    np.testing.assert_array_equal(scene.graph[scene.graph.nodes_geometry[0]][0], np.eye(4))  # no node transform
    assert len(loaded.vertices) == n * n and len(loaded.faces) == 2 * (n - 1) ** 2
    np.testing.assert_allclose(loaded.vertices, mesh.vertices, atol=1e-6)  # y up, as written
    np.testing.assert_array_equal(loaded.faces, mesh.faces)
    np.testing.assert_allclose(loaded.vertex_normals, mesh.normals, atol=1e-5)
    image = loaded.visual.material.baseColorTexture
    assert image.size == (n, n)
    np.testing.assert_allclose(loaded.visual.uv, mesh.uvs, atol=1e-6)
    # each vertex's texel is its own albedo pixel: the texture is not flipped
    colours = sample_texture(texture_tensor(image), loaded.visual.uv)
    np.testing.assert_allclose(colours, mesh.texture.permute(1, 2, 0).reshape(-1, 3).numpy(), atol=0.5 / 255 + 1e-6)


def test_glb_takes_a_pil_texture_and_no_normals(tmp_path, trimesh):
    mesh = canonical_mesh(bumpy(seed=1), albedo(seed=1), FOV)
    picture = texture_image(mesh.texture).resize((64, 64))
    path = write_glb(tmp_path / "mesh.glb", mesh.vertices, mesh.faces, mesh.uvs, picture)
    scene = trimesh.load(path)
    (geometry,) = scene.geometry.values()
    assert len(geometry.vertices) == S * S and geometry.visual.material.baseColorTexture.size == (64, 64)
    with pytest.raises(ValueError, match="uvs"):
        write_glb(tmp_path / "bad.glb", mesh.vertices, mesh.faces, mesh.uvs[:-1], picture)


def test_ply_mesh_and_points_with_colours(tmp_path, trimesh):
    mesh = canonical_mesh(bumpy(seed=2), albedo(seed=2), FOV, trim_border=2)
    colours = sample_texture(mesh.texture, mesh.uvs)  # (N, 3) float in [0, 1]
    expected = np.round(colours * 255).astype(np.uint8)
    path = write_ply(tmp_path / "mesh.ply", mesh.vertices, mesh.faces, colours)
    loaded = trimesh.load(path, process=False)
    assert len(loaded.vertices) == S * (S - 4) and len(loaded.faces) == 2 * (S - 1) * (S - 5)
    np.testing.assert_allclose(loaded.vertices, mesh.vertices, atol=1e-6)
    np.testing.assert_array_equal(loaded.faces, mesh.faces)
    np.testing.assert_array_equal(loaded.visual.vertex_colors[:, :3], expected)
    points = trimesh.load(write_ply(tmp_path / "points.ply", mesh.vertices, colors=expected))
    assert isinstance(points, trimesh.PointCloud) and len(points.vertices) == len(mesh.vertices)
    np.testing.assert_array_equal(points.colors[:, :3], expected)  # uint8 colours go through unchanged
    with pytest.raises(ValueError, match="colors"):
        write_ply(tmp_path / "bad.ply", mesh.vertices, colors=expected[:-1])


def test_depth_png16_round_trip(tmp_path):
    near, far = 0.8, 1.2
    depth = torch.linspace(0.75, 1.25, 40 * 30, dtype=torch.float64).reshape(30, 40)  # past both ends too
    depth[:5, :7] = float("nan")
    depth[0, 10] = near
    depth[0, 11] = far
    path = save_depth_png16(tmp_path / "depth.png", depth, near, far)
    with Image.open(path) as image:
        assert image.mode in ("I;16", "I") and image.size == (40, 30)
        values = np.asarray(image)
    assert values[0, 10] == 65535 and values[0, 11] == 1 and (values[:5, :7] == 0).all()
    decoded = load_depth_png16(path)  # near and far from the file's text chunks
    assert np.isnan(decoded[:5, :7]).all() and np.isfinite(decoded).sum() == 40 * 30 - 35
    expected = depth.clamp(near, far).numpy()
    error = np.abs(decoded - expected)[np.isfinite(decoded)]
    assert error.max() <= (far - near) / 65534 / 2 + 1e-12  # half a step, within (far − near) / 65535
    np.testing.assert_allclose(load_depth_png16(path, 0.0, 1.0)[0, 10:12], [0.0, 1.0])  # explicit near, far
    with pytest.raises(ValueError, match="near"):
        save_depth_png16(tmp_path / "bad.png", depth, far, near)


def test_hand_written_obj_loads_in_trimesh_with_its_texture(tmp_path, trimesh):
    mesh = canonical_mesh(bumpy(seed=3), albedo(seed=3), FOV)
    texture_image(mesh.texture).save(tmp_path / "albedo.png")
    path = write_obj(tmp_path / "mesh.obj", mesh.vertices, mesh.faces, mesh.uvs, mesh.normals)
    loaded = trimesh.load(path, force="mesh", process=False)
    assert len(loaded.vertices) == S * S and len(loaded.faces) == 2 * (S - 1) ** 2
    np.testing.assert_allclose(loaded.vertices, mesh.vertices, atol=1e-6)
    np.testing.assert_allclose(loaded.visual.uv, mesh.uvs, atol=1e-6)
    assert loaded.visual.material.image.size == (S, S)


def test_missing_trimesh_names_the_mesh_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "trimesh", None)
    mesh = canonical_mesh(bumpy(), albedo(), FOV)
    with pytest.raises(MissingExtraError, match=r"GLB export.*'trimesh'.*unsup3d\[mesh\]"):
        write_glb(tmp_path / "mesh.glb", mesh.vertices, mesh.faces, mesh.uvs, mesh.texture)
    with pytest.raises(MissingExtraError, match=r"unsup3d\[mesh\]"):
        write_ply(tmp_path / "mesh.ply", mesh.vertices, mesh.faces)
    assert not list(tmp_path.iterdir())
