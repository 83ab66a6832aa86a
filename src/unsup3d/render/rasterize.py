"""Z-buffer rasterisation of triangle meshes in pure PyTorch.

Each pixel is sampled once, at its integer centre (``docs/conventions.md``). Triangles are double-sided and the
nearest surface wins. The work grows with the triangles and the pixels their bounding boxes cover, not with
image area × triangles. Triangles whose box holds at most 2×2 pixel centres (nearly all of a depth-grid mesh seen
at its own resolution) are tested at their four box positions with dense elementwise arithmetic, without any
gather; larger triangles are expanded into the pixel centres of their boxes. A ``scatter_reduce`` keeps the
nearest surface per pixel. Triangles of any screen size are handled. Rasterisation picks faces only and carries
no gradient; :mod:`unsup3d.render.interpolate` recomputes the winning surface differentiably.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Candidates of large triangles processed per chunk: bounds peak memory at about 60 bytes × this number.
CHUNK_CANDIDATES = 1 << 22
# Tolerance of the inside test on barycentric weights, so that edges through pixel centres leave no holes: a vertex
# projected back onto its own pixel centre lands a few float32 ulps off it (about 4e-6 px at column 32 of 64; which
# way depends on the CPU's instructions), and 1e-6 lost the top row of a depth grid seen in the identity view.
INSIDE_EPS = 2e-5
# Bounding boxes grow by this many pixels so that vertices a rounding error off a pixel centre still reach it.
BOX_SLACK = 1e-4
NO_FACE = -1
# Triangles whose box spans at most this many pixel centres across and down are tested densely.
SMALL_BOX = 2
_NO_KEY = torch.iinfo(torch.int64).max


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


@dataclass
class _Triangles:
    """A set of triangles laid out as tensors of a common shape (B, *S).

    Attributes:
        corners: three ``(u, v, z)`` triples, one per vertex, each tensor (B, *S) (possibly strided views).
        face: (*S) long face index of each triangle.
    """

    corners: tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], ...]
    face: torch.Tensor


@dataclass
class _Boxes:
    """Pixel boxes of triangles, each (B, *S) float: first column ``x0`` and row ``y0``, and the pixel centres
    they span across (``nx``) and down (``ny``)."""

    x0: torch.Tensor
    y0: torch.Tensor
    nx: torch.Tensor
    ny: torch.Tensor


@dataclass
class _ScreenSetup:
    """Per-triangle screen-space set-up (:func:`_setup`).

    Attributes:
        boxes: the pixel boxes.
        planes: four ``(a, b, c)`` triples of (B, *S) tensors, the affine functions ``a·(u − x0) + b·(v − y0) + c``
            of the barycentric weight of each vertex, then of the inverse depth ``Σ w_k / z_k``.
        keep: (B, *S) bool, the box holds a pixel centre and the triangle is finite, non-degenerate and in front
            of ``near``.
    """

    boxes: _Boxes
    planes: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    keep: torch.Tensor


@dataclass
class _LargeTriangles:
    """Triangles whose boxes are expanded into pixel candidates, flattened over the batch: ``planes``
    (L, 3 coefficients, 4 functions); ``x0, y0, nx, ny`` (L,) long boxes; ``image`` and ``face`` (L,) long."""

    planes: torch.Tensor
    x0: torch.Tensor
    y0: torch.Tensor
    nx: torch.Tensor
    ny: torch.Tensor
    image: torch.Tensor
    face: torch.Tensor

    @classmethod
    def select(cls, setup: _ScreenSetup, face: torch.Tensor, big: torch.Tensor) -> _LargeTriangles:
        """The triangles at flat indices ``big`` (``b·n + i``, n triangles per image) of a set-up whose faces
        are ``face`` (*S)."""
        per_image = face.numel()
        planes = [[coefficient.reshape(-1).index_select(0, big) for coefficient in plane] for plane in setup.planes]
        image = torch.div(big, per_image, rounding_mode="floor")
        box = setup.boxes
        x0, y0, nx, ny = (b.reshape(-1).index_select(0, big).long() for b in (box.x0, box.y0, box.nx, box.ny))
        return cls(
            planes=torch.stack([torch.stack(plane, dim=-1) for plane in planes], dim=-1),  # (L, 3, 4)
            x0=x0,
            y0=y0,
            nx=nx,
            ny=ny,
            image=image,
            face=face.reshape(-1).index_select(0, big - image * per_image),
        )

    @classmethod
    def cat(cls, parts: list[_LargeTriangles]) -> _LargeTriangles:
        names = ("planes", "x0", "y0", "nx", "ny", "image", "face")
        return cls(**{name: torch.cat([getattr(part, name) for part in parts]) for name in names})


def grid_faces(height: int, width: int, device=None) -> torch.Tensor:
    """Triangles of an H×W vertex grid in row-major order, two per cell.

    Returns:
        (2·(H−1)·(W−1), 3) long: ``(i,j),(i+1,j),(i,j+1)`` for every cell, then ``(i,j+1),(i+1,j),(i+1,j+1)``
        for every cell.
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
    check_mesh(screen_vertices, faces)
    corners = screen_vertices.detach()[:, faces.t()].permute(1, 3, 0, 2).contiguous()  # (3 vertices, 3, B, F)
    vertices = tuple(tuple(corners[k, c] for c in range(3)) for k in range(3))
    face = torch.arange(faces.shape[0], device=faces.device)
    return _rasterize_sets([_Triangles(vertices, face)], screen_vertices.shape[0], height, width, near)


