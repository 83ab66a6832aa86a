"""unsup3d: unsupervised learning of probably symmetric deformable 3D objects from single-view images.

The public API::

    from unsup3d import Reconstructor

    reconstructor = Reconstructor.from_checkpoint("runs/faces")
    result = reconstructor(reconstructor.load_images(["photo.jpg"]))

``Reconstructor`` / ``Reconstruction`` (inference), ``PhotoGeometricAutoencoder`` / ``Prediction`` (the model),
``Config`` and its sections with ``build_config`` / ``load_preset`` / ``ConfigError`` (configuration) and
``Trainer`` (training). Each name is imported on first use, so ``import unsup3d`` imports neither torch nor any
optional extra (see :mod:`unsup3d.extras`), and using inference does not import the training engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> module that defines it.
_EXPORTS = {
    "Config": "unsup3d.config",
    "ConfigError": "unsup3d.config",
    "DataConfig": "unsup3d.config",
    "ModelConfig": "unsup3d.config",
    "TrainConfig": "unsup3d.config",
    "build_config": "unsup3d.config",
    "load_preset": "unsup3d.config",
    "PhotoGeometricAutoencoder": "unsup3d.model",
    "Prediction": "unsup3d.model",
    "Reconstruction": "unsup3d.inference.reconstruction",
    "Reconstructor": "unsup3d.inference.reconstructor",
    "Trainer": "unsup3d.engine.trainer",
}

__all__ = [
    "Config",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "PhotoGeometricAutoencoder",
    "Prediction",
    "Reconstruction",
    "Reconstructor",
    "TrainConfig",
    "Trainer",
    "__version__",
    "build_config",
    "load_preset",
]

if TYPE_CHECKING:  # for type checkers and editors; at run time the names come from __getattr__
    from unsup3d.config import (
        Config,
        ConfigError,
        DataConfig,
        ModelConfig,
        TrainConfig,
        build_config,
        load_preset,
    )
    from unsup3d.engine.trainer import Trainer
    from unsup3d.inference.reconstruction import Reconstruction
    from unsup3d.inference.reconstructor import Reconstructor
    from unsup3d.model import PhotoGeometricAutoencoder, Prediction


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first access (PEP 562) and keep it."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
