"""Collapse detectors: each statistic against a slow reference and analytic cases, each detector firing on a
constructed collapse, and none firing on the shipped (healthy) model's predictions for generated faces."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from unsup3d import Reconstructor
from unsup3d.config import ModelConfig
from unsup3d.diagnostics import (
    DETECTORS,
    FINE_SIGMA,
    CollapseInputs,
    collapse_statistics,
    collapse_table,
    confidence_scale,
    confidence_variation,
    depth_relief,
    elliptical_radius,
    fine_depth_energy,
    fired,
    hollow_fraction,
    translation_at_limit,
    translation_yaw_correlation,
)
from unsup3d.model import FACE_AXES
from unsup3d.synthetic.generator import render_batch, sample_generator

IMAGES = 16


@pytest.fixture(scope="module")
def shipped():
    """The shipped model and its prediction for 16 generated faces."""
    torch.manual_seed(0)
    model = Reconstructor.pretrained("faces-synthetic", device="cpu").model
    rngs = [sample_generator(11, 1, k) for k in range(IMAGES)]
    images = render_batch(rngs, 64, depth=False, canonical=False).image
    with torch.no_grad():
        return model, model(images, with_flip=False)


def prediction_statistics(pred, config) -> dict[str, float]:
    """The collapse statistics of one prediction (its unflipped canonical depth, view and σ)."""
    inputs = CollapseInputs()
    inputs.add(pred)
    return inputs.statistics(config)


def with_depth(pred, depth):
    return dataclasses.replace(pred, recon=dataclasses.replace(pred.recon, canonical_depth=depth))


def names(pred, config):
    return {detector.name for detector in fired(prediction_statistics(pred, config))}


# ---------------------------------------------------------------------- the healthy case and each collapse
def test_the_shipped_model_fires_no_detector(shipped):
    model, pred = shipped
    statistics = prediction_statistics(pred, model.config)
    assert set(statistics) == {d.statistic for d in DETECTORS}
    assert fired(statistics) == [], collapse_table(statistics)


def test_a_zeroed_depth_head_is_flat(shipped):
    model, pred = shipped
    flat_model = Reconstructor.pretrained("faces-synthetic", device="cpu").model
    output = [m for m in flat_model.depth_net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    torch.nn.init.zeros_(output.weight)
    images = torch.rand(IMAGES, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        flat = flat_model(images, with_flip=False)
    statistics = prediction_statistics(flat, flat_model.config)
    assert statistics["depth_relief"] == 0.0 and statistics["fine_depth_energy"] < 1e-12
    assert "flat" in names(flat, flat_model.config)
    assert "flat" not in names(pred, model.config)


def test_negated_relief_is_hollow(shipped):
    model, pred = shipped
    depth = pred.recon.canonical_depth
    border = model.config.resolved_border_depth
    hollow = with_depth(pred, 2 * border - depth)  # the relief mirrored behind the border depth
    assert hollow_fraction(hollow.recon.canonical_depth, 0.08) == 1.0
    assert names(hollow, model.config) >= {"hollow"} and "hollow" not in names(pred, model.config)
    half = with_depth(pred, torch.cat([depth[:8], 2 * border - depth[8:]]))
    assert prediction_statistics(half, model.config)["hollow_fraction"] == 0.5


def test_checkerboard_depth_is_texture(shipped):
    model, pred = shipped
    rows, cols = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    checker = ((rows + cols) % 2).float() * 2 - 1  # ±1
    board = with_depth(pred, 1.0 + 0.02 * checker.expand(IMAGES, -1, -1))
    assert prediction_statistics(board, model.config)["fine_depth_energy"] > 0.9
    assert "texture" in names(board, model.config)
    faint = with_depth(pred, pred.recon.canonical_depth + 0.001 * checker)  # 1 mm: less than a tenth of the energy
    assert "texture" not in names(faint, model.config)


def test_translation_proportional_to_yaw_is_caught(shipped):
    model, pred = shipped
    view = pred.view.clone()
    view[:, 3] = 0.1 * view[:, 1]  # 0.1 m per radian: the translation does the turning
    assert translation_yaw_correlation(view, pred.recon.canonical_depth) > 0.99
    assert "translation_yaw" in names(dataclasses.replace(pred, view=view), model.config)


def test_the_rotation_centre_term_is_not_a_collapse(shipped):
    """tx = sin(ry)·(1 − z̄) keeps a surface at mean depth z̄ in place: correlated with yaw, yet healthy."""
    model, pred = shipped
    depth = pred.recon.canonical_depth
    mean_depth = depth[:, elliptical_radius(64) < 1].mean(1)
    view = pred.view.clone()
    noise = 0.002 * torch.randn(IMAGES, generator=torch.Generator().manual_seed(3))
    view[:, 3] = torch.sin(view[:, 1]) * (1 - mean_depth) + noise
    raw = np.corrcoef(view[:, 3].numpy(), view[:, 1].numpy())[0, 1]
    assert raw > 0.5  # the raw correlation is high ...
    assert "translation_yaw" not in names(dataclasses.replace(pred, view=view), model.config)  # ... but explained


def test_translations_at_the_range_limit(shipped):
    model, pred = shipped
    view = pred.view.clone()
    view[:4, 3] = 0.97 * model.config.xy_translation_range
    view[4:6, 4] = -0.99 * model.config.xy_translation_range
    assert translation_at_limit(view, model.config.xy_translation_range, 0.0) == 6 / IMAGES
    assert "translation_limit" in names(dataclasses.replace(pred, view=view), model.config)
    view[:, 5] = 0.5  # tz has no range (0): fixed, never at a limit
    assert translation_at_limit(view[6:], model.config.xy_translation_range, 0.0) == 0.0


@pytest.mark.parametrize(
    ("sigma", "expected"),
    [(lambda s: torch.full_like(s, 0.2), {"confidence_constant"}), (lambda s: s * 1e-4, {"confidence_scale"})],
    ids=["constant", "near zero"],
)
def test_degenerate_confidence(shipped, sigma, expected):
    model, pred = shipped
    degenerate = dataclasses.replace(pred, confidence=sigma(pred.confidence))
    assert names(degenerate, model.config) == expected
    assert "confidence_scale" in names(dataclasses.replace(pred, confidence=pred.confidence * 100), model.config)


def test_inapplicable_statistics_are_left_out(shipped):
    model, pred = shipped
    statistics = prediction_statistics(dataclasses.replace(pred, confidence=None), model.config)
    assert "confidence_variation" not in statistics and "confidence_scale" not in statistics
    few = collapse_statistics(pred.recon.canonical_depth[:15], pred.view[:15], None, model.config)
    assert "translation_yaw_correlation" not in few
    frontal = collapse_statistics(pred.recon.canonical_depth, torch.zeros(IMAGES, 6), None, model.config)
    assert "translation_yaw_correlation" not in frontal  # no yaw variation: undefined, not zero
    assert fired({}) == []


# ---------------------------------------------------------------------- statistics against references
def reference_radius(size):
    rho = np.zeros((size, size))
    for row in range(size):
        for col in range(size):
            x, y = -1 + 2 * col / (size - 1), -1 + 2 * row / (size - 1)
            rho[row, col] = math.hypot(x / FACE_AXES[0], y / FACE_AXES[1])
    return rho


def random_depth(count=5, size=64, seed=0):
    return 1.0 + 0.02 * torch.rand(
        count, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )


def test_relief_and_hollowness_match_per_image_loops():
    depth = random_depth()
    depth[:2] += torch.from_numpy(0.03 * reference_radius(64))  # two images deeper at the rim: convex
    depth[2:] -= torch.from_numpy(0.05 * reference_radius(64))  # three hollow ones
    rho = reference_radius(64)
    np.testing.assert_allclose(elliptical_radius(64).numpy(), rho, atol=1e-6)
    reliefs, hollow = [], []
    for image in depth.numpy():
        face = image[rho < 1]
        reliefs.append((np.percentile(face, 95) - np.percentile(face, 5)) / 0.08)
        centre, rim = image[rho < 0.4].mean(), image[(rho >= 0.7) & (rho < 1)].mean()
        hollow.append((centre - rim) / 0.08 > 0.05)
    assert depth_relief(depth, 0.08) == pytest.approx(np.median(reliefs), rel=1e-9)
    assert hollow_fraction(depth, 0.08) == pytest.approx(np.mean(hollow)) == 0.6


def reference_fine_share(image, range_):
    """Blur with an explicit 7×7 Gaussian and mirrored (edge not repeated) indices, then the share."""
    image = image[:, 2:-2]
    height, width = image.shape
    taps = np.exp(-0.5 * (np.arange(-3, 4) / FINE_SIGMA) ** 2)
    kernel = np.outer(taps, taps) / taps.sum() ** 2

    def mirror(i, n):
        return -i if i < 0 else 2 * (n - 1) - i if i >= n else i

    blurred = np.zeros_like(image)
    for r in range(height):
        for c in range(width):
            blurred[r, c] = sum(
                kernel[dr + 3, dc + 3] * image[mirror(r + dr, height), mirror(c + dc, width)]
                for dr in range(-3, 4)
                for dc in range(-3, 4)
            )
    noise = image.size * (1e-3 * range_) ** 2
    return ((image - blurred) ** 2).sum() / (((image - image.mean()) ** 2).sum() + noise)


def test_fine_energy_matches_an_explicit_convolution():
    depth = random_depth(count=3, size=16)
    expected = np.median([reference_fine_share(image, 0.08) for image in depth.numpy()])
    assert fine_depth_energy(depth, 0.08) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("period", [8, 16])
def test_fine_energy_of_a_corrugation_is_analytic(period):
    """A cosine of period λ goes through the blur's symmetric taps w as H·cosine, H = Σ w_k cos(2πk/λ) (rows
    0 and 56 are symmetry axes of the wave, so the mirrored border changes nothing); its fine share is
    (1 − H)² of its energy, close to the continuous (1 − exp(−2π²σ²/λ²))²."""
    rows = torch.arange(57, dtype=torch.float64)
    depth = (1.0 + 0.02 * torch.cos(2 * math.pi * rows / period))[:, None].expand(1, 57, 57)
    taps = torch.exp(-0.5 * (torch.arange(-3, 4, dtype=torch.float64) / FINE_SIGMA) ** 2)
    gain = float((taps / taps.sum() * torch.cos(2 * math.pi * torch.arange(-3, 4, dtype=torch.float64) / period)).sum())
    interior = depth[:, :, 2:-2]
    energy = float(((interior - 1.0) ** 2).sum())
    variance = float(((interior - interior.mean()) ** 2).sum()) + interior[0].numel() * (1e-3 * 0.08) ** 2
    assert fine_depth_energy(depth, 0.08) == pytest.approx((1 - gain) ** 2 * energy / variance, rel=1e-9)
    continuous = (1 - math.exp(-2 * math.pi**2 * FINE_SIGMA**2 / period**2)) ** 2
    assert fine_depth_energy(depth, 0.08) == pytest.approx(continuous, rel=0.1)


def test_correlation_and_confidence_statistics_match_numpy():
    generator = torch.Generator().manual_seed(4)
    view = torch.randn(20, 6, generator=generator, dtype=torch.float64) * 0.1
    view[:, 3] += 0.5 * view[:, 1]
    depth = random_depth(count=20, size=64)
    mean_depth = depth.numpy()[:, reference_radius(64) < 1].mean(1)
    rest = view[:, 3].numpy() - np.sin(view[:, 1].numpy()) * (1 - mean_depth)
    expected = abs(np.corrcoef(rest, view[:, 1].numpy())[0, 1])
    assert translation_yaw_correlation(view, depth) == pytest.approx(expected, rel=1e-9)
    sigma = torch.rand(3, 2, 8, 8, generator=generator, dtype=torch.float64) + 0.1
    flat = sigma.numpy().reshape(3, 2, -1)
    variation = np.sort((flat.std(2, ddof=1) / flat.mean(2)).ravel())
    assert confidence_variation(sigma) == pytest.approx(variation[2], rel=1e-9)  # the lower of the middle two
    assert confidence_scale(sigma) == pytest.approx(float(torch.quantile(sigma.flatten(), 0.5, interpolation="lower")))


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="canonical depth"):
        depth_relief(torch.ones(2, 64), 0.1)
    with pytest.raises(ValueError, match="view"):
        translation_yaw_correlation(torch.zeros(16, 5), torch.ones(16, 64, 64))
    with pytest.raises(ValueError, match="confidence"):
        confidence_variation(torch.ones(2, 1, 8, 8))


def test_thresholds_follow_from_the_config_ranges():
    """Statistics are fractions of the configured ranges: the same shape in a wider range is flatter."""
    depth = 1.0 - 0.03 * torch.from_numpy(np.clip(1 - reference_radius(64), 0, 1)).float().expand(IMAGES, -1, -1)
    narrow = collapse_statistics(depth, torch.zeros(IMAGES, 6), None, ModelConfig(min_depth=0.96, max_depth=1.04))
    wide = collapse_statistics(depth, torch.zeros(IMAGES, 6), None, ModelConfig(min_depth=0.7, max_depth=1.3))
    assert {d.name for d in fired(narrow)} == set() and {d.name for d in fired(wide)} == {"flat"}
    assert narrow["depth_relief"] == pytest.approx(wide["depth_relief"] * 0.6 / 0.08, rel=1e-5)
