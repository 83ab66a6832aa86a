"""The canonical depth grid as a triangle mesh: vertices in the OBJ frame, faces, uvs and vertex normals.

Frames. The model's camera frame is x right, y down, z forward (``docs/conventions.md``). Meshes are written in
the usual right-handed OBJ frame, **x right, y up, z toward the viewer**: ``(x, y, z) → (x, −y, 1 − z)``. The
origin is the model's rotation centre ``(0, 0, 1)``, and units stay those of the depth maps (about 1 at the
object; call them metres), so a face 0.2 deep stays 0.2 deep. (The original demo used the same axes, then scaled
by 100.)

Topology. One vertex per pixel, row-major; two triangles per cell, ``(i,j),(i+1,j),(i,j+1)`` and
``(i,j+1),(i+1,j),(i+1,j+1)`` as in the renderer. In the OBJ frame both wind counter-clockwise seen from +z, so a
fronto-parallel plane's face normals point at the viewer (+z). Texture coordinates put pixel centres at texel
centres: ``u = (j + 0.5) / W``, ``v = 1 − (i + 0.5) / H`` (OBJ's v grows upward, image row 0 is the top).

Finer meshes. :func:`upsample_canonical` resamples the canonical depth and albedo to N × N (bilinear,
``align_corners=True``); the N-grid back-projects onto the same rays and spans the same surface, only with more,
smaller triangles. :func:`unsup3d.outputs.mesh.canonical_mesh` does the whole job: resample, triangulate, normals,
texture.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from unsup3d.geometry import FOV_DEGREES, ROTATION_CENTER, depth_to_points
from unsup3d.render.rasterize import grid_faces

# The camera→OBJ axis flip (y down → up, z forward → toward the viewer).
CAMERA_TO_OBJ = np.array([1.0, -1.0, -1.0])


def depth_grid_mesh(
    canonical_depth: torch.Tensor | np.ndarray, fov: float = FOV_DEGREES, trim_border: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Back-project a canonical depth map with K⁻¹ and triangulate its pixel grid.

    Args:
        canonical_depth: (S, S) depth in the canonical camera frame.
        fov: field of view in degrees.
        trim_border: drop this many pixel columns on the left and on the right. The model clamps its 2
            outermost columns on each side to a fixed border depth (a flat wall behind the object); 2 removes
            them. Default 0 keeps the whole grid, exactly the surface the model renders.
    Returns:
        vertices (N, 3) float64 in the OBJ frame (x right, y up, z toward the viewer, origin (0, 0, 1) of the
        camera frame); faces (F, 3) int64, 0-based, F = 2·(S−1)·(S−2·trim−1); uvs (N, 2) float64 in [0, 1].
        N = S·(S−2·trim), vertices in row-major pixel order.
    """
    depth = torch.as_tensor(canonical_depth, dtype=torch.float64).detach().cpu()
    if depth.dim() != 2 or depth.shape[0] != depth.shape[1]:
        raise ValueError(f"canonical_depth must be (S, S), got shape {tuple(depth.shape)}")
    size = depth.shape[0]
    if not 0 <= trim_border <= (size - 2) // 2:
        raise ValueError(f"trim_border must be in [0, {(size - 2) // 2}] for S={size}, got {trim_border}")
    if not torch.isfinite(depth).all():
        raise ValueError("canonical_depth must be finite")
    points = depth_to_points(depth[None], fov)[0]  # (S, S, 3) camera frame
    columns = slice(trim_border, size - trim_border)
    points = points[:, columns]  # (S, W', 3)
    height, width = points.shape[:2]
    vertices = camera_to_obj(points.reshape(-1, 3).numpy(), translate=True)
    faces = grid_faces(height, width).numpy()
    rows, cols = np.meshgrid(np.arange(height), np.arange(trim_border, size - trim_border), indexing="ij")
    uvs = np.stack([(cols + 0.5) / size, 1.0 - (rows + 0.5) / size], axis=-1).reshape(-1, 2)
    return vertices, faces.astype(np.int64), uvs


def camera_to_obj(points: np.ndarray, translate: bool = True) -> np.ndarray:
    """(N, 3) camera-frame points → OBJ frame ``(x, −y, 1 − z)``; ``translate=False`` only flips axes."""
    out = np.asarray(points, dtype=np.float64) * CAMERA_TO_OBJ
    if translate:
        out[:, 2] += ROTATION_CENTER[2]  # the mesh origin is the model's rotation centre
    return out