@torch.no_grad()
def rasterize_grid(screen_grid: torch.Tensor, height: int, width: int, near: float = 1e-4) -> Fragments:
    """:func:`rasterize` of the mesh :func:`grid_faces` over a vertex grid, reading its corners as slices.

    Args:
        screen_grid: (B, Hv, Wv, 3) ``(u, v, z)`` of each grid vertex.
        height, width: output size in pixels.
        near: triangles with a vertex at ``z <= near`` are dropped.
    Returns:
        :class:`Fragments` whose ``face_index`` indexes ``grid_faces(Hv, Wv)``; equal to
        ``rasterize(screen_grid.reshape(B, -1, 3), grid_faces(Hv, Wv), height, width, near)``.
    """
    if screen_grid.dim() != 4 or screen_grid.shape[-1] != 3 or min(screen_grid.shape[1:3]) < 2:
        raise ValueError(f"screen_grid must be (B, Hv>=2, Wv>=2, 3), got {tuple(screen_grid.shape)}")
    grid = screen_grid.detach()
    rows, cols = grid.shape[1] - 1, grid.shape[2] - 1

    def corner(di: int, dj: int) -> tuple[torch.Tensor, ...]:
        return tuple(grid[:, di : di + rows, dj : dj + cols, c] for c in range(3))  # (B, rows, cols) each

    top_left, top_right, bottom_left, bottom_right = corner(0, 0), corner(0, 1), corner(1, 0), corner(1, 1)
    cell = torch.arange(rows * cols, device=grid.device).view(rows, cols)
    sets = [
        _Triangles((top_left, bottom_left, top_right), cell),
        _Triangles((top_right, bottom_left, bottom_right), cell + rows * cols),
    ]
    return _rasterize_sets(sets, grid.shape[0], height, width, near)


def check_mesh(screen_vertices: torch.Tensor, faces: torch.Tensor) -> None:
    """Raise ValueError unless ``screen_vertices`` is (B, N, 3) and ``faces`` a (F, 3) long tensor."""
    if screen_vertices.dim() != 3 or screen_vertices.shape[-1] != 3:
        raise ValueError(f"screen_vertices must be (B, N, 3), got {tuple(screen_vertices.shape)}")
    if faces.dim() != 2 or faces.shape[1] != 3 or faces.dtype != torch.long:
        raise ValueError(f"faces must be a (F, 3) long tensor, got {tuple(faces.shape)} {faces.dtype}")


