import math

import pytest
import torch
from _tiny_models import random_images, tiny_config

from unsup3d import Reconstructor
from unsup3d.model import PhotoGeometricAutoencoder
from unsup3d.outputs import OutputOptions, write_outputs


@pytest.fixture(scope="module")
def rec():
    torch.manual_seed(0)
    return Reconstructor(PhotoGeometricAutoencoder(tiny_config().model), "cpu")(random_images(2, seed=5))


def test_relighting_with_the_predicted_light_gives_the_canonical_image(rec):
    torch.testing.assert_close(rec.relight(rec.light_direction), rec.canonical_image, atol=1e-5, rtol=0)
    frontal = rec.relight(torch.tensor([0.0, 0.0, 2.0]))  # normalised here
    assert frontal.shape == rec.canonical_image.shape
    dark = rec.relight(torch.tensor([0.0, 0.0, 1.0]), ambient=0.0, diffuse=0.0)
    assert float(dark.abs().max()) == 0.0


def test_render_from_the_predicted_view_matches_the_reconstruction_inside_the_surface(rec):
    rendered = rec.render(rec.view)
    covered = torch.isfinite(rec.depth).unsqueeze(1).expand_as(rendered)
    torch.testing.assert_close(rendered[covered], rec.recon_image[covered], atol=1e-4, rtol=0)
    side = torch.tensor([0.0, math.radians(60.0), 0.0, 0.0, 0.0, 0.0])
    for appearance in ("texture", "shape", "normals"):
        image = rec.render(side, appearance)
        assert image.shape == (2, 3, 64, 64) and torch.isfinite(image).all()
        assert bool((image == 1.0).all(dim=1).any())  # white background where the turned face leaves the frame
    with pytest.raises(ValueError, match="appearance"):
        rec.render(side, "wireframe")


def test_mesh_and_save(rec, tmp_path):
    vertices, faces, uvs = rec.mesh(1)
    assert vertices.shape == (64 * 64, 3) and faces.shape == (2 * 63 * 63, 3) and uvs.shape == (64 * 64, 2)
    vertices, faces, _ = rec.mesh(1, size=96)
    assert vertices.shape == (96 * 96, 3) and faces.shape == (2 * 95 * 95, 3)
    written = write_outputs(rec, 1, tmp_path, OutputOptions(("json", "obj"), mesh_size=96))
    assert {p.name for p in written} == {"view_light.json", "mesh.obj", "mesh.mtl", "albedo_96.png"}
    assert sum(line.startswith("v ") for line in (tmp_path / "mesh.obj").read_text().splitlines()) == 96 * 96
