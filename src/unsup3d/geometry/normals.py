"""Surface normals of a depth map by central differences on its back-projected 3D grid."""

from __future__ import annotations

import torch

from unsup3d.geometry.camera import depth_to_points

# Lower bound on |tu × tv| before normalising; only degenerate grids come near it.
EPS = 1e-12


def normals_from_points(points: torch.Tensor) -> torch.Tensor:
    """Unit normals of a grid of 3D points.

    Args:
        points: (B, H, W, 3) camera-frame points of a depth grid.
    Returns:
        (B, H, W, 3) ``n = tu × tv / |tu × tv|`` with ``tu = P[i, j+1] − P[i, j−1]`` and
        ``tv = P[i+1, j] − P[i−1, j]``; the one-pixel frame is ``(0, 0, 1)``.

    The original divided by ``|tu × tv| + 1e-7``. At 64 px and depth 1, ``|tu × tv| ≈ 3e-5``, so its normals
    were 0.3 % short of unit length and two identical normal maps differed by acos(0.9934) ≈ 6.6° in MAD. We
    normalise exactly.
    """
    if points.dim() != 4 or points.shape[-1] != 3:
        raise ValueError(f"points must be (B, H, W, 3), got shape {tuple(points.shape)}")
    tu = points[:, 1:-1, 2:] - points[:, 1:-1, :-2]
    tv = points[:, 2:, 1:-1] - points[:, :-2, 1:-1]
    normal = torch.linalg.cross(tu, tv, dim=-1)
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp(min=EPS)
    frame = points.new_tensor([0.0, 0.0, 1.0])
    out = frame.expand(points.shape).clone()
    out[:, 1:-1, 1:-1] = normal
    return out


def normals_from_depth(depth: torch.Tensor, fov: float = 10.0) -> torch.Tensor:
    """Unit normals (B, H, W, 3) of a (B, H, W) depth map, see :func:`normals_from_points`."""
    return normals_from_points(depth_to_points(depth, fov))