def _rasterize_sets(sets: list[_Triangles], batch: int, height: int, width: int, near: float) -> Fragments:
    """Rasterise every triangle set into one z-buffer."""
    device = sets[0].face.device
    best = torch.full((batch * height * width,), _NO_KEY, device=device)
    large = []
    for triangles in sets:
        setup = _setup(triangles.corners, height, width, near)
        box, keep = setup.boxes, setup.keep
        image = torch.arange(batch, device=device).view(-1, *[1] * (keep.dim() - 1))
        origin = (image * height + box.y0.long()) * width + box.x0.long()  # flat pixel of each box's corner
        small = keep & (box.nx <= SMALL_BOX) & (box.ny <= SMALL_BOX)
        _rasterize_small(setup, small, origin, triangles.face, width, best)
        big = (keep & ~small).reshape(-1).nonzero().squeeze(1)  # flat ids b·n + i, n triangles per image
        if big.numel():
            large.append(_LargeTriangles.select(setup, triangles.face, big))
    if large:
        _rasterize_large(_LargeTriangles.cat(large), (height, width), best)
    face = torch.where(best == _NO_KEY, NO_FACE, best & 0xFFFFFFFF)
    return Fragments(face_index=face.view(batch, height, width))


def _setup(corners, height: int, width: int, near: float) -> _ScreenSetup:
    """Pixel boxes and affine screen-space functions of triangles given as three ``(u, v, z)`` triples of
    (B, *S) tensors; see :class:`_ScreenSetup`."""
    (u0, v0, z0), (u1, v1, z1), (u2, v2, z2) = corners
    x0 = (torch.minimum(torch.minimum(u0, u1), u2) - BOX_SLACK).ceil_().clamp_(0, width)
    y0 = (torch.minimum(torch.minimum(v0, v1), v2) - BOX_SLACK).ceil_().clamp_(0, height)
    x0.nan_to_num_(0.0), y0.nan_to_num_(0.0)
    nx = (torch.maximum(torch.maximum(u0, u1), u2) + BOX_SLACK).floor_().clamp_(-1, width - 1).sub_(x0).add_(1)
    ny = (torch.maximum(torch.maximum(v0, v1), v2) + BOX_SLACK).floor_().clamp_(-1, height - 1).sub_(y0).add_(1)
    # Coordinates relative to the box corner keep float32 exact enough that edges through pixel centres
    # leave no holes.
    u0, u1, u2 = u0 - x0, u1 - x0, u2 - x0
    v0, v1, v2 = v0 - y0, v1 - y0, v2 - y0
    # Weight of vertex k is the signed area of the opposite edge with the point, over the total area.
    weights = [
        (v1 - v2, u2 - u1, u1 * v2 - u2 * v1),
        (v2 - v0, u0 - u2, u2 * v0 - u0 * v2),
        (v0 - v1, u1 - u0, u0 * v1 - u1 * v0),
    ]
    area = weights[0][2] + weights[1][2] + weights[2][2]
    z_min = torch.minimum(torch.minimum(z0, z1), z2)
    keep = (area.abs() > 1e-12) & torch.isfinite(area) & (z_min > near) & torch.isfinite(z0 + z1 + z2)
    keep &= (nx > 0) & (ny > 0)
    scale = torch.where(area == 0, 1.0, area).reciprocal_()
    for plane in weights:
        for coefficient in plane:
            coefficient.mul_(scale)
    inverse_z = [z0.reciprocal(), z1.reciprocal(), z2.reciprocal()]
    depth_plane = tuple(
        weights[0][j] * inverse_z[0] + weights[1][j] * inverse_z[1] + weights[2][j] * inverse_z[2] for j in range(3)
    )
    return _ScreenSetup(_Boxes(x0, y0, nx, ny), [*weights, depth_plane], keep)


def _rasterize_small(setup: _ScreenSetup, small, origin, face, width, best) -> None:
    """Test triangles ``small`` (boxes of at most 2×2 pixel centres) at their four box positions.

    Args:
        setup: from :func:`_setup`; small: (B, *S) bool; origin: (B, *S) flat pixel index of each box's corner;
        face: (*S) long; best: (B·H·W,) packed keys, updated in place.
    """
    planes, box = setup.planes, setup.boxes
    offsets = [plane[2] for plane in planes]
    across = [plane[2] + plane[0] for plane in planes]
    for col, row, values in (
        (0, 0, offsets),
        (1, 0, across),
        (0, 1, [c + plane[1] for c, plane in zip(offsets, planes, strict=True)]),
        (1, 1, [c + plane[1] for c, plane in zip(across, planes, strict=True)]),
    ):
        inside = torch.minimum(torch.minimum(values[0], values[1]), values[2]) >= -INSIDE_EPS
        inside &= values[3] > 0
        inside &= small
        if col:
            inside &= box.nx > col
        if row:
            inside &= box.ny > row
        pixel = torch.where(inside, origin + (row * width + col), 0)
        key = torch.where(inside, _pack(values[3], face), _NO_KEY)
        best.scatter_reduce_(0, pixel.reshape(-1), key.reshape(-1), reduce="amin")


