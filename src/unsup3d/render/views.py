"""Pictures of canonical maps under new lights and from new views (paper Figs. 6 and 10), drawn by the renderer's
own stages.

Plain functions of a :class:`~unsup3d.inference.Reconstruction`'s tensors (batch first, CPU or CUDA); images are
(B, 3, H, W) in [0, 1] and nothing is written to disk:

- :func:`relight`, :func:`relight_grid`: the canonical object re-shaded under new lights (Fig. 10);
- :func:`render_view`: the canonical depth rendered in any view, coloured by a canonical image (shape, normals or
  texture: :func:`shape_colour`, :func:`unsup3d.viz.normals_to_image`, ``canonical_image``).

The overlays of Fig. 6 (symmetry plane, asymmetry) are in :mod:`unsup3d.outputs.overlays`, turntable animations
in :mod:`unsup3d.outputs.turntable`. Frames and signs are those of
``docs/conventions.md``: x right, y down, z forward; a view takes the canonical frame to the input view by
``X' = R (X − c) + c + t``.
"""

from __future__ import annotations

import torch

from unsup3d.geometry import (
    FOV_DEGREES,
)
from unsup3d.render.interpolate import BACKGROUND_DEPTH
from unsup3d.render.shading import diffuse_shading, lambertian, light_direction
from unsup3d.render.warp import inverse_warp_grid, render_depth, sample_canonical

__all__ = [
    "check_depth_view",
    "SHAPE_GREY",
    "light_grid",
    "relight",
    "relight_grid",
    "render_view",
    "shape_colour",
]

SHAPE_GREY = 0.7  # albedo of the untextured shape (the original demo's ×0.7 under a frontal light)


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
    check_depth_view(canonical_depth, view)
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
# Checks


def check_depth_view(depth: torch.Tensor, view: torch.Tensor) -> None:
    if depth.dim() != 3 or depth.shape[1] != depth.shape[2]:
        raise ValueError(f"canonical_depth must be (B, S, S), got shape {tuple(depth.shape)}")
    if view.shape != (depth.shape[0], 6):
        raise ValueError(f"view must be ({depth.shape[0]}, 6), got shape {tuple(view.shape)}")


def _check_albedo_normal(albedo: torch.Tensor, normal: torch.Tensor) -> None:
    if albedo.dim() != 4 or albedo.shape[1] != 3:
        raise ValueError(f"albedo must be (B, 3, S, S), got shape {tuple(albedo.shape)}")
    if normal.shape != (albedo.shape[0], *albedo.shape[2:], 3):
        raise ValueError(f"normal must be (B, S, S, 3) matching albedo, got shape {tuple(normal.shape)}")
