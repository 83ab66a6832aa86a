"""The whole loss of a step, in one place: the paper's terms (Eqs. 3, 4, 7, with the original code's masking
and reductions) and :class:`Objective`, which combines them into what the trainer minimises over a dataset and
what per-photo refinement minimises on one photo, without importing the training engine.

Every term is a plain function; reductions are one average over all valid pixels (× channels) of the whole
batch, as in the original. :class:`Objective` picks, for step ``iteration``, one of three losses (paper §3 and
our additions):

- the depth prior of the first ``train.depth_prior_iterations`` steps: canonical depth against a convex
  ellipsoidal cap (:func:`ellipsoid_depth`), the depth network alone;
- the photometric objective after them (:meth:`Objective.image_terms`: Eqs. 3 and 7 for the image and its flip,
  the depth smoothness priors), plus the view-cycle term (:func:`view_cycle_loss`) where ``model.lam_view_cycle``
  is positive;
- with ``train.supervised``, the L1 distance of the depth to ground truth (:func:`supervised_terms`).

The model's forward passes go through a :class:`Passes`: the model itself, or the model wrapped by a trainer
(DistributedDataParallel needs every forward pass to go through its wrapper).
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from unsup3d.config import Config, ModelConfig
from unsup3d.model import BORDER_COLUMNS, FACE_AXES, PhotoGeometricAutoencoder, Prediction, ellipse_coordinates
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
    iterations fit :func:`unsup3d.losses.ellipsoid_depth`)."""
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


