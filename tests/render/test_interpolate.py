import numpy as np
import pytest
import torch
from _scenes import random_views, smooth_depth

from unsup3d.geometry import depth_to_points, project, transform_points
from unsup3d.render import grid_faces, interpolate_attributes, interpolate_depth, rasterize


def random_mesh(batch, vertices, faces, size, seed):
    """Random overlapping triangles over a size×size image: (B, N, 3) float64 ``(u, v, z)`` and (F, 3) faces.

    Faces are distinct vertex triples whose screen area is at least 1.5 px² in every batch element.
    """
    gen = torch.Generator().manual_seed(seed)
    uv = torch.rand(batch, vertices, 2, generator=gen, dtype=torch.float64) * (size + 2) - 1.5
    z = 1 + 2 * torch.rand(batch, vertices, 1, generator=gen, dtype=torch.float64)
    chosen = []
    while len(chosen) < faces:
        face = torch.randperm(vertices, generator=gen)[:3]
        a, b, c = uv[:, face].unbind(1)  # (B, 2) each
        area = ((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]).abs() / 2
        if float(area.min()) > 1.5 and sorted(face.tolist()) not in [sorted(f.tolist()) for f in chosen]:
            chosen.append(face)
    return torch.cat([uv, z], dim=-1), torch.stack(chosen)


def reference_interpolation(screen, faces, face_index, attributes, background):
    """Depth (B, H, W) and attributes (B, C, H, W) of the given winning faces, one pixel at a time.

    Each vertex is lifted to the camera-frame point ``(u·z, v·z, z)`` of a pinhole with unit focal length and
    principal point 0; the pixel ray ``(x, y, 1)`` meets the triangle at ``t·(x, y, 1) = Σ λ_k X_k`` with
    ``Σ λ_k = 1``: solve ``[X_0 X_1 X_2] (λ / t) = (x, y, 1)``. Perspective-correct weights are ``λ``, depth is
    ``t``. (The result does not depend on the focal length or principal point.)
    """
    screen, faces, face_index = screen.double().numpy(), faces.numpy(), face_index.numpy()
    attributes = attributes.double().numpy()
    batch, height, width = face_index.shape
    depth = np.full((batch, height, width), background)
    values = np.zeros((batch, attributes.shape[-1], height, width))
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                face = face_index[b, y, x]
                if face < 0:
                    continue
                u, v, z = screen[b, faces[face]].T
                corners = np.stack([u * z, v * z, z])  # column k: the 3D point of vertex k
                scaled = np.linalg.solve(corners, np.array([x, y, 1.0]))
                t = 1.0 / scaled.sum()
                depth[b, y, x] = t
                values[b, :, y, x] = (scaled * t) @ attributes[b, faces[face]]
    return torch.from_numpy(depth), torch.from_numpy(values)


