"""Built-in synthetic face dataset with exact ground truth (depth, view, light, canonical depth, albedo).

Every sample is a textured head-and-neck mesh rendered with the project's rasterizer under the method's own
image formation: Lambertian shading ``albedo · (ka + kd · max(0, ⟨n, l⟩))`` in the canonical frame with
``l = (lx, ly, 1) / |(lx, ly, 1)|`` and normals pointing away from the camera (``docs/conventions.md``), seen
from the viewpoint ``view = (rx, ry, rz, tx, ty, tz)`` of the method's convention
(``X' = R (X − c) + c + t``, ``R = Rz · Ry · Rx``, ``c = (0, 0, 1)``), over a far photographic or procedural
background. Units are metres: the object sits at depth ≈ 1 and the image spans ≈ 0.175 m there (fov 10°).

The object category (``category``, :mod:`.categories`) sets the mesh, the shape and albedo
distributions and their parameters; everything else below is shared. ``face`` (the default) is described here;
``car`` (a car seen from the front and above, 11–14 cm wide, with two front tyres) in
:mod:`.car_shapes` and :mod:`.car_textures`.

Distribution (uniform unless stated; shape details in :mod:`.face_shapes`, albedo in
:mod:`.face_textures`):

- head: width 0.13–0.16 m at the eye line, eye line to chin 9.5–11 cm, ellipsoidal cap 3.5–5 cm deep, nose
  1.4–2.6 cm out of the face (2 cm ± 30 %), total relief (nose tip to rim) ≈ 5.5–8.5 cm; symmetric identity
  parameters (incl. a smile, 20 % open mouths) plus asymmetric deformations of a few mm; a cylindrical neck
  4.2–5.8 cm in radius behind the chin; 6 % bald, 30 % with a one-sided fringe. Meshes are vertex grids about
  3 mm apart at 64 px (finer for larger images).
- albedo: 5 skin tones interpolated, 6 hair colours, 5 iris colours, low-frequency and fine noise; 15 % beard,
  10 % glasses, 15 % lipstick, 75 % clothing on the neck; asymmetric moles, blemishes, a coloured patch (25 %),
  loose hair strands on one side (35 %), gaze.
- pose: yaw ``ry`` ±45°, pitch ``rx`` ±15°, roll ``rz`` ±10°, ``tx, ty`` ±0.012 m, ``tz`` ±0.015 m. Positive
  yaw turns the face towards −u: the nose tip moves to the image left (the +u cheek comes towards the camera).
- light: ``ka`` 0.2–0.6, ``kd`` 0.4–0.9 with ``ka + kd ≤ 1.2``, ``lx, ly`` ±0.8.
- background: a random crop (15–90 % of the short side, 40 % rotated, flipped) of one of 18 photos bundled with
  scikit-image, with colour jitter (65 %), or fractal noise, stripes, a gradient, a checkerboard or blobs (35 %);
  defocused half of the time. It is far away and not part of the depth ground truth.
- camera: colour is evaluated at pixel centres with albedo edges prefiltered to the pixel footprint; silhouettes
  are anti-aliased by coverage of (2S+1)² sub-pixels (half-pixel steps, one on every pixel centre) under a
  [¼, ½, ¼]² tent filter, over the background rendered at the same sub-pixels; 50 % get a Gaussian blur of
  0.3–0.7 px; Gaussian noise of σ 0.002–0.02; values clipped to [0, 1] (ka + kd ≤ 1.2 keeps saturation rare);
  50 % are JPEG-compressed at quality 60–95.
- asymmetric perturbation (off by default; the paper's Table 4): one axis-aligned rectangle of a uniformly random
  colour, each side 20–50 % of the image size (rounded to whole pixels), anywhere inside the image, alpha-blended
  with alpha 0.5–1 onto the finished image, after noise and JPEG, as the paper blends its patches onto the
  finished dataset images. It is drawn after every other choice of the sample, from the same generator, so
  turning it on changes no other pixel and no other value.

The depth ground truth is the exact depth of the rendered mesh along each final pixel-centre ray (the
perspective-correct depth of the winning triangle), NaN where the ray misses the object.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from unsup3d.geometry import FOV_DEGREES, focal_length, project, transform_points
from unsup3d.ops import gaussian_blur
from unsup3d.render import (
    Fragments,
    diffuse_shading,
    interpolate_attributes,
    interpolate_depth,
    lambertian,
    light_direction,
    rasterize,
)
from unsup3d.synthetic import face_shapes as shapes
from unsup3d.synthetic import face_textures as textures
from unsup3d.synthetic.categories import Category, get_category
from unsup3d.viz import to_uint8

GENERATOR_VERSION = "1.0"
POSE_RANGES = {
    "rx": (-math.radians(15), math.radians(15)),
    "ry": (-math.radians(45), math.radians(45)),
    "rz": (-math.radians(10), math.radians(10)),
    "tx": (-0.012, 0.012),
    "ty": (-0.012, 0.012),
    "tz": (-0.015, 0.015),
}
LIGHT_RANGES = {"ka": (0.2, 0.6), "kd": (0.4, 0.9), "lx": (-0.8, 0.8), "ly": (-0.8, 0.8)}
MAX_KA_PLUS_KD = 1.2
NOISE_RANGE = (0.002, 0.02)
BLUR_PROB, BLUR_RANGE = 0.5, (0.3, 0.7)
JPEG_PROB, JPEG_QUALITY = 0.5, (60, 95)
TENT = (0.25, 0.5, 0.25)
PATCH_SIDE = (0.2, 0.5)  # side of the perturbation rectangle, fraction of the image size
PATCH_ALPHA = (0.5, 1.0)


@dataclass
class SyntheticSample:
    """One rendered sample; S is the image size.

    Attributes:
        image: (3, S, S) float32 in [0, 1].
        depth: (S, S) float32, exact depth of the object in the input view, NaN on the background.
        mask: (S, S) bool, ``isfinite(depth)``.
        view: (6,) float32 ``(rx, ry, rz, tx, ty, tz)`` (radians, metres), the method's convention.
        light: (4,) float32 ``(ka, kd, lx, ly)`` in the canonical frame.
        canonical_depth: (S, S) float32 depth in the canonical (frontal, symmetric) view, NaN off the object.
        albedo: (3, S, S) float32 canonical albedo, 0 off the object.
    """

    image: torch.Tensor
    depth: torch.Tensor
    mask: torch.Tensor
    view: torch.Tensor
    light: torch.Tensor
    canonical_depth: torch.Tensor | None = None
    albedo: torch.Tensor | None = None


@dataclass
class SyntheticBatch:
    """A batch of samples: the fields of :class:`SyntheticSample` with a leading batch dimension B."""

    image: torch.Tensor
    depth: torch.Tensor | None
    mask: torch.Tensor | None
    view: torch.Tensor
    light: torch.Tensor
    canonical_depth: torch.Tensor | None = None
    albedo: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.image.shape[0]

    def sample(self, index: int) -> SyntheticSample:
        """The ``index``-th sample."""
        pick = lambda t: None if t is None else t[index]  # noqa: E731
        return SyntheticSample(
            pick(self.image), pick(self.depth), pick(self.mask), pick(self.view), pick(self.light),
            pick(self.canonical_depth), pick(self.albedo),
        )  # fmt: skip


@dataclass
class ColourPatch:
    """The asymmetric perturbation of one image: rows ``top .. top + height − 1`` and columns
    ``left .. left + width − 1`` become ``(1 − alpha) · image + alpha · colour``."""

    top: int
    left: int
    height: int
    width: int
    colour: np.ndarray  # (3,) RGB in [0, 1]
    alpha: float

    def record(self) -> dict:
        """The patch as a JSON-ready dict."""
        return {
            "top": self.top, "left": self.left, "height": self.height, "width": self.width,
            "colour": [float(c) for c in self.colour], "alpha": float(self.alpha),
        }  # fmt: skip


@dataclass
class SampleParams:
    """Every random choice of one sample (drawn by :func:`sample_params`, rendered by :func:`render_params`)."""

    shape: dict[str, np.ndarray]
    albedo: dict[str, np.ndarray]
    view: np.ndarray  # (6,)
    light: np.ndarray  # (4,)
    background: torch.Tensor  # (3, 2S+1, 2S+1)
    blur: float
    noise: np.ndarray  # (3, S, S) standard normal
    noise_sigma: float
    jpeg_quality: int  # 0: no JPEG compression
    patch: ColourPatch | None = None  # the asymmetric perturbation, None when off
    category: str = "face"  # a name of :data:`.categories.CATEGORIES`


def sample_view(rng: np.random.Generator) -> np.ndarray:
    """(6,) viewpoint ``(rx, ry, rz, tx, ty, tz)`` from :data:`POSE_RANGES`."""
    return np.array([rng.uniform(lo, hi) for lo, hi in POSE_RANGES.values()], dtype=np.float32)


def sample_light(rng: np.random.Generator) -> np.ndarray:
    """(4,) light ``(ka, kd, lx, ly)`` from :data:`LIGHT_RANGES`, with ``ka + kd ≤ 1.2`` by rejection."""
    while True:
        ka, kd = rng.uniform(*LIGHT_RANGES["ka"]), rng.uniform(*LIGHT_RANGES["kd"])
        if ka + kd <= MAX_KA_PLUS_KD:
            break
    return np.array([ka, kd, rng.uniform(*LIGHT_RANGES["lx"]), rng.uniform(*LIGHT_RANGES["ly"])], dtype=np.float32)


def _exposure(rng: np.random.Generator, skin: np.ndarray, light: np.ndarray) -> np.float32:
    """Auto-exposure gain on the albedo: brings the typical face brightness towards 0.4–0.65, within 0.8–1.6."""
    typical = float(skin @ np.array([0.3, 0.59, 0.11])) * (light[0] + 0.8 * light[1])
    return np.float32(np.clip(rng.uniform(0.4, 0.65) / typical, 0.8, 1.6))


def sample_patch(rng: np.random.Generator, size: int) -> ColourPatch:
    """A rectangle of a random colour inside a ``size``-pixel image, sides and alpha from :data:`PATCH_SIDE` and
    :data:`PATCH_ALPHA`."""
    height, width = (max(1, round(rng.uniform(*PATCH_SIDE) * size)) for _ in range(2))
    top, left = int(rng.integers(0, size - height + 1)), int(rng.integers(0, size - width + 1))
    colour = rng.uniform(0.0, 1.0, 3).astype(np.float32)
    return ColourPatch(top, left, height, width, colour, float(rng.uniform(*PATCH_ALPHA)))


def blend_patch(image: torch.Tensor, patch: ColourPatch) -> torch.Tensor:
    """(3, H, W) image in [0, 1] with ``patch`` alpha-blended onto it (a new tensor)."""
    out = image.clone()
    rows, cols = slice(patch.top, patch.top + patch.height), slice(patch.left, patch.left + patch.width)
    colour = torch.from_numpy(patch.colour).to(image.dtype).view(3, 1, 1)
    out[:, rows, cols] = (1.0 - patch.alpha) * image[:, rows, cols] + patch.alpha * colour
    return out


def sample_params(
    rng: np.random.Generator, size: int = 64, perturb: bool = False, category: str = "face"
) -> SampleParams:
    """Draw every random choice of one sample of ``size`` pixels of ``category`` from ``rng``; ``perturb`` adds a
    :class:`ColourPatch`, drawn last so that the other choices do not depend on it."""
    kind = get_category(category)
    shape = kind.sample_shape(rng)
    albedo = kind.sample_albedo(rng)
    view, light = sample_view(rng), sample_light(rng)
    albedo["white_balance"] = albedo["white_balance"] * _exposure(rng, albedo[kind.base_colour], light)
    background = textures.sample_background(rng, 2 * size + 1)
    blur = rng.uniform(*BLUR_RANGE) if rng.random() < BLUR_PROB else 0.0
    noise_sigma = rng.uniform(*NOISE_RANGE)
    noise = rng.standard_normal((3, size, size)).astype(np.float32)
    quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)) * (rng.random() < JPEG_PROB)
    patch = sample_patch(rng, size) if perturb else None
    return SampleParams(shape, albedo, view, light, background, blur, noise, noise_sigma, quality, patch, category)


def _category(params: Sequence[SampleParams]) -> Category:
    """The category of a batch of samples, which must all share it (one mesh layout per batch)."""
    names = sorted({p.category for p in params})
    if len(names) != 1:
        raise ValueError(f"a batch renders samples of one category, got {names}")
    return get_category(names[0])


def _stack(params: Sequence[SampleParams]):
    """Batched shape and albedo dicts, views (B, 6) and lights (B, 4)."""
    shape = shapes.stack_params([p.shape for p in params])
    tex = shapes.stack_params([p.albedo for p in params])
    view = torch.from_numpy(np.stack([p.view for p in params]))
    light = torch.from_numpy(np.stack([p.light for p in params]))
    return shape, tex, view, light


def _surface_colour(attrs: torch.Tensor, light: torch.Tensor, shape, tex, aa: float, albedo_fn):
    """Albedo (by the category's ``albedo_fn``) and shaded colour from interpolated ``(x, y, is_neck, nx, ny, nz)``
    (B, 6, H, W); ``is_neck`` marks the category's second part (a face's neck, a car's tyres).

    Returns:
        albedo (B, 3, H, W) and ``albedo · (ka + kd · max(0, ⟨n, l⟩))`` (B, 3, H, W).
    """
    b, _, h, w = attrs.shape
    x, y, neck = (attrs[:, k].reshape(b, -1) for k in range(3))
    alb = albedo_fn(x, y, neck > 0.5, tex, shape, aa).view(b, 3, h, w)
    normal = attrs[:, 3:6].permute(0, 2, 3, 1)  # (B, H, W, 3) interpolated vertex normals, re-normalised
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    diffuse = diffuse_shading(normal, light_direction(light[:, 2:4]))
    shading = lambertian(diffuse, light[:, 0], light[:, 1])  # (B, 1, H, W)
    return alb, alb * shading


def _vertex_attributes(points: torch.Tensor, normals: torch.Tensor, is_head: torch.Tensor) -> torch.Tensor:
    """(B, N, 6) per-vertex ``(x, y, is_neck, nx, ny, nz)`` in the canonical frame."""
    neck = (~is_head).to(points.dtype).view(1, -1, 1).expand(points.shape[0], -1, 1)
    return torch.cat([points[..., :2], neck, normals], dim=-1)


def _tent(image: torch.Tensor) -> torch.Tensor:
    """[¼, ½, ¼]² filter with stride 2: (B, C, 2S+1, 2S+1) sub-pixels -> (B, C, S, S) pixels."""
    tent = image.new_tensor(TENT)
    channels = image.shape[1]
    kernel = (tent[:, None] * tent[None, :]).expand(channels, 1, 3, 3)
    return F.conv2d(image, kernel, stride=2, groups=channels)


def _fill_uncovered(colour: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Give uncovered pixels (B, H, W) the mean colour of their covered 3×3 neighbours (B, 3, H, W)."""
    weight = mask.unsqueeze(1).to(colour.dtype)
    ones = colour.new_ones(1, 1, 3, 3)
    total = F.conv2d(weight, ones, padding=1)
    summed = F.conv2d((colour * weight).flatten(0, 1).unsqueeze(1), ones, padding=1).view_as(colour)
    return torch.where(mask.unsqueeze(1), colour, summed / total.clamp(min=1.0))


def _composite(colour, centre_mask, fine_mask, background, params) -> torch.Tensor:
    """Anti-aliased composite: sub-pixel coverage (tent filter) blends the object's pixel colour over the
    sub-pixel background; then per-sample blur and noise, clipped to [0, 1], JPEG, and the sample's colour patch
    if it has one. Returns (B, 3, S, S)."""
    covered = fine_mask.unsqueeze(1).to(colour.dtype)  # (B, 1, 2S+1, 2S+1)
    coverage = _tent(covered)
    image = coverage * _fill_uncovered(colour, centre_mask) + _tent((1.0 - covered) * background)
    out = []
    for k, p in enumerate(params):
        blurred = gaussian_blur(image[k], p.blur, padding="replicate")
        final = _jpeg((blurred + p.noise_sigma * torch.from_numpy(p.noise)).clamp(0.0, 1.0), p.jpeg_quality)
        out.append(final if p.patch is None else blend_patch(final, p.patch))
    return torch.stack(out)


def _jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG round trip of a (3, H, W) image in [0, 1] at ``quality`` (0: unchanged)."""
    if quality <= 0:
        return image
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="JPEG", quality=quality)
    decoded = np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(decoded).permute(2, 0, 1).contiguous()


def render_params(
    params: Sequence[SampleParams], size: int = 64, fov: float = FOV_DEGREES, depth: bool = True, canonical: bool = True
) -> SyntheticBatch:
    """Render drawn samples (all drawn for the same ``size``).

    One rasterisation at (2S+1)² sub-pixels (sub-pixel k sits at pixel coordinate (k − 1) / 2): its odd
    sub-pixels are the pixel centres, where depth, albedo and shading are evaluated; all sub-pixels give the
    coverage used for anti-aliasing. Albedo edges are prefiltered to the pixel footprint.

    Args:
        params: B samples from :func:`sample_params`.
        size: image size S.
        fov: field of view in degrees.
        depth: compute the input-view depth and mask (else None).
        canonical: compute the canonical depth and albedo (else None).
    Returns:
        :class:`SyntheticBatch`.
    """
    if any(p.background.shape[-1] != 2 * size + 1 or p.noise.shape[-1] != size for p in params):
        raise ValueError(f"samples must be drawn by sample_params(rng, size={size}) for a {size}-pixel render")
    kind = _category(params)
    shape, tex, view, light = _stack(params)
    aa = 0.3 / focal_length(size, fov)  # a quarter-pixel-ish footprint at depth 1, metres
    points, normals, is_head = kind.object_mesh(shape, size)  # canonical frame
    faces = kind.object_faces(size)
    attrs = _vertex_attributes(points, normals, is_head)
    screen = project(transform_points(points, view), size, fov)  # (B, N, 3) pixel coordinates
    fine = torch.cat([2.0 * screen[..., :2] + 1.0, screen[..., 2:]], dim=-1)  # sub-pixel coordinates
    fine_fragments = rasterize(fine, faces, 2 * size + 1, 2 * size + 1)
    centres = Fragments(fine_fragments.face_index[:, 1::2, 1::2])  # sub-pixel (2i+1, 2j+1) is pixel (i, j)
    centre_attrs = interpolate_attributes(screen, faces, centres, attrs)
    _, colour = _surface_colour(centre_attrs, light, shape, tex, aa, kind.albedo)
    background = torch.stack([p.background for p in params])
    image = _composite(colour, centres.mask, fine_fragments.mask, background, params)
    batch = SyntheticBatch(image=image, depth=None, mask=None, view=view, light=light)
    if depth:
        batch.depth = interpolate_depth(screen, faces, centres, background=float("nan"))
        batch.mask = centres.mask
    if canonical:
        frontal = project(points, size, fov)
        frontal_fragments = rasterize(frontal, faces, size, size)
        batch.canonical_depth = interpolate_depth(frontal, faces, frontal_fragments, background=float("nan"))
        frontal_attrs = interpolate_attributes(frontal, faces, frontal_fragments, attrs)
        alb, _ = _surface_colour(frontal_attrs, light, shape, tex, aa, kind.albedo)
        batch.albedo = alb * frontal_fragments.mask.unsqueeze(1)
    return batch


def mesh_in_view(params: Sequence[SampleParams], size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact mesh that :func:`render_params` rasterises, in the input view's camera frame.

    Returns:
        vertices (B, N, 3) and faces (F, 3) long.
    """
    kind = _category(params)
    shape, _, view, _ = _stack(params)
    points, _, _ = kind.object_mesh(shape, size)
    return transform_points(points, view), kind.object_faces(size)


def render_batch(
    rngs: Sequence[np.random.Generator],
    size: int = 64,
    fov: float = FOV_DEGREES,
    depth: bool = True,
    canonical: bool = True,
    perturb: bool = False,
    category: str = "face",
) -> SyntheticBatch:
    """Draw and render one sample of ``category`` per generator (sample k depends on ``rngs[k]`` only), see
    :func:`render_params`; ``perturb`` adds the asymmetric perturbation (:func:`sample_patch`)."""
    params = [sample_params(rng, size, perturb, category) for rng in rngs]
    return render_params(params, size, fov, depth, canonical)


def sample_generator(seed: int, split: int, index: int) -> np.random.Generator:
    """Generator of sample ``index`` of split 0 (train) or 1 (test): the ``index``-th child of the ``split``-th
    child of ``SeedSequence(seed)``, so splits never share a stream."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(split, index)))
