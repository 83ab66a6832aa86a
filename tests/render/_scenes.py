"""Inputs shared by the renderer tests: smooth random depth maps, random views and their screen-space grids."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from unsup3d.geometry import depth_to_points, project, transform_points


def smooth_depth(batch, size, seed, relief=0.08, border=None):
    """Random smooth (B, S, S) float64 depth maps around 1, optionally with the model's clamped border columns."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(batch, 1, size, size, generator=gen, dtype=torch.float64)
    smooth = F.avg_pool2d(noise, 5, 1, 2, count_include_pad=False)[:, 0]
    smooth = smooth / smooth.abs().amax(dim=(1, 2), keepdim=True)
    depth = 1.0 + relief * smooth
    if border is not None:
        depth[:, :, :2] = border
        depth[:, :, -2:] = border
    return depth


def random_views(batch, seed, max_degrees=60.0, max_shift=0.05):
    """Random (B, 6) float64 views: rotations up to ``max_degrees`` about each axis, shifts up to ``max_shift``."""
    gen = torch.Generator().manual_seed(seed)
    rot = (torch.rand(batch, 3, generator=gen, dtype=torch.float64) * 2 - 1) * math.radians(max_degrees)
    shift = (torch.rand(batch, 3, generator=gen, dtype=torch.float64) * 2 - 1) * max_shift
    return torch.cat([rot, shift], dim=1)


def grid_screen(depth, views, fov=10.0):
    """(B, H, W, 3) screen vertices of depth grids seen from views."""
    return project(transform_points(depth_to_points(depth, fov), views), depth.shape[-1], fov)
