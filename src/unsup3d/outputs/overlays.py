"""The overlays of the paper's Fig. 6 over the input photo: the symmetry plane of the canonical frame seen in the
input view (6a) and the asymmetry the flipped reconstruction's confidence σ′ marks (6b).

Images are (B, 3, H, W) in [0, 1]; frames and signs are those of ``docs/conventions.md``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unsup3d.diagnostics import elliptical_radius
from unsup3d.geometry import (
    FOV_DEGREES,
    depth_to_points,
    focal_length,
    inverse_transform_points,
    project,
    transform_points,
)
from unsup3d.render import render_depth
from unsup3d.render.views import check_depth_view, render_view

__all__ = [
    "ASYMMETRY_COLOUR",
    "PLANE_COLOUR",
    "SYMMETRY_COLOUR",
    "asymmetry_map",
    "asymmetry_overlay",
    "object_mask",
    "symmetry_line",
    "symmetry_plane_overlay",
]

SYMMETRY_COLOUR = (0.1, 1.0, 0.2)  # the symmetry line: green
PLANE_COLOUR = (0.0, 0.85, 1.0)  # the translucent symmetry plane: cyan
ASYMMETRY_COLOUR = (1.0, 0.0, 0.0)  # σ′ highlights: red
MASK_EDGE = 0.15  # the object mask fades out over this outer fraction of the face ellipse's radius
# A point of the symmetry line is hidden when it lies this far behind the nearest surface around its pixel.
OCCLUSION_TOLERANCE = 1e-3


# ----------------------------------------------------------------------------------------------------------------
# Symmetry plane (Fig. 6a)


def symmetry_line(canonical_depth: torch.Tensor, view: torch.Tensor, fov: float = FOV_DEGREES) -> torch.Tensor:
    """The canonical surface's intersection with its symmetry plane ``x = 0``, projected into the input view.

    One point per canonical row: on the centre column when S is odd; for even S, where the mesh edge between
    columns S/2 − 1 and S/2 (which straddle ``x = 0``) crosses the plane, at ``t = d_l / (d_l + d_r)`` along it.

    Args:
        canonical_depth: (B, S, S) depth in the canonical frame.
        view: (B, 6) viewpoints ``(rx, ry, rz, tx, ty, tz)``, radians.
        fov: field of view in degrees.
    Returns:
        (B, S, 3) ``(u, v, z)``: pixel coordinates in the (S × S) input view and camera depth, rows top to bottom.
    """
    check_depth_view(canonical_depth, view)
    size = canonical_depth.shape[-1]
    points = depth_to_points(canonical_depth, fov)  # (B, S, S, 3)
    if size % 2:
        centre = points[:, :, size // 2]  # (B, S, 3), x = 0 exactly
    else:
        left, right = points[:, :, size // 2 - 1], points[:, :, size // 2]  # x < 0 and x > 0
        t = left[..., :1] / (left[..., :1] - right[..., :1])  # x is linear along the edge
        centre = left + t * (right - left)
    return project(transform_points(centre, view), size, fov)


def symmetry_plane_overlay(
    image: torch.Tensor,
    canonical_depth: torch.Tensor,
    view: torch.Tensor,
    fov: float = FOV_DEGREES,
    scale: int = 4,
    line_width: float = 2.5,
    line_colour: tuple[float, float, float] = SYMMETRY_COLOUR,
    plane_alpha: float = 0.35,
    plane_colour: tuple[float, float, float] = PLANE_COLOUR,
    occlusion: bool = True,
) -> torch.Tensor:
    """The symmetry plane of the canonical frame drawn over the input image in the input view (paper Fig. 6a).

    The image is upscaled ``scale`` times (nearest neighbour: its pixels stay visible squares) and two things are
    drawn at that resolution:

    - the **symmetry line**, :func:`symmetry_line`, as an anti-aliased polyline ``line_width`` output pixels wide
      (coverage ``clamp(w/2 + 1/2 − distance, 0, 1)``); with ``occlusion`` a segment is left out where the
      rendered surface hides one of its ends (the nose hides part of the line in a turned face);
    - the **symmetry plane**, translucent (``plane_alpha``; 0 draws none): the part of the plane ``x = 0`` inside
      the canonical camera's frustum and between the canonical depth's minimum and maximum, ray-cast per output
      pixel and, with ``occlusion``, only where it lies in front of the rendered surface. A frontal view sees the
      plane edge-on (it contains the camera centre), so the tint appears as the view turns.

    Args:
        image: (B, 3, S, S) input images in [0, 1].
        canonical_depth: (B, S, S) canonical depth.
        view: (B, 6) viewpoints, radians.
        fov: field of view in degrees.
        scale: integer upscaling of the output.
    Returns:
        (B, 3, scale·S, scale·S) in [0, 1].
    """
    _check_images(image, "image")
    check_depth_view(canonical_depth, view)
    if canonical_depth.shape[0] != image.shape[0] or canonical_depth.shape[-1] != image.shape[-1]:
        raise ValueError(f"image {tuple(image.shape)} and canonical_depth {tuple(canonical_depth.shape)} differ")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    scale = int(scale)
    size = image.shape[-1]
    canvas = F.interpolate(image.float(), scale_factor=scale, mode="nearest")  # (B, 3, N, N)
    depth = canonical_depth.to(canvas)
    view = view.to(canvas)
    with torch.no_grad():
        view_depth = render_depth(depth, view, fov)  # (B, S, S), BACKGROUND_DEPTH where empty
        if plane_alpha > 0:
            plane = _plane_coverage(depth, view, fov, view_depth if occlusion else None, scale)  # (B, 1, N, N)
            canvas = _blend(canvas, plane * plane_alpha, plane_colour)
        line = symmetry_line(depth, view, fov)  # (B, S, 3)
        visible = _line_visible(line, view_depth) if occlusion else torch.isfinite(line).all(-1)
        pixels = (line[..., :2] + 0.5) * scale - 0.5  # S-grid pixel centres → output pixel centres
        canvas = _blend(canvas, _polyline_coverage(pixels, visible, size * scale, line_width), line_colour)
    return canvas.clamp(0, 1)


def _plane_coverage(
    canonical_depth: torch.Tensor, view: torch.Tensor, fov: float, view_depth: torch.Tensor | None, scale: int
) -> torch.Tensor:
    """(B, 1, N, N) 1 where an output pixel's ray meets the bounded plane ``x = 0`` (in front of the surface)."""
    batch, size, _ = canonical_depth.shape
    n = size * scale
    f, c = focal_length(size, fov), (size - 1) / 2.0
    coords = (torch.arange(n, dtype=view.dtype, device=view.device) + 0.5) / scale - 0.5  # S-grid coordinates
    v, u = torch.meshgrid(coords, coords, indexing="ij")
    rays = torch.stack([(u - c) / f, (v - c) / f, torch.ones_like(u)], dim=-1)  # (N, N, 3), depth 1
    ends = inverse_transform_points(rays.expand(batch, n, n, 3), view)  # (B, N, N, 3), canonical frame
    origin = inverse_transform_points(view.new_zeros(batch, 1, 1, 3), view)  # the camera centre
    direction = ends - origin
    hit = -origin[..., 0] / direction[..., 0]  # (B, N, N) depth along the ray where x = 0
    point = origin + hit.unsqueeze(-1) * direction
    low = canonical_depth.amin(dim=(1, 2)).view(-1, 1, 1)
    high = canonical_depth.amax(dim=(1, 2)).view(-1, 1, 1)
    inside = (hit > 0) & (point[..., 2] >= low) & (point[..., 2] <= high)
    inside &= point[..., 1].abs() <= point[..., 2] * c / f  # within the canonical camera's rows
    if view_depth is not None:
        surface = F.interpolate(view_depth.unsqueeze(1), scale_factor=scale, mode="nearest")[:, 0]
        inside &= hit < surface
    return inside.unsqueeze(1).to(view.dtype)