class DepthOnly(nn.Module):
    """The canonical-depth branch of a model as a module of its own (for the depth-prior iterations and supervised
    training, so that DistributedDataParallel sees them as a forward pass): (B, 3, S, S) images in [0, 1] →
    (B, S, S) depth."""

    def __init__(self, model: PhotoGeometricAutoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.predict_depth(to_signed(images))


class Passes(Protocol):
    """A model and the modules its forward passes go through."""

    @property
    def model(self) -> PhotoGeometricAutoencoder: ...

    @property
    def forward(self) -> nn.Module:
        """images → :class:`unsup3d.model.Prediction` (the model, or the model wrapped)."""

    @property
    def depth_forward(self) -> nn.Module:
        """images → canonical depth (a :class:`DepthOnly`, or one wrapped)."""


def ellipsoid_depth(config: ModelConfig, relief: float, axes: tuple[float, float] = FACE_AXES) -> torch.Tensor:
    """A convex ellipsoidal cap in the canonical frame: the depth prior of ``train.depth_prior_iterations``.

    With image coordinates ``x, y`` in [-1, 1] (pixel centres, column and row) and ``r² = (x/a)² + (y/b)²``,
    the depth is ``border − relief·sqrt(1 − r²)`` inside the ellipse and the border depth outside, kept inside
    the middle 95 % of the model's depth range (which tanh reaches).

    Args:
        config: the model's configuration (image size, depth range, border depth).
        relief: depth of the cap's apex in front of the border depth.
        axes: the ellipse's half width and half height as fractions of the image's.
    Returns:
        (S, S) depth.
    """
    u, v = ellipse_coordinates(config.image_size, axes)
    inside = (1 - u**2 - v**2).clamp(min=0.0)
    depth = config.resolved_border_depth - relief * inside.sqrt()
    mid, half = (config.max_depth + config.min_depth) / 2, (config.max_depth - config.min_depth) / 2
    return depth.clamp(mid - 0.95 * half, mid + 0.95 * half)


def supervised_terms(depth: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """The supervised loss of (B, S, S) predicted depth against (B, S, S) ground truth (NaN background):
    ``{"total", "depth_l1"}``, the L1 distance in cm (:func:`depth_l1`)."""
    loss = depth_l1(depth, target)
    return {"total": loss, "depth_l1": loss}


def view_cycle_loss(model: PhotoGeometricAutoencoder, pred: Prediction, images: torch.Tensor) -> torch.Tensor:
    """View self-supervision: the view net must recover views that the model's own renderer made.

    The batch's canonical depth and image (detached) are rendered at its predicted view (detached) turned by a
    random rotation of up to ``model.view_cycle_degrees`` about each axis, translations unchanged, over the input
    image where no surface covers; the loss is the L1 distance (in units of each component's range) of the view
    the view net reads from that rendering to the view it was rendered in. Only the view net learns from it. A turn
    that the renderer made must be read as a turn of that size, not as a smaller turn plus a shift.

    The canonical maps are extended by ``model.view_cycle_margin`` pixels beyond the frame before rendering: without
    that, a turn uncovers borders as wide as the turn, a cue the view net can read instead of the face (measured
    without the extension: the turns predicted for the training images shrank, docs/benchmarks.md).

    Args:
        pred: the model's prediction for ``images`` (B, 3, S, S) in [0, 1].
    Returns:
        scalar loss.
    """
    views = pred.view.detach()
    scale = model.view_scale().to(views)
    turn = (torch.rand_like(views[:, :3]) * 2 - 1) * math.radians(model.config.view_cycle_degrees)
    limit = 0.95 * scale[:3]  # the view net's tanh reaches the targets
    target = torch.cat([torch.max(torch.min(views[:, :3] + turn, limit), -limit), views[:, 3:]], dim=1)
    canonical = pred.recon
    image, mask = model.render_in_view(
        canonical.canonical_depth.detach(),
        canonical.canonical_image.detach().clamp(0, 1),
        target,
        model.config.view_cycle_margin,
    )
    rendered = image + images * (1 - mask.unsqueeze(1))
    return view_loss(model.predict_view(to_signed(rendered)), target, scale)


class Objective(nn.Module):
    """The loss of a step (see the module's docstring for which one, when).

    Holds the frozen perceptual network (or none) and the depth prior's (S, S) target (a buffer, so that ``to``
    moves it). :meth:`step_terms` and :meth:`image_terms` return a dict of scalar tensors with ``"total"`` and
    each term. The photometric and perceptual terms compare images in [-1, 1], the networks' range, as the paper's
    constants assume.
    """

    def __init__(self, config: Config, perceptual: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        self.perceptual = perceptual if config.model.lam_perc > 0 else None
        prior = ellipsoid_depth(config.model, config.train.depth_prior_relief)
        self.register_buffer("prior_target", prior, persistent=False)

    def flip_weight(self, iteration: int) -> float:
        """λ_f of step ``iteration``: 1 before ``model.lam_flip_start_iteration``, then ``model.lam_flip``."""
        cfg = self.config.model
        return 1.0 if iteration < cfg.lam_flip_start_iteration else cfg.lam_flip

    def residual_kind(self, iteration: int) -> str:
        """The photometric residual of step ``iteration`` (:func:`photometric_residual`)."""
        cfg = self.config.model
        return "l1" if iteration < cfg.photometric_start_iteration else cfg.photometric

    def step_terms(
        self, passes: Passes, images: torch.Tensor, iteration: int, depth: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """The loss of step ``iteration`` on (B, 3, S, S) images in [0, 1].

        Args:
            passes: the model and its (possibly wrapped) forward passes.
            depth: (B, S, S) ground truth of the images, for ``train.supervised``.
        """
        train = self.config.train
        if train.supervised:
            if depth is None:
                raise ValueError("supervised training needs the ground-truth depth of each batch")
            return supervised_terms(passes.depth_forward(images), depth)
        if iteration < train.depth_prior_iterations:
            loss = depth_prior_loss(passes.depth_forward(images), self.prior_target)
            return {"total": loss, "depth_prior": loss}
        pred = passes.forward(images)
        terms = self.image_terms(pred, images, iteration)
        lam_cycle = self.config.model.lam_view_cycle
        if lam_cycle > 0:
            terms["view_cycle"] = view_cycle_loss(passes.model, pred, images)
            terms["total"] = terms["total"] + lam_cycle * terms["view_cycle"]
        return terms

    def image_terms(self, pred: Prediction, images: torch.Tensor, iteration: int = 0) -> dict[str, torch.Tensor]:
        """``L + λ_f L' + λ_p (L_p + λ_f L_p') + λ_s L_smooth + λ_c L_curv`` (Eqs. 3, 7 and the depth priors) of
        a prediction (with its flipped reconstruction) for (B, 3, S, S) images in [0, 1]."""
        if pred.recon_flipped is None:
            raise ValueError("the objective needs the flipped reconstruction: run the model with with_flip=True")
        cfg = self.config.model
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
