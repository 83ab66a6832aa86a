"""Albedo of the synthetic faces, evaluated per pixel at canonical surface points.

The albedo is a function of the canonical point ``(x, y)`` (metres, see :mod:`.face_shapes`) and the part
(head or neck), so it is sharp at any resolution. Symmetric features: skin tone with low-frequency variation,
cheek and nose redness, eye-socket darkening, eyes (sclera, iris, pupil, lid line), brows, nostrils, lips and
the mouth line, hair (top, sides) with strands, an optional beard and glasses, and a neck with optional
clothing. Asymmetric features: part of the skin noise, gaze, moles, blemishes, a coloured patch, loose hair
strands on one side, and (from the shape) a tilted hairline, a one-sided fringe and a tilted mouth.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from unsup3d.extras import require
from unsup3d.ops import gaussian_blur
from unsup3d.synthetic.face_shapes import gauss, gauss_radius, hair_mask, layout, mouth_line
from unsup3d.synthetic.paint import col, grid_noise, line, mix, pick, step

# Skin tones from light to dark (linear interpolation between neighbours), RGB in [0, 1].
SKIN_TONES = np.array(
    [[0.90, 0.74, 0.64], [0.80, 0.60, 0.48], [0.64, 0.44, 0.32], [0.42, 0.28, 0.20], [0.28, 0.18, 0.13]]
)
HAIR_COLOURS = np.array(
    [
        [0.05, 0.04, 0.04],
        [0.16, 0.10, 0.07],
        [0.32, 0.20, 0.12],
        [0.70, 0.56, 0.36],
        [0.50, 0.22, 0.10],
        [0.60, 0.59, 0.57],
    ]
)
IRIS_COLOURS = np.array(
    [[0.28, 0.16, 0.08], [0.10, 0.07, 0.05], [0.30, 0.42, 0.58], [0.32, 0.42, 0.28], [0.42, 0.32, 0.18]]
)
NUM_MOLES, NUM_BLEMISHES, NUM_STRANDS = 5, 6, 3


def _skin(rng: np.random.Generator) -> np.ndarray:
    pos = rng.uniform(0, len(SKIN_TONES) - 1)
    i = min(int(pos), len(SKIN_TONES) - 2)
    tone = SKIN_TONES[i] + (pos - i) * (SKIN_TONES[i + 1] - SKIN_TONES[i])
    return (tone * rng.uniform(0.96, 1.04, 3)).clip(0.0, 1.0)


def sample_albedo(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw the albedo parameters of one identity (colours, feature sizes, noise grids, marks)."""
    u = rng.uniform
    skin = _skin(rng)
    hair = pick(rng, HAIR_COLOURS, 0.2)
    p = {
        "skin": skin,
        "skin_noise": u(0.03, 0.09),
        "noise_sym": rng.standard_normal((1, 6, 6)),
        "noise_asym": rng.standard_normal((1, 8, 8)),
        "chroma": 0.03 * rng.standard_normal((3, 6, 6)),
        "fine": u(0.01, 0.04) * rng.standard_normal((1, 72, 48)),
        "redness": u(0.0, 0.35),
        "eye_shadow": u(0.0, 0.25),
        "eye": np.array([u(0.011, 0.0135), u(0.0035, 0.0055), u(0.0048, 0.006), u(0.0017, 0.0025)]),
        "iris": pick(rng, IRIS_COLOURS, 0.25),
        "sclera": np.array([0.86, 0.82, 0.78]) * u(0.75, 1.0),
        "gaze": np.array([u(-0.0025, 0.0025), u(-0.001, 0.001)]),
        "brow": np.array([u(0.0025, 0.0045), u(0.5, 0.95), u(2.0, 14.0), u(0.011, 0.016)]),
        "hair": hair,
        "strand_amp": u(0.15, 0.4),
        "strand_grid": rng.standard_normal((1, 6, 64)),
        "lip": skin * np.array([u(0.75, 0.9), u(0.45, 0.62), u(0.5, 0.66)]),
        "beard": u(0.3, 0.85) * (rng.random() < 0.15),
        "glasses": np.concatenate([[rng.random() < 0.1, u(0.0012, 0.0025)], u(0.0, 0.3, 3)]),
        "neck": np.concatenate([[u(0.75, 0.95), rng.random() < 0.75, u(0.03, 0.07), u(0.0, 0.03)], u(0.05, 0.9, 3)]),
        "white_balance": u(0.94, 1.06, 3),
    }
    if rng.random() < 0.15:  # lipstick
        p["lip"] = np.array([u(0.45, 0.8), u(0.04, 0.2), u(0.08, 0.3)])
    p.update(_sample_marks(rng))
    return {k: np.asarray(v, dtype=np.float32) for k, v in p.items()}


