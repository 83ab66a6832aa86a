import math

import pytest
import torch

from unsup3d.render import diffuse_shading, lambertian, light_direction


def random_unit(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    vectors = torch.randn(*shape, 3, generator=gen, dtype=torch.float64)
    return vectors / vectors.norm(dim=-1, keepdim=True)


def test_light_direction_is_unit_and_parallel_to_lx_ly_1(device, dtype):
    lxy = torch.tensor([[0.0, 0.0], [3.0, -4.0], [-0.5, 0.25]], dtype=dtype, device=device)
    direction = light_direction(lxy)
    assert direction.shape == (3, 3) and direction.dtype == dtype and direction.device.type == device.type
    torch.testing.assert_close(direction.norm(dim=1), torch.ones(3, dtype=dtype, device=device))
    expected = torch.tensor([[0.0, 0.0, 1.0], [3.0, -4.0, 1.0], [-0.5, 0.25, 1.0]], dtype=torch.float64)
    expected = expected / expected.norm(dim=1, keepdim=True)
    torch.testing.assert_close(direction.cpu().double(), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("shape", [(2, 3), (2,), (2, 2, 1), (0, 1)])
def test_light_direction_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="lxy"):
        light_direction(torch.zeros(shape))


def test_diffuse_shading_analytic_cases(device, dtype):
    tilt = math.radians(60)
    # A 2×2 normal map: frontal, perpendicular to +z, facing away, tilted 60° towards +x.
    normals = torch.tensor(
        [[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], [[0.0, 0.0, -1.0], [math.sin(tilt), 0.0, math.cos(tilt)]]],
        dtype=dtype,
        device=device,
    ).expand(2, 2, 2, 3)
    direction = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=dtype, device=device)
    shading = diffuse_shading(normals, direction)
    assert shading.shape == (2, 1, 2, 2) and shading.dtype == dtype
    expected = torch.tensor(
        [
            [[1.0, 0.0], [0.0, math.cos(tilt)]],  # light straight on: 1, perpendicular: 0, behind: clamped to 0
            [[0.0, 1.0], [0.0, math.sin(tilt)]],  # light along +x: the frontal normal is now the perpendicular one
        ],
        dtype=dtype,
        device=device,
    ).unsqueeze(1)
    torch.testing.assert_close(shading, expected)


def test_diffuse_shading_matches_a_loop_reference(device, dtype):
    normals = random_unit((2, 4, 5), seed=0)
    direction = random_unit((2,), seed=1)
    shading = diffuse_shading(normals.to(device, dtype), direction.to(device, dtype)).cpu().double()
    assert bool((shading == 0).any()) and bool((shading > 0).any()), "the test needs both lit and unlit pixels"
    for b in range(2):
        for i in range(4):
            for j in range(5):
                dot = sum(float(normals[b, i, j, k]) * float(direction[b, k]) for k in range(3))
                assert float(shading[b, 0, i, j]) == pytest.approx(max(0.0, dot), abs=1e-6)


def test_lambertian_uses_each_images_coefficients(device, dtype):
    diffuse = torch.tensor([0.0, 0.25, 1.0], dtype=dtype, device=device).view(1, 1, 1, 3).repeat(2, 1, 2, 1)
    ambient = torch.tensor([0.1, 0.5], dtype=dtype, device=device)
    strength = torch.tensor([0.8, 2.0], dtype=dtype, device=device)
    shading = lambertian(diffuse, ambient, strength)
    assert shading.shape == (2, 1, 2, 3) and shading.dtype == dtype
    expected = torch.tensor([[0.1, 0.3, 0.9], [0.5, 1.0, 2.5]], dtype=dtype, device=device)
    torch.testing.assert_close(shading, expected.view(2, 1, 1, 3).expand(2, 1, 2, 3))


def test_shading_functions_check_shapes():
    with pytest.raises(ValueError, match="normals"):
        diffuse_shading(torch.rand(2, 4, 4), random_unit((2,), seed=3))
    with pytest.raises(ValueError, match="direction"):
        diffuse_shading(random_unit((2, 4, 4), seed=2), random_unit((3,), seed=3))
    with pytest.raises(ValueError, match="diffuse"):
        lambertian(torch.rand(2, 3, 4, 4), torch.rand(2), torch.rand(2))
    with pytest.raises(ValueError, match="ambient"):
        lambertian(torch.rand(2, 1, 4, 4), torch.rand(3), torch.rand(2))


def shade(lxy, normals, ambient, strength):
    return lambertian(diffuse_shading(normals, light_direction(lxy)), ambient, strength)


def normals_at_cosines(direction, cosines, seed):
    """Unit normals (B, H, W, 3) whose cosine with each image's unit light direction (B, 3) is ``cosines``."""
    tangent = random_unit(cosines.shape, seed)
    tangent = tangent - (tangent * direction[:, None, None, :]).sum(-1, keepdim=True) * direction[:, None, None, :]
    tangent = tangent / tangent.norm(dim=-1, keepdim=True)
    sine = (1 - cosines**2).sqrt().unsqueeze(-1)
    return cosines.unsqueeze(-1) * direction[:, None, None, :] + sine * tangent


def test_gradcheck(device):
    lxy = torch.tensor([[0.3, -0.2], [-0.5, 0.4]], dtype=torch.float64)
    # Cosines on both sides of the clamp's kink at 0, and at least 0.1 away from it.
    gen = torch.Generator().manual_seed(5)
    magnitude = 0.1 + 0.85 * torch.rand(2, 6, 6, generator=gen, dtype=torch.float64)
    cosines = magnitude * torch.tensor([1.0, -1.0], dtype=torch.float64).repeat(3)  # columns lit, unlit, lit...
    normals = normals_at_cosines(light_direction(lxy), cosines, seed=4)
    torch.testing.assert_close(diffuse_shading(normals, light_direction(lxy))[:, 0], cosines.clamp(min=0))
    lxy, normals = lxy.to(device).requires_grad_(True), normals.to(device).requires_grad_(True)
    ambient = torch.tensor([0.2, 0.6], dtype=torch.float64, device=device, requires_grad=True)
    strength = torch.tensor([0.9, 0.4], dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(shade, (lxy, normals, ambient, strength))