def _line_visible(line: torch.Tensor, view_depth: torch.Tensor) -> torch.Tensor:
    """(B, S) bool: the line point is finite and not behind the nearest surface around its pixel.

    The rendered depth is max-pooled over 3×3 pixels, so points by a silhouette count as visible; points outside
    the image are kept (the drawing clips them).
    """
    batch, size, _ = view_depth.shape
    finite = torch.isfinite(line).all(-1)
    u, v = line[..., 0].nan_to_num().round().long(), line[..., 1].nan_to_num().round().long()
    inside = (u >= 0) & (u < size) & (v >= 0) & (v < size)
    pooled = F.max_pool2d(view_depth.unsqueeze(1), 3, stride=1, padding=1)[:, 0]  # (B, S, S)
    rows = torch.arange(batch, device=line.device).unsqueeze(1)
    surface = pooled[rows, v.clamp(0, size - 1), u.clamp(0, size - 1)]  # (B, S)
    return finite & (~inside | (line[..., 2] <= surface + OCCLUSION_TOLERANCE))


def _polyline_coverage(points: torch.Tensor, visible: torch.Tensor, size: int, width: float) -> torch.Tensor:
    """(B, 1, size, size) anti-aliased coverage of the polylines through (B, M, 2) pixel points ``(u, v)``;
    a segment is drawn when both its ends are visible."""
    batch = points.shape[0]
    coords = torch.arange(size, dtype=points.dtype, device=points.device)
    v, u = torch.meshgrid(coords, coords, indexing="ij")
    pixels = torch.stack([u, v], dim=-1).reshape(-1, 1, 2)  # (P, 1, 2)
    start, end = points[:, :-1].nan_to_num(), points[:, 1:].nan_to_num()  # (B, M-1, 2)
    drawn = visible[:, :-1] & visible[:, 1:]
    out = []
    for b in range(batch):  # one image at a time: (P, M-1) distances
        if not drawn[b].any():
            out.append(points.new_zeros(size * size))
            continue
        a, ab = start[b][drawn[b]], (end[b] - start[b])[drawn[b]]  # (K, 2)
        ap = pixels - a  # (P, K, 2)
        t = ((ap * ab).sum(-1) / (ab * ab).sum(-1).clamp(min=1e-12)).clamp(0, 1)
        distance = (ap - t.unsqueeze(-1) * ab).norm(dim=-1).amin(dim=1)  # (P,)
        out.append((width / 2 + 0.5 - distance).clamp(0, 1))
    return torch.stack(out).view(batch, 1, size, size)


