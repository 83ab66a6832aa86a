import math

import numpy as np
import pytest
import torch

from unsup3d.geometry import focal_length
from unsup3d.metrics import depth_metrics, erode_mask, evaluation_mask, mad, mae, mse, pearson, side, slope, summarize

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


# ---------------------------------------------------------------------- keypoint depth correlation
def _loop_bilinear(depth: torch.Tensor, u: float, v: float) -> float:
    """Bilinear interpolation of one (H, W) map at (u, v), by hand; NaN outside the pixel-centre hull."""
    height, width = depth.shape
    if not (0 <= u <= width - 1 and 0 <= v <= height - 1):
        return math.nan
    i0, j0 = min(int(math.floor(v)), height - 2), min(int(math.floor(u)), width - 2)
    fy, fx = v - i0, u - j0
    d = depth.double()
    top = (1 - fx) * d[i0, j0] + fx * d[i0, j0 + 1]
    bottom = (1 - fx) * d[i0 + 1, j0] + fx * d[i0 + 1, j0 + 1]
    return float((1 - fy) * top + fy * bottom)


def _loop_correlations(pred, gt, valid) -> list[float]:
    """np.corrcoef of each keypoint's valid entries, one keypoint at a time."""
    import numpy as np

    out = []
    for k in range(pred.shape[1]):
        rows = valid[:, k].numpy()
        out.append(float(np.corrcoef(pred[rows, k].numpy(), gt[rows, k].numpy())[0, 1]))
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_depth_at_matches_a_loop_and_is_exact_on_affine_maps(dtype):
    from unsup3d.metrics import sample_depth_at

    gen = torch.Generator().manual_seed(0)
    depth = 1.0 + 0.1 * torch.rand(2, 5, 7, generator=gen, dtype=torch.float64)
    points = torch.rand(2, 9, 2, generator=gen, dtype=torch.float64) * torch.tensor([8.0, 6.0]) - 0.5
    points[0, 0] = torch.tensor([6.0, 4.0])  # the last pixel centre, exactly
    points[0, 1] = torch.tensor([0.0, 0.0])
    sampled = sample_depth_at(depth.to(dtype), points.to(dtype))
    assert sampled.shape == (2, 9) and sampled.dtype == dtype
    for b in range(2):
        for k in range(9):
            expected = _loop_bilinear(depth[b].to(dtype), float(points[b, k, 0]), float(points[b, k, 1]))
            got = float(sampled[b, k])
            assert (math.isnan(expected) and math.isnan(got)) or abs(got - expected) < 1e-5, (b, k)
    assert torch.isnan(sampled).any() and torch.isfinite(sampled).any()  # both kinds of points were drawn
    # A depth map affine in (u, v) is reproduced exactly at any inside point.
    v, u = torch.meshgrid(torch.arange(5.0), torch.arange(7.0), indexing="ij")
    plane = (1.0 + 0.01 * u - 0.02 * v).to(dtype)[None]
    inside = torch.tensor([[[0.3, 0.7], [5.9, 3.2], [2.5, 4.0]]], dtype=dtype)
    expected = 1.0 + 0.01 * inside[..., 0] - 0.02 * inside[..., 1]
    assert torch.allclose(sample_depth_at(plane, inside), expected, atol=1e-6)


def test_sample_depth_at_checks_its_inputs():
    from unsup3d.metrics import sample_depth_at

    with pytest.raises(ValueError, match="points"):
        sample_depth_at(torch.ones(2, 4, 4), torch.zeros(1, 3, 2))
    with pytest.raises(ValueError, match="2x2"):
        sample_depth_at(torch.ones(1, 1, 4), torch.zeros(1, 3, 2))


def test_keypoint_correlations_match_np_corrcoef_with_a_mask():
    from unsup3d.metrics import keypoint_correlations

    gen = torch.Generator().manual_seed(1)
    gt = torch.rand(40, 6, generator=gen, dtype=torch.float64)
    pred = gt + 0.3 * torch.rand(40, 6, generator=gen, dtype=torch.float64)
    valid = torch.rand(40, 6, generator=gen) > 0.3
    pred[~valid] = float("nan")  # masked-out values must not leak
    r = keypoint_correlations(pred, gt, valid)
    assert torch.allclose(r, torch.tensor(_loop_correlations(pred, gt, valid), dtype=torch.float64), atol=1e-12)


