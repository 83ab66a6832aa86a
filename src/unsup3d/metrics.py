"""Depth evaluation metrics of the method, as the original evaluation computes them on synface.

All metrics compare a predicted depth map (the reconstruction rendered in the input view) with ground truth,
inside a mask, and return one value per image:

- SIDE, the scale-invariant depth error: the masked standard deviation of ``log pred − log gt``;
- MAD, the mean angle (degrees) between the normal maps of the two depths (optionally with the original's
  bias, see :func:`mad`);
- MAE and MSE of the depth itself.

Ground-truth background is NaN (see ``docs/conventions.md``). Every function uses ``torch.where`` rather than
a multiplication by the mask, so NaN or non-positive values outside the mask never leak into a result. An
image whose mask is empty gets NaN (0 / 0), as in the original.

One set-level metric compares sparse keypoints instead (the paper's Table 5, 3DFAW):

- keypoint depth correlation, DepthNet's score (0 to K for K keypoints): the predicted depth map sampled at
  each keypoint, correlated across the test images with the keypoint's true depth, see
  :func:`keypoint_depth_correlation`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from unsup3d.geometry import FOV_DEGREES, normals_from_depth

__all__ = [
    "depth_metrics",
    "erode_mask",
    "evaluation_mask",
    "keypoint_correlations",
    "keypoint_depth_correlation",
    "mad",
    "mae",
    "mse",
    "pearson",
    "sample_depth_at",
    "side",
    "slope",
    "summarize",
]

ERODE_THRESHOLD = 0.99
ORIGINAL_NORMAL_EPS = 1e-7  # the original's normal normalisation: c / (|c| + 1e-7)


def erode_mask(mask: torch.Tensor) -> torch.Tensor:
    """Erode a mask by one pixel, as the original: 3×3 average pool, stride 1, zero padding, keep > 0.99.

    The zero padding erodes the image border too, so a full mask loses exactly its one-pixel frame.

    Args:
        mask: (B, H, W) bool, or float in [0, 1].
    Returns:
        (B, H, W) bool.
    """
    _check_maps(mask=mask)
    pooled = F.avg_pool2d(mask[:, None].to(_float_dtype(mask)), kernel_size=3, stride=1, padding=1)
    return pooled[:, 0] > ERODE_THRESHOLD


def evaluation_mask(gt_depth: torch.Tensor, valid_mask: torch.Tensor) -> torch.Tensor:
    """The mask the metrics are computed in: eroded ground-truth foreground × eroded reconstruction validity.

    The ground-truth foreground is where ``gt_depth`` is finite. The original instead took
    ``gt < max(gt over the batch)`` because its PNG depths mark background with the far value 1.1;
    :class:`unsup3d.data.paired.PairedDepthDataset` turns that far value into NaN when it reads such a PNG,
    which gives the same foreground for any batch holding at least one background pixel.

    Args:
        gt_depth: (B, H, W) ground-truth depth, NaN (or ±inf) on the background.
        valid_mask: (B, H, W) bool or {0, 1} float, where the reconstruction has a surface.
    Returns:
        (B, H, W) bool.
    """
    _check_maps(gt_depth=gt_depth, valid_mask=valid_mask)
    return erode_mask(torch.isfinite(gt_depth)) & erode_mask(valid_mask)


def side(pred_depth: torch.Tensor, gt_depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Scale-invariant depth error per image (the original's ``SIE_masked``).

    With ``Δ = log pred − log gt`` and mask ``m``: ``μ = ΣΔm / Σm`` and ``SIDE = sqrt(Σ(Δ − μ)² m / Σm)``.
    A global scale ``pred = k · gt`` gives 0.

    Args:
        pred_depth: (B, H, W) predicted depth, positive inside the mask.
        gt_depth: (B, H, W) ground-truth depth, positive inside the mask, anything (NaN) outside.
        mask: (B, H, W) bool or float weights.
    Returns:
        (B,) SIDE per image.
    """
    _check_maps(pred_depth=pred_depth, gt_depth=gt_depth, mask=mask)
    inside, weight = _mask_parts(mask, pred_depth.dtype)
    one = torch.ones((), dtype=pred_depth.dtype, device=pred_depth.device)
    delta = torch.log(torch.where(inside, pred_depth, one)) - torch.log(torch.where(inside, gt_depth, one))
    mean = _masked_mean(delta, inside, weight)  # (B,)
    return _masked_mean((delta - mean[:, None, None]) ** 2, inside, weight).sqrt()


