"""Geometry of the synthetic faces: identity parameters, the head and neck meshes, their normals.

Frame: the object's canonical (frontal, symmetric) frame is the camera frame of the identity view: metres,
x right, y down, z forward (away from the camera). A head is a height field ``z = z_rim − h(x, y)`` over an
egg-shaped outline; ``h`` is an ellipsoidal cap (cheeks curving back steeply to the silhouette) plus forehead,
brow ridge, eye sockets and eyeballs, cheekbones, nose (ridge, rounded tip, alae), lips (smiling or not, open
or closed), muzzle, chin and hair volume, all bilaterally symmetric (functions of |x|), plus a few millimetres
of asymmetric deformation (random bumps, a bent nose, a tilted mouth, a tilted hairline, a one-sided fringe).
The neck is a vertical half-cylinder with a rounded top, behind the chin. ``z_rim`` puts the mean height of
the in-frame face at depth 1, the rotation centre of the method's view convention.

The head mesh is a vertex grid of the unit square mapped onto the unit disk (elliptical grid mapping) and then
onto the outline, so its border is the silhouette; the faces are :func:`unsup3d.render.grid_faces`. Vertex
normals are the grid's central-difference normals (the convention of ``docs/conventions.md``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from unsup3d.geometry import normals_from_points
from unsup3d.render import grid_faces

# Uniform ranges (metres unless stated) of the per-identity parameters.
SHAPE_RANGES: dict[str, tuple[float, float]] = {
    "eye_y": (-0.026, -0.014),  # eye line, above the image centre
    "eye_x": (0.029, 0.034),  # half the distance between the eyes
    "face_len": (0.095, 0.11),  # eye line to chin
    "top_len": (0.10, 0.125),  # eye line to the top of the skull
    "half_width": (0.066, 0.08),  # half-width of the head at the eye line
    "jaw": (0.08, 0.3),  # relative narrowing of the jaw
    "depth": (0.035, 0.05),  # depth of the ellipsoidal cap (rim to front)
    "flatness": (1.0, 1.6),  # exponent of the cap: larger is a flatter front, steeper sides
    "nose_len": (0.038, 0.05),  # bridge to tip
    "nose_height": (0.014, 0.026),  # how far the nose stands out of the face (2 cm ± 30 %)
    "nose_width": (0.0075, 0.011),  # Gaussian width of the nose base
    "mouth_gap": (0.016, 0.023),  # nose tip to mouth
    "mouth_width": (0.019, 0.027),  # half-width of the mouth
    "lip": (0.0015, 0.0035),
    "smile": (-0.3, 1.0),  # mouth corners lifted by up to 5 mm (negative: lowered)
    "muzzle": (0.006, 0.014),  # forward bulge of the mouth region
    "chin": (0.003, 0.008),
    "forehead": (0.002, 0.008),
    "brow": (0.002, 0.006),
    "socket": (0.006, 0.012),  # eye socket depth
    "cheek": (0.002, 0.006),
    "hairline": (0.045, 0.072),  # eye line to hairline at the midline
    "hair_volume": (0.0, 0.01),
    "hair_side": (-0.02, 0.09),  # side hair reaches this far below the eye line
    "neck_radius": (0.042, 0.058),
    # asymmetric
    "nose_bend": (-0.003, 0.003),  # lateral shift of the nose tip
    "mouth_tilt": (-0.06, 0.06),  # slope of the mouth line
    "hair_tilt": (-0.12, 0.12),  # slope of the hairline (a parting)
}
BALD_PROB = 0.06
FRINGE_PROB = 0.3
ASYM_BUMPS = 5
ASYM_BUMP_AMPLITUDE = 0.003
SMILE_LIFT = 0.005
OPEN_MOUTH_PROB, OPEN_MOUTH_RANGE = 0.2, (0.002, 0.008)
FRAME_HALF = 0.0875  # half the image width at depth 1 for the default fov of 10°
MIN_GRID_SIZE = 48  # meshes of tiny images keep the resolution of a 48-pixel one
NECK_BOTTOM = 0.13  # below the image in every pose
NECK_TOP = 0.07  # the neck starts this far above the chin, behind the face
NECK_CAP = 0.02  # height of its rounded top


def sample_shape(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw one identity: scalars of :data:`SHAPE_RANGES`, ``bumps`` (K, 4) and ``fringe`` (4,) arrays."""
    params = {key: np.float32(rng.uniform(lo, hi)) for key, (lo, hi) in SHAPE_RANGES.items()}
    if rng.random() < BALD_PROB:
        params.update(hairline=np.float32(0.3), hair_side=np.float32(-0.3), hair_volume=np.float32(0.0))
    params["mouth_open"] = np.float32(rng.uniform(*OPEN_MOUTH_RANGE) * (rng.random() < OPEN_MOUTH_PROB))
    k = ASYM_BUMPS
    bumps = np.stack(
        [
            rng.uniform(-0.06, 0.06, k),  # x
            rng.uniform(-0.06, 0.1, k),  # y below the eye line
            rng.uniform(0.008, 0.03, k),  # sigma
            rng.uniform(-ASYM_BUMP_AMPLITUDE, ASYM_BUMP_AMPLITUDE, k),
        ],
        axis=1,
    )
    side = rng.choice([-1.0, 1.0])
    fringe = np.array(
        [side * rng.uniform(0.01, 0.04), rng.uniform(0.005, 0.02), rng.uniform(0.015, 0.03), rng.uniform(0.01, 0.02)]
    )
    fringe *= rng.random() < FRINGE_PROB
    params.update(bumps=bumps.astype(np.float32), fringe=fringe.astype(np.float32))
    return params


