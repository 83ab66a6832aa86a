import importlib
import math

import numpy as np
import pytest
import torch
from _reference_renderer import render_depth_reference
from _scenes import grid_screen, random_views, smooth_depth

from unsup3d.geometry import depth_to_points, project, transform_points
from unsup3d.render import (
    BACKGROUND_DEPTH,
    grid_faces,
    interpolate_depth,
    rasterize,
    rasterize_grid,
    render_depth,
)

rasterize_module = importlib.import_module("unsup3d.render.rasterize")


def test_grid_faces_cover_every_cell_twice():
    faces = grid_faces(3, 4)
    assert faces.shape == (2 * 2 * 3, 3)
    assert faces.dtype == torch.long
    assert set(faces.flatten().tolist()) == set(range(12))
    assert faces[0].tolist() == [0, 4, 1]
    assert faces[6].tolist() == [1, 4, 5]


def test_rotated_plane_matches_analytic_depth():
    size, fov, yaw = 32, 10.0, math.radians(30)
    plane = torch.ones(1, size, size, dtype=torch.float64)
    view = torch.tensor([[0.0, yaw, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    rendered = render_depth(plane, view, fov)
    f = (size - 1) / 2 / math.tan(math.radians(fov) / 2)
    x = (torch.arange(size, dtype=torch.float64) - (size - 1) / 2) / f
    # Plane through (0, 0, 1) with normal (sin yaw, 0, cos yaw): depth = cos / (x sin + cos) along ray (x, y, 1).
    expected = (math.cos(yaw) / (x * math.sin(yaw) + math.cos(yaw))).expand(size, size)
    hit = rendered[0] < BACKGROUND_DEPTH
    assert hit.float().mean() > 0.7
    torch.testing.assert_close(rendered[0][hit], expected[hit], atol=1e-12, rtol=0)


@pytest.mark.parametrize("border", [None, 1.04])
def test_matches_reference_renderer(border):
    size, fov = 16, 10.0
    depth = smooth_depth(4, size, seed=1, border=border)
    views = random_views(4, seed=2)
    fast = render_depth(depth.float(), views.float(), fov).double()
    points = transform_points(depth_to_points(depth, fov), views).reshape(4, -1, 3).numpy()
    faces = grid_faces(size, size).numpy()
    for b in range(4):
        reference = render_depth_reference(points[b], faces, size, fov)
        ref_hit = np.isfinite(reference)
        fast_hit = fast[b].numpy() < BACKGROUND_DEPTH
        assert ref_hit.sum() > 20
        np.testing.assert_array_equal(fast_hit, ref_hit)
        np.testing.assert_allclose(fast[b].numpy()[ref_hit], reference[ref_hit], atol=1e-5, rtol=0)


def test_matches_reference_at_full_size_with_large_border_triangles():
    size, fov = 64, 10.0
    depth = smooth_depth(1, size, seed=3, relief=0.1, border=1.04)
    view = torch.tensor([[0.2, math.radians(60), 0.1, 0.01, -0.01, 0.0]], dtype=torch.float64)
    points = transform_points(depth_to_points(depth, fov), view)
    screen = project(points, size, fov).reshape(1, -1, 3)
    faces = grid_faces(size, size)
    tri_u = screen[0, faces, 0]
    assert (tri_u.amax(1) - tri_u.amin(1)).max() > 10, "the test needs triangles spanning many pixels"
    fast = render_depth(depth.float(), view.float(), fov).double()[0].numpy()
    reference = render_depth_reference(points.reshape(-1, 3).numpy(), faces.numpy(), size, fov)
    ref_hit = np.isfinite(reference)
    np.testing.assert_array_equal(fast < BACKGROUND_DEPTH, ref_hit)
    np.testing.assert_allclose(fast[ref_hit], reference[ref_hit], atol=1e-5, rtol=0)


def test_single_huge_triangle_covers_the_whole_image():
    screen = torch.tensor([[[-50.0, -50.0, 2.0], [200.0, -50.0, 2.0], [-50.0, 200.0, 2.0]]])
    fragments = rasterize(screen, torch.tensor([[0, 1, 2]]), 40, 40)
    assert bool((fragments.face_index == 0).all())


def test_nearest_surface_wins_and_both_windings_render():
    near = [[0.0, 0.0, 1.0], [9.0, 0.0, 1.0], [0.0, 9.0, 1.0]]
    far = [[0.0, 0.0, 2.0], [0.0, 9.0, 2.0], [9.0, 0.0, 2.0]]  # opposite winding
    screen = torch.tensor([far + near])
    for faces in ([[0, 1, 2], [3, 4, 5]], [[3, 4, 5], [0, 1, 2]]):
        fragments = rasterize(screen, torch.tensor(faces), 10, 10)
        depth = interpolate_depth(screen, torch.tensor(faces), fragments)
        assert float(depth[0, 1, 1]) == 1.0
    fragments = rasterize(screen[:, :3], torch.tensor([[0, 1, 2]]), 10, 10)
    assert bool(fragments.mask[0, 1, 1])


def test_chunked_rasterization_is_identical(monkeypatch):
    depth = smooth_depth(3, 24, seed=4, border=1.04).float()
    views = random_views(3, seed=5).float()
    expected = render_depth(depth, views)
    monkeypatch.setattr(rasterize_module, "CHUNK_CANDIDATES", 97)
    torch.testing.assert_close(render_depth(depth, views), expected, atol=0, rtol=0)


def test_small_triangle_path_equals_box_expansion(monkeypatch):
    screen = grid_screen(smooth_depth(4, 32, seed=14, border=1.04), random_views(4, seed=15)).float()
    dense = rasterize_grid(screen, 32, 32).face_index
    monkeypatch.setattr(rasterize_module, "SMALL_BOX", 0)  # every triangle through box expansion
    monkeypatch.setattr(rasterize_module, "CHUNK_CANDIDATES", 501)
    expanded = rasterize_grid(screen, 32, 32).face_index
    assert int((dense >= 0).sum()) > 2000
    torch.testing.assert_close(dense, expanded, atol=0, rtol=0)


@pytest.mark.parametrize("size", [(16, 16), (12, 20)])
def test_grid_rasterizer_equals_mesh_rasterizer(size):
    rows, cols = size
    screen = grid_screen(smooth_depth(3, 20, seed=16, border=1.04), random_views(3, seed=17))
    screen = screen[:, :rows, :cols].float().contiguous()  # a non-square grid covering part of the image
    screen[0, 3, 4] = float("nan")
    screen[1, 5, 5, 0] = float("inf")
    screen[2, 6, 2, 2] = -0.5  # behind the camera
    for height, width in ((20, 20), (15, 24)):
        grid = rasterize_grid(screen, height, width).face_index
        mesh = rasterize(screen.reshape(3, -1, 3), grid_faces(rows, cols), height, width).face_index
        assert int((grid >= 0).sum()) > 200
        torch.testing.assert_close(grid, mesh, atol=0, rtol=0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("coordinate", [0, 1, 2])
def test_triangles_with_a_non_finite_vertex_are_dropped(bad, coordinate):
    screen = grid_screen(torch.ones(1, 8, 8), torch.zeros(1, 6)).float()
    screen[0, 4, 4, coordinate] = bad
    faces = grid_faces(8, 8)
    bad_faces = (faces == 4 * 8 + 4).any(dim=1)
    for fragments in (rasterize_grid(screen, 8, 8), rasterize(screen.reshape(1, -1, 3), faces, 8, 8)):
        covered = fragments.face_index[fragments.mask]
        assert not bool(bad_faces[covered].any())
        assert int(fragments.mask.sum()) >= 64 - 9


def test_triangles_behind_the_near_plane_are_dropped():
    screen = grid_screen(torch.ones(1, 8, 8), torch.zeros(1, 6)).float()
    screen[0, :, 5:, 2] = 1e-5
    fragments = rasterize_grid(screen, 8, 8)
    assert bool(fragments.mask[0, :, :4].all())
    assert not bool(fragments.mask[0, :, 5:].any())


def test_grid_rasterizer_rejects_bad_shapes():
    with pytest.raises(ValueError, match="screen_grid"):
        rasterize_grid(torch.zeros(2, 1, 5, 3), 4, 4)
    with pytest.raises(ValueError, match="screen_grid"):
        rasterize_grid(torch.zeros(2, 5, 5), 4, 4)


def test_batch_elements_are_independent():
    depth = smooth_depth(3, 16, seed=6).float()
    views = random_views(3, seed=7).float()
    batched = render_depth(depth, views)
    for b in range(3):
        torch.testing.assert_close(render_depth(depth[b : b + 1], views[b : b + 1])[0], batched[b])


def test_render_depth_gradcheck():
    depth = smooth_depth(1, 6, seed=10, relief=0.03).requires_grad_(True)
    view = torch.tensor([[0.05, 0.1, -0.03, 0.001, 0.002, 0.0]], dtype=torch.float64, requires_grad=True)

    def fn(d, v):
        out = render_depth(d, v)
        return torch.where(out < BACKGROUND_DEPTH, out, torch.zeros_like(out))

    assert torch.autograd.gradcheck(fn, (depth, view), eps=1e-7, atol=1e-6)


def test_background_has_zero_gradient(device):
    depth = smooth_depth(1, 8, seed=11).to(device).requires_grad_(True)
    view = torch.tensor([[0.0, 0.0, 0.0, 0.03, 0.0, 0.0]], dtype=torch.float64, device=device, requires_grad=True)
    out = render_depth(depth, view)
    background = out == BACKGROUND_DEPTH
    assert bool(background.any()) and bool((~background).any())
    # Upstream gradient on background pixels only: nothing may reach the depth or the view, not even a NaN.
    depth_grad, view_grad = torch.autograd.grad(out, (depth, view), background.to(out.dtype), retain_graph=True)
    assert torch.equal(depth_grad, torch.zeros_like(depth_grad))
    assert torch.equal(view_grad, torch.zeros_like(view_grad))
    # The same backward pass does carry gradient from the covered pixels.
    depth_grad, view_grad = torch.autograd.grad(out, (depth, view), (~background).to(out.dtype))
    assert bool(depth_grad.abs().sum() > 0) and bool(view_grad.abs().sum() > 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    depth = smooth_depth(4, 32, seed=12, border=1.04).float()
    views = random_views(4, seed=13).float()
    cpu = render_depth(depth, views)
    gpu = render_depth(depth.cuda(), views.cuda()).cpu()
    assert torch.equal(cpu < BACKGROUND_DEPTH, gpu < BACKGROUND_DEPTH)
    torch.testing.assert_close(gpu, cpu, atol=1e-5, rtol=0)
