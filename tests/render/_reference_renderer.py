"""A slow, obviously correct float64 depth renderer used as the reference in tests.

For every triangle and every pixel centre in its bounding box, the pixel's camera ray is intersected with the 3D
triangle (Möller–Trumbore); the nearest hit wins. Nothing is shared with the fast renderer.
"""

from __future__ import annotations

import math

import numpy as np


def camera_rays(size: int, fov: float) -> np.ndarray:
    """(S, S, 3) ray directions K⁻¹ [u, v, 1] per pixel centre (u column, v row)."""
    f = (size - 1) / 2 / math.tan(math.radians(fov) / 2)
    c = (size - 1) / 2
    v, u = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64), indexing="ij")
    return np.stack([(u - c) / f, (v - c) / f, np.ones_like(u)], axis=-1)


def ray_triangle_depth(rays: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, eps: float = 1e-9):
    """Depth (z) where each ray from the origin meets triangle abc, NaN on a miss. rays: (P, 3)."""
    e1, e2 = b - a, c - a
    pvec = np.cross(rays, e2)
    det = pvec @ e1
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / det
        tvec = -a
        s = (pvec @ tvec) * inv
        qvec = np.cross(tvec, e1)
        t = (rays @ qvec) * inv
        dist = (qvec @ e2) * inv
    hit = (np.abs(det) > 1e-15) & (s >= -eps) & (t >= -eps) & (s + t <= 1 + eps) & (dist > 0)
    return np.where(hit, dist * rays[:, 2], np.nan)


def render_depth_reference(points: np.ndarray, faces: np.ndarray, size: int, fov: float) -> np.ndarray:
    """Nearest-surface depth (S, S) of a mesh; NaN where no triangle is hit.

    Args:
        points: (N, 3) camera-frame vertices.
        faces: (F, 3) vertex indices.
    """
    rays = camera_rays(size, fov)
    f = (size - 1) / 2 / math.tan(math.radians(fov) / 2)
    ctr = (size - 1) / 2
    depth = np.full((size, size), np.inf)
    uv = points[:, :2] / points[:, 2:3] * f + ctr
    for face in faces:
        tri_uv = uv[face]
        x0, x1 = (
            max(math.ceil(tri_uv[:, 0].min() - 1e-6), 0),
            min(math.floor(tri_uv[:, 0].max() + 1e-6), size - 1),
        )
        y0, y1 = (
            max(math.ceil(tri_uv[:, 1].min() - 1e-6), 0),
            min(math.floor(tri_uv[:, 1].max() + 1e-6), size - 1),
        )
        if x1 < x0 or y1 < y0:
            continue
        block = rays[y0 : y1 + 1, x0 : x1 + 1].reshape(-1, 3)
        z = ray_triangle_depth(block, *points[face]).reshape(y1 - y0 + 1, x1 - x0 + 1)
        region = depth[y0 : y1 + 1, x0 : x1 + 1]
        np.fmin(region, np.where(np.isnan(z), np.inf, z), out=region)
    depth[np.isinf(depth)] = np.nan
    return depth
