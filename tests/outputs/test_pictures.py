import math

import pytest
import torch

from unsup3d.config import ModelConfig
from unsup3d.geometry import depth_to_points, euler_to_matrix, project, transform_points
from unsup3d.inference import Reconstructor
from unsup3d.model import PhotoGeometricAutoencoder
from unsup3d.outputs.overlays import (
    SYMMETRY_COLOUR,
    asymmetry_map,
    asymmetry_overlay,
    symmetry_line,
    symmetry_plane_overlay,
)
from unsup3d.outputs.turntable import (
    compose_yaw,
    matrix_to_euler,
    turntable_frames,
    turntable_schedule,
    turntable_views,
    write_animation,
)
from unsup3d.render import BACKGROUND_DEPTH, render_depth
from unsup3d.render.views import light_grid, relight, relight_grid, render_view, shape_colour


def bump_depth(batch: int, size: int, relief: float = 0.1) -> torch.Tensor:
    """(B, S, S) a smooth bump in front of depth 1: the nose at the centre is nearest."""
    coords = torch.linspace(-1.0, 1.0, size)
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    bump = 1.0 - relief * torch.exp(-(x**2 + y**2) / 0.3)
    return bump.expand(batch, size, size).clone()


def yaw_view(batch: int, degrees: float) -> torch.Tensor:
    view = torch.zeros(batch, 6)
    view[:, 1] = math.radians(degrees)
    return view


@pytest.fixture(scope="module")
def reconstruction():
    torch.manual_seed(0)
    config = ModelConfig(
        depth_nf=16, albedo_nf=16, conf_nf=16, encoder_nf=16, autoencoder_zdim=32, conf_zdim=32, perceptual="none"
    )
    model = PhotoGeometricAutoencoder(config).eval()
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    return Reconstructor(model, "cpu")(images)


def test_relight_with_the_predicted_light_is_the_canonical_image(reconstruction):
    rec = reconstruction
    image = relight(rec.canonical_albedo, rec.canonical_normal, rec.ambient, rec.diffuse, rec.light_direction)
    torch.testing.assert_close(image, rec.canonical_image, atol=1e-6, rtol=0)
    lights = torch.stack([light_grid(2)[:1].expand(2, 3), rec.light_direction], dim=1)  # (B, 2, 3)
    grid = relight_grid(rec.canonical_albedo, rec.canonical_normal, rec.ambient, rec.diffuse, lights)
    assert grid.shape == (2, 2, 3, 64, 64)
    torch.testing.assert_close(grid[:, 1], rec.canonical_image, atol=1e-6, rtol=0)
    assert not torch.allclose(grid[:, 0], grid[:, 1])


def test_light_grid_and_relight_grid_shapes():
    directions = light_grid(3)
    assert directions.shape == (9, 3)
    torch.testing.assert_close(directions.norm(dim=1), torch.ones(9))
    torch.testing.assert_close(directions[4], torch.tensor([0.0, 0.0, 1.0]))  # the middle light is frontal
    albedo, normal = torch.full((2, 3, 8, 8), 0.5), torch.tensor([0.0, 0.0, 1.0]).expand(2, 8, 8, 3)
    out = relight_grid(albedo, normal, torch.full((2,), 0.2), torch.full((2,), 0.8), directions)
    assert out.shape == (2, 9, 3, 8, 8)
    torch.testing.assert_close(out[:, 4], torch.full((2, 3, 8, 8), 0.5))  # (0.2 + 0.8) × 0.5


