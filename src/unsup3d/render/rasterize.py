"""Z-buffer rasterisation of triangle meshes in pure PyTorch.

Each pixel is sampled once, at its integer centre (``docs/conventions.md``). Triangles are double-sided and the
nearest surface wins. The work grows with the pixels that the triangles' bounding boxes cover, not with image
area × triangles: every triangle is expanded into the pixel centres of its bounding box, all candidates are
tested at once, and a ``scatter_reduce`` keeps the nearest per pixel. Triangles of any screen size are handled.
Rasterisation picks faces only and carries no gradient; :mod:`unsup3d.render.interpolate` recomputes the
winning surface differentiably.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Candidates processed per chunk: bounds peak memory at about 60 bytes × this number.
CHUNK_CANDIDATES = 1 << 22
# Relative tolerance of the inside test, so that shared edges through pixel centres leave no holes.
INSIDE_EPS = 1e-6
# Bounding boxes grow by this many pixels so that vertices a rounding error off a pixel centre still reach it.
BOX_SLACK = 1e-4
NO_FACE = -1


@dataclass
class Fragments:
    """Result of rasterisation.

    Attributes:
        face_index: (B, H, W) long, index into ``faces`` of the nearest triangle covering each pixel centre,
            ``-1`` where no triangle covers it.
    """

    face_index: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """(B, H, W) bool, True where a surface covers the pixel."""
        return self.face_index >= 0


def grid_faces(height: int, width: int, device=None) -> torch.Tensor:
    """Triangles of an H×W vertex grid in row-major order, two per cell.

    Returns:
        (2·(H−1)·(W−1), 3) long: ``(i,j),(i+1,j),(i,j+1)`` and ``(i,j+1),(i+1,j),(i+1,j+1)`` per cell.
    """
    if height < 2 or width < 2:
        raise ValueError(f"a vertex grid needs at least 2x2 vertices, got {height}x{width}")
    idx = torch.arange(height * width, device=device).view(height, width)
    tl, tr = idx[:-1, :-1].reshape(-1), idx[:-1, 1:].reshape(-1)
    bl, br = idx[1:, :-1].reshape(-1), idx[1:, 1:].reshape(-1)
    first = torch.stack([tl, bl, tr], dim=1)
    second = torch.stack([tr, bl, br], dim=1)
    return torch.cat([first, second], dim=0)


@torch.no_grad()
def rasterize(
    screen_vertices: torch.Tensor, faces: torch.Tensor, height: int, width: int, near: float = 1e-4
) -> Fragments:
    """Nearest-surface face index per pixel centre.

    Args:
        screen_vertices: (B, N, 3) ``(u, v, z)``: pixel coordinates and camera depth of each vertex.
        faces: (F, 3) long vertex indices, shared by the batch.
        height, width: output size in pixels.
        near: triangles with a vertex at ``z <= near`` are dropped.
    Returns:
        :class:`Fragments` with ``face_index`` (B, H, W).
    """
    _check_mesh(screen_vertices, faces)
    batch, num_faces = screen_vertices.shape[0], faces.shape[0]
    tri = screen_vertices.detach()[:, faces].reshape(batch * num_faces, 3, 3)  # (B·F, vertex, uvz)
    x0, y0, nx, count = _bounding_boxes(tri, height, width, near)
    origin = torch.stack([x0, y0], dim=1).to(tri.dtype)  # (B·F, 2)
    planes = _screen_planes(tri, origin).transpose(1, 2).contiguous()  # (B·F, 3 coefficients, 4 functions)
    best = torch.full((batch * height * width,), torch.iinfo(torch.int64).max, device=tri.device)
    ends = count.cumsum(0)
    for first, last in _chunks(ends):
        _rasterize_chunk(planes, x0, y0, nx, count, ends, (first, last), num_faces, (height, width), best)
    face = torch.where(best == torch.iinfo(torch.int64).max, NO_FACE, best & 0xFFFFFFFF)
    return Fragments(face_index=face.view(batch, height, width))


def _check_mesh(screen_vertices: torch.Tensor, faces: torch.Tensor) -> None:
    if screen_vertices.dim() != 3 or screen_vertices.shape[-1] != 3:
        raise ValueError(f"screen_vertices must be (B, N, 3), got {tuple(screen_vertices.shape)}")
    if faces.dim() != 2 or faces.shape[1] != 3 or faces.dtype != torch.long:
        raise ValueError(f"faces must be a (F, 3) long tensor, got {tuple(faces.shape)} {faces.dtype}")


def _bounding_boxes(tri: torch.Tensor, height: int, width: int, near: float):
    """Integer pixel bounding boxes of (T, 3, 3) triangles.

    Returns ``x0, y0, nx`` (first column, first row, columns) and ``count`` (pixels in the box, 0 for
    culled triangles), each (T,) long.
    """
    u, v, z = tri[..., 0], tri[..., 1], tri[..., 2]
    finite = torch.isfinite(tri).all(dim=(-1, -2))
    u, v = torch.nan_to_num(u), torch.nan_to_num(v)
    x0 = (u.amin(-1) - BOX_SLACK).ceil().clamp(0, width).long()
    x1 = (u.amax(-1) + BOX_SLACK).floor().clamp(-1, width - 1).long()
    y0 = (v.amin(-1) - BOX_SLACK).ceil().clamp(0, height).long()
    y1 = (v.amax(-1) + BOX_SLACK).floor().clamp(-1, height - 1).long()
    area = (u[:, 1] - u[:, 0]) * (v[:, 2] - v[:, 0]) - (v[:, 1] - v[:, 0]) * (u[:, 2] - u[:, 0])
    keep = finite & (z.amin(-1) > near) & (area.abs() > 1e-12)
    nx = (x1 - x0 + 1).clamp(min=0)
    count = nx * (y1 - y0 + 1).clamp(min=0) * keep
    return x0, y0, nx, count


def _screen_planes(tri: torch.Tensor, origin: torch.Tensor) -> torch.Tensor:
    """Affine screen-space functions ``a·(u − u0) + b·(v − v0) + c`` of each triangle.

    Args:
        tri: (T, 3, 3) vertices ``(u, v, z)``.
        origin: (T, 2) ``(u0, v0)``; coordinates relative to a nearby origin keep float32 exact enough that
            edges through pixel centres leave no holes.
    Returns:
        (T, 4, 3): rows 0-2 the barycentric weight of each vertex, row 3 the inverse depth ``Σ w_k / z_k``
        (both are affine in screen space), each as coefficients ``(a, b, c)``.
    """
    u = tri[..., 0] - origin[:, :1]
    v = tri[..., 1] - origin[:, 1:]
    z = tri[..., 2]
    nxt, prv = [1, 2, 0], [2, 0, 1]
    # Weight of vertex k is the signed area of the opposite edge with the point, over the total area.
    a = v[:, nxt] - v[:, prv]
    b = u[:, prv] - u[:, nxt]
    c = u[:, nxt] * v[:, prv] - u[:, prv] * v[:, nxt]
    area = c.sum(dim=1, keepdim=True)
    area = torch.where(area == 0, torch.ones_like(area), area)
    weights = torch.stack([a, b, c], dim=-1) / area.unsqueeze(-1)  # (T, 3, 3)
    inverse_depth = (weights / z.unsqueeze(-1)).sum(dim=1, keepdim=True)  # (T, 1, 3)
    return torch.cat([weights, inverse_depth], dim=1)


def _chunks(ends: torch.Tensor):
    """Split triangles (by cumulative candidate counts ``ends``) into ranges of about CHUNK_CANDIDATES."""
    total = int(ends[-1]) if ends.numel() else 0
    if total == 0:
        return []
    cuts = torch.arange(1, (total - 1) // CHUNK_CANDIDATES + 1, device=ends.device) * CHUNK_CANDIDATES
    bounds = torch.searchsorted(ends, cuts, right=True).tolist()
    starts = [0, *bounds]
    stops = [*bounds, ends.numel()]
    return [(a, b) for a, b in zip(starts, stops, strict=True) if b > a]


def _rasterize_chunk(planes, x0, y0, nx, count, ends, span, num_faces, size, best):
    """Test every (triangle, pixel-in-its-box) pair of triangles in ``span`` and update ``best`` in place."""
    first, last = span
    height, width = size
    counts = count[first:last]
    total = int(counts.sum())
    if total == 0:
        return
    ids = torch.arange(first, last, device=planes.device)
    tri_id = torch.repeat_interleave(ids, counts, output_size=total)  # (T,)
    starts = ends - count  # first candidate of each triangle, counted over all chunks
    offset = torch.arange(total, device=planes.device) + (starts[first] - starts.index_select(0, tri_id))
    cols = nx.index_select(0, tri_id)
    row = torch.div(offset, cols, rounding_mode="floor")
    col = offset - row * cols  # box-relative pixel coordinates
    coef = planes.index_select(0, tri_id)  # (T, 3, 4)
    values = torch.addcmul(coef[:, 2], coef[:, 0], col.to(coef.dtype).unsqueeze(1))
    values.addcmul_(coef[:, 1], row.to(coef.dtype).unsqueeze(1))  # (T, 4): barycentrics, inverse depth
    inside = (values[:, :3] >= -INSIDE_EPS).all(dim=1) & (values[:, 3] > 0)
    tri_id, values = tri_id[inside], values[inside]
    px = x0.index_select(0, tri_id) + col[inside]
    py = y0.index_select(0, tri_id) + row[inside]
    pixel = py * width + px
    batch_index = torch.div(tri_id, num_faces, rounding_mode="floor")
    pixel += batch_index * (height * width)
    # Positive float32 values order like their bit patterns: pack (depth, face) into one sortable int64.
    depth_bits = (1.0 / values[:, 3]).float().view(torch.int32).long()
    key = (depth_bits << 32) | (tri_id - batch_index * num_faces)
    best.scatter_reduce_(0, pixel, key, reduce="amin")


def barycentric_weights(tri: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Screen-space barycentric weights of points in triangles.

    Args:
        tri: (..., 3, ≥2) triangle vertices, ``tri[..., k, 0:2]`` = ``(u, v)`` of vertex k.
        px, py: (...) point coordinates.
    Returns:
        (..., 3) weights summing to 1 (any winding); undefined for degenerate triangles.
    """
    du = tri[..., 0] - px.unsqueeze(-1)  # (..., 3)
    dv = tri[..., 1] - py.unsqueeze(-1)
    w0 = du[..., 1] * dv[..., 2] - dv[..., 1] * du[..., 2]
    w1 = du[..., 2] * dv[..., 0] - dv[..., 2] * du[..., 0]
    w2 = du[..., 0] * dv[..., 1] - dv[..., 0] * du[..., 1]
    weights = torch.stack([w0, w1, w2], dim=-1)
    return weights / weights.sum(dim=-1, keepdim=True)
