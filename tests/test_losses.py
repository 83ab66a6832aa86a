import math

import torch

from unsup3d.losses import (
    depth_curvature,
    depth_smoothness,
    perceptual_nll,
    photometric_nll,
    photometric_residual,
    ssim,
)


def test_photometric_nll_matches_hand_computation():
    recon = torch.tensor([[[[0.5, -0.5]]]], dtype=torch.float64).expand(1, 3, 1, 2)
    target = torch.zeros(1, 3, 1, 2, dtype=torch.float64)
    sigma = torch.tensor([[[[2.0, 0.5]]]], dtype=torch.float64)
    mask = torch.tensor([[[1.0, 0.0]]], dtype=torch.float64)
    expected = math.sqrt(2) * 0.5 / (2.0 + 1e-7) + math.log(2.0 + 1e-7)  # only the first pixel counts
    assert abs(photometric_nll(recon, target, mask, sigma).item() - expected) < 1e-12
    assert photometric_nll(recon, target, torch.ones(1, 1, 2, dtype=torch.float64)).item() == 0.5


def test_perceptual_nll_pools_the_mask_softly():
    feats = torch.ones(1, 2, 1, 1, dtype=torch.float64)
    target = torch.zeros(1, 2, 1, 1, dtype=torch.float64)
    mask = torch.zeros(1, 4, 4, dtype=torch.float64)
    mask[:, :2] = 1  # half the 4x4 block valid: weight 0.5, the mean is unchanged
    sigma = torch.full((1, 1, 1, 1), 0.5, dtype=torch.float64)
    expected = 1 / (2 * 0.25 + 1e-7) + math.log(0.5 + 1e-7)
    assert abs(perceptual_nll(feats, target, mask, sigma).item() - expected) < 1e-12


def test_losses_gradcheck():
    recon = torch.rand(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    sigma = (0.5 + torch.rand(2, 1, 4, 4, dtype=torch.float64)).requires_grad_(True)
    target = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    mask = (torch.rand(2, 4, 4) > 0.3).double()
    assert torch.autograd.gradcheck(lambda r, s: photometric_nll(r, target, mask, s), (recon, sigma))
    feats = torch.rand(2, 5, 2, 2, dtype=torch.float64, requires_grad=True)
    psigma = (0.5 + torch.rand(2, 1, 2, 2, dtype=torch.float64)).requires_grad_(True)
    tf = torch.rand(2, 5, 2, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f, s: perceptual_nll(f, tf, mask, s), (feats, psigma))


def test_depth_smoothness_of_a_ramp():
    depth = torch.arange(4.0).view(1, 1, 4).expand(1, 3, 4) * 0.1
    assert abs(depth_smoothness(depth, 0.2).item() - 0.5) < 1e-6


def _slow_curvature(depth, depth_range):
    """Per-pixel loops over the interior: |d_xx| + |d_yy| + 2·|d_xy| with central differences."""
    total, count = 0.0, 0
    for b in range(depth.shape[0]):
        for i in range(1, depth.shape[1] - 1):
            for j in range(1, depth.shape[2] - 1):
                d = depth[b]
                dxx = d[i, j + 1] - 2 * d[i, j] + d[i, j - 1]
                dyy = d[i + 1, j] - 2 * d[i, j] + d[i - 1, j]
                dxy = (d[i + 1, j + 1] - d[i + 1, j - 1] - d[i - 1, j + 1] + d[i - 1, j - 1]) / 4
                total += abs(dxx) + abs(dyy) + 2 * abs(dxy)
                count += 1
    return total / count / depth_range


def test_depth_curvature_is_zero_on_planes_and_exact_on_quadrics():
    y, x = torch.meshgrid(torch.arange(6.0, dtype=torch.float64), torch.arange(7.0, dtype=torch.float64), indexing="ij")
    plane = (1 + 0.03 * x - 0.02 * y).unsqueeze(0)
    assert depth_curvature(plane, 0.1).item() < 1e-12  # relief of any slope costs nothing (TV would not be 0)
    assert depth_smoothness(plane, 0.1).item() > 0.1
    bowl = (0.01 * x**2 + 0.02 * y**2 + 0.005 * x * y).unsqueeze(0)  # d_xx 0.02, d_yy 0.04, d_xy 0.005
    assert abs(depth_curvature(bowl, 0.1).item() - (0.02 + 0.04 + 0.01) / 0.1) < 1e-12


def test_depth_curvature_matches_loops_and_gradcheck():
    depth = torch.rand(2, 5, 6, dtype=torch.float64, requires_grad=True)
    assert abs(depth_curvature(depth, 0.2).item() - _slow_curvature(depth.detach(), 0.2)) < 1e-12
    assert torch.autograd.gradcheck(lambda d: depth_curvature(d, 0.2), (depth,))


def _slow_ssim(x, y):
    """SSIM per pixel by explicit 3×3 windows over reflected borders (index -1 → 1, H → H − 2)."""

    def at(img, i, j):
        h, w = img.shape
        i = -i if i < 0 else (2 * (h - 1) - i if i >= h else i)
        j = -j if j < 0 else (2 * (w - 1) - j if j >= w else j)
        return img[i, j]

    out = torch.zeros_like(x)
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(x.shape[2]):
                for j in range(x.shape[3]):
                    xs = torch.stack([at(x[b, c], i + di, j + dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)])
                    ys = torch.stack([at(y[b, c], i + di, j + dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)])
                    mx, my = xs.mean(), ys.mean()
                    vx, vy = ((xs - mx) ** 2).mean(), ((ys - my) ** 2).mean()
                    cov = ((xs - mx) * (ys - my)).mean()
                    c1, c2 = 0.01**2, 0.03**2
                    out[b, c, i, j] = (2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return out


def test_ssim_matches_windows_and_analytic_cases():
    x = torch.rand(1, 2, 5, 6, dtype=torch.float64)
    y = torch.rand(1, 2, 5, 6, dtype=torch.float64)
    torch.testing.assert_close(ssim(x, y), _slow_ssim(x, y))
    torch.testing.assert_close(ssim(x, x), torch.ones_like(x))
    a, b = 0.3, 0.6  # flat patches: only the luminance term is left
    flat = ssim(torch.full((1, 1, 4, 4), a, dtype=torch.float64), torch.full((1, 1, 4, 4), b, dtype=torch.float64))
    torch.testing.assert_close(flat, torch.full_like(flat, (2 * a * b + 1e-4) / (a * a + b * b + 1e-4)))


def test_ssim_l1_residual_and_its_gradient():
    recon = (torch.rand(1, 3, 5, 5, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    target = torch.rand(1, 3, 5, 5, dtype=torch.float64) * 2 - 1
    residual = photometric_residual(recon, target, "ssim_l1")
    expected = 0.85 * (1 - _slow_ssim((recon + 1) / 2, (target + 1) / 2)) + 0.15 * (recon - target).abs()
    torch.testing.assert_close(residual, expected)
    assert float(photometric_residual(target, target, "ssim_l1").abs().max()) < 1e-12
    sigma = (0.5 + torch.rand(1, 1, 5, 5, dtype=torch.float64)).requires_grad_(True)
    mask = torch.ones(1, 5, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda r, s: photometric_nll(r, target, mask, s, "ssim_l1"), (recon, sigma))
