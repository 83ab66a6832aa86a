import math

import torch
import torch.nn.functional as F

from unsup3d.config import build_config
from unsup3d.engine.training import build_training
from unsup3d.losses import ellipsoid_depth, view_cycle_loss, view_loss

TINY = {"depth_nf": 8, "albedo_nf": 8, "encoder_nf": 8, "conf_nf": 8, "autoencoder_zdim": 16, "conf_zdim": 16}


def _training(**model):
    torch.manual_seed(0)
    config = build_config({"model": {**TINY, **model}, "train": {"channels_last": False}})
    return build_training(config)


def test_view_loss_in_units_of_each_range_without_fixed_components():
    scale = torch.tensor([1.0, 1.0, 1.0, 0.1, 0.1, 0.0])
    predicted = torch.tensor([[0.2, 0.0, 0.0, 0.05, 0.0, 7.0]])
    target = torch.zeros(1, 6)
    assert abs(view_loss(predicted, target, scale).item() - (0.2 + 0.5) / 5) < 1e-7  # tz (range 0) left out


def test_rendering_in_the_predicted_view_is_the_reconstruction():
    model = _training().model
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        pred = model(images, with_flip=False)
        image, mask = model.render_in_view(pred.recon.canonical_depth, pred.recon.canonical_image, pred.view)
    torch.testing.assert_close(image, pred.recon.image)
    torch.testing.assert_close(mask, pred.recon_mask)


def test_rendering_with_a_margin_is_the_same_inside_and_covers_what_a_turn_uncovers():
    model = _training().model
    depth = ellipsoid_depth(model.config, 0.06).expand(2, 64, 64)  # a smooth face-like cap on the border plane
    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    image = torch.stack([x, y, 0.5 + 0.4 * torch.sin(6 * x) * torch.cos(5 * y)]).expand(2, 3, 64, 64)
    views = torch.zeros(2, 6)
    views[:, 1] = math.radians(30)  # the border plane, 4 cm behind the pivot, moves by about 7 pixels
    plain, plain_mask = model.render_in_view(depth, image, views)
    wide, wide_mask = model.render_in_view(depth, image, views, margin=16)
    assert float(plain_mask.mean()) < 0.93 and float(wide_mask.mean()) == 1.0
    # Away from what the plain rendering leaves uncovered (where its warp also samples beyond the frame), the
    # extension changes nothing (up to the focal length after tan∘atan, about 1e-7 relative).
    inside = F.max_pool2d(1 - plain_mask.unsqueeze(1), 5, 1, 2).squeeze(1) == 0
    torch.testing.assert_close(wide.permute(0, 2, 3, 1)[inside], plain.permute(0, 2, 3, 1)[inside], atol=1e-4, rtol=0)
    still, _ = model.render_in_view(depth, image, torch.zeros(2, 6), margin=16)  # no turn: the canonical image
    torch.testing.assert_close(still, image, atol=1e-4, rtol=0)


def test_view_cycle_teaches_the_view_net_only():
    training = _training(lam_view_cycle=1.0)
    model = training.model
    images = torch.rand(2, 3, 64, 64)
    loss = view_cycle_loss(model, model(images), images)
    assert loss.item() > 0
    loss.backward()
    for name, network in model.networks().items():
        grads = [p.grad for p in network.parameters()]
        touched = any(g is not None and bool(g.abs().sum() > 0) for g in grads)
        assert touched == (name == "view_net"), name


def test_view_cycle_targets_are_the_rendered_turns(monkeypatch):
    """With the random turn fixed, the target is the predicted rotation plus the turn (translations kept), and the
    image the view net reads is the canonical image rendered there over the input."""
    training = _training(lam_view_cycle=1.0, view_cycle_degrees=30.0)
    model = training.model
    images = torch.rand(2, 3, 64, 64)
    seen = {}
    monkeypatch.setattr(torch, "rand_like", lambda t: torch.full_like(t, 0.75))  # turn = +15° on each axis
    original = model.predict_view

    def spy(x):
        seen.setdefault("inputs", []).append(x)
        return original(x)

    monkeypatch.setattr(model, "predict_view", spy)
    with torch.no_grad():
        pred = model(images)
        view_cycle_loss(model, pred, images)
    expected = pred.view.clone()
    expected[:, :3] += math.radians(15)
    canonical = pred.recon.canonical_depth, pred.recon.canonical_image.clamp(0, 1)
    rendered, mask = model.render_in_view(*canonical, expected, model.config.view_cycle_margin)
    filled = (rendered + images * (1 - mask.unsqueeze(1))) * 2 - 1
    torch.testing.assert_close(seen["inputs"][-1], filled)


def test_training_step_logs_the_view_cycle_term():
    training = _training(lam_view_cycle=0.5)
    terms = training.loss_terms(torch.rand(2, 3, 64, 64), iteration=0)
    assert "view_cycle" in terms
    without = _training().loss_terms(torch.rand(2, 3, 64, 64), iteration=0)
    assert "view_cycle" not in without