@pytest.mark.parametrize("size", [32, 33])
def test_symmetry_line_of_the_identity_view_is_the_centre_column(size):
    depth = bump_depth(2, size)
    line = symmetry_line(depth, torch.zeros(2, 6))
    torch.testing.assert_close(line[..., 0], torch.full((2, size), (size - 1) / 2), atol=1e-4, rtol=0)
    torch.testing.assert_close(line[..., 1], torch.arange(size, dtype=torch.float32).expand(2, -1), atol=1e-4, rtol=0)
    overlay = symmetry_plane_overlay(torch.full((2, 3, size, size), 0.5), depth, torch.zeros(2, 6), scale=1)
    assert overlay.shape == (2, 3, size, size)
    if size % 2:  # the line runs down the centre column, in the line colour, and nowhere else
        centre = overlay[:, :, :, size // 2]
        torch.testing.assert_close(centre, torch.tensor(SYMMETRY_COLOUR).view(1, 3, 1).expand_as(centre))
        away = torch.cat([overlay[..., : size // 2 - 2], overlay[..., size // 2 + 3 :]], dim=-1)
        torch.testing.assert_close(away, torch.full_like(away, 0.5))  # no plane tint: seen edge-on


def test_symmetry_line_of_a_yaw_is_the_projected_centre_column():
    size, depth, view = 33, bump_depth(1, 33), yaw_view(1, 25.0)
    centre = depth_to_points(depth)[:, :, size // 2]  # (1, S, 3), x = 0: the symmetry plane's points
    expected = project(transform_points(centre, view), size)
    line = symmetry_line(depth, view)
    torch.testing.assert_close(line, expected)
    nose = size // 2
    assert line[0, nose, 0] < (size - 1) / 2 - 1  # positive yaw turns the nose towards -u
    assert symmetry_line(depth, yaw_view(1, -25.0))[0, nose, 0] > (size - 1) / 2 + 1
    scale = 4
    overlay = symmetry_plane_overlay(torch.full((1, 3, size, size), 0.5), depth, view, scale=scale)
    u, v = ((line[0, nose, :2] + 0.5) * scale - 0.5).round().long().tolist()
    torch.testing.assert_close(overlay[0, :, v, u], torch.tensor(SYMMETRY_COLOUR))
    even = symmetry_line(bump_depth(1, 32), view)  # between the projected centre columns
    columns = project(transform_points(depth_to_points(bump_depth(1, 32))[:, :, 15:17], view), 32)
    assert ((even[..., 0] - columns[..., 0, 0]) * (columns[..., 1, 0] - even[..., 0]) >= 0).all()


def test_asymmetry_overlay_is_red_where_sigma_prime_is_high():
    size = 16
    confidence = torch.full((2, 2, size, size), 0.1)
    confidence[:, 0] += 0.01 * torch.rand(2, size, size)
    confidence[:, 1, :, : size // 4] = 3.0  # σ′ high on the left quarter
    confidence[:, 0, :, size // 2 :] = 3.0  # σ high elsewhere: ignored
    image = torch.full((2, 3, size, size), 0.5)
    out = asymmetry_overlay(image, confidence)
    assert out.shape == image.shape and out.min() >= 0 and out.max() <= 1
    left, right = out[..., : size // 4], out[..., size // 2 :]
    assert (left[:, 0] > 0.85).all() and (left[:, 1:] < 0.15).all()
    torch.testing.assert_close(right, torch.full_like(right, 0.5))
    quarter = asymmetry_map(confidence[:, :, ::4, ::4], size=size)  # the S/4 perceptual map is resampled
    assert quarter.shape == (2, 1, size, size)
    assert asymmetry_map(torch.ones(1, size, size)).abs().max() == 0  # a constant map highlights nothing


def test_render_view_identity_reproduces_the_canonical_colour():
    depth, colour = bump_depth(2, 32), torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert (render_depth(depth, torch.zeros(2, 6)) < BACKGROUND_DEPTH).all()  # every pixel covered
    torch.testing.assert_close(render_view(depth, colour, torch.zeros(2, 6)), colour, atol=1e-5, rtol=0)
    normal = torch.tensor([0.0, 0.0, 1.0]).expand(2, 32, 32, 3)
    torch.testing.assert_close(shape_colour(normal), torch.full((2, 3, 32, 32), 0.7))


def test_turntable_sequence_matches_the_original():
    weight, yaw = turntable_schedule()
    assert weight.shape == yaw.shape == (210,)
    assert yaw.max() == pytest.approx(math.pi / 2) and yaw.min() == pytest.approx(-math.pi / 2)
    assert 0 < yaw[25] < math.radians(2) and yaw[25:65].diff().gt(0).all()  # centre → +90° first
    assert int(yaw.argmax()) == 64 and int(yaw.argmin()) == 144 and yaw[145:185].diff().gt(0).all()
    assert (weight[:5] == 0).all() and (weight[20:190] == 1).all() and (weight[-5:] == 0).all()
    view = torch.tensor([[0.1, -0.2, 0.05, 0.01, -0.02, 0.0], [0.0, 0.3, 0.0, 0.0, 0.0, 0.03]])
    views = turntable_views(view)
    assert views.shape == (210, 2, 6)
    torch.testing.assert_close(views[0], view)
    torch.testing.assert_close(views[-1], view)
    zero = torch.tensor([math.radians(9.0), 0, 0, 0, 0, 0]).expand(2, 6)
    torch.testing.assert_close(views[20], zero)
    for frame, sign in ((64, 1.0), (144, -1.0)):  # the sweep's ends: view_zero after a ±90° turn
        expected = euler_to_matrix(zero[:, :3]) @ euler_to_matrix(torch.tensor([[0.0, sign * math.pi / 2, 0.0]]))
        torch.testing.assert_close(euler_to_matrix(views[frame, :, :3]), expected, atol=1e-6, rtol=0)
    assert turntable_views(view, morph_frames=3, hold_frames=1, yaw_frames=8).shape == (26, 2, 6)


def test_matrix_to_euler_inverts_euler_to_matrix():
    angles = (torch.rand(64, 3, dtype=torch.float64) - 0.5) * torch.tensor([2 * math.pi, 0.99 * math.pi, 2 * math.pi])
    torch.testing.assert_close(matrix_to_euler(euler_to_matrix(angles)), angles)
    locked = torch.tensor([[0.3, math.pi / 2, 0.0], [-0.2, -math.pi / 2, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(euler_to_matrix(matrix_to_euler(euler_to_matrix(locked))), euler_to_matrix(locked))
    torch.testing.assert_close(compose_yaw(torch.zeros(1, 6), torch.tensor([0.5]))[0, 1], torch.tensor(0.5))


def test_positive_yaw_turns_the_nose_to_the_left():
    depth = bump_depth(1, 33)
    nearest = render_depth(depth, compose_yaw(torch.zeros(1, 6), torch.tensor([math.radians(30.0)])))
    column = int(nearest[0].min(dim=0).values.argmin())
    assert column < 16 - 1


def test_turntable_frames_edge_on_are_finite_on_white():
    depth = bump_depth(2, 16, relief=0.05)
    colour = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.5
    views = turntable_views(torch.zeros(2, 6))[[0, 64, 144]]  # predicted view, +90°, −90°
    frames = turntable_frames(depth, colour, views, size=24)
    assert frames.shape == (2, 3, 3, 24, 24)
    assert torch.isfinite(frames).all()
    edge_on = frames[:, 1:]
    white = (edge_on == 1).all(dim=2)  # (B, 2, N, N)
    assert white.float().mean() > 0.5 and not white.all()  # a profile sliver on white
    upsampled = torch.nn.functional.interpolate(colour, size=(24, 24), mode="bilinear", align_corners=True)
    depth_24 = torch.nn.functional.interpolate(depth.unsqueeze(1), size=(24, 24), mode="bilinear", align_corners=True)
    covered = (render_depth(depth_24[:, 0], torch.zeros(2, 6)) < BACKGROUND_DEPTH).unsqueeze(1).expand_as(upsampled)
    assert covered.float().mean() > 0.95  # the identity view covers (nearly) every pixel of the upsampled mesh
    torch.testing.assert_close(frames[:, 0][covered], upsampled[covered], atol=1e-5, rtol=0)
    assert (frames[:, 0][~covered] == 1).all()


def test_write_animation_gif_and_mp4(tmp_path):
    imageio = pytest.importorskip("imageio")
    pytest.importorskip("imageio_ffmpeg")
    t, h, w = 6, 32, 48
    ramp = torch.linspace(0, 1, w).view(1, 1, 1, w)
    frames = (ramp + torch.arange(t).view(t, 1, 1, 1) / t).remainder(1.0).expand(t, 3, h, w)  # distinct frames
    gif = write_animation(frames, tmp_path / "turn.gif")
    back = imageio.v3.imread(gif, index=None)
    assert back.shape[:3] == (t, h, w)
    mp4 = write_animation(frames, tmp_path / "turn.mp4")
    with imageio.v2.get_reader(mp4, format="FFMPEG") as reader:
        read = [frame for frame in reader]
    assert len(read) == t and read[0].shape == (h, w, 3)
    odd = write_animation(frames[:, :, :31, :47], tmp_path / "odd.mp4")
    with imageio.v2.get_reader(odd, format="FFMPEG") as reader:
        assert reader.get_next_data().shape == (32, 48, 3)  # padded to even sizes, not resized
    with pytest.raises(ValueError, match="gif or .mp4"):
        write_animation(frames, tmp_path / "turn.avi")


def test_the_object_mask_is_the_face_ellipse_and_follows_the_view():
    from unsup3d.diagnostics import elliptical_radius
    from unsup3d.outputs.overlays import object_mask

    size = 32
    depth = torch.ones(2, size, size)  # a fronto-parallel plane
    view = torch.zeros(2, 6)
    view[1, 3] = 0.05  # image 1 shifted right
    mask = object_mask(depth, view)
    assert mask.shape == (2, 1, size, size) and mask.min() >= 0 and mask.max() <= 1
    rho = elliptical_radius(size)
    assert (mask[0, 0][rho < 0.8] > 0.999).all() and (mask[0, 0][rho > 1] < 1e-6).all()
    shift = (mask[1, 0] * torch.arange(size)).sum() / mask[1, 0].sum() - (size - 1) / 2
    assert shift > 1  # the mask's centre moved right with the object


def test_the_asymmetry_overlay_leaves_the_background_alone():
    size = 16
    confidence = torch.full((1, 2, size, size), 0.1)
    confidence[:, 1, :, : size // 8] = 3.0  # σ′ high on the left eighth (background)
    confidence[:, 1, : size // 4, size // 2 :] = 3.0  # and on the top of the right half (object)
    mask = torch.zeros(1, 1, size, size)
    mask[..., size // 2 :] = 1  # the object is the right half
    image = torch.full((1, 3, size, size), 0.5)
    out = asymmetry_overlay(image, confidence, mask)
    torch.testing.assert_close(out[..., : size // 2], image[..., : size // 2])  # background untouched
    assert (out[:, 0, : size // 4, size // 2 :] > 0.85).all()  # the asymmetric part of the object is red
    torch.testing.assert_close(out[..., size // 4 :, size // 2 :], image[..., size // 4 :, size // 2 :])
    assert (asymmetry_overlay(image, confidence)[:, 0, :, : size // 8] > 0.85).all()  # unmasked: red there too
    with pytest.raises(ValueError, match="mask"):
        asymmetry_overlay(image, confidence, mask[..., :8])
