"""Pinhole camera of the method: intrinsics, pixel grids, back-projection and projection.

Frames and pixel conventions are in ``docs/conventions.md``: pixel centres at integer coordinates, x right,
y down, z forward, principal point at ``(S - 1) / 2``.
"""

from __future__ import annotations

import math

import torch

from unsup3d.conventions import FOV_DEGREES


def focal_length(size: int, fov: float = FOV_DEGREES) -> float:
    """Focal length in pixels of a square image of ``size`` pixels whose full field of view is ``fov`` degrees."""
    if size < 2:
        raise ValueError(f"image size must be at least 2, got {size}")
    if not 0.0 < fov < 180.0:
        raise ValueError(f"fov must be in (0, 180) degrees, got {fov}")
    return (size - 1) / 2.0 / math.tan(math.radians(fov) / 2.0)


def intrinsics(size: int, fov: float = FOV_DEGREES, dtype=torch.float32, device=None) -> torch.Tensor:
    """Intrinsic matrix ``K`` (3, 3) with ``f = (S-1)/2/tan(fov/2)`` and principal point ``((S-1)/2, (S-1)/2)``."""
    f = focal_length(size, fov)
    c = (size - 1) / 2.0
    return torch.tensor([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]], dtype=dtype, device=device)


def pixel_grid(height: int, width: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """Homogeneous pixel coordinates ``(H, W, 3)`` holding ``(u, v, 1)``: u the column, v the row."""
    v, u = torch.meshgrid(
        torch.arange(height, dtype=dtype, device=device),
        torch.arange(width, dtype=dtype, device=device),
        indexing="ij",
    )
    return torch.stack([u, v, torch.ones_like(u)], dim=-1)


def depth_to_points(depth: torch.Tensor, fov: float = FOV_DEGREES) -> torch.Tensor:
    """Back-project a depth map to camera-frame 3D points.

    Args:
        depth: (B, H, W) depth (z) per pixel, square images (H == W).
        fov: field of view in degrees.
    Returns:
        (B, H, W, 3) points ``d(u, v) · K⁻¹ [u, v, 1]``.
    """
    _check_depth(depth)
    _, h, w = depth.shape
    k_inv = torch.linalg.inv(intrinsics(w, fov, dtype=depth.dtype, device=depth.device))
    rays = pixel_grid(h, w, dtype=depth.dtype, device=depth.device) @ k_inv.T  # (H, W, 3)
    return depth.unsqueeze(-1) * rays


def project(points: torch.Tensor, size: int, fov: float = FOV_DEGREES) -> torch.Tensor:
    """Project camera-frame points to pixels.

    Args:
        points: (..., 3) points with z > 0.
        size: image size S in pixels.
    Returns:
        (..., 3) ``(u, v, z)``: pixel coordinates and the camera depth.
    """
    if points.shape[-1] != 3:
        raise ValueError(f"points must have a last dimension of 3, got shape {tuple(points.shape)}")
    f = focal_length(size, fov)
    c = (size - 1) / 2.0
    x, y, z = points.unbind(-1)  # unbind, not three selects: one cheap backward instead of three full-size
    return torch.stack([f * x / z + c, f * y / z + c, z], dim=-1)


def _check_depth(depth: torch.Tensor) -> None:
    if depth.dim() != 3:
        raise ValueError(f"depth must be (B, H, W), got shape {tuple(depth.shape)}")
    if depth.shape[1] != depth.shape[2]:
        raise ValueError(f"depth maps must be square, got {depth.shape[1]}x{depth.shape[2]}")
