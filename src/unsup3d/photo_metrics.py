"""Scores of reconstructions of real photos, which have no ground-truth depth: how well the input is reproduced,
the predicted views, inverted (hollow) shapes, and whether the shading carries the light.

Used by ``benchmarks/experiments/real_photos.py``. Images are (B, 3, S, S) in [0, 1]; views are (B, 6)
``(rx, ry, rz, tx, ty, tz)`` in radians (``docs/conventions.md``: rx is pitch, ry yaw, rz roll).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from unsup3d.diagnostics import hollow_fraction

if TYPE_CHECKING:
    from unsup3d.inference import Reconstruction

__all__ = [
    "FACE_REGION_FRACTION",
    "face_region",
    "hollow_count",
    "photo_error",
    "shading_contrast",
    "shading_share",
    "view_degrees",
]

FACE_REGION_FRACTION = 40 / 64
"""The face region: the central square of this fraction of the side (40 × 40 of a 64 × 64 crop), where a face
crop (``--crop face`` / ``cat``) puts the face."""

LOG_FLOOR = 1e-3  # shading and albedo are floored here before the logarithm


def face_region(size: int) -> slice:
    """The rows (and columns) of the central face square of an ``size × size`` image."""
    side = round(size * FACE_REGION_FRACTION)
    start = (size - side) // 2
    return slice(start, start + side)


def photo_error(image: torch.Tensor, recon_image: torch.Tensor, region: bool = True) -> torch.Tensor:
    """Mean absolute difference per image on the 0–255 scale, over the face region (``region``) or the whole crop.

    Args:
        image, recon_image: (B, 3, S, S) in [0, 1].
    Returns:
        (B,) in [0, 255].
    """
    _check_pair(image, recon_image)
    difference = (image.float() - recon_image.float()).abs()
    if region:
        rows = face_region(image.shape[-1])
        difference = difference[..., rows, rows]
    return difference.mean(dim=(1, 2, 3)) * 255


def view_degrees(view: torch.Tensor) -> dict[str, torch.Tensor]:
    """The rotations of (B, 6) views in degrees: ``{"yaw": ry, "pitch": rx, "roll": rz}``, each (B,)."""
    if view.dim() != 2 or view.shape[1] != 6:
        raise ValueError(f"view must be (B, 6), got shape {tuple(view.shape)}")
    degrees = view[:, :3].float() * (180 / math.pi)
    return {"yaw": degrees[:, 1], "pitch": degrees[:, 0], "roll": degrees[:, 2]}


def hollow_count(canonical_depth: torch.Tensor, depth_range: float) -> int:
    """How many of (B, S, S) canonical depth maps have their face centre behind its rim
    (:func:`unsup3d.diagnostics.hollow_fraction`, the same test as training's collapse detector)."""
    return round(hollow_fraction(canonical_depth, depth_range) * canonical_depth.shape[0])


def shading_contrast(shading: torch.Tensor) -> torch.Tensor:
    """The standard deviation of ``log shading`` over the face region, per image: 0 for a flat shading (about 0.1
    is a shading that varies by ±10 %).

    Args:
        shading: (B, 1, S, S) canonical shading, non-negative.
    Returns:
        (B,).
    """
    if shading.dim() != 4 or shading.shape[1] != 1:
        raise ValueError(f"shading must be (B, 1, S, S), got shape {tuple(shading.shape)}")
    return _log_region(shading[:, 0]).std(dim=1)


def shading_share(albedo: torch.Tensor, shading: torch.Tensor) -> torch.Tensor:
    """The shading's share of the image's variation over the face region, per image.

    With ``image = albedo · shading``, ``log image = log albedo + log shading``; the share is
    ``var(log shading) / (var(log shading) + var(log albedo))`` over the face region (albedo as the mean of its
    channels). 0: the shading is flat and the albedo holds all the light and shadow; 1: the albedo is flat.

    Args:
        albedo: (B, 3, S, S) canonical albedo in [0, 1].
        shading: (B, 1, S, S) canonical shading, non-negative.
    Returns:
        (B,) in [0, 1].
    """
    if albedo.dim() != 4 or albedo.shape[1] != 3 or shading.shape != (albedo.shape[0], 1, *albedo.shape[2:]):
        shapes = f"{tuple(albedo.shape)}, {tuple(shading.shape)}"
        raise ValueError(f"albedo must be (B, 3, S, S) and shading (B, 1, S, S), got {shapes}")
    light, paint = _log_region(shading[:, 0]).var(dim=1), _log_region(albedo.mean(1)).var(dim=1)
    return light / (light + paint).clamp(min=1e-12)


def photo_scores(rec: Reconstruction, depth_range: float) -> dict[str, float]:
    """Every score of this module for a batch of reconstructions, as ``benchmarks/experiments/real_photos.py``
    prints them: the face-region error (mean and median) and the whole-crop error, |yaw|, pitch and |roll| in
    degrees (means) and their standard deviations, the hollow count (``depth_range``: the model's max − min depth)
    and the shading's share and contrast (means)."""
    face = photo_error(rec.image, rec.recon_image)
    angles = view_degrees(rec.view)
    return {
        "photos": len(rec),
        "face_error": float(face.mean()),
        "face_error_median": float(face.median()),
        "whole_error": float(photo_error(rec.image, rec.recon_image, region=False).mean()),
        "abs_yaw": float(angles["yaw"].abs().mean()),
        "pitch": float(angles["pitch"].mean()),
        "abs_roll": float(angles["roll"].abs().mean()),
        "yaw_std": float(angles["yaw"].std()) if len(rec) > 1 else 0.0,
        "pitch_std": float(angles["pitch"].std()) if len(rec) > 1 else 0.0,
        "roll_std": float(angles["roll"].std()) if len(rec) > 1 else 0.0,
        "hollow": hollow_count(rec.canonical_depth, depth_range),
        "shading_share": float(shading_share(rec.canonical_albedo, rec.canonical_shading).mean()),
        "shading_contrast": float(shading_contrast(rec.canonical_shading).mean()),
    }


def photo_report(values: dict[str, float], missed: int) -> str:
    """:func:`photo_scores` as the benchmark's table; ``missed``: photos the crop found nothing in."""
    return "\n".join(
        [
            f"photos reconstructed     {values['photos']}  (crop found nothing in {missed})",
            f"face-region error        {values['face_error']:.2f}  (median {values['face_error_median']:.2f}, 0-255)",
            f"whole-crop error         {values['whole_error']:.2f}",
            "|yaw| / pitch / |roll|   {abs_yaw:.2f} / {pitch:+.2f} / {abs_roll:.2f} deg".format(**values),
            "std yaw / pitch / roll   {yaw_std:.2f} / {pitch_std:.2f} / {roll_std:.2f} deg".format(**values),
            f"hollow                   {values['hollow']} of {values['photos']}",
            f"shading share / contrast {values['shading_share']:.3f} / {values['shading_contrast']:.3f}",
        ]
    )


def _log_region(maps: torch.Tensor) -> torch.Tensor:
    """(B, P) logarithm of (B, S, S) non-negative maps over the face region (floored at :data:`LOG_FLOOR`)."""
    rows = face_region(maps.shape[-1])
    return maps.float()[:, rows, rows].clamp(min=LOG_FLOOR).log().flatten(1)


def _check_pair(image: torch.Tensor, recon_image: torch.Tensor) -> None:
    if image.dim() != 4 or image.shape[1] != 3 or image.shape != recon_image.shape:
        raise ValueError(
            f"image and recon_image must both be (B, 3, S, S), got {tuple(image.shape)}, {tuple(recon_image.shape)}"
        )
