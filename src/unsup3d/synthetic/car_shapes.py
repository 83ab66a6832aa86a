"""Geometry of the synthetic cars: identity parameters, the body and tyre meshes, their normals.

Frame: that of :mod:`.face_shapes` (the canonical camera frame, metres, x right, y down, z forward). The
canonical view looks at the front of the car from above, as the paper's ShapeNet car renders do: from the top of
the image down, the roof, the windscreen, the bonnet and the front face (headlamps, grille, bumper), with both
front tyres below the bumper. The car is a toy at the scale of the faces, seen at depth 1.

The body is a height field ``z = z_rim − h(x, y)`` over an outline bounded by the roof line at the top (a
narrower cabin, sloping pillars, the wing tops beside the cabin), the body sides and the bumper's lower edge.
``h`` is a longitudinal profile (roof, windscreen, bonnet and front face as linear ramps joined by rounded
creases) plus a bonnet bulge, a windscreen set between the pillars, grille and headlamp recesses, a bumper lip
and wing bulges, all bilaterally symmetric (functions of |x|), plus asymmetric dents and a skewed bumper, soft-
clamped to :data:`ASYM_LIMIT`; the sum is multiplied by a quarter-ellipse roll-off within a rounding distance
of every edge, so that the silhouette is an occluding contour. ``z_rim`` puts the mean height of the in-frame
body at depth 1. The tyres are the front halves of two cylinders with lateral axes and rounded shoulders, set
back from the bumper; only their lower parts show below the body and in the wheel arches.

Distribution (uniform, :data:`SHAPE_RANGES`): body 11.2–14 cm wide, 10.5–15 cm from the roof line to the tyre
bottoms; roof 1.5–3 cm of image height, windscreen 2.6–3.6 cm, bonnet 2.2–3.4 cm, front face 2.8–3.8 cm, with
slopes dh/dy of 0.45–0.7, 0.2–0.35, 0.75–1 and 0.25–0.4 (steep roof and bonnet, flatter windscreen and front
face, as seen from about 30° above); cabin 50–68 % of the body's width; total relief (bumper to rim) ≈ 4.8–8.2
cm; tyres 4–5.2 cm in diameter, 1.6–2.4 cm wide. Asymmetric: 4 dents of up to 3 mm (mostly inwards) and a
bumper skewed by up to ±2 mm at the corners, together within ±4 mm (:data:`ASYM_LIMIT`).

The body mesh is a vertex grid whose columns are equally spaced across the body and whose rows span each
column from the roof line to the bumper, so its border is the silhouette; faces and vertex normals are those of
the face meshes (:func:`unsup3d.render.grid_faces`, :func:`.face_shapes.grid_normals`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from unsup3d.render import grid_faces
from unsup3d.synthetic.face_shapes import FRAME_HALF, MIN_GRID_SIZE, gauss, grid_normals, smoothstep

# Uniform ranges (metres unless stated) of the per-identity parameters; rows are image rows (y down).
SHAPE_RANGES: dict[str, tuple[float, float]] = {
    "half_width": (0.056, 0.07),  # half the width of the body
    "cabin": (0.5, 0.68),  # half-width of the roof relative to the body's
    "pillar": (0.006, 0.012),  # lateral extent of the pillars sloping from the roof line to the wings
    "roof_y": (-0.072, -0.06),  # roof line: the top of the silhouette
    "roof_len": (0.015, 0.03),  # rows of the roof, then of the windscreen, the bonnet, the front face
    "screen_len": (0.026, 0.036),
    "bonnet_len": (0.022, 0.034),
    "front_len": (0.028, 0.038),  # bonnet edge to the bumper's lower edge
    "wing": (-0.006, 0.004),  # wing tops (the outline beside the cabin) relative to the windscreen's base
    "roof_height": (0.002, 0.008),  # height h above the rim at the roof line, before the roll-off
    "roof_slope": (0.45, 0.7),  # dh/dy over the roof, the windscreen, the bonnet and the front face
    "screen_slope": (0.2, 0.35),
    "bonnet_slope": (0.75, 1.0),
    "front_slope": (0.25, 0.4),
    "crease": (0.002, 0.005),  # rounding of the profile's creases
    "side_round": (0.012, 0.026),  # roll-off distances of the sides, the roof line and the bumper's lower edge
    "top_round": (0.008, 0.016),
    "bottom_round": (0.003, 0.006),
    "bonnet_bulge": (0.0, 0.004),
    "screen_inset": (0.001, 0.003),  # windscreen set back between the pillars
    "grille_width": (0.3, 0.55),  # half-width relative to the body's
    "grille_height": (0.005, 0.009),  # half-height
    "grille_depth": (0.002, 0.006),
    "lamp_x": (0.6, 0.76),  # headlamp centre relative to the half-width
    "lamp_width": (0.01, 0.016),  # half-width
    "lamp_height": (0.0035, 0.0065),  # half-height
    "lamp_depth": (-0.002, 0.003),  # recess (negative: bulge)
    "bumper_lip": (0.001, 0.004),
    "wing_bulge": (0.0, 0.005),
    "tyre_x": (0.7, 0.8),  # tyre centre relative to the half-width
    "tyre_width": (0.008, 0.012),  # half-width
    "tyre_radius": (0.02, 0.026),
    "tyre_drop": (0.006, 0.012),  # tyre bottom below the bumper's lower edge
    "tyre_inset": (0.006, 0.014),  # tyre front behind the bumper
    # asymmetric
    "bumper_skew": (-0.03, 0.03),  # slope of the bumper's height across the car
}
DENTS = 4
DENT_AMPLITUDE = 0.003
ASYM_LIMIT = 0.004  # bound of the asymmetric height (dents and skew together)
TYRE_SHOULDER = 0.6  # the tyre shoulders roll off over this fraction of the tyre's half-width
TYRE_ARC = 0.47 * math.pi  # the tyre grid spans angles ±TYRE_ARC from its front-most line


def sample_shape(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw one car: scalars of :data:`SHAPE_RANGES` and ``dents`` (K, 4) ``(x, y, sigma, amplitude)``."""
    params = {key: np.float32(rng.uniform(lo, hi)) for key, (lo, hi) in SHAPE_RANGES.items()}
    k = DENTS
    dents = np.stack(
        [
            rng.uniform(-0.06, 0.06, k),
            rng.uniform(-0.06, 0.05, k),
            rng.uniform(0.006, 0.02, k),
            rng.uniform(-DENT_AMPLITUDE, 0.5 * DENT_AMPLITUDE, k),  # mostly dents (away from the camera)
        ],
        axis=1,
    )
    params["dents"] = dents.astype(np.float32)
    return params