def stack_params(params: list[dict[str, np.ndarray]], device=None) -> dict[str, torch.Tensor]:
    """Stack per-sample parameter dicts into tensors: scalars become (B, 1), arrays (B, ...)."""
    out = {}
    for key in params[0]:
        value = torch.as_tensor(np.stack([np.asarray(p[key], dtype=np.float32) for p in params]), device=device)
        out[key] = value.view(-1, 1) if value.dim() == 1 else value
    return out


def smoothstep(edge0: float, edge1: float, x: torch.Tensor) -> torch.Tensor:
    """Hermite step from 0 at ``edge0`` to 1 at ``edge1``."""
    t = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def gauss(x: torch.Tensor, y: torch.Tensor, x0, y0, sx, sy) -> torch.Tensor:
    """Unnormalised anisotropic Gaussian ``exp(−((x−x0)/sx)²/2 − ((y−y0)/sy)²/2)``."""
    dx = (x - x0) / sx
    dy = (y - y0) / sy
    return torch.exp(-0.5 * (dx * dx + dy * dy))


def layout(shape: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Derived landmark rows (B, 1): outline centre ``y_c`` and half-height ``b``, nose, mouth, chin."""
    eye_y = shape["eye_y"]
    y_top = eye_y - shape["top_len"]
    y_chin = eye_y + shape["face_len"]
    nose_top = eye_y - 0.004
    nose_tip = nose_top + shape["nose_len"]
    return {
        "y_c": 0.5 * (y_top + y_chin),
        "b": 0.5 * (y_chin - y_top),
        "chin": y_chin,
        "nose_top": nose_top,
        "nose_tip": nose_tip,
        "mouth": nose_tip + shape["mouth_gap"],
    }


def half_width(q: torch.Tensor, shape: dict[str, torch.Tensor]) -> torch.Tensor:
    """Horizontal scale of the outline at normalised row ``q`` ∈ [−1, 1] (top to chin), (B, N)."""
    jaw = 1.0 - shape["jaw"] * smoothstep(0.0, 1.0, q)
    skull = 1.0 - 0.1 * q * q
    return shape["half_width"] * torch.where(q > 0, jaw, skull)


def outline_radius(x: torch.Tensor, y: torch.Tensor, shape, lay) -> torch.Tensor:
    """Squared normalised radius ρ (B, N): 0 at the outline centre, 1 on the silhouette."""
    q = (y - lay["y_c"]) / lay["b"]
    p = x / half_width(q, shape)
    return p * p + q * q


def hair_mask(x: torch.Tensor, y: torch.Tensor, shape, lay) -> torch.Tensor:
    """Soft hair coverage (B, N) in [0, 1]: above the (tilted) hairline, at the sides, and the fringe."""
    eye_y = shape["eye_y"]
    hairline = eye_y - shape["hairline"] + 8.0 * x * x + shape["hair_tilt"] * x
    top = torch.sigmoid((hairline - y) / 0.002)
    q = (y - lay["y_c"]) / lay["b"]
    edge = half_width(q, shape) * (1.0 - q * q).clamp(min=0).sqrt()
    side = torch.sigmoid((x.abs() - 0.86 * edge) / 0.002) * torch.sigmoid((eye_y + shape["hair_side"] - y) / 0.003)
    fx, fy, rx, ry = shape["fringe"].unbind(1)
    fringe_y = eye_y - shape["hairline"] + fy[:, None]
    fringe = torch.sigmoid((1.0 - gauss_radius(x, y, fx[:, None], fringe_y, rx[:, None], ry[:, None])) / 0.1)
    fringe = fringe * (rx[:, None] > 0)
    return torch.maximum(torch.maximum(top, side), fringe)


def gauss_radius(x, y, x0, y0, rx, ry) -> torch.Tensor:
    """Elliptical radius ``((x−x0)/rx)² + ((y−y0)/ry)²`` (safe for rx = ry = 0)."""
    dx = (x - x0) / (rx + 1e-9)
    dy = (y - y0) / (ry + 1e-9)
    return dx * dx + dy * dy


def _nose(x, y, shape, lay) -> torch.Tensor:
    """Nose: a ridge rising from the bridge, a rounded tip and two alae (B, N)."""
    t = (y - lay["nose_top"]) / shape["nose_len"]
    x = x - shape["nose_bend"] * t.clamp(0.0, 1.2)  # asymmetric bend
    ramp = (0.25 + 0.45 * t).clamp(min=0.0)
    ridge = torch.where(t <= 1.0, ramp, (0.7 + 0.45 * (t - 1.0)) * torch.exp(-(((t - 1.0) / 0.1) ** 2)))
    ridge = torch.where(t < 0.0, ramp * torch.exp(-((t / 0.35) ** 2)), ridge)
    width = shape["nose_width"] * (0.4 + 0.6 * t.clamp(0.0, 1.1) ** 1.2)
    ridge = ridge * torch.exp(-0.5 * (x / width) ** 2)
    tip = 0.32 * gauss(x, t, 0.0, 0.93, 0.55 * shape["nose_width"], 0.09)
    alae = 0.22 * gauss(x.abs(), y, 1.55 * shape["nose_width"], lay["nose_tip"] + 0.001, 0.0045, 0.004)
    return shape["nose_height"] * (ridge + tip + alae)


def mouth_line(x: torch.Tensor, shape, lay) -> torch.Tensor:
    """Row (B, N) of the mouth at x: tilted (asymmetric) and curved at the corners by the smile."""
    u = x / shape["mouth_width"]
    return lay["mouth"] + shape["mouth_tilt"] * x - SMILE_LIFT * shape["smile"] * u * u


def _mouth_and_chin(x, y, shape, lay) -> torch.Tensor:
    """Lips (parted when the mouth is open), the groove or cavity between them, the muzzle bulge, the
    labiomental fold and the chin (B, N)."""
    mouth, mw, gap = mouth_line(x, shape, lay), shape["mouth_width"], 0.5 * shape["mouth_open"]
    upper = gauss(x, y, 0.0, mouth - 0.0035 - gap, 0.45 * mw, 0.003)
    lower = gauss(x, y, 0.0, mouth + 0.0045 + gap, 0.4 * mw, 0.0035)
    groove = gauss(x, y, 0.0, mouth, 0.5 * mw, 0.0012 + gap)
    h = shape["lip"] * (upper + 1.2 * lower - 0.6 * groove) - 1.5 * shape["mouth_open"] * groove
    h = h + shape["muzzle"] * gauss(x, y, 0.0, lay["mouth"] - 0.005, 0.03, 0.028)
    h = h - 0.002 * gauss(x, y, 0.0, lay["mouth"] + 0.013, 0.013, 0.004)
    return h + shape["chin"] * gauss(x, y, 0.0, lay["chin"] - 0.017, 0.015, 0.011)


def _upper_face(x, y, shape) -> torch.Tensor:
    """Forehead, brow ridge, eye sockets with eyeballs, cheekbones (B, N), symmetric in x."""
    ax, eye_y, eye_x = x.abs(), shape["eye_y"], shape["eye_x"]
    h = shape["forehead"] * gauss(x, y, 0.0, eye_y - 0.045, 0.045, 0.03)
    brow = gauss(ax, y, 0.9 * eye_x, eye_y - 0.013, 0.02, 0.006) + 0.5 * gauss(x, y, 0.0, eye_y - 0.012, 0.01, 0.007)
    h = h + shape["brow"] * brow
    h = h - shape["socket"] * gauss(ax, y, eye_x, eye_y + 0.001, 0.0135, 0.0105)
    h = h + 0.3 * shape["socket"] * gauss(ax, y, eye_x, eye_y, 0.008, 0.0055)
    return h + shape["cheek"] * gauss(ax, y, eye_x + 0.012, eye_y + 0.022, 0.015, 0.012)


def _asymmetric_bumps(x, y, shape) -> torch.Tensor:
    """Sum of the K random asymmetric Gaussian bumps (B, N)."""
    bx, by, sigma, amp = (v.unsqueeze(-1) for v in shape["bumps"].unbind(2))  # (B, K, 1) each
    by = by + shape["eye_y"].unsqueeze(-1)
    g = gauss(x.unsqueeze(1), y.unsqueeze(1), bx, by, sigma, sigma)  # (B, K, N)
    return (amp * g).sum(1)


def head_height(x: torch.Tensor, y: torch.Tensor, shape: dict[str, torch.Tensor]) -> torch.Tensor:
    """Height ``h`` (B, N) of the head towards the camera above its rim, at canonical points (B, N) x, y."""
    lay = layout(shape)
    rho = outline_radius(x, y, shape, lay).clamp(0.0, 1.0)
    base = shape["depth"] * (1.0 - rho ** shape["flatness"]).clamp(min=1e-8).sqrt()
    features = _upper_face(x, y, shape) + _nose(x, y, shape, lay) + _mouth_and_chin(x, y, shape, lay)
    features = features + shape["hair_volume"] * hair_mask(x, y, shape, lay) + _asymmetric_bumps(x, y, shape)
    return base + features * (1.0 - smoothstep(0.8, 1.0, rho))


def head_grid(size: int) -> tuple[int, int]:
    """Rows and columns of the head vertex grid for an image of ``size`` pixels (about 3 mm apart at 64 px)."""
    size = max(size, MIN_GRID_SIZE)
    return round(1.0 * size) + 1, round(0.75 * size) + 1


def neck_grid(size: int) -> tuple[int, int]:
    """Rows and columns of the neck vertex grid."""
    size = max(size, MIN_GRID_SIZE)
    return round(0.4 * size) + 1, round(0.3 * size) + 1


def head_points(shape: dict[str, torch.Tensor], rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Canonical (x, y) of the head grid vertices, each (B, rows·cols), row-major, border on the silhouette."""
    lay = layout(shape)
    device = shape["eye_y"].device
    t, s = torch.meshgrid(
        torch.linspace(-1.0, 1.0, rows, device=device), torch.linspace(-1.0, 1.0, cols, device=device), indexing="ij"
    )
    shrink = 1.0 - 1e-4  # keep the border vertices just inside the outline, where the cap is finite
    p = (s * (1.0 - 0.5 * t * t).sqrt() * shrink).reshape(1, -1)
    q = (t * (1.0 - 0.5 * s * s).sqrt() * shrink).reshape(1, -1)
    y = lay["y_c"] + lay["b"] * q
    x = half_width(q, shape) * p
    return x, y


def grid_normals(points: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Unit vertex normals (B, N, 3) of a row-major vertex grid (B, rows·cols, 3) whose columns run along +x and
    rows along +y (:func:`unsup3d.geometry.normals_from_points`, one-sided on the border): a fronto-parallel grid
    has ``(0, 0, 1)``, pointing away from the camera as in ``docs/conventions.md``."""
    grid = points.view(points.shape[0], rows, cols, 3)
    return normals_from_points(grid, border="one_sided").reshape(points.shape)


def head_surface(shape: dict[str, torch.Tensor], rows: int, cols: int) -> torch.Tensor:
    """Head vertices (B, rows·cols, 3) in the canonical frame, ``z = z_rim − h`` with the mean height of the
    in-frame face at depth 1."""
    x, y = head_points(shape, rows, cols)
    h = head_height(x, y, shape)
    in_frame = (x.abs() < FRAME_HALF) & (y.abs() < FRAME_HALF)
    z_rim = 1.0 + (h * in_frame).sum(1, keepdim=True) / in_frame.sum(1, keepdim=True)
    return torch.stack([x.expand_as(h), y.expand_as(h), z_rim - h], dim=-1)


def neck_surface(shape: dict[str, torch.Tensor], z_front: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Neck vertices (B, rows·cols, 3): a vertical half-cylinder whose front is at depth ``z_front`` (B, 1),
    from mouth height (hidden behind the face, with a rounded top) down below the image."""
    lay = layout(shape)
    device = z_front.device
    u, v = torch.meshgrid(
        torch.linspace(0.0, 1.0, rows, device=device), torch.linspace(-1.0, 1.0, cols, device=device), indexing="ij"
    )
    top = lay["chin"] - NECK_TOP
    y = top + (NECK_BOTTOM - top) * u.reshape(1, -1) ** 1.5  # rows denser near the rounded top
    cap = ((y - top) / NECK_CAP).clamp(max=1.0)
    radius = shape["neck_radius"] * (1.0 - (1.0 - cap) ** 2).clamp(min=0.0).sqrt()
    phi = (v * 0.47 * math.pi).reshape(1, -1)
    x = radius * phi.sin()
    z = z_front + radius * (1.0 - phi.cos())
    return torch.stack([x, y, z], dim=-1)


def object_faces(size: int, device=None) -> torch.Tensor:
    """(F, 3) long faces of the head grid followed by the neck grid (vertex order of :func:`object_mesh`)."""
    head_rows, head_cols = head_grid(size)
    neck_rows, neck_cols = neck_grid(size)
    head = grid_faces(head_rows, head_cols, device=device)
    neck = grid_faces(neck_rows, neck_cols, device=device) + head_rows * head_cols
    return torch.cat([head, neck], dim=0)


def object_mesh(shape: dict[str, torch.Tensor], size: int):
    """Head and neck of a batch of identities in the canonical frame.

    Args:
        shape: stacked shape parameters (see :func:`stack_params`).
        size: image size, sets the mesh resolution.
    Returns:
        points (B, N, 3), normals (B, N, 3), and ``is_head`` (N,) bool (False for neck vertices).
    """
    head_rows, head_cols = head_grid(size)
    neck_rows, neck_cols = neck_grid(size)
    head_pts = head_surface(shape, head_rows, head_cols)
    head_nrm = grid_normals(head_pts, head_rows, head_cols)
    z_rim = head_pts[:, 0, 2:3]  # border vertices are at the rim
    neck_pts = neck_surface(shape, z_rim - 0.004, neck_rows, neck_cols)
    neck_nrm = grid_normals(neck_pts, neck_rows, neck_cols)
    is_head = torch.zeros(head_pts.shape[1] + neck_pts.shape[1], dtype=torch.bool, device=head_pts.device)
    is_head[: head_pts.shape[1]] = True
    return torch.cat([head_pts, neck_pts], 1), torch.cat([head_nrm, neck_nrm], 1), is_head
