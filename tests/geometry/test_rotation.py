import math

import pytest
import torch

from unsup3d.geometry import euler_to_matrix, inverse_transform_points, split_view, transform_points


def elementary(axis: str, angle: float) -> torch.Tensor:
    """Right-handed rotation matrix (3, 3) about one axis, float64, written out by hand."""
    c, s = math.cos(angle), math.sin(angle)
    matrices = {
        "x": [[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]],
        "y": [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]],
        "z": [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]],
    }
    return torch.tensor(matrices[axis], dtype=torch.float64)


def random_angles(batch, seed, dtype=torch.float64, device="cpu"):
    gen = torch.Generator().manual_seed(seed)
    return ((torch.rand(batch, 3, generator=gen, dtype=torch.float64) * 2 - 1) * math.pi).to(device, dtype)


@pytest.mark.parametrize("batch", [1, 4])
def test_matrices_are_proper_rotations(batch, device, dtype):
    rot = euler_to_matrix(random_angles(batch, seed=0, dtype=dtype, device=device))
    assert rot.shape == (batch, 3, 3) and rot.dtype == dtype and rot.device.type == device.type
    eye = torch.eye(3, dtype=dtype, device=device).expand(batch, 3, 3)
    torch.testing.assert_close(rot @ rot.transpose(1, 2), eye)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(batch, dtype=dtype, device=device))


@pytest.mark.parametrize(
    ("axis", "vector", "image"),
    [
        # Right-handed quarter turns: x takes y to z, y takes z to x, z takes x to y.
        ("x", [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]),
        ("y", [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]),
        ("z", [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]),
    ],
)
def test_quarter_turn_about_each_axis(axis, vector, image, device, dtype):
    angles = torch.zeros(1, 3, dtype=dtype, device=device)
    angles[0, "xyz".index(axis)] = math.pi / 2
    rot = euler_to_matrix(angles)[0]
    torch.testing.assert_close(rot, elementary(axis, math.pi / 2).to(device, dtype), atol=1e-7, rtol=0)
    moved = rot @ torch.tensor(vector, dtype=dtype, device=device)
    torch.testing.assert_close(moved, torch.tensor(image, dtype=dtype, device=device), atol=1e-7, rtol=0)


def test_composition_order_is_z_after_y_after_x(device, dtype):
    angles = torch.tensor([[0.3, -0.4, 0.5], [-1.2, 0.9, 2.5]], dtype=dtype, device=device)
    rot = euler_to_matrix(angles)
    for b, (rx, ry, rz) in enumerate(angles.double().tolist()):
        expected = elementary("z", rz) @ elementary("y", ry) @ elementary("x", rx)
        torch.testing.assert_close(rot[b].double(), expected, atol=1e-6, rtol=0)
    # A non-commuting pair tells the orders apart: Rx first sends y to z, then Ry sends z to x.
    quarter_x_then_y = euler_to_matrix(torch.tensor([[math.pi / 2, math.pi / 2, 0.0]], dtype=dtype, device=device))[0]
    y_axis = torch.tensor([0.0, 1.0, 0.0], dtype=dtype, device=device)
    x_axis = torch.tensor([1.0, 0.0, 0.0], dtype=dtype, device=device)
    torch.testing.assert_close(quarter_x_then_y @ y_axis, x_axis, atol=1e-7, rtol=0)
    # The other order (Rx · Ry) would have sent y to z.
    other_order = elementary("x", math.pi / 2) @ elementary("y", math.pi / 2)
    assert float((other_order @ y_axis.double().cpu() - x_axis.double().cpu()).abs().max()) > 0.5


def test_split_view():
    view = torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.0, 0.0, 0.0, -1.0, 2.0, 3.0]], dtype=torch.float64)
    rot, trans = split_view(view)
    torch.testing.assert_close(rot, euler_to_matrix(view[:, :3]))
    torch.testing.assert_close(trans, view[:, 3:])
    torch.testing.assert_close(rot[1], torch.eye(3, dtype=torch.float64))


