"""Turning predictions into pictures: image grids, depth and normal maps in [0, 1]."""

from __future__ import annotations

import numpy as np
import torch

from unsup3d.ops import from_signed


def depth_to_image(depth: torch.Tensor, low: float | None = None, high: float | None = None) -> torch.Tensor:
    """(B, H, W) depth → (B, 3, H, W) grey in [0, 1], near = bright; range from the data when not given.

    Non-finite values (no surface) are black.
    """
    finite = torch.isfinite(depth)
    values = depth[finite]
    if values.numel() == 0:
        return torch.zeros(depth.shape[0], 3, *depth.shape[1:], device=depth.device)
    low = float(values.min()) if low is None else low
    high = float(values.max()) if high is None else high
    grey = ((high - depth) / max(high - low, 1e-8)).clamp(0, 1)
    grey = torch.where(finite, grey, torch.zeros_like(grey))
    return grey.unsqueeze(1).expand(-1, 3, -1, -1)


def normals_to_image(normals: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) unit normals → (B, 3, H, W) colours ``n / 2 + 0.5`` (a frontal surface is blue)."""
    return from_signed(normals.permute(0, 3, 1, 2)).clamp(0, 1)


def image_grid(rows: list[torch.Tensor], pad: int = 1) -> torch.Tensor:
    """Stack equally sized (N, 3, H, W) batches as rows of one (3, H', W') grid."""
    lines = []
    for batch in rows:
        batch = torch.nn.functional.pad(batch.float().clamp(0, 1), (pad, pad, pad, pad), value=1.0)
        lines.append(torch.cat(list(batch), dim=2))
    return torch.cat(lines, dim=1)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(..., C, H, W) values in [0, 1] (clamped) → (..., H, W, C) uint8, rounded half up (``⌊255·x + ½⌋`` in
    float32, the synthetic data's rounding): what image files hold."""
    pixels = images.detach().float().cpu().clamp(0, 1).mul(255).add(0.5).floor().to(torch.uint8)
    return np.ascontiguousarray(pixels.movedim(-3, -1).numpy())
