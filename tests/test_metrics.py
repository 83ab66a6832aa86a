import math

import pytest
import torch

from unsup3d.geometry import focal_length
from unsup3d.metrics import depth_metrics, erode_mask, evaluation_mask, mad, mae, mse, side, summarize

DTYPES = [torch.float32, torch.float64]


def tilted_plane(size: int, theta_deg: float, fov: float = 10.0, dtype=torch.float64) -> torch.Tensor:
    """(1, S, S) depth of the plane z = 1 + x·tanθ (tilted by θ about the y axis) along each pixel ray."""
    f = focal_length(size, fov)
    c = (size - 1) / 2.0
    ray_x = (torch.arange(size, dtype=torch.float64) - c) / f  # x / z along the ray of column u
    depth = 1.0 / (1.0 - ray_x * math.tan(math.radians(theta_deg)))  # z = 1 + (z · ray_x) · tanθ
    return depth.expand(size, size)[None].to(dtype).clone()


def test_erode_full_mask_removes_exactly_the_frame():
    mask = torch.ones(2, 7, 9, dtype=torch.bool)
    eroded = erode_mask(mask)
    expected = torch.zeros_like(mask)
    expected[:, 1:-1, 1:-1] = True
    assert eroded.dtype == torch.bool
    assert torch.equal(eroded, expected)
    assert torch.equal(erode_mask(mask.double()), expected)


