"""Differentiable interpolation over rasterised fragments.

Rasterisation chooses which face covers each pixel; here the winning face's vertices are gathered again from
the (differentiable) screen vertices, so depth and attributes carry gradients to the vertex positions and depths,
with the face assignment held fixed (as in neural_renderer, without silhouette gradients).
"""

from __future__ import annotations

import torch

from unsup3d.render.rasterize import Fragments, barycentric_weights, check_mesh

# Depth of pixels no surface covers: far behind any object (the model clamps it to its far depth).
BACKGROUND_DEPTH = 100.0


def _winning_triangles(screen_vertices: torch.Tensor, faces: torch.Tensor, fragments: Fragments):
    """Vertices, vertex depths and barycentric weights of each pixel's winning face.

    Returns:
        vertex_ids (B, H, W, 3) long, vertex depths z (B, H, W, 3), weights (B, H, W, 3), and mask (B, H, W)
        bool. On background pixels z is 1 and the weights 1/3, so that nothing divides by zero there.
    """
    check_mesh(screen_vertices, faces)
    face_index = fragments.face_index
    batch, height, width = face_index.shape
    if screen_vertices.shape[0] != batch:
        raise ValueError(f"screen_vertices hold {screen_vertices.shape[0]} meshes for {batch} rasterised images")
    mask = face_index >= 0
    vertex_ids = faces[face_index.clamp(min=0)]  # (B, H, W, 3)
    flat_ids = vertex_ids.reshape(batch, -1, 1).expand(-1, -1, 3)
    triangles = screen_vertices.gather(1, flat_ids).view(batch, height, width, 3, 3)
    rows = torch.arange(height, device=face_index.device, dtype=screen_vertices.dtype)
    cols = torch.arange(width, device=face_index.device, dtype=screen_vertices.dtype)
    py, px = torch.meshgrid(rows, cols, indexing="ij")
    weights = barycentric_weights(triangles, px.expand(batch, -1, -1), py.expand(batch, -1, -1))
    weights = torch.where(mask.unsqueeze(-1), weights, 1.0 / 3.0)
    z = torch.where(mask.unsqueeze(-1), triangles[..., 2], 1.0)
    return vertex_ids, z, weights, mask


def interpolate_depth(
    screen_vertices: torch.Tensor, faces: torch.Tensor, fragments: Fragments, background: float = BACKGROUND_DEPTH
) -> torch.Tensor:
    """Perspective-correct depth of the winning face at each pixel centre.

    Args:
        screen_vertices: (B, N, 3) ``(u, v, z)`` per vertex (differentiable).
        faces: (F, 3) long.
        fragments: from :func:`unsup3d.render.rasterize` on the same vertices.
        background: depth of uncovered pixels.
    Returns:
        (B, H, W) ``z = 1 / Σ_k w_k / z_k``, the exact depth where the pixel ray meets the triangle's plane.
    """
    _, z, weights, mask = _winning_triangles(screen_vertices, faces, fragments)
    depth = 1.0 / (weights / z).sum(dim=-1)
    return torch.where(mask, depth, background)


def interpolate_attributes(
    screen_vertices: torch.Tensor, faces: torch.Tensor, fragments: Fragments, attributes: torch.Tensor
) -> torch.Tensor:
    """Perspective-correct interpolation of per-vertex attributes.

    Args:
        screen_vertices: (B, N, 3) ``(u, v, z)`` per vertex.
        faces: (F, 3) long.
        fragments: from :func:`unsup3d.render.rasterize`.
        attributes: (B, N, C) per-vertex values.
    Returns:
        (B, C, H, W) interpolated attributes, zero where no face covers the pixel.
    """
    if attributes.dim() != 3 or attributes.shape[:2] != screen_vertices.shape[:2]:
        raise ValueError(
            f"attributes must be (B, N, C) matching vertices {tuple(screen_vertices.shape[:2])}, "
            f"got {tuple(attributes.shape)}"
        )
    vertex_ids, z, weights, mask = _winning_triangles(screen_vertices, faces, fragments)
    batch, height, width, _ = vertex_ids.shape
    channels = attributes.shape[-1]
    perspective = weights / z
    perspective = perspective / perspective.sum(dim=-1, keepdim=True)  # (B, H, W, 3)
    flat_ids = vertex_ids.reshape(batch, -1, 1).expand(-1, -1, channels)
    values = attributes.gather(1, flat_ids).view(batch, height, width, 3, channels)
    out = (perspective.unsqueeze(-1) * values).sum(dim=-2)  # (B, H, W, C)
    out = out * mask.unsqueeze(-1)
    return out.permute(0, 3, 1, 2)
