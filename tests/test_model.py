import math

import pytest
import torch

from unsup3d.config import Config, ModelConfig
from unsup3d.losses import Objective, ellipsoid_depth
from unsup3d.model import PhotoGeometricAutoencoder
from unsup3d.ops import gaussian_blur

SMALL = dict(depth_nf=8, albedo_nf=8, encoder_nf=8, conf_nf=8, autoencoder_zdim=16, conf_zdim=16, perceptual="none")


def image_terms(config: ModelConfig, pred, images, iteration: int = 0) -> dict[str, torch.Tensor]:
    """The photometric objective of a model configuration (no perceptual network)."""
    return Objective(Config(model=config)).image_terms(pred, images, iteration)


def small_model(**changes) -> PhotoGeometricAutoencoder:
    torch.manual_seed(0)
    return PhotoGeometricAutoencoder(ModelConfig(**{**SMALL, **changes}))


@pytest.mark.parametrize("batch", [1, 3])
def test_prediction_shapes_and_ranges(batch):
    model = small_model()
    with torch.no_grad():
        pred = model(torch.rand(batch, 3, 64, 64))
    for half in (pred.recon, pred.recon_flipped):
        assert half.canonical_depth.shape == half.depth.shape == (batch, 64, 64)
        assert half.image.shape == half.canonical_image.shape == half.canonical_albedo.shape == (batch, 3, 64, 64)
        assert half.canonical_normal.shape == (batch, 64, 64, 3) and half.canonical_shading.shape == (batch, 1, 64, 64)
        depth = half.canonical_depth
        assert float(depth.min()) >= 0.9 and float(depth.max()) <= 1.1
        torch.testing.assert_close(depth[..., :2], torch.full_like(depth[..., :2], 1.04))
        torch.testing.assert_close(depth[..., -2:], torch.full_like(depth[..., -2:], 1.04))
        albedo = half.canonical_albedo
        assert float(albedo.min()) >= 0.0 and float(albedo.max()) <= 1.0  # images in [0, 1]
    assert pred.recon_mask.shape == (batch, 64, 64)
    assert pred.confidence.shape == (batch, 2, 64, 64) and pred.confidence_perceptual is None  # no perceptual loss
    with torch.no_grad():
        with_perceptual = small_model(perceptual="vgg16")(torch.rand(batch, 3, 64, 64))
    assert with_perceptual.confidence_perceptual.shape == (batch, 2, 16, 16)
    assert float(pred.view[:, :3].abs().max()) <= math.radians(60)
    assert float(pred.view[:, 5].abs().max()) == 0.0  # z translation range 0 by default
    torch.testing.assert_close(pred.light_direction.norm(dim=1), torch.ones(batch))
    flipped = pred.recon_flipped
    torch.testing.assert_close(flipped.canonical_depth, pred.recon.canonical_depth.flip(-1))
    torch.testing.assert_close(flipped.canonical_albedo, pred.recon.canonical_albedo.flip(-1))


def test_identity_view_reconstructs_the_canonical_image():
    model = small_model()
    rows = torch.linspace(-1, 1, 64)
    dome = 1.0 - 0.05 * (1 - rows[:, None] ** 2) * (1 - rows[None, :] ** 2)  # smooth, nothing self-occludes
    depth = torch.stack([dome, dome.T])
    canon = torch.rand(2, 3, 64, 64)
    recon_depth, recon_image, mask = model.reproject(depth, canon, torch.zeros(2, 6))
    torch.testing.assert_close(recon_depth, depth)
    assert bool((mask == 1).all())
    torch.testing.assert_close(recon_image, canon, atol=1e-4, rtol=0)


def test_ablation_switches():
    x = torch.rand(2, 3, 64, 64)
    pred = small_model(flip_albedo=False, flip_depth=False)(x)
    torch.testing.assert_close(pred.recon_flipped.canonical_albedo, pred.recon.canonical_albedo)
    torch.testing.assert_close(pred.recon_flipped.canonical_depth, pred.recon.canonical_depth)
    no_conf = small_model(use_conf=False)
    pred = no_conf(x)
    assert pred.confidence is None and no_conf.conf_net is None
    assert torch.isfinite(image_terms(no_conf.config, pred, x)["total"])
    no_light = small_model(use_light=False)
    with torch.no_grad():
        pred = no_light(x)
    shading = pred.recon.canonical_shading
    assert float(shading.min()) >= 0.0 and float(shading.max()) <= 2.0


