"""Converting the original code's pickled checkpoints: same predictions, and no code from the file runs."""

import os
import sys
import types

import pytest
import torch

from unsup3d.checkpoint import CheckpointError, load_checkpoint
from unsup3d.cli import main
from unsup3d.config import build_config
from unsup3d.inference import Reconstructor, convert_original, load_original
from unsup3d.model import PhotoGeometricAutoencoder

TINY = {"depth_nf": 4, "albedo_nf": 4, "encoder_nf": 4, "conf_nf": 4, "autoencoder_zdim": 8, "conf_zdim": 8}
ORIGINAL_NAMES = {
    "depth_net": "netD",
    "albedo_net": "netA",
    "light_net": "netL",
    "view_net": "netV",
    "conf_net": "netC",
}


class MetricsTrace:
    """Stand-in for the original's ``unsup3d.meters.MetricsTrace``, pickled under that name."""

    def __init__(self):
        self.data = {"train": [{"loss": 0.5}], "val": [{"loss": 0.6}]}


class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def original_module(monkeypatch):
    """Make ``unsup3d.meters.MetricsTrace`` importable while a test pickles one, as the original code did."""
    module = types.ModuleType("unsup3d.meters")
    module.MetricsTrace = MetricsTrace
    MetricsTrace.__module__ = "unsup3d.meters"
    monkeypatch.setitem(sys.modules, "unsup3d.meters", module)
    yield module
    MetricsTrace.__module__ = __name__


def original_checkpoint(path, model, legacy, extra=None, with_conf=True):
    """An original-layout checkpoint of ``model``'s weights: net* state dicts, optimisers, trace, epoch."""
    state = {}
    for ours, theirs in ORIGINAL_NAMES.items():
        if theirs == "netC" and not with_conf:
            continue
        net = getattr(model, ours)
        state[theirs] = net.state_dict()
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.999), weight_decay=5e-4)
        state["optimizer" + theirs[-1]] = optimizer.state_dict()
    state.update({"metrics_trace": MetricsTrace(), "epoch": 30, **(extra or {})})
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.mark.parametrize("legacy", [True, False], ids=["pytorch-1.2-format", "zip-format"])
def test_converted_checkpoint_predicts_like_the_original_weights(tmp_path, original_module, legacy):
    torch.manual_seed(0)
    config = build_config({"model": TINY})
    model = PhotoGeometricAutoencoder(config.model).eval()
    source = original_checkpoint(tmp_path / "checkpoint030.pth", model, legacy)
    loaded = load_original(source)
    assert loaded["epoch"] == 30 and type(loaded["metrics_trace"]).__name__ == "_Discarded"
    target = convert_original(source, tmp_path / "converted.pt", build_config({"model": TINY}).model)
    assert load_checkpoint(target)["model_config"]["use_conf"] is True
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    expected = Reconstructor(model, device="cpu")(images)
    converted = Reconstructor.from_checkpoint(target, device="cpu")(images)
    for name in ("depth", "canonical_depth", "canonical_albedo", "view", "light_direction", "confidence"):
        torch.testing.assert_close(getattr(converted, name), getattr(expected, name), equal_nan=True)


def test_checkpoint_without_confidence_net_converts_without_it(tmp_path, original_module):
    model = PhotoGeometricAutoencoder(build_config({"model": TINY}).model)
    source = original_checkpoint(tmp_path / "car.pth", model, legacy=True, with_conf=False)
    target = convert_original(source, tmp_path / "car.pt", build_config({"model": TINY}).model)
    assert load_checkpoint(target)["model_config"]["use_conf"] is False
    assert Reconstructor.from_checkpoint(target).model.conf_net is None


@pytest.mark.parametrize("legacy", [True, False], ids=["pytorch-1.2-format", "zip-format"])
def test_malicious_original_checkpoint_is_refused_and_nothing_runs(tmp_path, original_module, legacy):
    marker = tmp_path / "pwned"
    model = PhotoGeometricAutoencoder(build_config({"model": TINY}).model)
    source = original_checkpoint(tmp_path / "evil.pth", model, legacy, extra={"epoch": RunsACommand(marker)})
    with pytest.raises(CheckpointError, match="refused to unpickle '(posix|os).system'"):
        convert_original(source, tmp_path / "out.pt", build_config({"model": TINY}).model)
    assert not marker.exists() and not (tmp_path / "out.pt").exists()
    assert main(["convert-original", str(source), "--out", str(tmp_path / "out.pt"), "--set", "model.depth_nf=4"]) == 4
    assert not marker.exists()
    torch.load(source, weights_only=False)  # the payload is live: an unrestricted load runs the command
    assert marker.exists()


def test_wrong_model_constants_are_a_clear_error(tmp_path, original_module):
    model = PhotoGeometricAutoencoder(build_config({"model": TINY}).model)
    source = original_checkpoint(tmp_path / "checkpoint030.pth", model, legacy=False)
    with pytest.raises(CheckpointError, match="do not fit the configured networks"):
        convert_original(source, tmp_path / "out.pt", build_config({"model": {**TINY, "depth_nf": 8}}).model)
    (tmp_path / "notes.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="notes.pth is not a checkpoint of the original code: a text file"):
        load_original(tmp_path / "notes.pth")


def test_cli_converts(tmp_path, original_module, capsys):
    model = PhotoGeometricAutoencoder(build_config({"model": TINY}).model)
    source = original_checkpoint(tmp_path / "checkpoint030.pth", model, legacy=True)
    overrides = [f"model.{key}={value}" for key, value in TINY.items()]
    assert main(["convert-original", str(source), "--out", str(tmp_path / "c.pt"), "--set", *overrides]) == 0
    assert "converted" in capsys.readouterr().out
    assert Reconstructor.from_checkpoint(tmp_path / "c.pt").iteration == 0


def test_conversion_leaves_the_callers_configuration_alone(tmp_path, original_module):
    model = PhotoGeometricAutoencoder(build_config({"model": TINY}).model)
    source = original_checkpoint(tmp_path / "car.pth", model, legacy=True, with_conf=False)
    given = build_config({"model": TINY}).model
    assert given.use_conf is True
    convert_original(source, tmp_path / "car.pt", given)
    assert given.use_conf is True  # the stored copy says False; the caller's object is unchanged
    assert load_checkpoint(tmp_path / "car.pt")["model_config"]["use_conf"] is False


@pytest.mark.parametrize("legacy", [True, False], ids=["pytorch-1.2-format", "zip-format"])
def test_an_unconverted_original_checkpoint_says_to_convert_it(tmp_path, original_module, legacy, caplog):
    model = PhotoGeometricAutoencoder(build_config({"model": TINY}).model)
    source = original_checkpoint(tmp_path / "checkpoint030.pth", model, legacy)
    assert main(["reconstruct", str(tmp_path), "--checkpoint", str(source), "--output", str(tmp_path / "out")]) == 4
    assert "checkpoint030.pth is not an unsup3d checkpoint: it is a checkpoint of the original code" in caplog.text
    assert "convert it with unsup3d convert-original" in caplog.text and "weights_only" not in caplog.text
    converted = convert_original(source, tmp_path / "c.pt", build_config({"model": TINY}).model)
    with pytest.raises(CheckpointError, match="c.pt is not a checkpoint of the original code: it is already"):
        load_original(converted)
