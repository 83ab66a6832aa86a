import math

import pytest
import torch

from unsup3d.geometry import (
    depth_to_points,
    focal_length,
    intrinsics,
    normals_from_depth,
    normals_from_points,
    project,
)


def test_intrinsics_match_the_paper():
    k = intrinsics(64, 10.0, dtype=torch.float64)
    assert k[0, 0].item() == pytest.approx(31.5 / math.tan(math.radians(5)))
    assert k[0, 0].item() == pytest.approx(360.05, abs=0.01)
    assert k[0, 2].item() == 31.5 and k[1, 2].item() == 31.5
    with pytest.raises(ValueError):
        focal_length(64, 0.0)


@pytest.mark.parametrize("batch", [1, 3])
def test_backprojection_then_projection_returns_pixel_centres(batch):
    depth = 0.9 + 0.2 * torch.rand(batch, 8, 8, dtype=torch.float64)
    uvz = project(depth_to_points(depth), 8)
    v, u = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    torch.testing.assert_close(uvz[..., 0], u.double().expand(batch, -1, -1))
    torch.testing.assert_close(uvz[..., 1], v.double().expand(batch, -1, -1))
    torch.testing.assert_close(uvz[..., 2], depth)


def test_fronto_parallel_plane_has_normal_plus_z():
    normals = normals_from_depth(torch.full((2, 6, 6), 1.3))
    torch.testing.assert_close(normals, torch.tensor([0.0, 0.0, 1.0]).expand(2, 6, 6, 3))
    # At the real scale (64 px, depth 1) the normals are unit length too.
    torch.testing.assert_close(normals_from_depth(torch.ones(1, 64, 64)).norm(dim=-1), torch.ones(1, 64, 64))


def test_tilted_plane_normal_is_analytic():
    size, tilt = 16, math.radians(25)
    f = focal_length(size)
    x = (torch.arange(size, dtype=torch.float64) - (size - 1) / 2) / f
    # Plane z = 1 + tan(tilt)·X meets the ray (x, y, 1) at z = 1 / (1 − x·tan(tilt)).
    depth = (1.0 / (1.0 - x * math.tan(tilt))).expand(1, size, size)
    normals = normals_from_depth(depth)[0, 1:-1, 1:-1]
    expected = torch.tensor([-math.sin(tilt), 0.0, math.cos(tilt)], dtype=torch.float64)
    torch.testing.assert_close(normals, expected.expand_as(normals), atol=1e-9, rtol=0)


def test_normals_match_a_loop_reference():
    points = torch.randn(1, 5, 6, 3, dtype=torch.float64)
    fast = normals_from_points(points)
    for i in range(1, 4):
        for j in range(1, 5):
            n = torch.linalg.cross(points[0, i, j + 1] - points[0, i, j - 1], points[0, i + 1, j] - points[0, i - 1, j])
            torch.testing.assert_close(fast[0, i, j], n / n.norm())
    assert bool((fast[0, 0] == torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)).all())


def test_normals_gradcheck():
    depth = (1 + 0.05 * torch.rand(1, 5, 5, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(normals_from_depth, (depth,))


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError):
        depth_to_points(torch.ones(4, 4))
