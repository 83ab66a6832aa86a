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
    components = screen_vertices.detach().permute(2, 0, 1)  # (3, B, N): u, v, z
    x0, y0, nx, count = _bounding_boxes(components, faces, height, width, near)
    live = count.nonzero().squeeze(1)  # triangles whose box holds a pixel centre, as flat b·F + f ids
    x0, y0, nx, count = x0[live], y0[live], nx[live], count[live]
    vertex_ids = faces[live % num_faces]  # (L, 3)
    rows = torch.div(live, num_faces, rounding_mode="floor").unsqueeze(1)
    tri = components[:, rows, vertex_ids]  # (3, L, 3): coordinate, triangle, vertex
    planes = _screen_planes(tri, x0, y0)  # (L, 3 coefficients, 4 functions)
    best = torch.full((batch * height * width,), torch.iinfo(torch.int64).max, device=tri.device)
    ends = count.cumsum(0)
    boxes = (x0, y0, nx, count, ends)
    for first, last in _chunks(ends):
        _rasterize_chunk(planes, boxes, live, (first, last), num_faces, (height, width), best)
    face = torch.where(best == torch.iinfo(torch.int64).max, NO_FACE, best & 0xFFFFFFFF)
    return Fragments(face_index=face.view(batch, height, width))


def _check_mesh(screen_vertices: torch.Tensor, faces: torch.Tensor) -> None:
    if screen_vertices.dim() != 3 or screen_vertices.shape[-1] != 3:
        raise ValueError(f"screen_vertices must be (B, N, 3), got {tuple(screen_vertices.shape)}")
    if faces.dim() != 2 or faces.shape[1] != 3 or faces.dtype != torch.long:
        raise ValueError(f"faces must be a (F, 3) long tensor, got {tuple(faces.shape)} {faces.dtype}")


def _bounding_boxes(components: torch.Tensor, faces: torch.Tensor, height: int, width: int, near: float):
    """Integer pixel bounding boxes of every triangle of every batch element.

    Args:
        components: (3, B, N) vertex ``u``, ``v``, ``z``.
        faces: (F, 3) long.
    Returns:
        ``x0, y0, nx`` (first column, first row, columns) and ``count`` (pixel centres in the box; 0 for
        triangles behind ``near``, non-finite or degenerate), each (B·F,) long.
    """
    bad = ~torch.isfinite(components).all(dim=0) | (components[2] <= near)  # (B, N)
    u, v = torch.nan_to_num(components[0])[:, faces], torch.nan_to_num(components[1])[:, faces]  # (B, F, 3)
    x0 = (u.amin(-1) - BOX_SLACK).ceil().clamp(0, width).long()
    x1 = (u.amax(-1) + BOX_SLACK).floor().clamp(-1, width - 1).long()
    y0 = (v.amin(-1) - BOX_SLACK).ceil().clamp(0, height).long()
    y1 = (v.amax(-1) + BOX_SLACK).floor().clamp(-1, height - 1).long()
    du, dv = u[..., 1:] - u[..., :1], v[..., 1:] - v[..., :1]
    area = du[..., 0] * dv[..., 1] - dv[..., 0] * du[..., 1]
    keep = ~bad[:, faces].any(dim=-1) & (area.abs() > 1e-12)
    nx = (x1 - x0 + 1).clamp(min=0)
    count = nx * (y1 - y0 + 1).clamp(min=0) * keep
    return x0.reshape(-1), y0.reshape(-1), nx.reshape(-1), count.reshape(-1)


def _screen_planes(tri: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor) -> torch.Tensor:
    """Affine screen-space functions ``a·(u − x0) + b·(v − y0) + c`` of each triangle.

    Args:
        tri: (3, T, 3) ``u``, ``v``, ``z`` of each triangle's vertices.
        x0, y0: (T,) origin of each triangle's box; coordinates relative to a nearby origin keep float32 exact
            enough that edges through pixel centres leave no holes.
    Returns:
        (T, 3, 4): for coefficients ``(a, b, c)``, the functions: the barycentric weight of each vertex, then
        the inverse depth ``Σ w_k / z_k`` (both are affine in screen space).
    """
    u = tri[0] - x0.unsqueeze(1).to(tri.dtype)
    v = tri[1] - y0.unsqueeze(1).to(tri.dtype)
    nxt, prv = u.roll(-1, dims=1), u.roll(1, dims=1)
    vnxt, vprv = v.roll(-1, dims=1), v.roll(1, dims=1)
    # Weight of vertex k is the signed area of the opposite edge with the point, over the total area.
    planes = tri.new_empty(u.shape[0], 3, 4)
    planes[:, 0, :3] = vnxt - vprv
    planes[:, 1, :3] = prv - nxt
    planes[:, 2, :3] = nxt * vprv - prv * vnxt
    area = planes[:, 2, :3].sum(dim=1)
    area = torch.where(area == 0, torch.ones_like(area), area)
    planes[:, :, :3] /= area[:, None, None]
    planes[:, :, 3] = (planes[:, :, :3] / tri[2].unsqueeze(1)).sum(dim=2)
    return planes


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


def _rasterize_chunk(planes, boxes, live, span, num_faces, size, best):
    """Test every (triangle, pixel-in-its-box) pair of live triangles ``span`` and update ``best`` in place."""
    x0, y0, nx, count, ends = boxes
    first, last = span
    height, width = size
    counts = count[first:last]
    total = int(counts.sum())
    ids = torch.arange(first, last, device=planes.device)
    tri_id = torch.repeat_interleave(ids, counts, output_size=total)  # (T,) index into the live triangles
    starts = ends - count  # first candidate of each triangle, counted over all chunks
    offset = torch.arange(total, device=planes.device) + (starts[first] - starts.index_select(0, tri_id))
    cols = nx.index_select(0, tri_id)
    row = torch.div(offset, cols, rounding_mode="floor")
    col = offset - row * cols  # box-relative pixel coordinates
    coef = planes.index_select(0, tri_id)  # (T, 3, 4)
    values = torch.addcmul(coef[:, 2], coef[:, 0], col.to(coef.dtype).unsqueeze(1))
    values.addcmul_(coef[:, 1], row.to(coef.dtype).unsqueeze(1))  # (T, 4): barycentrics, inverse depth
    inside = (values[:, :3] >= -INSIDE_EPS).all(dim=1) & (values[:, 3] > 0)
    hit = inside.nonzero().squeeze(1)
    tri_id = tri_id.index_select(0, hit)
    flat_face = live.index_select(0, tri_id)  # b·F + f
    px = x0.index_select(0, tri_id) + col.index_select(0, hit)
    py = y0.index_select(0, tri_id) + row.index_select(0, hit)
    batch_index = torch.div(flat_face, num_faces, rounding_mode="floor")
    pixel = (batch_index * height + py) * width + px
    # Positive float32 values order like their bit patterns: pack (depth, face) into one sortable int64.
    depth = 1.0 / values[:, 3].index_select(0, hit)
    key = (depth.float().view(torch.int32).long() << 32) | (flat_face - batch_index * num_faces)
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