def test_every_network_receives_gradient():
    model = small_model()
    x = torch.rand(2, 3, 64, 64)
    image_terms(model.config, model(x), x)["total"].backward()
    for name in ("depth_net", "albedo_net", "light_net", "view_net", "conf_net"):
        # Without a perceptual loss the perceptual confidence head (out_net2) is unused.
        grads = [p.grad for n, p in getattr(model, name).named_parameters() if not n.startswith("out_net2")]
        assert all(g is not None for g in grads), name
        assert sum(float(g.abs().sum()) for g in grads) > 0, name


def test_bad_input_shape_is_rejected():
    with pytest.raises(ValueError, match="images must be"):
        small_model()(torch.rand(2, 3, 32, 32))


def test_depth_blur_removes_stripes_and_keeps_constants():
    stripes = torch.zeros(1, 32, 32)
    stripes[:, :, ::3] = 1.0  # the 3-pixel-period texture that short runs tend to grow
    blurred = gaussian_blur(stripes, 1.0, padding="reflect")
    assert float(blurred.std()) < 0.2 * float(stripes.std())
    torch.testing.assert_close(gaussian_blur(torch.full((2, 16, 16), 0.7), 1.5), torch.full((2, 16, 16), 0.7))


def test_without_flip_matches_the_first_half():
    model = small_model()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        both, single = model(x), model(x, with_flip=False)
    assert single.recon_flipped is None
    assert single.recon.depth.shape == (2, 64, 64) and single.recon.image.shape == (2, 3, 64, 64)
    torch.testing.assert_close(single.recon.depth, both.recon.depth)
    torch.testing.assert_close(single.recon.canonical_image, both.recon.canonical_image)


def test_ellipsoid_prior_is_a_convex_cap_inside_the_depth_range():
    config = ModelConfig(min_depth=0.9, max_depth=1.1)
    prior = ellipsoid_depth(config, relief=0.06)
    assert prior.shape == (64, 64)
    border = config.resolved_border_depth
    assert prior[0, 0] == pytest.approx(border) and prior[32, 1] == pytest.approx(border)  # outside the ellipse
    centre = prior[31:33, 31:33]
    assert torch.allclose(centre, torch.full_like(centre, border - 0.06), atol=2e-4)  # apex ≈ border − relief
    assert torch.equal(prior, prior.flip(-1))  # symmetric, as a canonical shape should be
    row = prior[32, 8:33]
    assert (row[1:] <= row[:-1] + 1e-7).all()  # rises monotonically towards the apex
    narrow = ellipsoid_depth(ModelConfig(min_depth=0.97, max_depth=1.03), relief=0.06)
    assert narrow.min() == pytest.approx(1.0 - 0.95 * 0.03)  # clamped where tanh cannot reach


@pytest.mark.parametrize("size", [128, 256])
def test_larger_images_train_end_to_end(size):
    model = small_model(image_size=size)
    images = torch.rand(1, 3, size, size)
    pred = model(images)
    assert pred.recon_flipped.image.shape == (1, 3, size, size) and pred.confidence.shape == (1, 2, size, size)
    terms = image_terms(model.config, pred, images)
    terms["total"].backward()
    assert torch.isfinite(terms["total"])
    unused = "conf_net.out_net2"  # the perceptual confidence head, unused without a perceptual loss
    assert all(p.grad is not None for n, p in model.named_parameters() if not n.startswith(unused))


def test_photometric_residual_switches_at_its_start_iteration():
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        pred = small_model()(images)

    def photo(iteration: int, **changes) -> torch.Tensor:
        return image_terms(ModelConfig(**{**SMALL, **changes}), pred, images, iteration)["photo"]

    staged = {"photometric": "ssim_l1", "photometric_start_iteration": 10}
    torch.testing.assert_close(photo(9, **staged), photo(9))  # L1 before the switch
    torch.testing.assert_close(photo(10, **staged), photo(10, photometric="ssim_l1"))  # SSIM + L1 from it on
    assert not torch.allclose(photo(10), photo(10, photometric="ssim_l1"))
