"""Lighting Λ: Lambertian shading of the canonical surface."""

from __future__ import annotations

import torch


def light_direction(lxy: torch.Tensor) -> torch.Tensor:
    """Unit light directions ``(lx, ly, 1) / |(lx, ly, 1)|`` from (B, 2) ``(lx, ly)``; returns (B, 3)."""
    if lxy.dim() != 2 or lxy.shape[1] != 2:
        raise ValueError(f"lxy must be (B, 2), got {tuple(lxy.shape)}")
    direction = torch.cat([lxy, torch.ones_like(lxy[:, :1])], dim=1)
    return direction / direction.norm(dim=1, keepdim=True)


def diffuse_shading(normals: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """``max(0, ⟨n, l⟩)`` per pixel.

    Args:
        normals: (B, H, W, 3) unit normals.
        direction: (B, 3) unit light directions.
    Returns:
        (B, 1, H, W) diffuse term.
    """
    if normals.dim() != 4 or normals.shape[-1] != 3:
        raise ValueError(f"normals must be (B, H, W, 3), got shape {tuple(normals.shape)}")
    if direction.shape != (normals.shape[0], 3):
        raise ValueError(f"direction must be ({normals.shape[0]}, 3), got shape {tuple(direction.shape)}")
    dot = (normals * direction[:, None, None, :]).sum(dim=-1)
    return dot.clamp(min=0).unsqueeze(1)


def lambertian(diffuse: torch.Tensor, ambient: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """Shading ``S = k_s + k_d · diffuse`` with (B, 1, H, W) ``diffuse`` and (B,) coefficients; (B, 1, H, W)."""
    if diffuse.dim() != 4 or diffuse.shape[1] != 1:
        raise ValueError(f"diffuse must be (B, 1, H, W), got shape {tuple(diffuse.shape)}")
    if ambient.shape != (diffuse.shape[0],) or strength.shape != (diffuse.shape[0],):
        raise ValueError(
            f"ambient and strength must be ({diffuse.shape[0]},), got {tuple(ambient.shape)}, {tuple(strength.shape)}"
        )
    return ambient.view(-1, 1, 1, 1) + strength.view(-1, 1, 1, 1) * diffuse
