"""Reprojection Π: render the canonical depth in the input view, then inverse-warp the canonical image."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unsup3d.geometry import FOV_DEGREES, depth_to_points, inverse_transform_points, project, transform_points
from unsup3d.render.interpolate import BACKGROUND_DEPTH, interpolate_depth
from unsup3d.render.rasterize import grid_faces, rasterize_grid


def render_depth(canonical_depth: torch.Tensor, view: torch.Tensor, fov: float = FOV_DEGREES) -> torch.Tensor:
    """Depth of the canonical depth-grid mesh seen from the input view.

    Args:
        canonical_depth: (B, H, W) depth in the canonical frame.
        view: (B, 6) viewpoints ``(rx, ry, rz, tx, ty, tz)``, radians.
        fov: field of view in degrees.
    Returns:
        (B, H, W) depth in the input view, :data:`BACKGROUND_DEPTH` where no surface is hit. Differentiable in
        ``canonical_depth`` and ``view`` through the winning faces.
    """
    batch, height, width = canonical_depth.shape
    points = transform_points(depth_to_points(canonical_depth, fov), view)  # (B, H, W, 3)
    screen = project(points, width, fov)  # (B, H, W, 3)
    fragments = rasterize_grid(screen, height, width)
    faces = grid_faces(height, width, device=canonical_depth.device)
    return interpolate_depth(screen.reshape(batch, height * width, 3), faces, fragments, BACKGROUND_DEPTH)


def inverse_warp_grid(view_depth: torch.Tensor, view: torch.Tensor, fov: float = FOV_DEGREES) -> torch.Tensor:
    """Where each input-view pixel comes from in the canonical image.

    Args:
        view_depth: (B, H, W) depth in the input view.
        view: (B, 6) viewpoints.
    Returns:
        (B, H, W, 2) sampling grid in ``grid_sample`` coordinates (``align_corners=True``: −1 is pixel 0,
        +1 is pixel S−1), ordered (x, y).
    """
    _, _, width = view_depth.shape
    points = inverse_transform_points(depth_to_points(view_depth, fov), view)
    uvz = project(points, width, fov)
    return uvz[..., :2] / (width - 1) * 2.0 - 1.0


def sample_canonical(canonical_image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear sampling of a canonical (B, C, H, W) image at a (B, H, W, 2) grid; zeros outside."""
    if (
        canonical_image.dim() != 4
        or grid.dim() != 4
        or grid.shape[-1] != 2
        or grid.shape[0] != canonical_image.shape[0]
    ):
        raise ValueError(
            f"canonical_image must be (B, C, H, W) and grid (B, H, W, 2), got {tuple(canonical_image.shape)} "
            f"and {tuple(grid.shape)}"
        )
    return F.grid_sample(canonical_image, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
