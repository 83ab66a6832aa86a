"""Collapse detection without ground truth: one scalar statistic per known failure mode of the method, and the
range a sane face model keeps it in.

The failure modes (``docs/benchmarks.md`` describes several in real runs) and their statistics, all computed from
the model's own predictions for a set of images (canonical depth (N, S, S), view (N, 6), confidence (N, 2, S, S)):

- ``flat``: :func:`depth_relief`, the median over images of the relief inside the face ellipse (95th minus 5th
  percentile of the canonical depth) as a fraction of the model's depth range ``max_depth − min_depth``.
- ``hollow``: :func:`hollow_fraction`, the fraction of images whose face centre lies behind its rim.
- ``texture``: :func:`fine_depth_energy`, the median share of the canonical depth's variance at fine scale
  (what a Gaussian blur of 1 pixel removes).
- ``translation_yaw``: :func:`translation_yaw_correlation`, |Pearson r| between the predicted yaw and the part of
  the x-translation that the rotation centre does not explain.
- ``translation_limit``: :func:`translation_at_limit`, the fraction of images with a translation at the end of its
  range.
- ``confidence_constant``: :func:`confidence_variation`, the median spatial coefficient of variation of σ.
- ``confidence_scale``: :func:`confidence_scale`, the median σ.

Why each allowed range (:data:`DETECTORS`) is what it is; the "measured" values are the shipped model and three
``cpu``-preset runs of 3000 iterations on 64 synthetic test faces, all healthy:

- Relief ≥ 0.1 of the depth range. The range is chosen to hold a face (the depth prior's ellipsoid: 0.47;
  measured 0.50–0.58); a tenth of it (8 mm for the ``cpu`` preset's 8 cm, 2 cm for the paper's 20 cm) is a
  face less than a tenth as deep as the model can make it, on a frame 17.5 cm wide at depth 1 where real faces are
  5–9 cm deep.
- Hollow: an image counts when its centre (elliptical radius ρ < 0.4) is more than 5 % of the depth range behind
  its rim (0.7 ≤ ρ < 1), so that flat noise does not count; measured, the centre is 20–37 % of the range *in front
  of* the rim in every image. A sane face is never concave, so the detector fires when more than one image in five
  is (0.2 leaves room for occluded or out-of-category images in an evaluation set).
- Fine energy ≤ 0.1. A corrugation of period λ pixels keeps a fraction exp(−2π²σ²/λ²) of its amplitude under a
  Gaussian blur of σ = 1 pixel, so its fine share is (1 − exp(−2π²/λ²))²: 0.1 at λ ≈ 7 pixels (9 cycles across
  64 pixels), about 1 for a checkerboard. Measured: 0.0011–0.0018, the ellipsoid prior 0.002; a
  randomly initialised depth network 0.53.
- Translation and yaw. Views turn the canonical surface about ``c = (0, 0, 1)`` (``docs/conventions.md``); a face
  whose surface lies at mean depth z̄ < 1 moves sideways by −sin(ry)·(1 − z̄) when it turns, and a model of
  centred faces predicts tx ≈ sin(ry)·(1 − z̄) to keep it in place: the raw correlation of tx and ry is about 0.75
  in healthy models. What is left of tx after that term is uncorrelated with yaw when the rotation does the
  turning (measured |r| = 0.10–0.16) and follows yaw when the translation does the work of the rotation. Fires above
  |r| = 0.8 (64 % of that variance is yaw); computed on at least 16 images, where |r| > 0.8 by chance has odds of
  about 2·10⁻⁴.
- Translation at ≥ 95 % of its range (the view net's tanh past 1.83). At depth 1 the frame's half width is
  tan(fov/2) ≈ 0.087, below 95 % of the default range 0.1: such a translation moves the canonical centre out of the
  picture, which no image of a framed object needs (measured: |t| ≤ 0.02). Fires when more than one image in ten
  is there.
- σ varies over the image ≥ 5 % of its mean. The Laplacian likelihood's σ is the expected residual at each pixel;
  a map within 5 % of constant weighs every pixel alike, i.e. the "no confidence" ablation (measured: 0.51–0.57).
- Median σ in [√2/510, 2√2]. The optimal σ is √2 times the mean absolute residual in the losses' [−1, 1] units;
  8-bit images are quantised in steps of 2/255 with a mean absolute rounding error of a quarter step, so σ below
  √2·(2/255)/4 = √2/510 ≈ 0.0028 claims a precision no 8-bit image holds, and residuals of images in [−1, 1] are at
  most 2, so σ above 2√2 calls every pixel noise (measured: 0.17–0.18).

Medians of an even count are the lower middle value (``torch.median``). A statistic that does not apply (no
confidence maps, fewer than 16 images, no variation of the yaw) is left out and cannot fire.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from unsup3d.config import ModelConfig
from unsup3d.conventions import ROTATION_CENTER
from unsup3d.model import BORDER_COLUMNS, FACE_AXES, Prediction, ellipse_coordinates
from unsup3d.ops import gaussian_blur

__all__ = [
    "DETECTORS",
    "CollapseInputs",
    "Detector",
    "collapse_statistics",
    "collapse_table",
    "confidence_scale",
    "confidence_variation",
    "depth_relief",
    "fine_depth_energy",
    "fired",
    "hollow_fraction",
    "translation_at_limit",
    "translation_yaw_correlation",
]

CENTRE_RADIUS = 0.4  # the face centre: elliptical radius ρ below this
RIM_RADII = (0.7, 1.0)  # the face rim: ρ in [low, high)
HOLLOW_MARGIN = 0.05  # an image is hollow when its centre lies this fraction of the depth range behind its rim
FINE_SIGMA = 1.0  # pixels: the Gaussian blur whose residual is "fine scale"
DEPTH_NOISE = 1e-3  # fraction of the depth range: variation below it is numerical noise, not relief
MIN_CORRELATION_IMAGES = 16
LIMIT_FRACTION = 0.95  # a translation at this fraction of its range is at the limit


@dataclass(frozen=True)
class Detector:
    """A failure mode: its statistic's name and the range ``[low, high]`` a sane face model keeps it in (a NaN
    statistic is outside it)."""

    name: str
    statistic: str
    low: float
    high: float
    meaning: str

    def fires(self, value: float) -> bool:
        return not self.low <= value <= self.high


DETECTORS = (
    Detector("flat", "depth_relief", 0.1, math.inf, "flat depth: relief below a tenth of the depth range"),
    Detector("hollow", "hollow_fraction", 0.0, 0.2, "inverted (hollow) faces: centre behind the rim"),
    Detector("texture", "fine_depth_energy", 0.0, 0.1, "high-frequency depth texture"),
    Detector("translation_yaw", "translation_yaw_correlation", 0.0, 0.8, "x-translation follows yaw"),
    Detector("translation_limit", "translation_at_limit", 0.0, 0.1, "translations at the end of their range"),
    Detector("confidence_constant", "confidence_variation", 0.05, math.inf, "confidence maps constant"),
    Detector("confidence_scale", "confidence_scale", math.sqrt(2) / 510, 2 * math.sqrt(2), "confidence degenerate"),
)


def elliptical_radius(size: int, device: torch.device | None = None) -> torch.Tensor:
    """(S, S) ``ρ = sqrt((x/a)² + (y/b)²)`` with pixel-centre coordinates x, y in [−1, 1] and (a, b) the face
    ellipse :data:`unsup3d.model.FACE_AXES`; ρ < 1 inside the face."""
    u, v = ellipse_coordinates(size, FACE_AXES, device)
    return (u**2 + v**2).sqrt()


def depth_relief(canonical_depth: torch.Tensor, depth_range: float) -> float:
    """Median over images of (95th − 5th percentile of the depth inside the face ellipse) / ``depth_range``.

    Args:
        canonical_depth: (N, S, S) canonical depth.
        depth_range: the model's ``max_depth − min_depth``.
    """
    _check_depth(canonical_depth)
    face = canonical_depth[:, elliptical_radius(canonical_depth.shape[-1], canonical_depth.device) < 1]  # (N, P)
    quantiles = torch.quantile(face.double(), face.new_tensor([0.05, 0.95], dtype=torch.float64), dim=1)  # (2, N)
    return float(((quantiles[1] - quantiles[0]) / depth_range).median())


def hollow_fraction(canonical_depth: torch.Tensor, depth_range: float) -> float:
    """Fraction of images whose face centre (ρ < :data:`CENTRE_RADIUS`) is more than :data:`HOLLOW_MARGIN` of
    ``depth_range`` behind (deeper than) its rim (ρ in :data:`RIM_RADII`).

    Args:
        canonical_depth: (N, S, S) canonical depth.
        depth_range: the model's ``max_depth − min_depth``.
    """
    _check_depth(canonical_depth)
    rho = elliptical_radius(canonical_depth.shape[-1], canonical_depth.device)
    centre = canonical_depth[:, rho < CENTRE_RADIUS].mean(1)  # (N,)
    rim = canonical_depth[:, (rho >= RIM_RADII[0]) & (rho < RIM_RADII[1])].mean(1)  # (N,)
    return float(((centre - rim) / depth_range > HOLLOW_MARGIN).double().mean())


def fine_depth_energy(canonical_depth: torch.Tensor, depth_range: float) -> float:
    """Median over images of the share of the depth's variance that a Gaussian blur of :data:`FINE_SIGMA`
    pixels removes, on the columns the model does not clamp.

    Per image ``Σ (d − blur(d))² / (Σ (d − mean d)² + P·(DEPTH_NOISE·depth_range)²)`` over its P pixels; the
    second term keeps a flat map at 0.

    Args:
        canonical_depth: (N, S, S) canonical depth.
        depth_range: the model's ``max_depth − min_depth``.
    """
    _check_depth(canonical_depth)
    depth = canonical_depth[:, :, BORDER_COLUMNS:-BORDER_COLUMNS].double()  # (N, S, S − 4)
    fine = (depth - gaussian_blur(depth, FINE_SIGMA, padding="reflect")).pow(2).sum(dim=(1, 2))  # (N,)
    variance = (depth - depth.mean(dim=(1, 2), keepdim=True)).pow(2).sum(dim=(1, 2))
    noise = depth[0].numel() * (DEPTH_NOISE * depth_range) ** 2
    return float((fine / (variance + noise)).median())


def translation_yaw_correlation(view: torch.Tensor, canonical_depth: torch.Tensor) -> float | None:
    """|Pearson r| across images between the yaw ``ry`` and ``tx − sin(ry)·(c_z − z̄)``, the x-translation less
    what keeps a surface at mean depth z̄ (inside the face ellipse) in place when it turns about the rotation centre
    ``c``. None with fewer than :data:`MIN_CORRELATION_IMAGES` images or no variation of either.

    Args:
        view: (N, 6) views ``(rx, ry, rz, tx, ty, tz)``, radians.
        canonical_depth: (N, S, S) canonical depth.
    """
    _check_depth(canonical_depth)
    _check_view(view, canonical_depth.shape[0])
    if view.shape[0] < MIN_CORRELATION_IMAGES:
        return None
    rho = elliptical_radius(canonical_depth.shape[-1], canonical_depth.device)
    mean_depth = canonical_depth[:, rho < 1].double().mean(1)  # (N,)
    yaw = view[:, 1].double()
    rest = view[:, 3].double() - torch.sin(yaw) * (ROTATION_CENTER[2] - mean_depth)
    yaw, rest = yaw - yaw.mean(), rest - rest.mean()
    norms = yaw.norm() * rest.norm()
    if norms < 1e-12:
        return None
    return float((yaw * rest).sum().abs() / norms)


def translation_at_limit(view: torch.Tensor, xy_range: float, z_range: float) -> float:
    """Fraction of images with some translation component at :data:`LIMIT_FRACTION` of its range or beyond
    (components whose range is 0 are fixed and never count).

    Args:
        view: (N, 6) views ``(rx, ry, rz, tx, ty, tz)``.
        xy_range, z_range: the model's ``xy_translation_range`` and ``z_translation_range``.
    """
    _check_view(view, view.shape[0])
    limits = view.new_tensor([xy_range, xy_range, z_range])
    at_limit = (view[:, 3:].abs() >= LIMIT_FRACTION * limits) & (limits > 0)  # (N, 3)
    return float(at_limit.any(dim=1).double().mean())


def confidence_variation(confidence: torch.Tensor) -> float:
    """Median over images and both maps of σ's spatial standard deviation over its mean.

    Args:
        confidence: (N, 2, S, S) σ maps, positive.
    """
    _check_confidence(confidence)
    sigma = confidence.flatten(2).double()  # (N, 2, S·S)
    return float((sigma.std(dim=2) / sigma.mean(dim=2).clamp(min=1e-12)).median())


def confidence_scale(confidence: torch.Tensor) -> float:
    """Median σ over every pixel of every map, in the losses' [−1, 1] image units.

    Args:
        confidence: (N, 2, S, S) σ maps, positive.
    """
    _check_confidence(confidence)
    return float(confidence.double().median())


def collapse_statistics(
    canonical_depth: torch.Tensor, view: torch.Tensor, confidence: torch.Tensor | None, config: ModelConfig
) -> dict[str, float]:
    """Every applicable statistic of :data:`DETECTORS`, by statistic name, for N images' predictions.

    Args:
        canonical_depth: (N, S, S) canonical depth.
        view: (N, 6) views.
        confidence: (N, 2, S, S) photometric σ maps, or None for a model without them.
        config: the model's configuration (depth and translation ranges).
    """
    depth_range = config.max_depth - config.min_depth
    values = {
        "depth_relief": depth_relief(canonical_depth, depth_range),
        "hollow_fraction": hollow_fraction(canonical_depth, depth_range),
        "fine_depth_energy": fine_depth_energy(canonical_depth, depth_range),
        "translation_yaw_correlation": translation_yaw_correlation(view, canonical_depth),
        "translation_at_limit": translation_at_limit(view, config.xy_translation_range, config.z_translation_range),
    }
    if confidence is not None:
        values["confidence_variation"] = confidence_variation(confidence)
        values["confidence_scale"] = confidence_scale(confidence)
    return {name: value for name, value in values.items() if value is not None}


class CollapseInputs:
    """What :func:`collapse_statistics` needs from a set's predictions, gathered batch by batch (detached, on the
    CPU: the unflipped canonical depth, the view and the photometric σ), so that a pass over a dataset that
    computes something else can collect them on the way."""

    def __init__(self) -> None:
        self.depth: list[torch.Tensor] = []
        self.view: list[torch.Tensor] = []
        self.confidence: list[torch.Tensor] = []

    def add(self, pred: Prediction) -> None:
        self.depth.append(pred.recon.canonical_depth.detach().cpu())
        self.view.append(pred.view.detach().cpu())
        if pred.confidence is not None:
            self.confidence.append(pred.confidence.detach().cpu())

    def statistics(self, config: ModelConfig) -> dict[str, float]:
        """:func:`collapse_statistics` over every prediction added."""
        confidence = torch.cat(self.confidence) if self.confidence else None
        return collapse_statistics(torch.cat(self.depth), torch.cat(self.view), confidence, config)


def fired(statistics: dict[str, float]) -> list[Detector]:
    """The detectors whose statistic is present in ``statistics`` and outside its range."""
    return [d for d in DETECTORS if d.statistic in statistics and d.fires(statistics[d.statistic])]


def _check_depth(depth: torch.Tensor) -> None:
    if depth.dim() != 3 or depth.shape[1] != depth.shape[2] or depth.shape[0] == 0:
        raise ValueError(f"canonical depth must be (N, S, S) with N >= 1, got shape {tuple(depth.shape)}")


def _check_view(view: torch.Tensor, count: int) -> None:
    if view.dim() != 2 or view.shape != (count, 6) or count == 0:
        raise ValueError(f"view must be (N, 6) for N = {count} >= 1 images, got shape {tuple(view.shape)}")


def _check_confidence(confidence: torch.Tensor) -> None:
    if confidence.dim() != 4 or confidence.shape[1] != 2 or confidence.shape[0] == 0:
        raise ValueError(f"confidence must be (N, 2, S, S) with N >= 1, got shape {tuple(confidence.shape)}")


def collapse_table(statistics: dict[str, float]) -> str:
    """A text table of each present statistic with its allowed range; a detector that fires says so."""
    lines = [f"{'collapse statistic':<28} {'value':>8}  allowed"]
    for detector in DETECTORS:
        if detector.statistic in statistics:
            value = statistics[detector.statistic]
            verdict = f"  FIRES: {detector.meaning}" if detector.fires(value) else ""
            allowed = f"[{detector.low:.4g}, {detector.high:.4g}]"
            lines.append(f"{detector.statistic:<28} {value:>8.4f}  {allowed}{verdict}")
    return "\n".join(lines)