# ----------------------------------------------------------------------------------------------------------------
# Asymmetry (Fig. 6b)


def asymmetry_map(
    confidence: torch.Tensor, size: int | None = None, low: float = 0.5, high: float = 0.98, channel: int = 1
) -> torch.Tensor:
    """σ′ normalised per image to [0, 1]: 1 where the flipped reconstruction is least trusted (asymmetric parts).

    ``a = clamp((σ′ − q_low) / (q_high − q_low), 0, 1)`` with ``q_p`` the p-quantile of that image's σ′; the
    defaults leave the lower half of each map at 0 and saturate its top 2 %. A constant map gives 0.

    Args:
        confidence: (B, 2, h, w) σ and σ′ (the Reconstruction's ``confidence`` or ``confidence_perceptual``), or
            (B, h, w) one map; σ are positive.
        size: resample to (size, size) (bilinear) when given and different.
        low, high: the quantiles mapped to 0 and 1, ``0 <= low < high <= 1``.
        channel: which channel of a (B, 2, h, w) input: 1 is σ′ (the flipped image's), 0 is σ.
    Returns:
        (B, 1, size, size) in [0, 1] (or (B, 1, h, w)).
    """
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"quantiles must satisfy 0 <= low < high <= 1, got {low}, {high}")
    if confidence.dim() == 4:
        sigma = confidence[:, channel : channel + 1].float()
    elif confidence.dim() == 3:
        sigma = confidence.unsqueeze(1).float()
    else:
        raise ValueError(f"confidence must be (B, 2, h, w) or (B, h, w), got shape {tuple(confidence.shape)}")
    if size is not None and sigma.shape[-2:] != (size, size):
        sigma = F.interpolate(sigma, size=(size, size), mode="bilinear", align_corners=False)
    flat = sigma.flatten(1)
    bounds = torch.quantile(flat, torch.tensor([low, high], device=flat.device), dim=1)  # (2, B)
    lo, hi = bounds[0].view(-1, 1, 1, 1), bounds[1].view(-1, 1, 1, 1)
    return ((sigma - lo) / (hi - lo).clamp(min=1e-12)).clamp(0, 1) * (hi > lo)