def grid_vertex_normals(canonical_normal: torch.Tensor | np.ndarray, trim_border: int = 0) -> np.ndarray:
    """Per-vertex normals of :func:`depth_grid_mesh`, facing the viewer, in the OBJ frame.

    Args:
        canonical_normal: (S, S, 3) unit normals in the camera frame (a frontal plane is (0, 0, 1), pointing
            away from the camera), e.g. ``Reconstruction.canonical_normal[i]``.
        trim_border: as in :func:`depth_grid_mesh`.
    Returns:
        (N, 3) float64 ``(−nx, ny, nz)``: the camera normal turned toward the viewer, then flipped to the OBJ
        frame; a frontal plane gets (0, 0, 1).
    """
    normals = np.asarray(torch.as_tensor(canonical_normal).detach().cpu(), dtype=np.float64)
    if normals.ndim != 3 or normals.shape[-1] != 3 or normals.shape[0] != normals.shape[1]:
        raise ValueError(f"canonical_normal must be (S, S, 3), got shape {normals.shape}")
    size = normals.shape[0]
    normals = normals[:, trim_border : size - trim_border].reshape(-1, 3)
    return camera_to_obj(-normals, translate=False)


def upsample_canonical(
    canonical_depth: torch.Tensor, canonical_albedo: torch.Tensor | None = None, *, size: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Resample the canonical depth grid, and its albedo, from S × S to ``size`` × ``size`` (bilinear).

    Same rays, same surface: sampling uses ``align_corners=True``, so column ``j`` of the new grid is column
    ``u = j·(S−1)/(N−1)`` of the old, and since ``f = (N−1)/2/tan(fov/2)`` scales the same way, back-projecting
    the new grid with the same fov puts vertex ``j`` on the ray of ``u``. The corner rays coincide, so the mesh
    spans the same extent; a constant-depth plane stays that plane; when ``N−1`` is a multiple of ``S−1`` every
    old vertex is also a new one. Between old pixels depth is interpolated bilinearly in the image (not along the
    old triangles): a smoother version of the same surface. The clamped border columns (a flat wall at the
    border depth) stay a wall; the columns between the wall and the object mix both, as the old mesh's steep
    triangles there did; :func:`resampled_trim_border` gives the trim that drops the wall on the new grid.
    The albedo is resampled the same way, so :func:`depth_grid_mesh`'s uvs (texel centre = vertex) still fit.
    ``size`` < S downsamples (a lighter mesh).

    Args:
        canonical_depth: (S, S) or (B, S, S) finite canonical depth.
        canonical_albedo: (C, S, S) or (B, C, S, S), e.g. the (B, 3, S, S) albedo in [0, 1]; or None.
        size: N ≥ 2, the new grid's size.
    Returns:
        depth (N, N) or (B, N, N), and albedo (C, N, N) or (B, C, N, N) (or None), each with its input's
        layout and dtype; albedo in [0, 1] stays in [0, 1] (bilinear weights are convex).
    """
    if canonical_depth.dim() not in (2, 3) or canonical_depth.shape[-1] != canonical_depth.shape[-2]:
        raise ValueError(f"canonical_depth must be (S, S) or (B, S, S), got shape {tuple(canonical_depth.shape)}")
    if size < 2:
        raise ValueError(f"size must be at least 2, got {size}")
    source = canonical_depth.shape[-1]
    depth = _resample(canonical_depth.reshape(-1, 1, source, source), size).reshape(
        *canonical_depth.shape[:-2], size, size
    )
    if canonical_albedo is None:
        return depth, None
    if canonical_albedo.dim() not in (3, 4) or canonical_albedo.shape[-2:] != canonical_depth.shape[-2:]:
        raise ValueError(
            f"canonical_albedo must be (C, S, S) or (B, C, S, S) with S={source}, "
            f"got shape {tuple(canonical_albedo.shape)}"
        )
    albedo = _resample(canonical_albedo.reshape(-1, *canonical_albedo.shape[-3:]), size)
    return depth, albedo.reshape(*canonical_albedo.shape[:-2], size, size)


def _resample(grid: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, S, S) → (B, C, N, N) bilinear with ``align_corners=True``; S == N returns the input."""
    if grid.shape[-1] == size:
        return grid
    return F.interpolate(grid, size=(size, size), mode="bilinear", align_corners=True)


def resampled_trim_border(trim_border: int, source_size: int, size: int) -> int:
    """The trim of an N-grid resampled from an S-grid that drops what ``trim_border`` drops on the S-grid.

    Column ``j`` of the N-grid lies at ``u = j·(S−1)/(N−1)``; the trimmed S-mesh starts at ``u = trim_border``,
    so the N-mesh keeps the columns with ``u ≥ trim_border``: ``ceil(trim_border·(N−1)/(S−1))`` dropped on each
    side (symmetric). Returns ``trim_border`` when N == S.
    """
    if source_size < 2 or size < 2:
        raise ValueError(f"grid sizes must be at least 2, got {source_size} and {size}")
    return -(-trim_border * (size - 1) // (source_size - 1))
