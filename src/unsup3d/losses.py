"""Losses of the paper (Eqs. 3, 4, 7) with the original code's masking and reductions.

Every loss is a plain function; reductions are one average over all valid pixels (× channels) of the whole
batch, as in the original.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from unsup3d.model import Prediction
from unsup3d.ops import to_signed

EPS = 1e-7


def photometric_nll(recon: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, sigma=None) -> torch.Tensor:
    """Laplacian negative log-likelihood of the residual (Eq. 3), constant dropped.

    Args:
        recon, target: (B, C, H, W) images in [-1, 1].
        mask: (B, H, W) weights (the validity mask).
        sigma: (B, 1, H, W) confidence, or None for a plain masked L1.
    Returns:
        scalar ``Σ m·(√2·|r − t| / (σ + ε) + log(σ + ε)) / Σ m`` over all pixels and channels.
    """
    residual = (recon - target).abs()
    loss = residual if sigma is None else math.sqrt(2) * residual / (sigma + EPS) + torch.log(sigma + EPS)
    return _masked_mean(loss, mask.unsqueeze(1))


def perceptual_nll(features: torch.Tensor, target_features: torch.Tensor, mask: torch.Tensor, sigma=None):
    """Gaussian negative log-likelihood of feature differences (Eq. 7), constant dropped.

    Args:
        features, target_features: (B, C, h, w) features of the reconstruction and the input.
        mask: (B, H, W) pixel mask, average-pooled to (h, w) as soft weights.
        sigma: (B, 1, h, w) confidence or None for a masked L2.
    Returns:
        scalar ``Σ m·((f − f')² / (2σ² + ε) + log(σ + ε)) / Σ m``.
    """
    squared = (features - target_features) ** 2
    loss = squared if sigma is None else squared / (2 * sigma**2 + EPS) + torch.log(sigma + EPS)
    stride = mask.shape[-1] // features.shape[-1]
    weights = F.avg_pool2d(mask.unsqueeze(1), kernel_size=stride, stride=stride)
    return _masked_mean(loss, weights)


def depth_smoothness(depth: torch.Tensor, depth_range: float) -> torch.Tensor:
    """L1 total variation of (B, H, W) depth over the depth range (the original's car prior)."""
    dy = (depth[:, 1:] - depth[:, :-1]).abs().mean()
    dx = (depth[:, :, 1:] - depth[:, :, :-1]).abs().mean()
    return (dx + dy) / depth_range


def depth_prior_loss(depth: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared distance in cm² of (B, S, S) canonical depth to an (S, S) target shape (the depth-prior
    iterations fit :func:`unsup3d.model.ellipsoid_depth`)."""
    return (((depth - target) * 100) ** 2).mean()


def _masked_mean(loss: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    weights = weights.expand_as(loss)
    return (loss * weights).sum() / weights.sum().clamp(min=EPS)


class Objective(nn.Module):
    """The total objective ``L + λ_f L' + λ_p (L_p + λ_f L_p') + λ_s L_smooth`` (Eqs. 3, 7 and the depth prior).

    Holds the frozen perceptual network (or none). ``forward(pred, images in [0, 1], iteration)`` returns a dict
    of scalar tensors with ``"total"`` and each term. The photometric and perceptual terms compare images in
    [-1, 1], the networks' range, as the paper's constants assume.
    """

    def __init__(self, config, perceptual: nn.Module | None) -> None:
        super().__init__()
        self.config = config
        self.perceptual = perceptual if config.lam_perc > 0 else None

    def flip_weight(self, iteration: int) -> float:
        cfg = self.config
        return 1.0 if iteration < cfg.lam_flip_start_iteration else cfg.lam_flip

    def forward(self, pred: Prediction, images: torch.Tensor, iteration: int = 0) -> dict[str, torch.Tensor]:
        if pred.recon_flipped is None:
            raise ValueError("the objective needs the flipped reconstruction: run the model with with_flip=True")
        cfg = self.config
        target = to_signed(images)
        mask = pred.recon_mask
        # Zero (grey) outside the mask, as the networks' range puts it.
        recon = to_signed(pred.recon.image) * mask.unsqueeze(1)
        recon_flipped = to_signed(pred.recon_flipped.image) * mask.unsqueeze(1)
        sigma, sigma_flipped = _pair(pred.confidence)
        terms = {
            "photo": photometric_nll(recon, target, mask, sigma),
            "photo_flip": photometric_nll(recon_flipped, target, mask, sigma_flipped),
        }
        lam_flip = self.flip_weight(iteration)
        total = terms["photo"] + lam_flip * terms["photo_flip"]
        if self.perceptual is not None:
            features = self.perceptual(torch.cat([recon, recon_flipped, target])).float()  # (3B, C, h, w)
            f_recon, f_flipped, f_target = features.chunk(3)
            sigma, sigma_flipped = _pair(pred.confidence_perceptual)
            terms["perc"] = perceptual_nll(f_recon, f_target, mask, sigma)
            terms["perc_flip"] = perceptual_nll(f_flipped, f_target, mask, sigma_flipped)
            total = total + cfg.lam_perc * (terms["perc"] + lam_flip * terms["perc_flip"])
        if cfg.lam_depth_smooth > 0:
            interior = pred.recon.canonical_depth[:, :, 2:-2]  # the clamped border columns are constant
            terms["depth_smooth"] = depth_smoothness(interior, cfg.max_depth - cfg.min_depth)
            total = total + cfg.lam_depth_smooth * terms["depth_smooth"]
        terms["total"] = total
        return terms


def _pair(confidence: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(B, 2, h, w) σ, σ′ → two (B, 1, h, w) maps; (None, None) without confidence."""
    if confidence is None:
        return None, None
    return confidence[:, :1], confidence[:, 1:]