def mad(
    pred_depth: torch.Tensor,
    gt_depth: torch.Tensor,
    mask: torch.Tensor,
    fov: float = FOV_DEGREES,
    original_bias: bool = False,
) -> torch.Tensor:
    """Mean angular deviation (degrees) between the normals of two depth maps (the original's NorErr_masked).

    Normals come from :func:`unsup3d.geometry.normals_from_depth` (rescaled to unit length here, whatever that
    function does); the per-pixel error is ``acos(clamp(n̂ · n, −1, 1))`` in degrees, averaged inside the
    mask. Non-finite depth values are replaced by 1 before the normals are taken; they only touch pixels next
    to the background, which an eroded mask excludes.

    ``original_bias=True`` reproduces the original's numbers, to compare with the paper: its normals were
    ``c / (|c| + 1e-7)`` for the cross product ``c`` of central differences, and at depth ≈ 1 with fov 10°
    ``|c| ≈ 4 / f²`` is tiny (3.1e-5 at 64 px), so they were about 0.3 % short of unit length and even
    identical depth maps scored ``acos((|c| / (|c| + 1e-7))²)`` ≈ 6.5° at 64 px (2.4° at 24 px). The default
    measures the true angles.

    Args:
        pred_depth: (B, S, S) predicted depth.
        gt_depth: (B, S, S) ground-truth depth, NaN on the background.
        mask: (B, S, S) bool or float weights.
        fov: field of view in degrees.
        original_bias: shorten the normals as the original did.
    Returns:
        (B,) MAD per image, degrees.
    """
    _check_maps(pred_depth=pred_depth, gt_depth=gt_depth, mask=mask)
    inside, weight = _mask_parts(mask, pred_depth.dtype)
    normal_pred = _normals(_finite_or_one(pred_depth), fov, original_bias)  # (B, S, S, 3)
    normal_gt = _normals(_finite_or_one(gt_depth), fov, original_bias)  # (B, S, S, 3)
    cosine = (normal_pred * normal_gt).sum(-1).clamp(-1.0, 1.0)
    angle = torch.rad2deg(torch.acos(cosine))  # (B, S, S)
    return _masked_mean(angle, inside, weight)


def _normals(depth: torch.Tensor, fov: float, original_bias: bool) -> torch.Tensor:
    """(B, S, S) depth → (B, S, S, 3) unit normals, or the original's slightly short ones (see :func:`mad`)."""
    return normals_from_depth(depth, fov, shorten=ORIGINAL_NORMAL_EPS if original_bias else 0.0)