def test_transform_matches_the_formula(device, dtype):
    view = torch.tensor([[0.2, 0.7, -0.1, 0.01, 0.02, -0.03], [-0.5, 0.1, 0.4, 0.0, -0.1, 0.2]], dtype=torch.float64)
    points = torch.randn(2, 5, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    moved = transform_points(points.to(device, dtype), view.to(device, dtype))
    assert moved.shape == points.shape and moved.dtype == dtype
    centre = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    for b in range(2):
        rx, ry, rz, *shift = view[b].tolist()
        rot = elementary("z", rz) @ elementary("y", ry) @ elementary("x", rx)
        expected = (points[b] - centre) @ rot.T + centre + torch.tensor(shift, dtype=torch.float64)
        torch.testing.assert_close(moved[b].cpu().double(), expected, atol=1e-5, rtol=1e-5)


def test_rotation_keeps_the_centre_fixed(device, dtype):
    rotation_only = torch.tensor([[0.2, 0.7, -0.1, 0.0, 0.0, 0.0], [1.5, -2.0, 3.0, 0.0, 0.0, 0.0]], dtype=dtype)
    centre = torch.tensor([0.0, 0.0, 1.0], dtype=dtype).expand(2, 1, 3)
    rotation_only, centre = rotation_only.to(device), centre.to(device)
    torch.testing.assert_close(transform_points(centre, rotation_only), centre, atol=1e-7, rtol=0)
    torch.testing.assert_close(inverse_transform_points(centre, rotation_only), centre, atol=1e-7, rtol=0)
    # Any other point moves.
    other = centre + torch.tensor([0.3, -0.2, 0.1], dtype=dtype, device=device)
    assert float((transform_points(other, rotation_only) - other).norm(dim=-1).min()) > 0.05
    # A translation moves the centre by exactly itself.
    view = rotation_only.clone()
    view[:, 3:] = torch.tensor([0.01, -0.02, 0.03], dtype=dtype, device=device)
    torch.testing.assert_close(transform_points(centre, view), centre + view[:, None, 3:], atol=1e-7, rtol=0)


@pytest.mark.parametrize("shape", [(2, 7, 3), (2, 5, 4, 3)])
def test_inverse_transform_round_trips(shape, device, dtype):
    gen = torch.Generator().manual_seed(2)
    points = torch.randn(*shape, dtype=torch.float64, generator=gen).to(device, dtype)
    view = torch.cat([random_angles(2, seed=3), 0.1 * torch.randn(2, 3, dtype=torch.float64, generator=gen)], 1)
    view = view.to(device, dtype)
    torch.testing.assert_close(inverse_transform_points(transform_points(points, view), view), points)
    torch.testing.assert_close(transform_points(inverse_transform_points(points, view), view), points)
    # A single-axis rotation is undone by the opposite angle.
    for axis in range(3):
        single = torch.zeros(2, 6, dtype=dtype, device=device)
        single[:, axis] = torch.tensor([0.7, -1.9], dtype=dtype, device=device)
        torch.testing.assert_close(transform_points(transform_points(points, single), -single), points)


def test_batch_elements_use_their_own_view():
    points = torch.randn(1, 6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(7)).expand(2, 6, 3)
    view = torch.tensor([[0.3, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    moved = transform_points(points, view)
    torch.testing.assert_close(moved[1], points[1])
    torch.testing.assert_close(moved[0], transform_points(points[:1], view[:1])[0])
    assert float((moved[0] - points[0]).abs().max()) > 1e-3


def test_gradcheck(device):
    angles = random_angles(2, seed=4, device=device).requires_grad_(True)
    assert torch.autograd.gradcheck(euler_to_matrix, (angles,))
    gen = torch.Generator().manual_seed(5)
    points = torch.randn(2, 3, 2, 3, dtype=torch.float64, generator=gen).to(device).requires_grad_(True)
    view = torch.cat([random_angles(2, seed=6), 0.1 * torch.randn(2, 3, dtype=torch.float64, generator=gen)], 1)
    view = view.to(device).requires_grad_(True)
    assert torch.autograd.gradcheck(transform_points, (points, view))
    assert torch.autograd.gradcheck(inverse_transform_points, (points, view))


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="angles"):
        euler_to_matrix(torch.ones(2, 4))
    with pytest.raises(ValueError, match="angles"):
        euler_to_matrix(torch.ones(3))
    with pytest.raises(ValueError, match="view"):
        split_view(torch.ones(2, 5))
    with pytest.raises(ValueError, match="view"):
        transform_points(torch.ones(2, 4, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match="view"):
        inverse_transform_points(torch.ones(2, 4, 3), torch.ones(6))
