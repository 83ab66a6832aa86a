"""Albedo of the synthetic cars, evaluated per pixel at canonical surface points.

As for the faces (:mod:`.face_textures`, whose painting primitives this module reuses), the albedo is a
function of the canonical point ``(x, y)`` (metres, see :mod:`.car_shapes`) and the part (body or
tyre), prefiltered to the pixel footprint. Symmetric features: paint (13 colours) with low-frequency and fine
variation, a black roof (20 %), racing stripes (12 %), tinted windscreen glass, headlamps with projector lenses,
indicators (50 %), a dark (85 %) or chrome grille with slats and a chrome surround (35 %), a badge, a black lower
bumper (50 %), an air intake, fog lamps (35 %), rubber tyres with tread noise. Asymmetric features: part of the
paint noise, a reflection streak across the windscreen, wipers parked towards one side, a white or yellow (30 %)
licence plate (85 %) up to 8 mm off centre with random characters, a windscreen sticker in one corner (25 %),
scratches (40 % each of 2), mud on one side (30 %), and (from the shape) dents and a skewed bumper.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from unsup3d.synthetic.car_shapes import box, grille_row, lamp_row, layout
from unsup3d.synthetic.face_shapes import gauss
from unsup3d.synthetic.paint import col, grid_noise, line, mix, pick, step

PAINTS = np.array(
    [
        [0.88, 0.88, 0.86],  # white
        [0.66, 0.68, 0.70],  # silver
        [0.38, 0.39, 0.41],  # grey
        [0.12, 0.12, 0.13],  # black
        [0.72, 0.08, 0.07],  # red
        [0.42, 0.05, 0.07],  # dark red
        [0.12, 0.25, 0.62],  # blue
        [0.08, 0.12, 0.30],  # navy
        [0.45, 0.62, 0.80],  # light blue
        [0.14, 0.36, 0.20],  # green
        [0.90, 0.72, 0.10],  # yellow
        [0.88, 0.38, 0.08],  # orange
        [0.70, 0.60, 0.45],  # beige
    ]
)
NUM_SCRATCHES = 2
PLATE_HALF = (0.016, 0.0042)  # half-size of the licence plate, metres
WIPER_PIVOTS = (-0.6, 0.15)  # wiper pivots relative to the windscreen's half-width, mirrored with the side


def sample_albedo(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw the albedo parameters of one car (colours, feature sizes, noise grids, marks)."""
    u = rng.uniform
    paint = pick(rng, PAINTS, 0.1)
    chrome = u(0.55, 0.8)
    p = {
        "paint": paint,
        "paint_noise": u(0.02, 0.06),
        "noise_sym": rng.standard_normal((1, 6, 6)),
        "noise_asym": rng.standard_normal((1, 8, 8)),
        "fine": u(0.005, 0.02) * rng.standard_normal((1, 72, 48)),
        "roof": np.concatenate([[rng.random() < 0.2], u(0.04, 0.12) * np.ones(3)]),
        "stripes": np.concatenate([[rng.random() < 0.12, u(0.004, 0.012), u(0.002, 0.005)], _stripe_colour(rng)]),
        "glass": u(0.04, 0.14) * u(0.85, 1.15, 3),
        "reflection": np.array([u(-0.04, 0.04), u(-1.5, 1.5), u(0.003, 0.01), u(0.1, 0.45)]),
        "lamp": u(0.65, 0.95) * u(0.92, 1.05, 3),
        "lamp_shape": np.array([u(-0.25, 0.4), u(0.3, 0.6), rng.random() < 0.5]),  # slant, lens size, indicator
        "grille": u(0.03, 0.18) * np.ones(3) if rng.random() < 0.85 else chrome * np.ones(3),
        "slats": np.array([u(0.0025, 0.004), u(0.2, 0.8), chrome * (rng.random() < 0.35)]),  # period, contrast
        "badge": np.array([u(0.002, 0.0035), u(0.6, 0.95)]),
        "trim": np.concatenate([[rng.random() < 0.5, u(0.62, 0.72)], u(0.06, 0.18) * np.ones(3)]),
        "intake": np.array([u(0.3, 0.8), rng.random() < 0.35]),  # darkness, fog lamps
        "plate": np.array([rng.random() < 0.85, u(-0.008, 0.008), u(0.9, 1.1)]),  # on, lateral shift, scale
        "plate_colour": np.array([0.88, 0.88, 0.86]) if rng.random() < 0.7 else np.array([0.86, 0.7, 0.1]),
        "plate_text": rng.standard_normal((1, 3, 14)),
        "tyre": u(0.04, 0.1) * np.ones(3),
        "tread": u(2.0, 5.0),
        "white_balance": u(0.94, 1.06, 3),
    }
    p.update(_sample_marks(rng))
    return {k: np.asarray(v, dtype=np.float32) for k, v in p.items()}


