"""The real-photo scores on constructed cases: a difference outside the face square leaves the face-region error
at 0, the angles come back in degrees, an inverted cap is hollow, and the shading share is 0 for a flat shading
and 1 for a flat albedo. Also every score and the table of ``benchmarks/experiments/real_photos.py`` on a constructed
reconstruction."""

import math

import pytest
import torch

from unsup3d.config import ModelConfig
from unsup3d.inference import Reconstruction
from unsup3d.losses import ellipsoid_depth
from unsup3d.photo_metrics import (
    face_region,
    hollow_count,
    photo_error,
    photo_report,
    photo_scores,
    shading_contrast,
    shading_share,
    view_degrees,
)


def test_the_face_region_is_the_central_40_of_64():
    assert face_region(64) == slice(12, 52)
    assert face_region(128) == slice(24, 104)


def test_photo_error_counts_the_face_region_or_the_whole_crop():
    image = torch.full((2, 3, 64, 64), 0.5)
    recon = image.clone()
    recon[:, :, :12] += 0.2  # rows above the face square
    torch.testing.assert_close(photo_error(image, recon), torch.zeros(2))
    torch.testing.assert_close(photo_error(image, recon, region=False), torch.full((2,), 0.2 * 255 * 12 / 64))
    recon[1, :, 30, 30] = 1.0  # one face pixel of image 1, all channels
    expected = 0.5 * 255 / (40 * 40)
    torch.testing.assert_close(photo_error(image, recon), torch.tensor([0.0, expected]))
    with pytest.raises(ValueError, match="both"):
        photo_error(image, recon[:, :, :32])


def test_view_degrees_names_the_angles():
    view = torch.tensor([[math.radians(10), math.radians(-20), math.radians(5), 0.1, 0.0, 0.0]])
    angles = view_degrees(view)
    torch.testing.assert_close(angles["pitch"], torch.tensor([10.0]))
    torch.testing.assert_close(angles["yaw"], torch.tensor([-20.0]))
    torch.testing.assert_close(angles["roll"], torch.tensor([5.0]))
    with pytest.raises(ValueError, match="B, 6"):
        view_degrees(torch.zeros(2, 3))


def test_an_inverted_cap_is_hollow():
    config = ModelConfig(min_depth=0.96, max_depth=1.04)
    convex = ellipsoid_depth(config, relief=0.05)  # (S, S), the centre in front
    hollow = 2 * convex.mean() - convex  # the same relief pushed in
    depths = torch.stack([convex, hollow, hollow, torch.full_like(convex, 1.0)])
    assert hollow_count(depths, config.max_depth - config.min_depth) == 2


def test_shading_share_is_zero_for_flat_shading_and_one_for_flat_albedo():
    generator = torch.Generator().manual_seed(0)
    texture = 0.2 + 0.6 * torch.rand(2, 3, 64, 64, generator=generator)
    light = 0.5 + torch.rand(2, 1, 64, 64, generator=generator)
    flat_shading, flat_albedo = torch.ones(2, 1, 64, 64), torch.full((2, 3, 64, 64), 0.6)
    torch.testing.assert_close(shading_share(texture, flat_shading), torch.zeros(2))
    torch.testing.assert_close(shading_share(flat_albedo, light), torch.ones(2))
    both = shading_share(texture, light)
    assert ((both > 0.05) & (both < 0.95)).all()
    torch.testing.assert_close(shading_contrast(flat_shading), torch.zeros(2))
    ramp = torch.linspace(0.5, 2.0, 64).view(1, 1, 1, 64).expand(1, 1, 64, 64)  # a light from the right
    region = ramp[0, 0, 12:52, 12:52].log()
    torch.testing.assert_close(shading_contrast(ramp), region.flatten().std().view(1))


def test_the_benchmark_scores_a_constructed_reconstruction():
    config = ModelConfig(min_depth=0.96, max_depth=1.04)
    batch, size = 3, 64
    convex = ellipsoid_depth(config, relief=0.05).expand(batch, size, size).clone()
    convex[2] = 2 * convex[2].mean() - convex[2]  # the third one hollow
    image = torch.full((batch, 3, size, size), 0.5)
    recon = image.clone()
    recon[0] += 4 / 255  # image 0 off by 4 levels everywhere
    view = torch.zeros(batch, 6)
    view[:, 0] = math.radians(-3)  # every face tilted by -3 degrees
    view[1, 1] = math.radians(6)
    rec = Reconstruction(
        image=image,
        depth=convex,
        canonical_depth=convex,
        canonical_normal=torch.zeros(batch, size, size, 3),
        canonical_albedo=torch.full((batch, 3, size, size), 0.5),
        canonical_shading=torch.ones(batch, 1, size, size),
        canonical_image=image,
        recon_image=recon,
        confidence=None,
        confidence_perceptual=None,
        view=view,
        ambient=torch.ones(batch),
        diffuse=torch.zeros(batch),
        light_direction=torch.tensor([[0.0, 0.0, 1.0]]).expand(batch, 3),
    )
    values = photo_scores(rec, config.max_depth - config.min_depth)
    assert values["photos"] == 3 and values["hollow"] == 1
    assert values["face_error"] == pytest.approx(4 / 3, abs=1e-4)
    assert values["whole_error"] == pytest.approx(4 / 3, abs=1e-4)
    assert values["abs_yaw"] == pytest.approx(2.0, abs=1e-4) and values["pitch"] == pytest.approx(-3.0, abs=1e-4)
    assert values["abs_roll"] == 0 and values["shading_contrast"] == 0
    text = photo_report(values, missed=1)
    assert "crop found nothing in 1" in text and "1 of 3" in text