def test_matches_the_reference(device, dtype):
    screen, faces = random_mesh(2, 9, 7, size=10, seed=0)
    attributes = torch.randn(2, 9, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    screen, attributes = screen.to(device, dtype), attributes.to(device, dtype)
    faces = faces.to(device)
    fragments = rasterize(screen, faces, 10, 10)
    covered = int(fragments.mask.sum())
    assert 20 < covered < 2 * 100, "the test needs covered and background pixels"
    depth = interpolate_depth(screen, faces, fragments, background=7.5)
    values = interpolate_attributes(screen, faces, fragments, attributes)
    assert depth.shape == (2, 10, 10) and depth.dtype == dtype
    assert values.shape == (2, 4, 10, 10) and values.dtype == dtype
    ref_depth, ref_values = reference_interpolation(
        screen.cpu(), faces.cpu(), fragments.face_index.cpu(), attributes.cpu(), background=7.5
    )
    tolerance = {torch.float32: 1e-4, torch.float64: 1e-10}[dtype]
    torch.testing.assert_close(depth.cpu().double(), ref_depth, atol=tolerance, rtol=tolerance)
    torch.testing.assert_close(values.cpu().double(), ref_values, atol=tolerance, rtol=tolerance)


def test_attributes_affine_in_3d_are_exact(device, dtype):
    screen, faces = random_mesh(2, 9, 7, size=10, seed=0)
    u, v, z = screen.unbind(-1)
    # The lifted 3D point (u·z, v·z, z) and a constant: any affine function of the surface point.
    lifted = torch.stack([u * z, v * z, z, torch.ones_like(z)], dim=-1)  # (B, N, 4)
    affine = torch.randn(4, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    attributes = torch.cat([lifted, lifted @ affine], dim=-1)
    screen, attributes, faces = screen.to(device, dtype), attributes.to(device, dtype), faces.to(device)
    fragments = rasterize(screen, faces, 10, 10)
    mask = fragments.mask
    values = interpolate_attributes(screen, faces, fragments, attributes).permute(0, 2, 3, 1)  # (B, H, W, 7)
    depth = interpolate_depth(screen, faces, fragments)
    rows, cols = torch.meshgrid(
        torch.arange(10, dtype=dtype, device=device), torch.arange(10, dtype=dtype, device=device), indexing="ij"
    )
    hit = torch.stack([cols, rows, torch.ones_like(rows)], dim=-1) * depth.unsqueeze(-1)  # ray (x, y, 1) at depth
    expected = torch.cat([hit, torch.ones_like(depth).unsqueeze(-1)], dim=-1)
    tolerance = {torch.float32: 1e-4, torch.float64: 1e-10}[dtype]
    torch.testing.assert_close(values[..., :4][mask], expected[mask], atol=tolerance, rtol=tolerance)
    torch.testing.assert_close(
        values[..., 4:][mask], expected[mask] @ affine.to(device, dtype), atol=tolerance, rtol=tolerance
    )


def test_grid_mesh_interpolates_the_camera_points(device, dtype):
    size, fov = 16, 10.0
    depth = smooth_depth(2, size, seed=8).to(device, dtype)
    views = random_views(2, seed=9, max_degrees=30).to(device, dtype)
    points = transform_points(depth_to_points(depth, fov), views).reshape(2, -1, 3)
    screen = project(points, size, fov)
    faces = grid_faces(size, size, device=device)
    fragments = rasterize(screen, faces, size, size)
    # The camera-frame position is linear over each triangle: interpolating it must give the ray's hit point.
    hit_points = interpolate_attributes(screen, faces, fragments, points)  # (B, 3, H, W)
    z = interpolate_depth(screen, faces, fragments)
    mask = fragments.mask
    assert mask.float().mean() > 0.5
    tolerance = {torch.float32: 1e-5, torch.float64: 1e-12}[dtype]
    torch.testing.assert_close(hit_points[:, 2][mask], z[mask], atol=tolerance, rtol=0)
    expected = depth_to_points(torch.where(mask, z, torch.ones_like(z)), fov)
    torch.testing.assert_close(hit_points.permute(0, 2, 3, 1)[mask], expected[mask])


def test_background_gets_the_background_value_and_zero_attributes(device, dtype):
    screen, faces = random_mesh(2, 9, 7, size=10, seed=0)
    screen, faces = screen.to(device, dtype), faces.to(device)
    fragments = rasterize(screen, faces, 10, 10)
    background = ~fragments.mask
    assert bool(background.any())
    depth = interpolate_depth(screen, faces, fragments, background=-3.0)
    assert bool((depth[background] == -3.0).all())
    assert bool((depth[~background] > 0).all())
    attributes = 1 + torch.rand(2, 9, 2, dtype=dtype).to(device)
    values = interpolate_attributes(screen, faces, fragments, attributes).permute(0, 2, 3, 1)
    assert bool((values[background] == 0).all())
    assert bool((values[~background] > 0).all())


def test_attributes_must_match_the_vertices():
    screen, faces = random_mesh(2, 9, 7, size=10, seed=0)
    fragments = rasterize(screen, faces, 10, 10)
    for shape in [(2, 8, 3), (1, 9, 3), (2, 9)]:
        with pytest.raises(ValueError, match="attributes"):
            interpolate_attributes(screen, faces, fragments, torch.zeros(shape, dtype=torch.float64))


def test_gradcheck(device):
    screen, faces = random_mesh(2, 6, 4, size=6, seed=3)
    screen, faces = screen.to(device), faces.to(device)
    attributes = torch.randn(2, 6, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64).to(device)
    fragments = rasterize(screen, faces, 6, 6)  # the face assignment stays fixed under the perturbations
    assert bool(fragments.mask.any()) and bool((~fragments.mask).any())

    def interpolate(vertices, values):
        return (
            interpolate_depth(vertices, faces, fragments),
            interpolate_attributes(vertices, faces, fragments, values),
        )

    inputs = (screen.requires_grad_(True), attributes.requires_grad_(True))
    # The gathers' CUDA backward accumulates with atomics: allow rounding-level nondeterminism.
    assert torch.autograd.gradcheck(interpolate, inputs, nondet_tol=1e-12)
