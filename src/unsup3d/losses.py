"""Losses of the paper (Eqs. 3, 4, 7) with the original code's masking and reductions.

Every loss is a plain function; reductions are one average over all valid pixels (× channels) of the whole
batch, as in the original.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from unsup3d.model import BORDER_COLUMNS, Prediction
from unsup3d.ops import to_signed

EPS = 1e-7


SSIM_WEIGHT = 0.85  # of the structural term in the "ssim_l1" residual (monodepth2's mix)
SSIM_C1, SSIM_C2 = 0.01**2, 0.03**2  # SSIM's stabilisers for a dynamic range of 1


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Structural similarity of (B, C, H, W) images in [0, 1] over 3×3 windows (uniform weights, reflected
    borders), per pixel and channel: (B, C, H, W) in [-1, 1], 1 where the images agree."""
    x, y = F.pad(x, (1, 1, 1, 1), mode="reflect"), F.pad(y, (1, 1, 1, 1), mode="reflect")
    mean_x, mean_y = F.avg_pool2d(x, 3, 1), F.avg_pool2d(y, 3, 1)
    var_x = F.avg_pool2d(x * x, 3, 1) - mean_x**2
    var_y = F.avg_pool2d(y * y, 3, 1) - mean_y**2
    cov = F.avg_pool2d(x * y, 3, 1) - mean_x * mean_y
    numerator = (2 * mean_x * mean_y + SSIM_C1) * (2 * cov + SSIM_C2)
    return numerator / ((mean_x**2 + mean_y**2 + SSIM_C1) * (var_x + var_y + SSIM_C2))


def photometric_residual(recon: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Per-pixel residual of (B, C, H, W) images in [-1, 1]: ``"l1"`` |r − t| (the paper), or ``"ssim_l1"``
    ``0.85·(1 − SSIM) + 0.15·|r − t|`` (SSIM of the images in [0, 1]; both parts range over [0, 2])."""
    l1 = (recon - target).abs()
    if kind == "l1":
        return l1
    structure = 1 - ssim((recon + 1) / 2, (target + 1) / 2)
    return SSIM_WEIGHT * structure + (1 - SSIM_WEIGHT) * l1


def photometric_nll(
    recon: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, sigma=None, kind: str = "l1"
) -> torch.Tensor:
    """Laplacian negative log-likelihood of the residual (Eq. 3), constant dropped.

    Args:
        recon, target: (B, C, H, W) images in [-1, 1].
        mask: (B, H, W) weights (the validity mask).
        sigma: (B, 1, H, W) confidence, or None for a plain masked residual.
        kind: the residual ρ, see :func:`photometric_residual`.
    Returns:
        scalar ``Σ m·(√2·ρ(r, t) / (σ + ε) + log(σ + ε)) / Σ m`` over all pixels and channels.
    """
    residual = photometric_residual(recon, target, kind)
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


def depth_curvature(depth: torch.Tensor, depth_range: float) -> torch.Tensor:
    """L1 second-order smoothness of (B, H, W) depth over the depth range: the mean of |∂²d/∂x²|, |∂²d/∂y²| and
    2·|∂²d/∂x∂y| (central differences, one value per interior pixel). Zero on any plane, so unlike the total
    variation it does not penalise relief itself, only its bending."""
    dxx = (depth[:, 1:-1, 2:] - 2 * depth[:, 1:-1, 1:-1] + depth[:, 1:-1, :-2]).abs()
    dyy = (depth[:, 2:, 1:-1] - 2 * depth[:, 1:-1, 1:-1] + depth[:, :-2, 1:-1]).abs()
    dxy = (depth[:, 2:, 2:] - depth[:, 2:, :-2] - depth[:, :-2, 2:] + depth[:, :-2, :-2]).abs() / 4
    return (dxx + dyy + 2 * dxy).mean() / depth_range


def view_loss(predicted: torch.Tensor, target: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance of (B, 6) views, each component in units of its range ``scale`` (6,); components whose
    range is 0 (fixed by the model) are left out."""
    kept = scale > 0
    return ((predicted - target)[:, kept].abs() / scale[kept]).mean()


def depth_prior_loss(depth: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared distance in cm² of (B, S, S) canonical depth to an (S, S) target shape (the depth-prior
    iterations fit :func:`unsup3d.model.ellipsoid_depth`)."""
    return (((depth - target) * 100) ** 2).mean()


def depth_l1(depth: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute distance in cm of (B, S, S) depth to (B, S, S) ground truth over every pixel of the batch
    where the ground truth is finite (NaN background): the supervised baseline's loss. In centimetres the loss
    is of order 1, like the photometric terms, so the optimiser's coupled weight decay weighs alike."""
    if depth.dim() != 3 or depth.shape != target.shape:
        raise ValueError(f"depth and target must both be (B, S, S), got {tuple(depth.shape)}, {tuple(target.shape)}")
    valid = torch.isfinite(target)
    return _masked_mean((depth - target.nan_to_num(0.0)).abs() * 100, valid.to(depth.dtype))


def _masked_mean(loss: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    weights = weights.expand_as(loss)
    return (loss * weights).sum() / weights.sum().clamp(min=EPS)


class Objective(nn.Module):
    """The total objective ``L + λ_f L' + λ_p (L_p + λ_f L_p') + λ_s L_smooth + λ_c L_curv`` (Eqs. 3, 7 and the
    depth priors).

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

    def residual_kind(self, iteration: int) -> str:
        cfg = self.config
        return "l1" if iteration < cfg.photometric_start_iteration else cfg.photometric

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
        kind = self.residual_kind(iteration)
        terms = {
            "photo": photometric_nll(recon, target, mask, sigma, kind),
            "photo_flip": photometric_nll(recon_flipped, target, mask, sigma_flipped, kind),
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
        interior = pred.recon.canonical_depth[:, :, BORDER_COLUMNS:-BORDER_COLUMNS]  # the clamped ones are constant
        if cfg.lam_depth_smooth > 0:
            terms["depth_smooth"] = depth_smoothness(interior, cfg.max_depth - cfg.min_depth)
            total = total + cfg.lam_depth_smooth * terms["depth_smooth"]
        if cfg.lam_depth_curvature > 0:
            terms["depth_curvature"] = depth_curvature(interior, cfg.max_depth - cfg.min_depth)
            total = total + cfg.lam_depth_curvature * terms["depth_curvature"]
        terms["total"] = total
        return terms


def _pair(confidence: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(B, 2, h, w) σ, σ′ → two (B, 1, h, w) maps; (None, None) without confidence."""
    if confidence is None:
        return None, None
    return confidence[:, :1], confidence[:, 1:]