def _sample_marks(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Asymmetric marks: moles, blemishes, a coloured patch and loose hair strands."""
    u = rng.uniform
    moles = np.stack([u(-0.06, 0.06, NUM_MOLES), u(-0.05, 0.09, NUM_MOLES), u(0.0008, 0.0022, NUM_MOLES)], 1)
    moles[:, 2] *= rng.random(NUM_MOLES) < 0.5
    blemishes = np.stack([u(-0.06, 0.06, 6), u(-0.05, 0.09, 6), u(0.002, 0.006, 6), u(0.0, 0.25, 6)], 1)
    blemishes[:, 3] *= rng.random(NUM_BLEMISHES) < 0.4
    patch = np.concatenate([[u(-0.05, 0.05), u(-0.04, 0.08), u(0.008, 0.03), u(0.008, 0.03)], [u(0, np.pi)]])
    patch = np.concatenate([patch, [u(0.4, 0.9) * (rng.random() < 0.25)], u(0.0, 1.0, 3)])
    side = rng.choice([-1.0, 1.0])
    strands = np.stack(
        [
            side * u(0.0, 0.05, NUM_STRANDS),  # x at the hairline
            u(-0.005, 0.01, NUM_STRANDS),  # start below the hairline
            side * u(-0.01, 0.03, NUM_STRANDS),  # lateral drift over the length
            u(-0.02, 0.02, NUM_STRANDS),  # bend
            u(0.02, 0.07, NUM_STRANDS),  # length
            u(0.0006, 0.0015, NUM_STRANDS) * (rng.random() < 0.35),  # width (0: none)
        ],
        1,
    )
    return {"moles": moles, "blemishes": blemishes, "patch": patch, "strands": strands}


def _skin_layer(x, y, tex, shape, lay) -> torch.Tensor:
    """Skin with low-frequency and fine variation, redness and eye-socket darkening (B, 3, N)."""
    ax = x.abs()
    lum = grid_noise(tex["noise_sym"], ax, y) + 0.7 * grid_noise(tex["noise_asym"], x, y)
    lum = 1.0 + tex["skin_noise"].unsqueeze(-1) * lum + grid_noise(tex["fine"], x, y)
    colour = col(tex["skin"]) * lum + grid_noise(tex["chroma"], ax, y)
    eye_x, eye_y = shape["eye_x"], shape["eye_y"]
    red = gauss(ax, y, eye_x + 0.01, eye_y + 0.03, 0.015, 0.013) + gauss(x, y, 0, lay["nose_tip"] - 0.003, 0.006, 0.006)
    colour = mix(colour, colour * colour.new_tensor([1.12, 0.82, 0.82]).view(1, 3, 1), tex["redness"] * red)
    shadow = tex["eye_shadow"] * gauss(ax, y, eye_x, eye_y - 0.003, 0.016, 0.01)
    return colour * (1.0 - shadow).unsqueeze(1)


def _eyes(colour, x, y, tex, shape, aa) -> torch.Tensor:
    """Almond eye openings with sclera, iris (with gaze), pupil and a dark upper lid line."""
    ew, eh, iris_r, pupil_r = tex["eye"].unsqueeze(-1).unbind(1)
    dx = x.abs() - shape["eye_x"]
    dy = y - shape["eye_y"]
    half = eh * (1.0 - (dx / ew) ** 2)
    opening = step(half - dy.abs(), 0.0004, aa)
    gx, gy = tex["gaze"][:, :1], tex["gaze"][:, 1:]
    r = torch.sqrt((dx - torch.sign(x) * gx) ** 2 + (dy - gy) ** 2)
    colour = mix(colour, col(tex["sclera"]), opening)
    colour = mix(colour, col(tex["iris"]), opening * step(iris_r - r, 0.0004, aa))
    dark = colour.new_full((1, 3, 1), 0.04)
    colour = mix(colour, dark, opening * step(pupil_r - r, 0.0003, aa))
    lid = line(dy + half, 0.0007, aa) * step(ew - dx.abs(), 0.0005, aa)
    return mix(colour, dark, 0.8 * lid)


def _brows(colour, x, y, tex, shape, aa) -> torch.Tensor:
    """Eyebrows: hair-coloured arcs above the eyes, thinning outwards."""
    thick, alpha, arch, offset = tex["brow"].unsqueeze(-1).unbind(1)
    dx = x.abs() - shape["eye_x"] + 0.002
    centre = shape["eye_y"] - offset + arch * dx * dx
    width = thick * (1.0 - 0.5 * ((dx + 0.017) * (1 / 0.038)).clamp(0, 1))
    brow = step(width - (y - centre).abs(), 0.0005, aa) * step(0.021 - dx, 0.001, aa) * step(dx + 0.017, 0.001, aa)
    return mix(colour, col(tex["hair"]) * 0.8, alpha * brow)


def _nose_and_mouth(colour, x, y, tex, shape, lay, aa) -> torch.Tensor:
    """Nostrils, lips, the mouth line, and the dark mouth with upper teeth when it is open."""
    nostril = gauss_radius(
        (x - shape["nose_bend"]).abs(), y, 0.7 * shape["nose_width"], lay["nose_tip"] + 0.004, 0.0028, 0.0016
    )
    colour = mix(colour, colour * 0.25, 0.9 * step(1.0 - nostril, 0.15, 0.0))
    mouth, mw, gap = mouth_line(x, shape, lay), shape["mouth_width"], 0.5 * shape["mouth_open"]
    upper = gauss(x, y, 0, mouth - 0.0035 - gap, 0.5 * mw, 0.0028)
    lips = torch.maximum(upper, gauss(x, y, 0, mouth + 0.004 + gap, 0.45 * mw, 0.0035))
    colour = mix(colour, col(tex["lip"]), torch.sigmoid((lips - 0.45) * (1 / 0.06)))
    window = gauss(x, y, 0, mouth, 0.5 * mw, 1.0)
    colour = mix(colour, colour * 0.3, 0.8 * line(y - mouth, 0.0008, aa) * window)
    inside = step(gap - (y - mouth).abs(), 0.0003, aa) * step(0.42 * mw - x.abs(), 0.001, aa)
    colour = mix(colour, colour.new_tensor([0.22, 0.07, 0.07]).view(1, 3, 1), inside)
    teeth = inside * step(mouth - gap * 0.2 - y, 0.0003, aa) * (gap > 0.0015)
    return mix(colour, colour.new_tensor([0.85, 0.82, 0.74]).view(1, 3, 1), teeth)


def _hair(colour, x, y, tex, shape, lay, aa) -> torch.Tensor:
    """Hair (top, sides, fringe) with vertical strands, an optional beard, and loose strands on one side."""
    strands = 1.0 + tex["strand_amp"].unsqueeze(-1) * grid_noise(tex["strand_grid"], x, y)
    hair_colour = col(tex["hair"]) * strands
    coverage = hair_mask(x, y, shape, lay)
    beard = gauss(x, y, 0, lay["mouth"] + 0.008, 0.035, 0.03) * torch.sigmoid((y - lay["nose_tip"] - 0.006) * 500)
    coverage = torch.maximum(coverage, tex["beard"] * beard)
    hairline = shape["eye_y"] - shape["hairline"]
    x0, y0, drift, bend, length, width = (v.transpose(0, 1).unsqueeze(-1) for v in tex["strands"].unbind(2))
    s = (y - hairline - y0) / length  # (K, B, N)
    curve = x0 + drift * s + bend * s * (1 - s)
    loose = (line(x - curve, width, aa) * step(s, 0.05, 0.0) * step(1 - s, 0.05, 0.0) * (width > 0)).amax(0)
    return mix(colour, hair_colour, torch.maximum(coverage, 0.9 * loose))


def _marks(colour, x, y, tex, shape, aa) -> torch.Tensor:
    """Asymmetric moles, blemishes and a coloured patch."""
    eye_y = shape["eye_y"]
    mx, my, r = (v.transpose(0, 1).unsqueeze(-1) for v in tex["moles"].unbind(2))  # (K, B, 1)
    moles = (step(r - torch.sqrt((x - mx) ** 2 + (y - eye_y - my) ** 2), 0.0003, aa) * (r > 0)).amax(0)
    colour = mix(colour, colour * colour.new_tensor([0.35, 0.25, 0.2]).view(1, 3, 1), moles)
    bx, by, br, strength = (v.transpose(0, 1).unsqueeze(-1) for v in tex["blemishes"].unbind(2))
    spots = (strength * gauss(x, y, bx, eye_y + by, br, br)).amax(0)
    colour = mix(colour, colour * colour.new_tensor([1.1, 0.7, 0.7]).view(1, 3, 1), spots)
    px, py, rx, ry, angle, alpha = tex["patch"][:, :6].unsqueeze(-1).unbind(1)
    cos, sin = angle.cos(), angle.sin()
    dx, dy = x - px, y - eye_y - py
    radius = gauss_radius(cos * dx + sin * dy, cos * dy - sin * dx, 0, 0, rx, ry)
    return mix(colour, col(tex["patch"][:, 6:9]), alpha * torch.sigmoid((1.0 - radius) * 20))


def _glasses(colour, x, y, tex, shape, aa) -> torch.Tensor:
    """Thin frames around both eyes and a bridge (symmetric)."""
    on, thick = tex["glasses"][:, :1], tex["glasses"][:, 1:2]
    radius = gauss_radius(x.abs(), y, shape["eye_x"] + 0.002, shape["eye_y"] + 0.002, 0.021, 0.016).sqrt()
    ring = line((radius - 1.0) * 0.018, thick, aa)
    bridge = line(y - shape["eye_y"] + 0.004, thick, aa) * (x.abs() < shape["eye_x"] - 0.018)
    return mix(colour, col(tex["glasses"][:, 2:5]), on * torch.maximum(ring, bridge))


def _neck(skin, x, y, tex, lay, aa) -> torch.Tensor:
    """Neck skin (darker) and optional clothing below a collar line (B, 3, N)."""
    colour = skin * tex["neck"][:, :1].unsqueeze(-1)
    on, collar, v_depth = tex["neck"][:, 1:2], tex["neck"][:, 2:3], tex["neck"][:, 3:4]
    hem = lay["chin"] + collar + v_depth * (1.0 - (x.abs() * 25).clamp(max=1.0))
    fabric = col(tex["neck"][:, 4:7]) * (1.0 + 0.5 * grid_noise(tex["fine"], x, y))
    return mix(colour, fabric, on * step(y - hem, 0.001, aa))


def albedo(x: torch.Tensor, y: torch.Tensor, is_neck: torch.Tensor, tex, shape, aa: float = 0.0) -> torch.Tensor:
    """Albedo at canonical surface points.

    Args:
        x, y: (B, N) canonical coordinates in metres.
        is_neck: (B, N) bool, True for points on the neck.
        tex, shape: stacked albedo and shape parameters.
        aa: anti-aliasing scale in metres (about a quarter of a pixel's footprint): sharp edges and thin lines
            are prefiltered to this width.
    Returns:
        (B, 3, N) albedo in [0, 1].
    """
    lay = layout(shape)
    skin = _skin_layer(x, y, tex, shape, lay)
    face = _eyes(skin, x, y, tex, shape, aa)
    face = _brows(face, x, y, tex, shape, aa)
    face = _nose_and_mouth(face, x, y, tex, shape, lay, aa)
    face = _marks(face, x, y, tex, shape, aa)
    face = _hair(face, x, y, tex, shape, lay, aa)
    face = _glasses(face, x, y, tex, shape, aa)
    colour = torch.where(is_neck.unsqueeze(1), _neck(skin, x, y, tex, lay, aa), face)
    return (colour * col(tex["white_balance"])).clamp(0.0, 1.0)


# --------------------------------------------------------------------------------------------------- backgrounds
PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "brick", "grass", "gravel", "moon", "page",
    "text", "clock", "hubble_deep_field", "immunohistochemistry", "retina", "cell", "colorwheel",
)  # fmt: skip
PHOTO_MAX_SIDE = 384


@functools.lru_cache(maxsize=1)
def bundled_photos() -> tuple[torch.Tensor, ...]:
    """scikit-image's bundled photos (no download) as (3, H, W) float32 in [0, 1], longest side ≤ 384 px."""
    from PIL import Image

    skimage_data = require("skimage.data", "The synthetic face generator (photo backgrounds)")
    photos = []
    for name in PHOTOS:
        image = np.asarray(getattr(skimage_data, name)())
        if image.dtype != np.uint8:
            image = (255 * (image - image.min()) / max(float(np.ptp(image)), 1e-6)).astype(np.uint8)
        pil = Image.fromarray(image).convert("RGB")
        scale = PHOTO_MAX_SIDE / max(pil.size)
        if scale < 1:
            pil = pil.resize((round(pil.size[0] * scale), round(pil.size[1] * scale)), Image.BOX)
        photos.append(torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous())
    return tuple(photos)


def _photo_background(rng: np.random.Generator, size: int) -> torch.Tensor:
    """A random crop (scale, rotation, flip) of a bundled photo with colour jitter, (3, size, size)."""
    photo = bundled_photos()[rng.integers(len(PHOTOS))]
    _, h, w = photo.shape
    frac = rng.uniform(0.15, 0.9)
    sx, sy = frac * min(h, w) / w, frac * min(h, w) / h
    angle = rng.uniform(-np.pi, np.pi) if rng.random() < 0.4 else 0.0
    flip = rng.choice([-1.0, 1.0])
    cx, cy = rng.uniform(-1 + sx, 1 - sx), rng.uniform(-1 + sy, 1 - sy)
    cos, sin = np.cos(angle), np.sin(angle)
    theta = torch.tensor([[[flip * sx * cos, -sx * sin, cx], [flip * sy * sin, sy * cos, cy]]], dtype=torch.float32)
    grid = F.affine_grid(theta, [1, 3, size, size], align_corners=False)
    image = F.grid_sample(photo[None], grid, mode="bilinear", padding_mode="reflection", align_corners=False)[0]
    gray = image.mean(0, keepdim=True)
    if float((image - gray).abs().max()) < 1e-3:  # grayscale photo: tint it
        image = gray * torch.from_numpy(rng.uniform(0.5, 1.2, 3).astype(np.float32)).view(3, 1, 1)
    return _jitter(rng, image)


def _jitter(rng: np.random.Generator, image: torch.Tensor) -> torch.Tensor:
    """Saturation, contrast, brightness and per-channel gain jitter of (3, H, W)."""
    gray = image.mean(0, keepdim=True)
    image = gray + rng.uniform(0.2, 1.3) * (image - gray)
    mean = image.mean()
    image = mean + rng.uniform(0.5, 1.3) * (image - mean)
    gains = torch.from_numpy(rng.uniform(0.75, 1.25, 3).astype(np.float32)).view(3, 1, 1)
    return (image * rng.uniform(0.5, 1.3) * gains).clamp(0.0, 1.0)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> torch.Tensor:
    """(1, size, size) bicubic upsampling of a (cells × cells) normal grid."""
    grid = torch.from_numpy(rng.standard_normal((1, 1, cells, cells)).astype(np.float32))
    return F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=True)[0]


def _procedural_background(rng: np.random.Generator, size: int) -> torch.Tensor:
    """Fractal noise, stripes, a gradient, a checkerboard or soft blobs, (3, size, size)."""
    c1, c2 = (torch.from_numpy(rng.uniform(0.0, 1.0, 3).astype(np.float32)).view(3, 1, 1) for _ in range(2))
    t = torch.linspace(-1.0, 1.0, size)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    angle = rng.uniform(0, np.pi)
    along = xx * np.cos(angle) + yy * np.sin(angle)
    across = -xx * np.sin(angle) + yy * np.cos(angle)
    kind = rng.integers(5)
    if kind == 0:
        field = sum(_smooth_noise(rng, size, 2**o + 2)[0] / 1.6**o for o in range(1, 6))
        field = torch.sigmoid(field * rng.uniform(0.8, 2.5))
    elif kind == 1:
        field = 0.5 + 0.5 * torch.tanh(
            rng.uniform(1, 8) * torch.sin(np.pi * rng.uniform(2, 14) * along + rng.uniform(0, 7))
        )
    elif kind == 2:
        field = (0.5 + 0.5 * along * rng.uniform(0.5, 1.0)).clamp(0, 1)
    elif kind == 3:
        freq = np.pi * rng.uniform(2, 8)
        field = 0.5 + 0.5 * torch.tanh(5 * torch.sin(freq * along) * torch.sin(freq * across))
    else:
        field = torch.zeros(size, size)
        for _ in range(rng.integers(5, 16)):
            r = rng.uniform(0.05, 0.4)
            d2 = (xx - rng.uniform(-1, 1)) ** 2 + (yy - rng.uniform(-1, 1)) ** 2
            field = torch.maximum(field, rng.uniform(0.3, 1.0) * torch.sigmoid((r * r - d2) / (0.2 * r * r)))
    image = c1 + field.unsqueeze(0) * (c2 - c1)
    image = image * (1.0 + 0.15 * _smooth_noise(rng, size, 5)) + rng.uniform(0.0, 0.04) * torch.from_numpy(
        rng.standard_normal((3, size, size)).astype(np.float32)
    )
    return image.clamp(0.0, 1.0)


def sample_background(rng: np.random.Generator, size: int) -> torch.Tensor:
    """A far background, (3, size, size) in [0, 1]: a bundled photo (65 %) or a procedural texture (35 %),
    defocused half of the time."""
    image = _photo_background(rng, size) if rng.random() < 0.65 else _procedural_background(rng, size)
    sigma = rng.uniform(0.3, 2.5) * size / 128 if rng.random() < 0.5 else 0.0
    return gaussian_blur(image, sigma, padding="replicate")
