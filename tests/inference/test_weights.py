import json

import pytest
import torch
from _tiny_models import random_images, save_checkpoint, tiny_config

from unsup3d.checkpoint import CheckpointError
from unsup3d.inference import Reconstructor, export_weights, load_weights, shipped_weights
from unsup3d.inference.weights import CARD_FIELDS, DEFAULT_MODEL, SHIPPED_MODELS, model_card, model_for_crop
from unsup3d.model import PhotoGeometricAutoencoder


@pytest.fixture(scope="module")
def run_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = PhotoGeometricAutoencoder(tiny_config().model)
    return save_checkpoint(tmp_path_factory.mktemp("run") / "step.pt", model, tiny_config())


@pytest.mark.parametrize(("dtype", "tolerance"), [("float32", 0.0), ("float16", 2e-3)])
def test_exported_weights_reproduce_the_checkpoint(tmp_path, run_checkpoint, dtype, tolerance):
    path = export_weights(run_checkpoint, tmp_path, "tiny", dtype)
    assert path.name == "tiny.safetensors" and path.with_suffix(".json").is_file()
    description = json.loads(path.with_suffix(".json").read_text())
    assert description["dtype"] == dtype and description["source"]["iteration"] == 5
    assert path.read_bytes()[:8] != b"PK\x03\x04"  # not a zip/pickle archive
    images = random_images(3, seed=4)
    expected = Reconstructor.from_checkpoint(run_checkpoint, "cpu")(images)
    loaded = Reconstructor.from_checkpoint(path, "cpu")
    assert next(loaded.model.parameters()).dtype == torch.float32
    result = loaded(images)
    for name in ("canonical_depth", "canonical_albedo", "view", "light_direction"):
        torch.testing.assert_close(getattr(result, name), getattr(expected, name), atol=tolerance, rtol=0)


def test_float16_weights_are_half_the_size(tmp_path, run_checkpoint):
    half = export_weights(run_checkpoint, tmp_path, "half", "float16").stat().st_size
    full = export_weights(run_checkpoint, tmp_path, "full", "float32").stat().st_size
    assert half < 0.55 * full


def test_broken_weights_raise_checkpoint_errors(tmp_path, run_checkpoint):
    path = export_weights(run_checkpoint, tmp_path, "tiny", "float32")
    path.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match="tiny.json"):
        load_weights(path)
    path = export_weights(run_checkpoint, tmp_path, "tiny", "float32")
    path.write_bytes(b"not safetensors at all")
    with pytest.raises(CheckpointError, match="tiny.safetensors is not an unsup3d checkpoint: not a safetensors file"):
        load_weights(path)
    path = export_weights(run_checkpoint, tmp_path, "tiny", "float32")
    description = json.loads(path.with_suffix(".json").read_text())
    description["model_config"]["depth_nf"] = 32  # weights no longer fit
    path.with_suffix(".json").write_text(json.dumps(description))
    with pytest.raises(CheckpointError, match="loadable model"):
        load_weights(path)
    with pytest.raises(ValueError, match="dtype"):
        export_weights(run_checkpoint, tmp_path, "tiny", "int8")


@pytest.mark.parametrize("name", list(SHIPPED_MODELS))
def test_every_shipped_model_is_in_the_package_with_its_card(name):
    path = shipped_weights(name)
    assert path.name == f"{SHIPPED_MODELS[name]}.safetensors"
    assert path.is_file() and path.with_suffix(".json").is_file()
    assert path.stat().st_size < 16_000_000  # float16: 6-12 MB
    card = model_card(name)
    assert set(CARD_FIELDS) <= set(card) and card["name"] == name
    assert all(card[field] for field in CARD_FIELDS)
    assert card["command"].startswith(f"bash scripts/train_shipped_model.sh {name}")  # what trained it


def test_cards_repeat_the_terms_of_the_training_data():
    assert "non-commercial research" in model_card("faces")["terms"]  # UTKFace's terms
    assert "not stated" in model_card("cats")["terms"]  # the cat images' source states no licence
    assert "synthetic" in model_card("faces-synthetic")["training_data"]


def test_the_default_model_follows_the_crop():
    assert DEFAULT_MODEL == "faces"
    assert model_for_crop("cat") == "cats"
    assert model_for_crop("face") == model_for_crop("none") == "faces"
    with pytest.raises(ValueError, match="faces-synthetic"):
        shipped_weights("dogs")


def test_export_weights_stores_the_card(run_checkpoint, tmp_path):
    card = {"name": "tiny", "scores": {"side": 1.0}}
    path = export_weights(run_checkpoint, tmp_path, "tiny", card=card)
    _, description = load_weights(path)
    assert description["card"] == card
