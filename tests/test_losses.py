import math

import torch

from unsup3d.losses import depth_smoothness, perceptual_nll, photometric_nll


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
