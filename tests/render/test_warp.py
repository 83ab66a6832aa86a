import math

import pytest
import torch
from _scenes import smooth_depth

from unsup3d.geometry import focal_length, project, transform_points
from unsup3d.render import BACKGROUND_DEPTH, inverse_warp_grid, render_depth, sample_canonical


def identity_grid(batch, height, width, dtype=torch.float64, device="cpu"):
    """(B, H, W, 2) ``grid_sample`` coordinates (x, y) of every pixel centre, ``align_corners=True``."""
    ys = torch.linspace(-1.0, 1.0, height, dtype=dtype, device=device)
    xs = torch.linspace(-1.0, 1.0, width, dtype=dtype, device=device)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([x, y], dim=-1).expand(batch, height, width, 2)


def views(*rows, dtype=torch.float64, device="cpu"):
    return torch.tensor(rows, dtype=dtype, device=device)


# inverse_warp_grid


@pytest.mark.parametrize("batch", [1, 3])
def test_identity_view_maps_every_pixel_to_itself(batch, device, dtype):
    depth = smooth_depth(batch, 6, seed=0, relief=0.2).to(device, dtype)
    grid = inverse_warp_grid(depth, torch.zeros(batch, 6, dtype=dtype, device=device))
    assert grid.shape == (batch, 6, 6, 2) and grid.dtype == dtype and grid.device.type == device.type
    torch.testing.assert_close(grid, identity_grid(batch, 6, 6, dtype, device))


def test_translation_shifts_the_grid_analytically(device, dtype):
    size, depth_value = 8, 1.2
    f, c = focal_length(size), (size - 1) / 2
    shift = [(0.01, -0.02, 0.0), (-0.03, 0.005, 0.1)]
    view = views(*[(0.0, 0.0, 0.0, *t) for t in shift], dtype=dtype, device=device)
    grid = inverse_warp_grid(torch.full((2, size, size), depth_value, dtype=dtype, device=device), view)
    pixels = torch.arange(size, dtype=torch.float64)
    for b, (tx, ty, tz) in enumerate(shift):
        # The input-view point ((p − c)·d/f, ·, d) came from the canonical point (x − tx, y − ty, d − tz).
        u = ((pixels - c) * depth_value - f * tx) / (depth_value - tz) + c
        v = ((pixels - c) * depth_value - f * ty) / (depth_value - tz) + c
        expected = torch.stack(torch.meshgrid(v, u, indexing="ij")[::-1], dim=-1) / (size - 1) * 2 - 1
        torch.testing.assert_close(grid[b].cpu().double(), expected, atol=1e-5, rtol=0)


def test_rotation_about_the_optical_axis_is_an_image_rotation(device, dtype):
    angles = [0.4, -1.1]
    view = views(*[(0.0, 0.0, a, 0.0, 0.0, 0.0) for a in angles], dtype=dtype, device=device)
    grid = inverse_warp_grid(torch.ones(2, 8, 8, dtype=dtype, device=device), view)
    x, y = identity_grid(2, 8, 8, dtype, device).unbind(-1)
    for b, angle in enumerate(angles):
        # The plane z = 1 holds the rotation centre: the canonical pixel is the view pixel rotated by −angle.
        cos, sin = math.cos(angle), math.sin(angle)
        expected = torch.stack([cos * x[b] + sin * y[b], -sin * x[b] + cos * y[b]], dim=-1)
        torch.testing.assert_close(grid[b], expected)


def test_rotation_then_its_inverse_round_trips(device, dtype):
    angles = torch.tensor([0.4, -1.1], dtype=dtype, device=device)
    view = torch.zeros(2, 6, dtype=dtype, device=device)
    view[:, 2] = angles
    plane = torch.ones(2, 8, 8, dtype=dtype, device=device)
    forward, backward = inverse_warp_grid(plane, view), inverse_warp_grid(plane, -view)
    # Both grids are affine in the pixel position, so bilinear sampling composes them exactly.
    composed = sample_canonical(backward.permute(0, 3, 1, 2), forward).permute(0, 2, 3, 1)
    inside = forward.abs().amax(dim=-1) < 1
    assert int(inside.sum()) > 60
    torch.testing.assert_close(composed[inside], identity_grid(2, 8, 8, dtype, device)[inside])


