"""Small tensor operations shared by every layer: the image range rescale and a Gaussian blur.

Images are in [0, 1] at every public boundary (``docs/conventions.md``); the networks and the losses work in
[-1, 1]. :func:`to_signed` and :func:`from_signed` are the one place that rescale is written.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# A blur this narrow is a delta at float precision: its first tap weighs exp(-0.5 / 0.05²) ≈ 0.
MIN_BLUR_SIGMA = 0.05


def to_signed(images: torch.Tensor) -> torch.Tensor:
    """Images (or colours) in [0, 1] → [-1, 1]: ``2x − 1``."""
    return images * 2.0 - 1.0


def from_signed(images: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`to_signed`: [-1, 1] → [0, 1], ``x / 2 + 0.5`` (not clamped)."""
    return images / 2.0 + 0.5


def gaussian_blur(maps: torch.Tensor, sigma: float, padding: str = "reflect") -> torch.Tensor:
    """Separable Gaussian blur over the last two dimensions.

    Args:
        maps: (..., H, W) maps (e.g. (B, H, W) depth or (B, C, H, W) images).
        sigma: standard deviation in pixels; at most :data:`MIN_BLUR_SIGMA` returns ``maps`` unchanged.
        padding: how the borders are extended: ``"reflect"`` or ``"replicate"`` (``F.pad`` modes).
    Returns:
        (..., H, W) blurred maps; the kernel has radius ``max(1, round(3σ))`` taps and sums to 1.
    """
    if sigma <= MIN_BLUR_SIGMA:
        return maps
    radius = max(1, int(3 * sigma + 0.5))
    taps = torch.arange(-radius, radius + 1, dtype=maps.dtype, device=maps.device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    height, width = maps.shape[-2:]
    flat = maps.reshape(-1, 1, height, width)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode=padding), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode=padding), kernel.view(1, 1, -1, 1))
    return flat.reshape(maps.shape)