def object_mask(canonical_depth: torch.Tensor, view: torch.Tensor, fov: float = FOV_DEGREES) -> torch.Tensor:
    """Where the object is in the input view: the face ellipse of the canonical frame (the region the depth prior
    and the collapse statistics call the face, :func:`unsup3d.diagnostics.elliptical_radius`), rendered on the
    canonical surface at ``view``; its edge ramps from 1 to 0 over the outer :data:`MASK_EDGE` of its radius.

    Args:
        canonical_depth: (B, S, S) canonical depth.
        view: (B, 6) viewpoints, radians.
    Returns:
        (B, 1, S, S) in [0, 1]: 1 on the object, 0 on the background.
    """
    check_depth_view(canonical_depth, view)
    batch, size, _ = canonical_depth.shape
    rho = elliptical_radius(size, canonical_depth.device)
    ellipse = ((1 - rho) / MASK_EDGE).clamp(0, 1).to(canonical_depth.dtype)  # (S, S)
    with torch.no_grad():
        return render_view(canonical_depth, ellipse.expand(batch, 1, size, size), view, fov, background=0.0)


def asymmetry_overlay(
    image: torch.Tensor,
    confidence: torch.Tensor,
    mask: torch.Tensor | None = None,
    low: float = 0.5,
    high: float = 0.98,
    strength: float = 0.8,
    colour: tuple[float, float, float] = ASYMMETRY_COLOUR,
    channel: int = 1,
) -> torch.Tensor:
    """The flipped reconstruction's confidence σ′ in red over the object in the input (paper Fig. 6b).

    The confidence maps are predicted in the input view, so they overlay the input directly (no warp). The map
    is :func:`asymmetry_map` (per-image quantile normalisation, resampled to the image when it is the S/4
    perceptual one), limited to the object by ``mask`` (:func:`object_mask`; the background's σ′ says nothing
    about the object's symmetry), and the output is ``image · (1 − strength·a) + colour · strength·a``.

    Args:
        image: (B, 3, S, S) input images in [0, 1].
        confidence: (B, 2, h, w) σ and σ′, or (B, h, w) one map.
        mask: (B, 1, S, S) in [0, 1], where to draw; None: everywhere.
    Returns:
        (B, 3, S, S) in [0, 1].
    """
    _check_images(image, "image")
    if confidence.shape[0] != image.shape[0]:
        raise ValueError(f"confidence has batch {confidence.shape[0]}, image {image.shape[0]}")
    weight = asymmetry_map(confidence.to(image.device), image.shape[-1], low, high, channel) * strength
    if mask is not None:
        if mask.shape != weight.shape:
            raise ValueError(f"mask must be {tuple(weight.shape)}, got {tuple(mask.shape)}")
        weight = weight * mask.to(weight)
    return _blend(image.float(), weight, colour).clamp(0, 1)


def _blend(canvas: torch.Tensor, alpha: torch.Tensor, colour: tuple[float, ...]) -> torch.Tensor:
    """``canvas · (1 − alpha) + colour · alpha`` with (B, 1, H, W) alpha."""
    fill = canvas.new_tensor(colour).view(1, -1, 1, 1)
    return canvas * (1 - alpha) + fill * alpha


def _check_images(images: torch.Tensor, name: str) -> None:
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
        raise ValueError(f"{name} must be (B, 3, S, S) in [0, 1], got shape {tuple(images.shape)}")