def _pack(inverse_depth: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """Sortable int64 keys ordering candidates by depth, then face index."""
    # Positive float32 values order like their bit patterns.
    depth = inverse_depth.reciprocal().float()
    return (depth.view(torch.int32).long() << 32) | face


def _rasterize_large(large: _LargeTriangles, size: tuple[int, int], best: torch.Tensor) -> None:
    """Test every pixel centre in the boxes of large triangles, in chunks, and update ``best`` in place."""
    planes, x0, y0, nx, ny = large.planes, large.x0, large.y0, large.nx, large.ny
    image, face = large.image, large.face
    height, width = size
    count = nx * ny
    ends = count.cumsum(0)
    for first, last in _chunks(ends):
        total = int(ends[last - 1] - ends[first] + count[first])
        ids = torch.arange(first, last, device=planes.device)
        tri = torch.repeat_interleave(ids, count[first:last], output_size=total)  # (T,) triangle of each candidate
        starts = ends - count  # first candidate of each triangle, counted over all chunks
        offset = torch.arange(total, device=planes.device) + (starts[first] - starts.index_select(0, tri))
        cols = nx.index_select(0, tri)
        row = torch.div(offset, cols, rounding_mode="floor")
        col = offset - row * cols  # box-relative pixel coordinates
        coef = planes.index_select(0, tri)  # (T, 3, 4)
        values = torch.addcmul(coef[:, 2], coef[:, 0], col.to(coef.dtype).unsqueeze(1))
        values.addcmul_(coef[:, 1], row.to(coef.dtype).unsqueeze(1))  # (T, 4): barycentrics, inverse depth
        inside = (values[:, :3].amin(dim=1) >= -INSIDE_EPS) & (values[:, 3] > 0)
        hit = inside.nonzero().squeeze(1)
        tri = tri.index_select(0, hit)
        py = y0.index_select(0, tri) + row.index_select(0, hit)
        px = x0.index_select(0, tri) + col.index_select(0, hit)
        pixel = (image.index_select(0, tri) * height + py) * width + px
        key = _pack(values[:, 3].index_select(0, hit), face.index_select(0, tri))
        best.scatter_reduce_(0, pixel, key, reduce="amin")


def _chunks(ends: torch.Tensor) -> list[tuple[int, int]]:
    """Split triangles (by cumulative candidate counts ``ends``) into ranges of about CHUNK_CANDIDATES."""
    total = int(ends[-1])
    cuts = torch.arange(1, (total - 1) // CHUNK_CANDIDATES + 1, device=ends.device) * CHUNK_CANDIDATES
    bounds = torch.searchsorted(ends, cuts, right=True).tolist()
    starts = [0, *bounds]
    stops = [*bounds, ends.numel()]
    return [(a, b) for a, b in zip(starts, stops, strict=True) if b > a]


def barycentric_weights(tri: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Screen-space barycentric weights of points in triangles.

    Args:
        tri: (..., 3, ≥2) triangle vertices, ``tri[..., k, 0:2]`` = ``(u, v)`` of vertex k.
        px, py: (...) point coordinates.
    Returns:
        (..., 3) weights summing to 1 (any winding); undefined for degenerate triangles.
    """
    du0, du1, du2 = (tri[..., 0] - px.unsqueeze(-1)).unbind(-1)
    dv0, dv1, dv2 = (tri[..., 1] - py.unsqueeze(-1)).unbind(-1)
    w0 = du1 * dv2 - dv1 * du2
    w1 = du2 * dv0 - dv2 * du0
    w2 = du0 * dv1 - dv0 * du1
    weights = torch.stack([w0, w1, w2], dim=-1)
    return weights / weights.sum(dim=-1, keepdim=True)
