"""Per-photo refinement: it lowers each photo's objective, a batch gives what one photo at a time gives, the model's
weights are untouched, the result repeats, and the command line takes ``--refine [N]``."""

import json

import numpy as np
import pytest
import torch
from _tiny_models import SIZE, tiny_config
from PIL import Image

from unsup3d.cli import main
from unsup3d.config import Config
from unsup3d.inference import Reconstructor
from unsup3d.inference.refine import RefineSettings, refine
from unsup3d.losses import Objective
from unsup3d.model import PhotoGeometricAutoencoder
from unsup3d.render.views import render_view

STEPS = 15


@pytest.fixture(scope="module")
def model() -> PhotoGeometricAutoencoder:
    torch.manual_seed(0)
    return PhotoGeometricAutoencoder(tiny_config().model).eval()


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """Three constructed photos: a shaded bump turned a little, over a grey backdrop (its own symmetric object)."""
    coords = torch.linspace(-1, 1, SIZE)
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    bump = 1.0 - 0.15 * torch.exp(-(x**2 + y**2) / 0.3)  # (S, S) depth, nearer in the middle
    colour = torch.stack([0.7 + 0.2 * x.abs(), 0.5 + 0.1 * y, 0.4 + 0.0 * x])  # symmetric in x
    views = torch.tensor([[0.0, 0.2, 0.0, 0, 0, 0], [0.1, -0.15, 0.0, 0, 0, 0], [0.0, 0.0, 0.05, 0, 0, 0]])
    images = render_view(bump.expand(3, -1, -1), colour.expand(3, -1, -1, -1), views, background=0.5)
    return images.clamp(0, 1)


def objective_of(model, factors, images) -> float:
    """The mean over photos of each photo's own objective (Eqs. 3 and 7 with the depth priors)."""
    objective = Objective(Config(model=model.config))
    prediction = model.render_factors(factors)
    total = objective.image_terms(prediction, images, 1 << 62)["total"]
    return float(total)


def test_refinement_lowers_each_photos_objective(model, photos):
    with torch.no_grad():
        before = [objective_of(model, model.predict_factors(p[None]), p[None]) for p in photos]
    settings = RefineSettings(steps=STEPS, anchor=0.0)
    refined = [refine(model, p[None], settings) for p in photos]
    with torch.no_grad():
        after = [objective_of(model, f, p[None]) for f, p in zip(refined, photos, strict=True)]
    assert all(a < b - 0.01 for a, b in zip(after, before, strict=True)), (before, after)


def test_progress_is_reported_each_step(model, photos):
    seen = []
    refine(model, photos[:1], RefineSettings(steps=3), on_step=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_a_batch_gives_what_one_photo_at_a_time_gives(model, photos):
    reconstructor = Reconstructor(model, "cpu")
    together = reconstructor.refine(photos, STEPS)
    for i, photo in enumerate(photos):
        alone = reconstructor.refine(photo[None], STEPS)
        torch.testing.assert_close(together.canonical_depth[i : i + 1], alone.canonical_depth, atol=0, rtol=0)
        torch.testing.assert_close(together.canonical_albedo[i : i + 1], alone.canonical_albedo, atol=0, rtol=0)
        torch.testing.assert_close(together.view[i : i + 1], alone.view, atol=0, rtol=0)
        torch.testing.assert_close(together.light_direction[i : i + 1], alone.light_direction, atol=0, rtol=0)


def test_weights_are_untouched_and_the_result_repeats(model, photos):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    reconstructor = Reconstructor(model, "cpu")
    first, second = reconstructor.refine(photos, STEPS), reconstructor.refine(photos, STEPS)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not any(p.requires_grad and p.grad is not None for p in model.parameters())
    for name in ("canonical_depth", "canonical_albedo", "view", "light_direction", "recon_image"):
        assert torch.equal(getattr(first, name), getattr(second, name)), name
    plain = reconstructor(photos)
    assert not torch.equal(first.canonical_depth, plain.canonical_depth)  # refinement did change the result


def test_zero_steps_is_the_network_alone_and_the_setting_applies_to_every_call(model, photos):
    plain = Reconstructor(model, "cpu")(photos)
    assert torch.equal(Reconstructor(model, "cpu").refine(photos, 0).canonical_depth, plain.canonical_depth)
    refining = Reconstructor(model, "cpu", refinement=RefineSettings(steps=STEPS))
    torch.testing.assert_close(refining(photos).view, refining.refine(photos, STEPS).view, atol=0, rtol=0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"steps": -1}, "steps"), ({"steps": 2.5}, "steps"), ({"lr": 0.0}, "lr"), ({"anchor": float("nan")}, "anchor")]
    + [({"depth_grid": 1}, "depth_grid")],
)
def test_bad_settings_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        RefineSettings(**changes)


# ---------------------------------------------------------------------- the command line
@pytest.fixture
def photo_file(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("value", ["0", "-3", "many", "2.5", "10001"])
def test_a_bad_refine_value_exits_2_and_names_the_flag(photo_file, tmp_path, caplog, value):
    code = main(["reconstruct", str(photo_file), "--output", str(tmp_path / "out"), "--refine", value])
    assert code == 2 and "--refine" in caplog.text
    assert not (tmp_path / "out").exists()


def test_refine_on_the_command_line_changes_the_outputs(photo_file, tmp_path):
    def view_of(*options):
        out = tmp_path / "_".join(options or ("plain",))
        args = ["reconstruct", str(photo_file), "--output", str(out), "--only", "json", "--no-progress"]
        assert main([*args, "--model", "faces-synthetic", *options]) == 0
        return json.loads((out / "photo" / "view_light.json").read_text())

    plain, refined, default = view_of(), view_of("--refine", "5"), view_of("--refine")
    assert refined != plain and default != plain and default != refined