def mae(pred_depth: torch.Tensor, gt_depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean absolute depth error per image: (B, H, W) ×3 → (B,)."""
    _check_maps(pred_depth=pred_depth, gt_depth=gt_depth, mask=mask)
    inside, weight = _mask_parts(mask, pred_depth.dtype)
    return _masked_mean((pred_depth - gt_depth).abs(), inside, weight)


def mse(pred_depth: torch.Tensor, gt_depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean squared depth error per image: (B, H, W) ×3 → (B,)."""
    _check_maps(pred_depth=pred_depth, gt_depth=gt_depth, mask=mask)
    inside, weight = _mask_parts(mask, pred_depth.dtype)
    return _masked_mean((pred_depth - gt_depth) ** 2, inside, weight)


def depth_metrics(
    pred_depth: torch.Tensor,
    gt_depth: torch.Tensor,
    valid_mask: torch.Tensor,
    fov: float = FOV_DEGREES,
    original_bias: bool = False,
) -> dict[str, torch.Tensor]:
    """All four metrics per image, inside :func:`evaluation_mask` ``(gt_depth, valid_mask)``.

    Args:
        pred_depth: (B, S, S) reconstructed depth in the input view.
        gt_depth: (B, S, S) ground-truth depth, NaN on the background.
        valid_mask: (B, S, S) bool or {0, 1} float, where the reconstruction has a surface.
        fov: field of view in degrees.
        original_bias: passed to :func:`mad` (True: the original's biased MAD, comparable with the paper).
    Returns:
        ``{"side", "mad", "mae", "mse"}``, each (B,).
    """
    mask = evaluation_mask(gt_depth, valid_mask)
    return {
        "side": side(pred_depth, gt_depth, mask),
        "mad": mad(pred_depth, gt_depth, mask, fov, original_bias),
        "mae": mae(pred_depth, gt_depth, mask),
        "mse": mse(pred_depth, gt_depth, mask),
    }


def sample_depth_at(depth: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of depth maps at sub-pixel points (pixel centres at integer coordinates).

    Args:
        depth: (B, H, W) floating-point depth maps, H, W ≥ 2.
        points: (B, K, 2) ``(u, v)`` pixel coordinates (column, row).
    Returns:
        (B, K) in the dtype of ``depth``; NaN for points outside ``[0, W − 1] × [0, H − 1]``, and where one of
        the four neighbouring pixels is NaN.
    """
    _check_maps(depth=depth)
    batch, height, width = depth.shape
    if height < 2 or width < 2:
        raise ValueError(f"depth must be at least 2x2 to interpolate, got {height}x{width}")
    if points.dim() != 3 or points.shape[0] != batch or points.shape[2] != 2:
        raise ValueError(f"points must be (B={batch}, K, 2), got shape {tuple(points.shape)}")
    points = points.to(depth.dtype)
    u, v = points.unbind(-1)  # (B, K) each
    grid = torch.stack([u / (width - 1), v / (height - 1)], dim=-1) * 2.0 - 1.0  # align_corners: ±1 = centres
    sampled = F.grid_sample(depth[:, None], grid[:, None], mode="bilinear", align_corners=True)[:, 0, 0]
    inside = (u >= 0) & (u <= width - 1) & (v >= 0) & (v <= height - 1)
    return torch.where(inside, sampled, torch.full_like(sampled, math.nan))


def keypoint_correlations(
    pred_depth: torch.Tensor, gt_depth: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Pearson correlation, per keypoint, between predicted and true keypoint depth across images.

    For keypoint k, over the images n where ``valid[n, k]``:
    ``r_k = Σ (p − p̄)(g − ḡ) / sqrt(Σ (p − p̄)² · Σ (g − ḡ)²)`` (``np.corrcoef`` of the two columns).

    Args:
        pred_depth: (N, K) predicted depth at each keypoint of each image.
        gt_depth: (N, K) true depth of each keypoint.
        valid: (N, K) bool, the entries to use (default: all). Values outside it never enter.
    Returns:
        (K,) correlations in [−1, 1]; NaN for a keypoint with fewer than 2 valid images or no variance, or
        with a non-finite value among its valid entries.
    """
    if pred_depth.dim() != 2 or pred_depth.shape != gt_depth.shape:
        raise ValueError(
            f"pred_depth and gt_depth must both be (N, K), got {tuple(pred_depth.shape)} and {tuple(gt_depth.shape)}"
        )
    if not (pred_depth.is_floating_point() and gt_depth.is_floating_point()):
        raise TypeError(f"keypoint depths must be floating point, got {pred_depth.dtype} and {gt_depth.dtype}")
    if valid is None:
        valid = torch.ones_like(pred_depth, dtype=torch.bool)
    if valid.dtype != torch.bool or valid.shape != pred_depth.shape:
        raise ValueError(f"valid must be a bool (N, K) tensor, got {valid.dtype} {tuple(valid.shape)}")
    weight = valid.to(pred_depth.dtype)
    count = weight.sum(0)  # (K,)

    def centred(values: torch.Tensor) -> torch.Tensor:
        inside = torch.where(valid, values, torch.zeros_like(values))
        return torch.where(valid, values - inside.sum(0) / count, torch.zeros_like(values))

    dp, dg = centred(pred_depth), centred(gt_depth)
    r = (dp * dg).sum(0) / torch.sqrt((dp * dp).sum(0) * (dg * dg).sum(0))
    return torch.where(count >= 2, r, torch.full_like(r, math.nan))


def keypoint_depth_correlation(
    pred_depth: torch.Tensor, gt_depth: torch.Tensor, valid: torch.Tensor | None = None, absolute: bool = True
) -> torch.Tensor:
    """The keypoint depth correlation of the paper's Table 5: ``Σ_k |r_k|``, between 0 and K.

    This is DepthNet's 3DFAW score (Moniz et al., NeurIPS 2018), which the paper computes with DepthNet's public
    code ("depth correlation score (between 0 and 66)"): ``compute_covar`` in ``depthnet-pytorch`` takes
    ``np.corrcoef`` of the (N, 66) predicted and (N, 66) true keypoint depths, images as observations, and sums
    the absolute values of the 66 predicted-vs-true entries (the trace of the absolute cross-correlation block).
    So each keypoint contributes the Pearson correlation, across the test images, of its predicted and true
    depth, in absolute value. The paper obtains the predicted depths by sampling its input-view depth map at the
    2D keypoints (:func:`sample_depth_at`). ``r_k`` ignores any positive affine map ``a·d + b`` of either depth
    per keypoint (depth units and offsets do not matter); the absolute value also ignores a negative one, so the
    sign convention of the ground truth does not matter either, but a depth turned inside out scores as high as
    the right one. ``absolute=False`` gives the signed sum ``Σ_k r_k`` (between −K and K), which tells them apart
    when the two depths share the convention (as ours do: larger is farther).

    Args:
        pred_depth: (N, K) predicted keypoint depths, e.g. :func:`sample_depth_at` of the predicted maps.
        gt_depth: (N, K) true keypoint depths.
        valid: (N, K) bool entries to use (default: all); see :func:`keypoint_correlations`.
        absolute: sum ``|r_k|`` (DepthNet, default) or ``r_k``.
    Returns:
        () tensor; NaN if any keypoint's correlation is undefined.
    """
    r = keypoint_correlations(pred_depth, gt_depth, valid)
    return (r.abs() if absolute else r).sum()


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two (N,) samples, ``Σ (a − ā)(b − b̄) / (|a − ā| · |b − b̄|)``; 0 when either is
    constant."""
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp(min=1e-12))


def slope(predicted: torch.Tensor, true: torch.Tensor) -> float:
    """Least-squares slope of (N,) ``predicted`` on (N,) ``true`` (1: the right magnitude, below 1: under-estimated);
    0 when ``true`` is constant."""
    p, t = predicted - predicted.mean(), true - true.mean()
    return float((p * t).sum() / (t * t).sum().clamp(min=1e-12))


def summarize(values: torch.Tensor | Sequence[float]) -> tuple[float, float]:
    """Mean and unbiased standard deviation over images, as the original's ``eval_scores.txt`` header.

    Args:
        values: (N,) per-image values (a tensor or a sequence of floats), N ≥ 1. NaN values propagate.
    Returns:
        ``(mean, std)``; ``std`` is NaN when N == 1 (the unbiased estimate is undefined).
    """
    values = torch.as_tensor(values, dtype=torch.float64).detach().cpu()
    if values.dim() != 1 or values.numel() == 0:
        raise ValueError(f"values must be a non-empty 1-D sequence, got shape {tuple(values.shape)}")
    std = values.std(unbiased=True).item() if values.numel() > 1 else math.nan
    return values.mean().item(), std


def _masked_mean(values: torch.Tensor, inside: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(B, H, W) values → (B,) ``Σ v·w / Σ w`` over ``inside``; values outside never enter the sum."""
    weighted = torch.where(inside, values * weight, torch.zeros_like(values))
    return weighted.flatten(1).sum(1) / weight.flatten(1).sum(1)


def _mask_parts(mask: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """A mask as a bool selection (mask > 0) and float weights (0 where not selected)."""
    inside = mask > 0 if mask.dtype != torch.bool else mask
    weight = torch.where(inside, mask.to(dtype), torch.zeros((), dtype=dtype, device=mask.device))
    return inside, weight


def _finite_or_one(depth: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isfinite(depth), depth, torch.ones_like(depth))


def _float_dtype(tensor: torch.Tensor) -> torch.dtype:
    return tensor.dtype if tensor.is_floating_point() else torch.float32


def _check_maps(**maps: torch.Tensor) -> None:
    """Every map must be a (B, H, W) tensor, all of one shape; depth maps must be floating point."""
    shape = None
    for name, value in maps.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if value.dim() != 3:
            raise ValueError(f"{name} must be (B, H, W), got shape {tuple(value.shape)}")
        if "mask" not in name and not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {value.dtype}")
        if "mask" in name and not (value.dtype == torch.bool or value.is_floating_point()):
            raise TypeError(f"{name} must be bool or floating point, got {value.dtype}")
        if shape is not None and value.shape != shape:
            raise ValueError(f"shape mismatch: {name} is {tuple(value.shape)}, expected {tuple(shape)}")
        shape = value.shape