def test_keypoint_depth_correlation_is_depthnets_abs_trace():
    """Without a mask it equals DepthNet's definition: the trace of |corrcoef| between the K predicted and
    the K true columns (images as observations)."""
    import numpy as np

    from unsup3d.metrics import keypoint_depth_correlation

    gen = torch.Generator().manual_seed(2)
    gt = torch.rand(30, 5, generator=gen, dtype=torch.float64)
    pred = torch.cat([gt[:, :3] + 0.2 * torch.rand(30, 3, generator=gen), -gt[:, 3:]], 1)  # two inverted
    k = gt.shape[1]
    joint = np.corrcoef(pred.numpy(), gt.numpy(), rowvar=False)  # (2K, 2K)
    expected = np.abs(np.diag(joint[:k, k:])).sum()
    assert abs(float(keypoint_depth_correlation(pred, gt)) - expected) < 1e-12
    signed = float(np.diag(joint[:k, k:]).sum())
    assert abs(float(keypoint_depth_correlation(pred, gt, absolute=False)) - signed) < 1e-12


def test_keypoint_depth_correlation_analytic_cases():
    from unsup3d.metrics import keypoint_depth_correlation

    gen = torch.Generator().manual_seed(3)
    n, k = 20000, 8
    gt = 1.0 + 0.05 * torch.randn(n, k, generator=gen, dtype=torch.float64)
    assert abs(float(keypoint_depth_correlation(gt, gt)) - k) < 1e-12
    scale, shift = torch.rand(k, generator=gen, dtype=torch.float64) + 0.1, torch.randn(k, dtype=torch.float64)
    assert abs(float(keypoint_depth_correlation(scale * gt + shift, gt)) - k) < 1e-9  # per-keypoint a·d + b
    negated = 2.0 - gt
    assert abs(float(keypoint_depth_correlation(negated, gt, absolute=False)) + k) < 1e-9
    assert abs(float(keypoint_depth_correlation(negated, gt)) - k) < 1e-9  # DepthNet's |r| ignores the sign
    noise = torch.randn(n, k, generator=gen, dtype=torch.float64)
    assert abs(float(keypoint_depth_correlation(noise, gt, absolute=False))) < 0.1  # sum of k ~ N(0, 1/n)
    # E|r| = sqrt(2 / (π n)) for independent Gaussians: the |r| score of noise is small but positive.
    expected_abs = k * math.sqrt(2.0 / (math.pi * n))
    assert abs(float(keypoint_depth_correlation(noise, gt)) - expected_abs) < 0.5 * expected_abs


def test_keypoint_correlation_undefined_cases_are_nan():
    from unsup3d.metrics import keypoint_correlations, keypoint_depth_correlation

    gt = torch.tensor([[1.0, 2.0], [2.0, 3.0], [3.0, 5.0]])
    flat = torch.ones(3, 2)
    assert torch.isnan(keypoint_correlations(flat, gt)).all()  # no variance in the prediction
    one_valid = torch.tensor([[True, True], [False, True], [False, True]])
    r = keypoint_correlations(gt, gt, one_valid)
    assert math.isnan(float(r[0])) and abs(float(r[1]) - 1.0) < 1e-6
    assert math.isnan(float(keypoint_depth_correlation(gt, gt, one_valid)))
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        keypoint_correlations(gt, gt[:, :1])
    with pytest.raises(ValueError, match="valid"):
        keypoint_correlations(gt, gt, one_valid.float())
    with pytest.raises(TypeError):
        keypoint_correlations(gt.long(), gt)


def test_keypoint_metrics_gradcheck():
    from unsup3d.metrics import keypoint_correlations, sample_depth_at

    gen = torch.Generator().manual_seed(4)
    depth = torch.rand(1, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    points = torch.tensor([[[0.3, 1.7], [3.2, 2.4]]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda d: sample_depth_at(d, points), (depth,))
    pred = torch.rand(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    gt = torch.rand(6, 3, generator=gen, dtype=torch.float64)
    valid = torch.rand(6, 3, generator=gen) > 0.2
    assert torch.autograd.gradcheck(lambda p: keypoint_correlations(p, gt, valid), (pred,))


def test_pearson_and_slope_match_numpy():
    rng = np.random.default_rng(5)
    true = rng.normal(size=50)
    predicted = 0.6 * true + rng.normal(scale=0.3, size=50)
    a, b = torch.from_numpy(predicted), torch.from_numpy(true)
    assert pearson(a, b) == pytest.approx(np.corrcoef(predicted, true)[0, 1], rel=1e-12)
    assert slope(a, b) == pytest.approx(np.polyfit(true, predicted, 1)[0], rel=1e-10)
    assert pearson(a, torch.ones(50, dtype=torch.float64)) == 0.0 and slope(a, torch.zeros(50)) == 0.0
