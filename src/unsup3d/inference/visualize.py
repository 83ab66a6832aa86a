"""Pictures of a reconstruction (paper Figs. 6 and 10), drawn with the project's own renderer.

Plain functions of a :class:`~unsup3d.inference.Reconstruction`'s tensors (batch first, CPU or CUDA); images are
(B, 3, H, W) in [0, 1] and nothing is written to disk:

- :func:`symmetry_plane_overlay`: the canonical frame's symmetry plane ``x = 0`` seen in the input view (Fig. 6a);
- :func:`asymmetry_overlay`: the flipped reconstruction's confidence σ′ in red over the input (Fig. 6b);
- :func:`relight`, :func:`relight_grid`: the canonical object re-shaded under new lights (Fig. 10);
- :func:`render_view`: the canonical depth rendered in any view, coloured by a canonical image (shape, normals or
  texture: :func:`shape_colour`, :func:`unsup3d.viz.normals_to_image`, ``canonical_image``).

Turntable animations are in :mod:`unsup3d.inference.turntable`. Frames and signs are those of
``docs/conventions.md``: x right, y down, z forward; a view takes the canonical frame to the input view by
``X' = R (X − c) + c + t``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unsup3d.geometry import (
    FOV_DEGREES,
    depth_to_points,
    focal_length,
    inverse_transform_points,
    project,
    transform_points,
)
from unsup3d.render import (
    BACKGROUND_DEPTH,
    diffuse_shading,
    inverse_warp_grid,
    lambertian,
    light_direction,
    render_depth,
    sample_canonical,
)

__all__ = [
    "ASYMMETRY_COLOUR",
    "PLANE_COLOUR",
    "SHAPE_GREY",
    "SYMMETRY_COLOUR",
    "asymmetry_map",
    "asymmetry_overlay",
    "light_grid",
    "relight",
    "relight_grid",
    "render_view",
    "shape_colour",
    "symmetry_line",
    "symmetry_plane_overlay",
]

SYMMETRY_COLOUR = (0.1, 1.0, 0.2)  # the symmetry line: green
PLANE_COLOUR = (0.0, 0.85, 1.0)  # the translucent symmetry plane: cyan
ASYMMETRY_COLOUR = (1.0, 0.0, 0.0)  # σ′ highlights: red
SHAPE_GREY = 0.7  # albedo of the untextured shape (the original demo's ×0.7 under a frontal light)
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
    _check_depth_view(canonical_depth, view)
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
    _check_depth_view(canonical_depth, view)
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


def asymmetry_overlay(
    image: torch.Tensor,
    confidence: torch.Tensor,
    low: float = 0.5,
    high: float = 0.98,
    strength: float = 0.8,
    colour: tuple[float, float, float] = ASYMMETRY_COLOUR,
    channel: int = 1,
) -> torch.Tensor:
    """The flipped reconstruction's confidence σ′ in red over the input (paper Fig. 6b).

    The confidence maps are predicted in the input view, so they overlay the input directly (no warp). The map
    is :func:`asymmetry_map` (per-image quantile normalisation, resampled to the image when it is the S/4
    perceptual one) and the output is ``image · (1 − strength·a) + colour · strength·a``.

    Args:
        image: (B, 3, S, S) input images in [0, 1].
        confidence: (B, 2, h, w) σ and σ′, or (B, h, w) one map.
    Returns:
        (B, 3, S, S) in [0, 1].
    """
    _check_images(image, "image")
    if confidence.shape[0] != image.shape[0]:
        raise ValueError(f"confidence has batch {confidence.shape[0]}, image {image.shape[0]}")
    weight = asymmetry_map(confidence.to(image.device), image.shape[-1], low, high, channel) * strength
    return _blend(image.float(), weight, colour).clamp(0, 1)


# ----------------------------------------------------------------------------------------------------------------
# Re-lighting (Fig. 10)


def relight(
    albedo: torch.Tensor,
    normal: torch.Tensor,
    ambient: torch.Tensor,
    diffuse: torch.Tensor,
    light_direction: torch.Tensor,
) -> torch.Tensor:
    """The canonical image under a light: ``clamp(albedo × (k_s + k_d · max(0, ⟨n, l⟩)), 0, 1)``.

    With the predicted light this is the Reconstruction's ``canonical_image`` exactly (the same shading stages
    as the model).

    Args:
        albedo: (B, 3, S, S) canonical albedo in [0, 1].
        normal: (B, S, S, 3) canonical unit normals.
        ambient, diffuse: (B,) coefficients k_s, k_d.
        light_direction: (B, 3) unit directions in the canonical frame (see :func:`light_grid`).
    Returns:
        (B, 3, S, S) in [0, 1].
    """
    _check_albedo_normal(albedo, normal)
    shading = lambertian(diffuse_shading(normal, light_direction), ambient, diffuse)  # (B, 1, S, S)
    return (albedo * shading).clamp(0, 1)


def relight_grid(
    albedo: torch.Tensor,
    normal: torch.Tensor,
    ambient: torch.Tensor,
    diffuse: torch.Tensor,
    directions: torch.Tensor,
) -> torch.Tensor:
    """The canonical image under each of K lights (paper Fig. 10).

    Args:
        albedo, normal, ambient, diffuse: as :func:`relight`.
        directions: (K, 3) unit light directions shared by the batch, or (B, K, 3) per image.
    Returns:
        (B, K, 3, S, S) in [0, 1].
    """
    _check_albedo_normal(albedo, normal)
    batch = albedo.shape[0]
    if directions.dim() == 2:
        directions = directions.unsqueeze(0).expand(batch, -1, -1)
    if directions.dim() != 3 or directions.shape[0] != batch or directions.shape[-1] != 3:
        raise ValueError(f"directions must be (K, 3) or ({batch}, K, 3), got shape {tuple(directions.shape)}")
    k = directions.shape[1]

    def tile(x: torch.Tensor) -> torch.Tensor:  # (B, ...) → (B·K, ...), image-major
        return x.repeat_interleave(k, dim=0)

    images = relight(tile(albedo), tile(normal), tile(ambient), tile(diffuse), directions.reshape(-1, 3))
    return images.view(batch, k, *images.shape[1:])


def light_grid(steps: int = 3, extent: float = 1.0, dtype=torch.float32, device=None) -> torch.Tensor:
    """A ``steps × steps`` grid of unit light directions ``(lx, ly, 1) / |·|``, ``lx, ly`` in ``[−extent, extent]``.

    The direction is the one the light travels (``⟨n, l⟩`` with normals pointing away from the camera): ly > 0
    lights the object from above (y is down), lx > 0 from the image's left. Rows go ly = −extent … +extent,
    columns lx = −extent … +extent; the middle of an odd grid is the frontal light (0, 0, 1).

    Returns:
        (steps², 3), row-major.
    """
    if steps < 1:
        raise ValueError(f"steps must be positive, got {steps}")
    values = torch.linspace(-extent, extent, steps, dtype=dtype, device=device) if steps > 1 else torch.zeros(1)
    ly, lx = torch.meshgrid(values, values, indexing="ij")
    return light_direction(torch.stack([lx.flatten(), ly.flatten()], dim=1).to(dtype=dtype, device=device))


# ----------------------------------------------------------------------------------------------------------------
# Novel views


def shape_colour(canonical_normal: torch.Tensor, grey: float = SHAPE_GREY) -> torch.Tensor:
    """The untextured shape: ``grey · max(0, ⟨n, (0, 0, 1)⟩)`` (a frontal light, as the original demo), grey RGB.

    Args:
        canonical_normal: (B, S, S, 3) unit normals.
    Returns:
        (B, 3, S, S) in [0, grey].
    """
    if canonical_normal.dim() != 4 or canonical_normal.shape[-1] != 3:
        raise ValueError(f"canonical_normal must be (B, S, S, 3), got shape {tuple(canonical_normal.shape)}")
    front = canonical_normal.new_tensor([0.0, 0.0, 1.0]).expand(canonical_normal.shape[0], 3)
    return (diffuse_shading(canonical_normal, front) * grey).expand(-1, 3, -1, -1).contiguous()


def render_view(
    canonical_depth: torch.Tensor,
    canonical_colour: torch.Tensor,
    view: torch.Tensor,
    fov: float = FOV_DEGREES,
    background: float | tuple[float, ...] | torch.Tensor = 1.0,
    far: float = BACKGROUND_DEPTH,
) -> torch.Tensor:
    """The canonical depth-grid mesh rendered in ``view``, coloured by a canonical image (novel views).

    The stages of the model's reprojection: :func:`~unsup3d.render.render_depth`, then
    :func:`~unsup3d.render.inverse_warp_grid` and :func:`~unsup3d.render.sample_canonical` (bilinear). Pixels whose
    rendered depth is ``>= far`` show ``background``: by default those no triangle covers
    (:data:`~unsup3d.render.BACKGROUND_DEPTH`); pass the model's ``far_depth`` to cut where the model's validity
    mask does. Nothing clamps the depth, so an edge-on view (yaw ±90°) renders a sliver over the background.

    Args:
        canonical_depth: (B, S, S) canonical depth.
        canonical_colour: (B, C, S, S) canonical image, e.g. :func:`shape_colour`,
            :func:`unsup3d.viz.normals_to_image` of the canonical normals (their canonical-frame colours travel
            with the surface, as in the original demo), or ``canonical_image``.
        view: (B, 6) viewpoints, radians; the identity view (zeros) reproduces ``canonical_colour``.
        fov: field of view in degrees.
        background: a value, C values, or a (B, C, S, S) image (white by default, as the original demo).
    Returns:
        (B, C, S, S).
    """
    _check_depth_view(canonical_depth, view)
    if canonical_colour.dim() != 4 or canonical_colour.shape[0] != canonical_depth.shape[0]:
        raise ValueError(f"canonical_colour must be (B, C, S, S), got shape {tuple(canonical_colour.shape)}")
    if canonical_colour.shape[-2:] != canonical_depth.shape[-2:]:
        raise ValueError(
            f"canonical_colour {tuple(canonical_colour.shape)} and canonical_depth "
            f"{tuple(canonical_depth.shape)} differ in size"
        )
    depth = render_depth(canonical_depth, view, fov)  # (B, S, S)
    covered = depth < far
    grid = inverse_warp_grid(torch.where(covered, depth, torch.ones_like(depth)), view, fov)  # (B, S, S, 2)
    grid = torch.where(covered.unsqueeze(-1) & torch.isfinite(grid), grid, torch.zeros_like(grid))
    colour = sample_canonical(canonical_colour.to(grid.dtype), grid)  # (B, C, S, S)
    fill = torch.as_tensor(background, dtype=colour.dtype, device=colour.device)
    if fill.dim() == 1:
        fill = fill.view(1, -1, 1, 1)
    return torch.where(covered.unsqueeze(1), colour, fill.expand_as(colour))


# ----------------------------------------------------------------------------------------------------------------
# Checks and blending


def _blend(canvas: torch.Tensor, alpha: torch.Tensor, colour: tuple[float, ...]) -> torch.Tensor:
    """``canvas · (1 − alpha) + colour · alpha`` with (B, 1, H, W) alpha."""
    fill = canvas.new_tensor(colour).view(1, -1, 1, 1)
    return canvas * (1 - alpha) + fill * alpha


def _check_images(images: torch.Tensor, name: str) -> None:
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
        raise ValueError(f"{name} must be (B, 3, S, S) in [0, 1], got shape {tuple(images.shape)}")


def _check_depth_view(depth: torch.Tensor, view: torch.Tensor) -> None:
    if depth.dim() != 3 or depth.shape[1] != depth.shape[2]:
        raise ValueError(f"canonical_depth must be (B, S, S), got shape {tuple(depth.shape)}")
    if view.shape != (depth.shape[0], 6):
        raise ValueError(f"view must be ({depth.shape[0]}, 6), got shape {tuple(view.shape)}")


def _check_albedo_normal(albedo: torch.Tensor, normal: torch.Tensor) -> None:
    if albedo.dim() != 4 or albedo.shape[1] != 3:
        raise ValueError(f"albedo must be (B, 3, S, S), got shape {tuple(albedo.shape)}")
    if normal.shape != (albedo.shape[0], *albedo.shape[2:], 3):
        raise ValueError(f"normal must be (B, S, S, 3) matching albedo, got shape {tuple(normal.shape)}")