def test_erode_hole_grows_to_its_3x3_neighbourhood():
    mask = torch.ones(1, 9, 9)
    mask[0, 4, 4] = 0
    eroded = erode_mask(mask)
    assert not eroded[0, 3:6, 3:6].any()
    assert eroded[0, 1:-1, 1:-1].sum() == 7 * 7 - 9


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [0.5, 1.0, 3.7])
def test_side_is_zero_for_a_global_scale(dtype, scale):
    gen = torch.Generator().manual_seed(0)
    gt = 0.9 + 0.2 * torch.rand(3, 8, 8, generator=gen, dtype=dtype)
    mask = torch.rand(3, 8, 8, generator=gen) > 0.3
    value = side(gt * scale, gt, mask)
    assert value.shape == (3,) and value.dtype == dtype
    assert torch.allclose(value, torch.zeros_like(value), atol=1e-6 if dtype == torch.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_side_matches_a_hand_computed_std(dtype):
    gt = torch.full((1, 3, 3), 1.05, dtype=dtype)
    noise = torch.zeros(1, 3, 3, dtype=dtype)
    mask = torch.zeros(1, 3, 3, dtype=torch.bool)
    for (i, j), value in zip([(0, 0), (0, 2), (1, 1), (2, 1)], [0.1, -0.1, 0.2, 0.0], strict=True):
        noise[0, i, j] = value
        mask[0, i, j] = True
    noise[~mask] = 5.0  # outside the mask: must not count
    # mean 0.05, deviations ±0.05, ±0.15 → variance (2·0.0025 + 2·0.0225) / 4 = 0.0125
    expected = math.sqrt(0.0125)
    value = side(gt * torch.exp(noise), gt, mask)
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_side_with_float_weights_equals_bool_mask():
    gen = torch.Generator().manual_seed(1)
    gt = 0.9 + 0.2 * torch.rand(2, 6, 6, generator=gen, dtype=torch.float64)
    pred = 0.9 + 0.2 * torch.rand(2, 6, 6, generator=gen, dtype=torch.float64)
    mask = torch.rand(2, 6, 6, generator=gen) > 0.5
    assert torch.allclose(side(pred, gt, mask), side(pred, gt, mask.double()))


@pytest.mark.parametrize("dtype", DTYPES)
def test_mad_of_identical_depth_is_zero(dtype):
    gen = torch.Generator().manual_seed(2)
    depth = 1.0 + 0.05 * torch.rand(2, 16, 16, generator=gen, dtype=dtype)
    mask = erode_mask(torch.ones(2, 16, 16, dtype=torch.bool))
    value = mad(depth, depth.clone(), mask)
    assert value.shape == (2,) and value.dtype == dtype
    # acos is steep at 1: a float32 dot product of 1 − 6e-8 is already 0.02°.
    assert torch.allclose(value, torch.zeros_like(value), atol=0.05 if dtype == torch.float32 else 1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("theta", [20.0, -12.5, 35.0])
def test_mad_between_fronto_parallel_and_tilted_plane_is_the_tilt(dtype, theta):
    size = 24
    tilted = tilted_plane(size, theta, dtype=dtype)
    flat = torch.ones_like(tilted)
    mask = erode_mask(torch.ones_like(flat, dtype=torch.bool))
    assert mad(tilted, flat, mask).item() == pytest.approx(abs(theta), abs=0.1)
    assert mad(flat, tilted, mask).item() == pytest.approx(abs(theta), abs=0.1)


@pytest.mark.parametrize("size", [24, 64])
def test_mad_can_reproduce_the_original_normal_length_bias(size):
    # The original divided the cross product c by |c| + 1e-7, with |c| = 4 / f² for a fronto-parallel plane at
    # depth 1: identical depth maps then scored acos((|c| / (|c| + 1e-7))²), 6.5° at 64 px.
    flat = torch.ones(1, size, size, dtype=torch.float64)
    mask = erode_mask(torch.ones(1, size, size, dtype=torch.bool))
    cross = 4.0 / focal_length(size) ** 2
    expected = math.degrees(math.acos((cross / (cross + 1e-7)) ** 2))
    assert mad(flat, flat, mask, original_bias=True).item() == pytest.approx(expected, rel=1e-9)
    assert depth_metrics(flat, flat, mask, original_bias=True)["mad"].item() == pytest.approx(expected, rel=1e-9)
    assert depth_metrics(flat, flat, mask)["mad"].item() == 0.0


def test_mad_uses_the_fov():
    tilted = tilted_plane(24, 20.0, fov=30.0)
    flat = torch.ones_like(tilted)
    mask = erode_mask(torch.ones_like(flat, dtype=torch.bool))
    assert mad(tilted, flat, mask, fov=30.0).item() == pytest.approx(20.0, abs=0.1)
    assert abs(mad(tilted, flat, mask, fov=10.0).item() - 20.0) > 1.0


def test_masked_out_nans_and_bad_values_do_not_leak():
    gen = torch.Generator().manual_seed(3)
    gt = 0.9 + 0.2 * torch.rand(2, 12, 12, generator=gen)
    pred = (gt * 1.3).requires_grad_(True)
    foreground = torch.zeros(2, 12, 12, dtype=torch.bool)
    foreground[:, 2:10, 3:11] = True
    gt_nan = torch.where(foreground, gt, torch.full_like(gt, float("nan")))
    pred_bad = torch.where(foreground, pred, torch.full_like(gt, -1.0))  # log(−1) outside
    valid = torch.ones(2, 12, 12, dtype=torch.bool)
    metrics = depth_metrics(pred_bad, gt_nan, valid)
    for name, value in metrics.items():
        assert value.shape == (2,)
        assert torch.isfinite(value).all(), name
    assert torch.allclose(metrics["side"], torch.zeros(2), atol=1e-6)
    side(pred_bad, gt_nan, evaluation_mask(gt_nan, valid)).sum().backward()
    assert torch.isfinite(pred.grad).all()


def test_evaluation_mask_is_eroded_foreground_times_eroded_validity():
    gt = torch.full((1, 10, 10), float("nan"))
    gt[0, 1:9, 1:9] = 1.0
    valid = torch.zeros(1, 10, 10)
    valid[0, 3:10, 0:10] = 1.0
    mask = evaluation_mask(gt, valid)
    expected = torch.zeros(1, 10, 10, dtype=torch.bool)
    expected[0, 4:8, 2:8] = True
    assert torch.equal(mask, expected)


def test_mae_mse_are_masked_means():
    gt = torch.ones(1, 4, 4, dtype=torch.float64)
    pred = gt.clone()
    pred[0, 0, 0], pred[0, 0, 1] = 1.2, 0.6
    pred[0, 3, 3] = 100.0  # masked out
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, 0, :2] = True
    assert mae(pred, gt, mask).item() == pytest.approx(0.3)
    assert mse(pred, gt, mask).item() == pytest.approx((0.04 + 0.16) / 2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_depth_metrics_keys_shapes_dtypes(dtype):
    gt = tilted_plane(16, 10.0, dtype=dtype).expand(3, 16, 16).clone()
    pred = gt * 1.1
    metrics = depth_metrics(pred, gt, torch.ones(3, 16, 16, dtype=torch.bool))
    assert set(metrics) == {"side", "mad", "mae", "mse"}
    for value in metrics.values():
        assert value.shape == (3,) and value.dtype == dtype


def test_empty_mask_gives_nan():
    depth = torch.ones(1, 5, 5)
    assert torch.isnan(side(depth, depth, torch.zeros(1, 5, 5, dtype=torch.bool))).all()


def test_summarize_mean_and_unbiased_std():
    mean, std = summarize(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert mean == pytest.approx(2.5)
    assert std == pytest.approx(math.sqrt(5.0 / 3.0))
    assert summarize([2.0, 2.0]) == (2.0, 0.0)
    mean, std = summarize([3.0])
    assert mean == 3.0 and math.isnan(std)
    with pytest.raises(ValueError):
        summarize([])


def test_inputs_are_checked():
    depth = torch.ones(1, 4, 4)
    mask = torch.ones(1, 4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        side(depth[0], depth[0], mask[0])
    with pytest.raises(ValueError, match="mismatch"):
        mae(depth, torch.ones(1, 4, 5), mask)
    with pytest.raises(TypeError):
        mse(depth.long(), depth, mask)
    with pytest.raises(TypeError):
        erode_mask(mask.long())
    with pytest.raises(TypeError):
        side(depth.numpy(), depth, mask)