def layout(shape: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Derived rows, heights and widths (B, 1): the roof runs from row ``y0`` to ``y1``, the windscreen to ``y2``,
    the bonnet to ``y3``, the front face to the bumper's lower edge ``y4``; ``h0 .. h4`` are the profile's heights
    there (before rounding); wing line ``wing_y``; half-widths of the roof ``cabin_hw`` and the windscreen
    ``screen_hw``."""
    lay = {"y0": shape["roof_y"], "h0": shape["roof_height"]}
    for k, part in enumerate(("roof", "screen", "bonnet", "front"), start=1):
        lay[f"y{k}"] = lay[f"y{k - 1}"] + shape[f"{part}_len"]
        lay[f"h{k}"] = lay[f"h{k - 1}"] + shape[f"{part}_slope"] * shape[f"{part}_len"]
    cabin_hw = shape["cabin"] * shape["half_width"]
    lay.update(wing_y=lay["y2"] + shape["wing"], cabin_hw=cabin_hw, screen_hw=cabin_hw - 0.5 * shape["pillar"])
    return lay


def roof_line(x: torch.Tensor, shape, lay) -> torch.Tensor:
    """Top of the silhouette (B, N) at x: the roof over the cabin, the wing tops beside it, pillars between."""
    slope = smoothstep(0.0, 1.0, (x.abs() - lay["cabin_hw"]) / shape["pillar"])
    return lay["y0"] + (lay["wing_y"] - lay["y0"]) * slope


def roll_off(distance: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Quarter-ellipse edge profile ``sqrt(1 − (1 − d/r)²)`` for ``d < r``, else 1: 0 with a vertical tangent on
    the edge (d = 0), 1 with a horizontal one at ``d ≥ r``."""
    u = 1.0 - (distance / radius).clamp(0.0, 1.0)
    return (1.0 - u * u).clamp(min=0.0).sqrt()


def ramp(y: torch.Tensor, start, stop, crease) -> torch.Tensor:
    """0 before ``start``, 1 after ``stop``, linear between, with creases rounded over about ``crease``."""
    rise = F.softplus((y - start) / crease) - F.softplus((y - stop) / crease)
    return rise * crease / (stop - start)


def box(dx: torch.Tensor, dy: torch.Tensor, half_x, half_y, soft: float = 0.0015) -> torch.Tensor:
    """Soft rectangle (B, N) in [0, 1] of half-sizes ``half_x, half_y`` around offsets ``dx, dy`` from its centre."""
    return torch.sigmoid((half_x - dx.abs()) / soft) * torch.sigmoid((half_y - dy.abs()) / soft)


def _profile(y: torch.Tensor, shape, lay) -> torch.Tensor:
    """Longitudinal height (B, N): roof, windscreen, bonnet and front face as ramps with rounded creases."""
    h = lay["h0"]
    for k in range(1, 5):
        h = h + (lay[f"h{k}"] - lay[f"h{k - 1}"]) * ramp(y, lay[f"y{k - 1}"], lay[f"y{k}"], shape["crease"])
    return h


def _details(x: torch.Tensor, y: torch.Tensor, shape, lay) -> torch.Tensor:
    """Bonnet bulge, windscreen inset, grille and headlamp recesses, bumper lip and wing bulges (B, N),
    symmetric in x."""
    ax, hw, front = x.abs(), shape["half_width"], shape["front_len"]
    h = shape["bonnet_bulge"] * gauss(x, y, 0.0, 0.5 * (lay["y2"] + lay["y3"]), 0.45 * hw, 0.5 * shape["bonnet_len"])
    screen = box(x, y - 0.5 * (lay["y1"] + lay["y2"]), lay["screen_hw"], 0.5 * shape["screen_len"])
    h = h - shape["screen_inset"] * screen
    grille = box(x, y - grille_row(shape, lay), shape["grille_width"] * hw, shape["grille_height"])
    h = h - shape["grille_depth"] * grille
    lamp = box(ax - shape["lamp_x"] * hw, y - lamp_row(shape, lay), shape["lamp_width"], shape["lamp_height"])
    h = h - shape["lamp_depth"] * lamp
    h = h + shape["bumper_lip"] * gauss(x, y, 0.0, lay["y4"] - 0.3 * front, 1.0, 0.003)
    return h + shape["wing_bulge"] * gauss(ax, y, shape["tyre_x"] * hw, lay["y3"] + 0.2 * front, 0.012, 0.015)


def lamp_row(shape, lay) -> torch.Tensor:
    """Row (B, 1) of the headlamp centres."""
    return lay["y3"] + 0.22 * shape["front_len"]


def grille_row(shape, lay) -> torch.Tensor:
    """Row (B, 1) of the grille centre."""
    return lay["y3"] + 0.4 * shape["front_len"]


def asymmetry(x: torch.Tensor, y: torch.Tensor, shape, lay) -> torch.Tensor:
    """Asymmetric height (B, N): K dents plus the skewed bumper, soft-clamped into ±:data:`ASYM_LIMIT`."""
    dx, dy, sigma, amp = (v.unsqueeze(-1) for v in shape["dents"].unbind(2))  # (B, K, 1) each
    dents = (amp * gauss(x.unsqueeze(1), y.unsqueeze(1), dx, dy, sigma, sigma)).sum(1)
    skew = shape["bumper_skew"] * x * smoothstep(0.0, 1.0, (y - lay["y3"]) / (0.5 * shape["front_len"]))
    return ASYM_LIMIT * torch.tanh((dents + skew) / ASYM_LIMIT)


def body_height(x: torch.Tensor, y: torch.Tensor, shape: dict[str, torch.Tensor]) -> torch.Tensor:
    """Height ``h`` (B, N) of the body towards the camera above its rim, at canonical points (B, N) x, y inside
    the outline (0 on it)."""
    lay = layout(shape)
    edges = roll_off(shape["half_width"] - x.abs(), shape["side_round"])
    edges = edges * roll_off(y - roof_line(x, shape, lay), shape["top_round"])
    edges = edges * roll_off(lay["y4"] - y, shape["bottom_round"])
    return (_profile(y, shape, lay) + _details(x, y, shape, lay) + asymmetry(x, y, shape, lay)) * edges


def body_grid(size: int) -> tuple[int, int]:
    """Rows and columns of the body vertex grid for an image of ``size`` pixels (about 2 mm apart at 64 px)."""
    size = max(size, MIN_GRID_SIZE)
    return size + 1, size + 1


def tyre_grid(size: int) -> tuple[int, int]:
    """Rows and columns of the vertex grid of one tyre."""
    size = max(size, MIN_GRID_SIZE)
    return round(0.3 * size) + 1, round(0.15 * size) + 1


def body_points(shape: dict[str, torch.Tensor], rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Canonical (x, y) of the body grid vertices, each (B, rows·cols), row-major, border on the silhouette."""
    lay = layout(shape)
    device = shape["half_width"].device
    t, s = torch.meshgrid(
        torch.linspace(0.0, 1.0, rows, device=device), torch.linspace(-1.0, 1.0, cols, device=device), indexing="ij"
    )
    x = shape["half_width"] * s.reshape(1, -1)
    top = roof_line(x, shape, lay)
    y = top + (lay["y4"] - top) * t.reshape(1, -1)
    return x, y


def body_surface(shape: dict[str, torch.Tensor], rows: int, cols: int) -> torch.Tensor:
    """Body vertices (B, rows·cols, 3) in the canonical frame, ``z = z_rim − h`` with the mean height of the
    in-frame body at depth 1."""
    x, y = body_points(shape, rows, cols)
    h = body_height(x, y, shape)
    in_frame = (x.abs() < FRAME_HALF) & (y.abs() < FRAME_HALF)
    z_rim = 1.0 + (h * in_frame).sum(1, keepdim=True) / in_frame.sum(1, keepdim=True)
    return torch.stack([x, y, z_rim - h], dim=-1)


def tyre_surface(shape: dict[str, torch.Tensor], z_rim: torch.Tensor, side: float, rows: int, cols: int):
    """Vertices (B, rows·cols, 3) of the tyre on ``side`` (−1 left, +1 right): the front half of a cylinder with
    a lateral axis whose shoulders roll off to the axle's plane (the sidewalls), its front ``tyre_inset`` behind
    the bumper and its bottom ``tyre_drop`` below the bumper's lower edge."""
    lay = layout(shape)
    device = z_rim.device
    a, u = torch.meshgrid(
        torch.linspace(-1.0, 1.0, rows, device=device), torch.linspace(-1.0, 1.0, cols, device=device), indexing="ij"
    )
    phi, u = TYRE_ARC * a.reshape(1, -1), u.reshape(1, -1)
    radius, half = shape["tyre_radius"], shape["tyre_width"]
    z_axle = z_rim - lay["h4"] + shape["tyre_inset"] + radius
    y = lay["y4"] + shape["tyre_drop"] - radius + radius * phi.sin()
    x = side * shape["tyre_x"] * shape["half_width"] + half * u
    depth = radius * phi.cos() * roll_off(half * (1.0 - u.abs()), TYRE_SHOULDER * half)
    return torch.stack([x, y, z_axle - depth], dim=-1)


def object_faces(size: int, device=None) -> torch.Tensor:
    """(F, 3) long faces of the body grid, then the left and right tyre grids (vertex order of
    :func:`object_mesh`)."""
    body_rows, body_cols = body_grid(size)
    tyre_rows, tyre_cols = tyre_grid(size)
    body = grid_faces(body_rows, body_cols, device=device)
    tyre = grid_faces(tyre_rows, tyre_cols, device=device)
    start = body_rows * body_cols
    return torch.cat([body, tyre + start, tyre + start + tyre_rows * tyre_cols], dim=0)


def object_mesh(shape: dict[str, torch.Tensor], size: int):
    """Body and tyres of a batch of cars in the canonical frame.

    Args:
        shape: stacked shape parameters (:func:`.face_shapes.stack_params`).
        size: image size, sets the mesh resolution.
    Returns:
        points (B, N, 3), normals (B, N, 3), and ``is_body`` (N,) bool (False for tyre vertices).
    """
    body_rows, body_cols = body_grid(size)
    tyre_rows, tyre_cols = tyre_grid(size)
    body = body_surface(shape, body_rows, body_cols)
    z_rim = body[:, :1, 2]  # border vertices are at the rim
    tyres = [tyre_surface(shape, z_rim, side, tyre_rows, tyre_cols) for side in (-1.0, 1.0)]
    points = torch.cat([body, *tyres], 1)
    normals = torch.cat(
        [grid_normals(body, body_rows, body_cols), *(grid_normals(t, tyre_rows, tyre_cols) for t in tyres)], 1
    )
    is_body = torch.zeros(points.shape[1], dtype=torch.bool, device=points.device)
    is_body[: body.shape[1]] = True
    return points, normals, is_body
