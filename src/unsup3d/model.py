"""The photo-geometric autoencoder (paper §3): image → depth, albedo, light, view, confidence → reconstruction.

The model computes and returns a :class:`Prediction`; it neither logs nor writes files. The renderer runs once on
a doubled batch: the predicted canonical depth and albedo, and their horizontal flips (Eq. 2), with light and
view shared by both; the prediction hands the two halves out by name (``recon`` and ``recon_flipped``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from unsup3d.config import ModelConfig
from unsup3d.geometry import normals_from_depth
from unsup3d.nets import ConfidenceNet, Encoder, EncoderDecoder
from unsup3d.ops import from_signed, gaussian_blur, to_signed
from unsup3d.render import (
    diffuse_shading,
    inverse_warp_grid,
    lambertian,
    light_direction,
    render_depth,
    sample_canonical,
)


def scale_range(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Map ``x`` in [-1, 1] linearly to [low, high]."""
    return (1 + x) / 2 * high + (1 - x) / 2 * low


def bounded_depth(raw: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """The depth head's output range: (B, H, W) raw maps → ``mid + half·tanh(raw − mean raw)`` in (low, high),
    the mean taken per map."""
    return scale_range(torch.tanh(raw - raw.mean(dim=(1, 2), keepdim=True)), low, high)


# Half width and half height of the face's ellipse in the canonical frame, as fractions of the image's: the depth
# prior's cap (unsup3d.losses.ellipsoid_depth) and the region unsup3d.diagnostics inspects.
FACE_AXES = (0.8, 0.95)
BORDER_COLUMNS = 2  # canonical depth columns on the left and on the right clamped to the border depth (the paper's)


def ellipse_coordinates(
    size: int, axes: tuple[float, float], device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(S, S) ``x / a`` and ``y / b`` for pixel-centre coordinates x (column), y (row) in [-1, 1] and an ellipse
    of half axes ``(a, b)`` (fractions of the image's half width and height): inside it ``(x/a)² + (y/b)² < 1``."""
    coords = torch.linspace(-1.0, 1.0, size, device=device)
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    return x / axes[0], y / axes[1]


@dataclass
class Rendering:
    """The canonical maps of B images and their rendering in the input view, size S, images in [0, 1]."""

    canonical_depth: torch.Tensor  # (B, S, S) border columns clamped
    canonical_albedo: torch.Tensor  # (B, 3, S, S)
    canonical_normal: torch.Tensor  # (B, S, S, 3)
    canonical_shading: torch.Tensor  # (B, 1, S, S) ambient + diffuse · max(0, ⟨n, l⟩)
    canonical_image: torch.Tensor  # (B, 3, S, S) albedo × shading (not clamped)
    depth: torch.Tensor  # (B, S, S) depth in the input view, clamped to [near_depth, far_depth]
    image: torch.Tensor  # (B, 3, S, S) reconstruction in the input view, zero outside the validity mask


@dataclass
class Factors:
    """What the networks predict for B images of size S, before any rendering (the paper's d, a, l, w, σ)."""

    depth_raw: torch.Tensor  # (B, S, S) depth net output before tanh (blurred where model.depth_blur > 0)
    albedo: torch.Tensor  # (B, 3, S, S) canonical albedo in [0, 1]
    shading_map: torch.Tensor | None  # (B, 1, S, S) in [0, 2] for the "no light" ablation, else None
    ambient: torch.Tensor  # (B,) k_s
    diffuse: torch.Tensor  # (B,) k_d
    light_direction: torch.Tensor  # (B, 3) unit light direction in the canonical frame
    view: torch.Tensor  # (B, 6) (rx, ry, rz) radians, (tx, ty, tz)
    confidence: torch.Tensor | None  # (B, 2, S, S) σ, σ′ (softplus), or None
    confidence_perceptual: torch.Tensor | None  # (B, 2, S/4, S/4), or None


@dataclass
class Prediction:
    """Everything the model predicts for a batch of B images of size S.

    ``recon`` renders the predicted canonical depth and albedo; ``recon_flipped`` their horizontal flips (the
    flips each ablation keeps), or None when the model ran with ``with_flip=False``.
    """

    canonical_depth_raw: torch.Tensor  # (B, S, S) depth net output before tanh
    ambient: torch.Tensor  # (B,) k_s
    diffuse: torch.Tensor  # (B,) k_d
    light_direction: torch.Tensor  # (B, 3) unit light direction in the canonical frame
    view: torch.Tensor  # (B, 6) (rx, ry, rz) radians, (tx, ty, tz)
    confidence: torch.Tensor | None  # (B, 2, S, S) σ, σ′ for the photometric loss (softplus); None without
    confidence_perceptual: torch.Tensor | None  # (B, 2, S/4, S/4) σ, σ′ for the perceptual loss, or None
    recon_mask: torch.Tensor  # (B, S, S) pixels valid in both renderings (detached float)
    recon: Rendering
    recon_flipped: Rendering | None

    @property
    def batch_size(self) -> int:
        return self.canonical_depth_raw.shape[0]


class PhotoGeometricAutoencoder(nn.Module):
    """Φ of the paper. ``forward(images (B, 3, S, S) in [0, 1]) -> Prediction``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        size = config.image_size
        self.depth_net = EncoderDecoder(3, 1, config.autoencoder_zdim, config.depth_nf, None, size)
        albedo_channels = 3 if config.use_light else 4  # the "no light" ablation adds a shading channel
        self.albedo_net = EncoderDecoder(3, albedo_channels, config.autoencoder_zdim, config.albedo_nf, nn.Tanh, size)
        self.light_net = Encoder(3, 4, config.encoder_nf, size)
        self.view_net = Encoder(3, 6, config.encoder_nf, size)
        self.conf_net = ConfidenceNet(3, config.conf_zdim, config.conf_nf, size) if config.use_conf else None

    def forward(self, images: torch.Tensor, with_flip: bool = True) -> Prediction:
        """Decompose (B, 3, S, S) images in [0, 1]; ``with_flip=False`` skips the flipped reconstruction
        (inference needs only the first one).

        Under ``torch.autocast`` only the networks run in reduced precision: their outputs are cast to float32
        and the geometry (normals, shading, rasterisation, warping) runs with autocast off.
        """
        return self.render_factors(self.predict_factors(images), with_flip)

    def predict_factors(self, images: torch.Tensor) -> Factors:
        """The networks' part of :meth:`forward`: (B, 3, S, S) images in [0, 1] → :class:`Factors`."""
        _check_images(images, self.config.image_size)
        x = to_signed(images)
        albedo, shading_map = self.predict_albedo(x)
        ambient, diffuse, direction = self.predict_light(x)
        confidence, confidence_perceptual = self.predict_confidence(x)
        return Factors(
            self.predict_depth_raw(x),
            albedo,
            shading_map,
            ambient,
            diffuse,
            direction,
            self.predict_view(x),
            confidence,
            confidence_perceptual,
        )

    def render_factors(self, factors: Factors, with_flip: bool = True) -> Prediction:
        """The geometric part of :meth:`forward`: the canonical depth of ``factors.depth_raw``, normals, shading
        and the reprojection into each image's view, for the factors and, ``with_flip``, their flips."""
        depth = self.canonical_depth(factors.depth_raw)
        albedo, direction, ambient, diffuse = (
            factors.albedo,
            factors.light_direction,
            factors.ambient,
            factors.diffuse,
        )
        with torch.autocast(depth.device.type, enabled=False):
            copies = 2 if with_flip else 1
            if with_flip:
                depth = torch.cat([depth, depth.flip(-1) if self.config.flip_depth else depth])
                albedo = torch.cat([albedo, albedo.flip(-1) if self.config.flip_albedo else albedo])
            normal = normals_from_depth(depth, self.config.fov)
            if factors.shading_map is None:
                diffuse_term = diffuse_shading(normal, direction.repeat(copies, 1))
                shading = lambertian(diffuse_term, ambient.repeat(copies), diffuse.repeat(copies))
            else:
                shading = factors.shading_map.repeat(copies, 1, 1, 1)
            image = albedo * shading
            recon_depth, recon_image, mask = self.reproject(depth, image, factors.view.repeat(copies, 1), copies)
        maps = (depth, albedo, normal, shading, image, recon_depth, recon_image)  # (kB, ...) each
        renderings = [Rendering(*half) for half in zip(*(m.chunk(copies) for m in maps), strict=True)]
        return Prediction(
            canonical_depth_raw=factors.depth_raw,
            ambient=ambient,
            diffuse=diffuse,
            light_direction=direction,
            view=factors.view,
            confidence=factors.confidence,
            confidence_perceptual=factors.confidence_perceptual,
            recon_mask=mask,
            recon=renderings[0],
            recon_flipped=renderings[1] if with_flip else None,
        )

    def networks(self) -> dict[str, nn.Module]:
        """The model's networks by name (the confidence net only when the model has one)."""
        names = ["depth_net", "albedo_net", "light_net", "view_net", "conf_net"]
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def predict_confidence(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """σ maps (B, 2, S, S) and, with a perceptual loss, (B, 2, S/4, S/4) in float32; (None, None) without
        the confidence net."""
        if self.conf_net is None:
            return None, None
        photometric, perceptual = self.conf_net(x, self.config.uses_perceptual)
        return photometric.float(), None if perceptual is None else perceptual.float()

    def predict_depth(self, x: torch.Tensor) -> torch.Tensor:
        """(B, S, S) canonical depth (:meth:`canonical_depth`) of (B, 3, S, S) images in [-1, 1]."""
        return self.canonical_depth(self.predict_depth_raw(x))

    def predict_depth_raw(self, x: torch.Tensor) -> torch.Tensor:
        """The depth network's (B, S, S) raw map for (B, 3, S, S) images in [-1, 1]; with ``depth_blur`` > 0
        low-passed by a Gaussian of that many pixels."""
        raw = self.depth_net(x)[:, 0].float()
        if self.config.depth_blur > 0:
            raw = gaussian_blur(raw, self.config.depth_blur, padding="reflect")
        return raw

    def canonical_depth(self, raw: torch.Tensor) -> torch.Tensor:
        """(B, S, S) raw maps → canonical depth ``d = mid + half·tanh(raw − mean raw)``, border columns clamped."""
        cfg = self.config
        depth = bounded_depth(raw, cfg.min_depth, cfg.max_depth)
        border = torch.zeros_like(depth[:1])
        border[..., :BORDER_COLUMNS] = 1.0
        border[..., -BORDER_COLUMNS:] = 1.0
        return depth * (1 - border) + cfg.resolved_border_depth * border

    def predict_albedo(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Albedo (B, 3, S, S) in [0, 1]; with ``use_light=False`` also a shading map (B, 1, S, S) in [0, 2]."""
        out = self.albedo_net(x).float()  # tanh: [-1, 1]
        if self.config.use_light:
            return from_signed(out), None
        return from_signed(out[:, :3]), out[:, 3:] + 1.0

    def predict_light(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Ambient (B,), diffuse (B,) and unit direction (B, 3) ``(lx, ly, 1)/|·|`` in the canonical frame."""
        cfg = self.config
        light = self.light_net(x).float()  # (B, 4) in [-1, 1]
        ambient = scale_range(light[:, 0], cfg.min_ambient, cfg.max_ambient)
        diffuse = scale_range(light[:, 1], cfg.min_diffuse, cfg.max_diffuse)
        return ambient, diffuse, light_direction(light[:, 2:])

    def predict_view(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 6) view: rotations in radians within ±rotation_range, translations within their ranges."""
        v = self.view_net(x).float()
        return v * self.view_scale().to(v.device)

    def view_scale(self) -> torch.Tensor:
        """(6,) the largest |value| of each view component: the view net's tanh output times this is the view."""
        cfg = self.config
        rotation = math.radians(cfg.rotation_range)
        return torch.tensor([rotation] * 3 + [cfg.xy_translation_range] * 2 + [cfg.z_translation_range])

    def render_in_view(
        self, canonical_depth: torch.Tensor, canonical_image: torch.Tensor, views: torch.Tensor, margin: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Render (B, S, S) canonical depth with its (B, 3, S, S) canonical image in (B, 6) views.

        With ``margin`` > 0 the canonical maps are first extended by that many pixels on every side (depth by
        its edge values, the image mirrored) and rendered by the same camera over the wider field of view, and
        the middle S × S is kept: a turn then brings the extended surface into view instead of leaving its
        edges uncovered.

        Returns the (B, 3, S, S) images, zero where the surface does not cover, and the (B, S, S) mask of
        covered pixels.
        """
        size = canonical_depth.shape[-1]
        with torch.autocast(canonical_depth.device.type, enabled=False):
            if margin == 0:
                _, image, mask = self.reproject(canonical_depth, canonical_image, views, copies=1)
                return image, mask
            pad = (margin,) * 4
            depth = F.pad(canonical_depth.unsqueeze(1), pad, mode="replicate").squeeze(1)
            # The same focal length, (size − 1) / 2 / tan(fov / 2) pixels, over the wider map.
            half_width = math.tan(math.radians(self.config.fov) / 2) * (size + 2 * margin - 1) / (size - 1)
            fov = 2 * math.degrees(math.atan(half_width))
            _, image, mask = self.reproject(depth, F.pad(canonical_image, pad, mode="reflect"), views, 1, fov)
        inner = slice(margin, margin + size)
        return image[..., inner, inner], mask[..., inner, inner]

    def reproject(
        self,
        canonical_depth: torch.Tensor,
        canonical_image: torch.Tensor,
        views: torch.Tensor,
        copies: int = 2,
        fov: float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Π: render (kB, S, S) depth in the input view, warp the (kB, 3, S, S) canonical image, mask invalid
        pixels.

        ``k`` is 2 (the second half flipped) or 1; ``fov`` defaults to the model's. Returns recon_depth
        (kB, S, S), recon_image (kB, 3, S, S), and the mask (B, S, S) of pixels valid in every half.
        """
        cfg = self.config
        fov = cfg.fov if fov is None else fov
        recon_depth = render_depth(canonical_depth, views, fov)
        recon_depth = recon_depth.clamp(cfg.near_depth, cfg.far_depth)
        grid = inverse_warp_grid(recon_depth, views, fov)
        recon_image = sample_canonical(canonical_image, grid)
        valid = (recon_depth < cfg.far_depth).float().view(copies, -1, *recon_depth.shape[1:])
        mask = valid.prod(dim=0).detach()
        recon_image = recon_image * mask.repeat(copies, 1, 1).unsqueeze(1)
        return recon_depth, recon_image, mask


def _check_images(images: torch.Tensor, size: int) -> None:
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[2:] != (size, size):
        raise ValueError(f"images must be (B, 3, {size}, {size}) in [0, 1], got shape {tuple(images.shape)}")