def test_grid_reprojects_to_the_view_pixels(device, dtype):
    # Render a canonical plane z = 1 from a general view, warp back, then move the canonical points found
    # at the grid into the view again: each must land on the pixel it was warped from, at its rendered depth.
    size = 12
    f, c = focal_length(size), (size - 1) / 2
    view = views((0.2, -0.35, 0.1, 0.02, -0.01, 0.05), (-0.3, 0.25, -0.2, 0.0, 0.03, -0.02), dtype=dtype)
    view = view.to(device)
    view_depth = render_depth(torch.ones(2, size, size, dtype=dtype, device=device), view)
    hit = view_depth < BACKGROUND_DEPTH
    assert hit.float().mean() > 0.6
    canonical_pixels = (inverse_warp_grid(view_depth, view) + 1) / 2 * (size - 1)
    canonical_points = torch.cat([(canonical_pixels - c) / f, torch.ones_like(canonical_pixels[..., :1])], -1)
    reprojected = project(transform_points(canonical_points, view), size)
    expected = torch.cat([identity_grid(2, size, size, dtype, device), view_depth.unsqueeze(-1)], -1)
    expected[..., :2] = (expected[..., :2] + 1) / 2 * (size - 1)
    tolerance = {torch.float32: 2e-4, torch.float64: 1e-9}[dtype]
    torch.testing.assert_close(reprojected[hit], expected[hit], atol=tolerance, rtol=0)


def test_inverse_warp_grid_gradcheck(device):
    depth = smooth_depth(2, 6, seed=1, relief=0.1).to(device).requires_grad_(True)
    view = views((0.05, 0.1, -0.03, 0.01, 0.02, 0.0), (-0.2, 0.3, 0.1, -0.02, 0.0, 0.05), device=device)
    assert torch.autograd.gradcheck(inverse_warp_grid, (depth, view.requires_grad_(True)))


# sample_canonical


def test_identity_grid_reproduces_the_image(device, dtype):
    image = torch.rand(2, 3, 5, 7, dtype=dtype).to(device)
    out = sample_canonical(image, identity_grid(2, 5, 7, dtype, device))
    assert out.shape == image.shape and out.dtype == dtype
    torch.testing.assert_close(out, image)


def test_half_pixel_shift_averages_neighbours_and_pads_with_zeros(device, dtype):
    image = torch.rand(2, 3, 6, 6, dtype=dtype).to(device)
    grid = identity_grid(2, 6, 6, dtype, device).clone()
    grid[..., 0] += 1.0 / 5  # half a pixel to the right: one pixel is 2 / (W − 1) wide
    out = sample_canonical(image, grid)
    torch.testing.assert_close(out[..., :-1], (image[..., :-1] + image[..., 1:]) / 2)
    torch.testing.assert_close(out[..., -1], image[..., -1] / 2)  # the missing neighbour counts as zero


def test_points_outside_the_image_give_zeros(device, dtype):
    image = 1 + torch.rand(2, 3, 6, 6, dtype=dtype).to(device)
    beyond = 1 + 3 / 5  # one and a half pixels past the border
    outside = [[beyond, 0.0], [-beyond, 0.3], [0.2, 1.5], [-0.7, -3.0], [5.0, 5.0], [-2.0, 2.0]]
    grid = torch.tensor(outside, dtype=dtype, device=device).view(1, 2, 3, 2).expand(2, 2, 3, 2)
    out = sample_canonical(image, grid)
    assert out.shape == (2, 3, 2, 3)
    assert torch.equal(out, torch.zeros_like(out))


def off_pixel_grid(batch, rows, cols, size, seed):
    """(B, rows, cols, 2) float64 grid inside a size×size image, every coordinate 0.15–0.85 px from a centre."""
    gen = torch.Generator().manual_seed(seed)
    whole = torch.randint(0, size - 1, (batch, rows, cols, 2), generator=gen).double()
    fraction = 0.15 + 0.7 * torch.rand(batch, rows, cols, 2, generator=gen, dtype=torch.float64)
    return (whole + fraction) / (size - 1) * 2 - 1


def test_sample_canonical_gradcheck(device):
    gen = torch.Generator().manual_seed(2)
    image = torch.rand(2, 2, 6, 6, generator=gen, dtype=torch.float64).to(device).requires_grad_(True)
    grid = off_pixel_grid(2, 5, 4, 6, seed=3).to(device).requires_grad_(True)
    # grid_sample's CUDA backward accumulates with atomics: allow rounding-level nondeterminism.
    assert torch.autograd.gradcheck(sample_canonical, (image, grid), nondet_tol=1e-12)


# render_depth


def test_identity_view_reproduces_canonical_depth_on_every_pixel(device, dtype):
    depth = smooth_depth(2, 16, seed=0).to(device, dtype)
    rendered = render_depth(depth, torch.zeros(2, 6, dtype=dtype, device=device))
    assert rendered.shape == depth.shape and rendered.dtype == dtype
    tolerance = {torch.float32: 1e-6, torch.float64: 1e-12}[dtype]
    torch.testing.assert_close(rendered, depth, atol=tolerance, rtol=0)
