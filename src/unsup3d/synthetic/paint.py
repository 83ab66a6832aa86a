"""Painting helpers shared by the synthetic categories' albedo functions: palette picks, noise grids sampled at
canonical points, colour mixing and prefiltered edges and lines (anti-aliased to the pixel footprint ``aa``)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

NOISE_BOX = (-0.1, 0.1, -0.15, 0.18)  # canonical x0, x1, y0, y1 (metres) covered by the noise grids


def pick(rng: np.random.Generator, palette: np.ndarray, jitter: float) -> np.ndarray:
    """A random colour (3,) of ``palette`` (P, 3), each channel scaled by a factor in [1 − jitter, 1 + jitter]."""
    colour = palette[rng.integers(len(palette))] * rng.uniform(1 - jitter, 1 + jitter, 3)
    return colour.clip(0.0, 1.0)


def grid_noise(grid: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Bilinear samples (B, C, N) of noise grids (B, C, h, w) spanning :data:`NOISE_BOX` at points (B, N)."""
    x0, x1, y0, y1 = NOISE_BOX
    coords = torch.stack([(x - x0) * (2 / (x1 - x0)) - 1, (y - y0) * (2 / (y1 - y0)) - 1], dim=-1).unsqueeze(1)
    return F.grid_sample(grid, coords, mode="bilinear", padding_mode="border", align_corners=True)[:, :, 0]


def mix(colour: torch.Tensor, target: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """``colour + amount · (target − colour)``: colour (B, 3, N), target (B, 3, 1|N), amount (B, N)."""
    return torch.lerp(colour, target.expand_as(colour), amount.unsqueeze(1))


def col(t: torch.Tensor) -> torch.Tensor:
    """(B, 3) colours → (B, 3, 1), to broadcast over points."""
    return t.unsqueeze(-1)  # (B, 3) -> (B, 3, 1)


def step(d: torch.Tensor, scale: float, aa: float) -> torch.Tensor:
    """Soft step ``sigmoid(d / s)`` across an edge at d = 0, widened by the anti-aliasing scale ``aa`` (metres)."""
    return torch.sigmoid(d * (1.0 / math.hypot(scale, aa)))


def line(d: torch.Tensor, width, aa: float) -> torch.Tensor:
    """Prefiltered thin line of Gaussian half-width ``width`` (float or (B, 1)) at distance ``d``."""
    wide = (width * width + aa * aa) ** 0.5
    return (width / wide) * torch.exp(-0.5 * (d / wide) ** 2)
