"""Which model ``unsup3d reconstruct`` runs: ``--model`` names a shipped one, ``--checkpoint`` your own (not both),
and without either the crop decides (cats for ``--crop cat``, faces otherwise)."""

import json

import numpy as np
import pytest
from PIL import Image

from unsup3d.cli import main
from unsup3d.inference import Reconstructor


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def loaded(monkeypatch):
    """The names Reconstructor.pretrained is asked for (it still loads them)."""
    names = []
    original = Reconstructor.pretrained.__func__

    def recording(cls, name="faces", device=None):
        names.append(name)
        return original(cls, name, device)

    monkeypatch.setattr(Reconstructor, "pretrained", classmethod(recording))
    return names


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ([], "faces"),
        (["--crop", "cat", "--crop-fallback", "none"], "cats"),
        (["--crop", "cat", "--crop-fallback", "none", "--model", "faces"], "faces"),
        (["--model", "faces-synthetic"], "faces-synthetic"),
    ],
)
def test_the_model_follows_the_flag_or_the_crop(photo, tmp_path, loaded, options, expected):
    out = tmp_path / "out"
    code = main(["reconstruct", str(photo), "--output", str(out), "--only", "json", "--no-progress", *options])
    assert code == 0 and loaded == [expected]
    assert "rotation_degrees" in json.loads((out / "photo" / "view_light.json").read_text())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--model", "cats", "--checkpoint", "run"], "argument --checkpoint: not allowed with argument --model"),
        (["--model", "dogs"], "argument --model: invalid choice: 'dogs'"),
    ],
)
def test_bad_model_choices_exit_2_and_name_the_flag(photo, tmp_path, caplog, options, message):
    assert main(["reconstruct", str(photo), "--output", str(tmp_path), *options]) == 2
    assert message in caplog.text