def _stripe_colour(rng: np.random.Generator) -> np.ndarray:
    return np.full(3, 0.9) if rng.random() < 0.5 else np.full(3, 0.08)


def _sample_marks(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Asymmetric marks: wipers, a windscreen sticker, scratches and mud."""
    u = rng.uniform
    k = NUM_SCRATCHES
    scratches = np.stack(
        [u(-0.06, 0.06, k), u(-0.02, 0.04, k), u(0, np.pi, k), u(0.005, 0.025, k), u(0.0004, 0.0008, k)], 1
    )
    scratches[:, 4] *= rng.random(k) < 0.4
    return {
        "wipers": np.array([rng.choice([-1.0, 1.0]), u(0.45, 0.7), u(0.0005, 0.0009)]),  # side, length, width
        "sticker": np.concatenate([[rng.random() < 0.25, rng.choice([-1.0, 1.0]), u(0.004, 0.008)], u(0, 1, 3)]),
        "scratches": scratches,
        "mud": np.array([rng.random() < 0.3, rng.choice([-1.0, 1.0]), u(0.015, 0.04), u(0.3, 0.7)]),
    }


def _rect(dx: torch.Tensor, dy: torch.Tensor, half_x, half_y, aa: float, soft: float = 0.0004) -> torch.Tensor:
    """Prefiltered rectangle (B, N) of half-sizes ``half_x, half_y`` around offsets ``dx, dy`` from its centre: a
    :func:`.car_shapes.box` whose edges are widened by the anti-aliasing scale as :func:`_step`'s are."""
    return box(dx, dy, half_x, half_y, math.hypot(soft, aa))


def _local_grid(grid: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Bilinear samples (B, N) of grids (B, 1, h, w) spanning ``u, v ∈ [−1, 1]`` at points (B, N)."""
    coords = torch.stack([u, v], dim=-1).unsqueeze(1)
    return F.grid_sample(grid, coords, mode="bilinear", padding_mode="border", align_corners=True)[:, 0, 0]


def _paint(x, y, tex, shape, lay, aa) -> torch.Tensor:
    """Paint with low-frequency and fine variation, racing stripes and a black roof (B, 3, N)."""
    lum = grid_noise(tex["noise_sym"], x.abs(), y) + 0.7 * grid_noise(tex["noise_asym"], x, y)
    lum = 1.0 + tex["paint_noise"].unsqueeze(-1) * lum + grid_noise(tex["fine"], x, y)
    colour = col(tex["paint"]) * lum
    on, offset, half = tex["stripes"][:, :3].unsqueeze(-1).unbind(1)
    stripes = _rect(x.abs() - offset - half, y - lay["y0"], half, lay["y3"] - lay["y0"], aa)
    colour = mix(colour, col(tex["stripes"][:, 3:6]), on * stripes)
    roof = step(lay["y1"] - y, 0.0004, aa) * tex["roof"][:, :1]
    return mix(colour, col(tex["roof"][:, 1:4]), roof)


def _windscreen(colour, x, y, tex, shape, lay, aa) -> torch.Tensor:
    """Tinted glass narrowing towards the roof, a reflection streak, parked wipers and a sticker (B, 3, N)."""
    top, bottom = lay["y1"] + 0.0015, lay["y2"] - 0.001
    along = ((y - top) / (bottom - top)).clamp(0.0, 1.0)
    half = lay["screen_hw"] * (0.9 + 0.1 * along)
    glass = step(half - x.abs(), 0.0006, aa) * step(y - top, 0.0005, aa) * step(bottom - y, 0.0005, aa)
    offset, slope, width, strength = tex["reflection"].unsqueeze(-1).unbind(1)
    streak = strength * torch.exp(-0.5 * ((x - offset - slope * (y - 0.5 * (top + bottom))) / width) ** 2)
    pane = col(tex["glass"]) + streak.unsqueeze(1) * (0.9 - col(tex["glass"]))
    colour = mix(colour, pane, glass)
    side, length, thick = tex["wipers"].unsqueeze(-1).unbind(1)
    for pivot in WIPER_PIVOTS:
        start = side * pivot * lay["screen_hw"]
        s = (x - start) * side / (length * lay["screen_hw"])  # 0 at the pivot, 1 at the tip
        wiper = line(y - bottom + 0.0015 + 0.004 * s, thick, aa) * step(s, 0.02, 0.0) * step(1 - s, 0.02, 0.0)
        colour = mix(colour, colour.new_full((1, 3, 1), 0.05), 0.9 * wiper)
    on, sticker_side, size = tex["sticker"][:, :3].unsqueeze(-1).unbind(1)
    corner = sticker_side * (0.9 * lay["screen_hw"] - size - 0.002)
    sticker = _rect(x - corner, y - top - size - 0.002, size, size, aa)
    return mix(colour, col(tex["sticker"][:, 3:6]), on * sticker)


def _lamps(colour, x, y, tex, shape, lay, aa) -> torch.Tensor:
    """Slanted headlamps with a projector lens each, and amber indicators at their outer ends (B, 3, N)."""
    hw, ax = shape["half_width"], x.abs()
    slant, lens, indicator = tex["lamp_shape"].unsqueeze(-1).unbind(1)
    dx = ax - shape["lamp_x"] * hw
    dy = y - lamp_row(shape, lay) - slant * dx
    lamp = _rect(dx, dy, shape["lamp_width"], shape["lamp_height"], aa)
    colour = mix(colour, col(tex["lamp"]), lamp)
    radius = lens * shape["lamp_height"]
    lens_ring = step(radius - torch.sqrt((dx + 0.3 * shape["lamp_width"]) ** 2 + dy**2), 0.0003, aa)
    colour = mix(colour, col(tex["lamp"]) * 0.45, lamp * lens_ring)
    amber = colour.new_tensor([0.95, 0.5, 0.08]).view(1, 3, 1)
    ends = _rect(dx - shape["lamp_width"] + 0.003, dy, 0.0025, shape["lamp_height"], aa)
    return mix(colour, amber, indicator * lamp * ends)


def _grille(colour, x, y, tex, shape, lay, aa) -> torch.Tensor:
    """Grille with horizontal slats (attenuated by the prefilter), a chrome surround and a badge (B, 3, N)."""
    half_x, half_y = shape["grille_width"] * shape["half_width"], shape["grille_height"]
    dy = y - grille_row(shape, lay)
    inside = _rect(x, dy, half_x, half_y, aa)
    period, contrast, chrome = tex["slats"].unsqueeze(-1).unbind(1)
    blur = torch.exp(-2.0 * (torch.pi * aa / period) ** 2)  # Gaussian prefilter of the cosine
    slats = 1.0 + contrast * blur * torch.cos(2.0 * torch.pi * dy / period)
    colour = mix(colour, col(tex["grille"]) * slats.unsqueeze(1), inside)
    frame = _rect(x, dy, half_x + 0.0012, half_y + 0.0012, aa) - inside
    colour = mix(colour, chrome.unsqueeze(1).expand(-1, 3, -1), (chrome > 0) * frame)
    radius, shine = tex["badge"].unsqueeze(-1).unbind(1)
    badge = step(radius - torch.sqrt(x * x + (dy + 0.5 * half_y) ** 2), 0.0003, aa)
    return mix(colour, shine.unsqueeze(1).expand(-1, 3, -1), badge)


def _bumper(colour, x, y, tex, shape, lay, aa) -> torch.Tensor:
    """Black lower bumper, air intake, fog lamps and the licence plate with random characters (B, 3, N)."""
    front, hw = shape["front_len"], shape["half_width"]
    on, trim_top = tex["trim"][:, :1], tex["trim"][:, 1:2]
    colour = mix(colour, col(tex["trim"][:, 2:5]), on * step(y - lay["y3"] - trim_top * front, 0.0004, aa))
    darkness, fog = tex["intake"].unsqueeze(-1).unbind(1)
    intake_y = lay["y4"] - 0.15 * front
    colour = mix(colour, colour * 0.15, darkness * _rect(x, y - intake_y, 0.55 * hw, 0.0035, aa))
    fog_lamp = step(0.0028 - torch.sqrt((x.abs() - 0.78 * hw) ** 2 + (y - intake_y) ** 2), 0.0003, aa)
    colour = mix(colour, col(tex["lamp"]), fog * fog_lamp)
    plate_on, shift, scale = tex["plate"].unsqueeze(-1).unbind(1)
    half_x, half_y = PLATE_HALF[0] * scale, PLATE_HALF[1] * scale
    dx, dy = x - shift, y - lay["y3"] - 0.7 * front
    colour = mix(colour, col(tex["plate_colour"]), plate_on * _rect(dx, dy, half_x, half_y, aa))
    glyphs = torch.sigmoid(_local_grid(tex["plate_text"], dx / (0.85 * half_x), dy / (0.6 * half_y)) * 4.0)
    text = plate_on * _rect(dx, dy, 0.85 * half_x, 0.6 * half_y, aa) * glyphs
    return mix(colour, colour.new_full((1, 3, 1), 0.06), 0.9 * text)


def _marks(colour, x, y, tex, lay, aa) -> torch.Tensor:
    """Asymmetric scratches (light lines) and mud on one side near the bottom (B, 3, N)."""
    sx, sy, angle, length, width = (v.transpose(0, 1).unsqueeze(-1) for v in tex["scratches"].unbind(2))  # (K,B,1)
    dx, dy = x - sx, y - sy
    along = dx * angle.cos() + dy * angle.sin()
    across = dy * angle.cos() - dx * angle.sin()
    scratch = line(across, width.clamp(min=1e-5), aa) * step(length - along.abs(), 0.001, 0.0) * (width > 0)
    colour = mix(colour, colour * 0.4 + 0.55, 0.8 * scratch.amax(0))
    on, side, extent, strength = tex["mud"].unsqueeze(-1).unbind(1)
    splash = gauss(x, y, side * 0.05, lay["y4"], extent, 0.6 * extent)
    splash = splash * (1.0 + grid_noise(tex["noise_asym"], y, x)[:, 0])
    mud = colour.new_tensor([0.3, 0.22, 0.14]).view(1, 3, 1)
    return mix(colour, mud, (on * strength * splash).clamp(0.0, 1.0))


def _tyre(x, y, tex) -> torch.Tensor:
    """Rubber with tread noise (B, 3, N)."""
    tread = 1.0 + tex["tread"].unsqueeze(-1) * grid_noise(tex["fine"], x, 3.0 * y)
    return col(tex["tyre"]) * tread.clamp(min=0.2)


def albedo(x: torch.Tensor, y: torch.Tensor, is_tyre: torch.Tensor, tex, shape, aa: float = 0.0) -> torch.Tensor:
    """Albedo at canonical surface points.

    Args:
        x, y: (B, N) canonical coordinates in metres.
        is_tyre: (B, N) bool, True for points on a tyre.
        tex, shape: stacked albedo and shape parameters.
        aa: anti-aliasing scale in metres (about a quarter of a pixel's footprint): sharp edges and thin lines
            are prefiltered to this width.
    Returns:
        (B, 3, N) albedo in [0, 1].
    """
    lay = layout(shape)
    body = _paint(x, y, tex, shape, lay, aa)
    body = _windscreen(body, x, y, tex, shape, lay, aa)
    body = _grille(body, x, y, tex, shape, lay, aa)
    body = _lamps(body, x, y, tex, shape, lay, aa)
    body = _bumper(body, x, y, tex, shape, lay, aa)
    body = _marks(body, x, y, tex, lay, aa)
    colour = torch.where(is_tyre.unsqueeze(1), _tyre(x, y, tex), body)
    return (colour * col(tex["white_balance"])).clamp(0.0, 1.0)
