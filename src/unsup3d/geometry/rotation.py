"""Rotations and the rigid viewpoint transform of the method (``R = Rz · Ry · Rx`` about ``(0, 0, 1)``)."""

from __future__ import annotations

import torch

from unsup3d.conventions import ROTATION_CENTER


def euler_to_matrix(angles: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from Euler angles.

    Args:
        angles: (B, 3) rotations ``(rx, ry, rz)`` in radians about x, y and z.
    Returns:
        (B, 3, 3) ``R = Rz(rz) · Ry(ry) · Rx(rx)`` with right-handed elementary rotations.
    """
    if angles.dim() != 2 or angles.shape[1] != 3:
        raise ValueError(f"angles must be (B, 3), got shape {tuple(angles.shape)}")
    cx, cy, cz = angles.cos().unbind(1)
    sx, sy, sz = angles.sin().unbind(1)
    one, zero = torch.ones_like(cx), torch.zeros_like(cx)
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], 1).view(-1, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], 1).view(-1, 3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], 1).view(-1, 3, 3)
    return rz @ ry @ rx


def split_view(view: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a (B, 6) view ``(rx, ry, rz, tx, ty, tz)`` into rotation matrices (B, 3, 3) and translations (B, 3)."""
    if view.dim() != 2 or view.shape[1] != 6:
        raise ValueError(f"view must be (B, 6), got shape {tuple(view.shape)}")
    return euler_to_matrix(view[:, :3]), view[:, 3:]


def transform_points(points: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
    """Move canonical-frame points into the input view: ``X' = R (X − c) + c + t``.

    Args:
        points: (B, ..., 3) canonical-frame points.
        view: (B, 6) viewpoints.
    Returns:
        (B, ..., 3) points in the input view's camera frame.
    """
    rot, trans = split_view(view)
    center = points.new_tensor(ROTATION_CENTER)
    flat = points.reshape(points.shape[0], -1, 3)
    moved = (flat - center) @ rot.transpose(1, 2) + center + trans[:, None, :]
    return moved.reshape(points.shape)


def inverse_transform_points(points: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`transform_points`: ``X = Rᵀ (X' − t − c) + c``, shapes as there."""
    rot, trans = split_view(view)
    center = points.new_tensor(ROTATION_CENTER)
    flat = points.reshape(points.shape[0], -1, 3)
    moved = (flat - trans[:, None, :] - center) @ rot + center
    return moved.reshape(points.shape)
