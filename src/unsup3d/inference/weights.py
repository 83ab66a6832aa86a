"""Model weights as safetensors plus the model configuration as JSON: the format of the model that ships inside
the package (``unsup3d/weights/``) and of ``unsup3d export-weights``.

``NAME.safetensors`` holds the state dict of a :class:`~unsup3d.model.PhotoGeometricAutoencoder` (float16 or
float32; no pickle, so loading runs no code from the file) and ``NAME.json`` beside it holds
``{"model_config": {...}, "dtype": ..., "source": {...}}`` and, for a shipped model, its ``"card"``
(:func:`model_card`). Loading always gives a float32 model.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from unsup3d.checkpoint import (
    CheckpointError,
    find_checkpoint,
    not_a_checkpoint,
    stored_model_config,
    unreadable_reason,
)
from unsup3d.config import ConfigError, model_config_from_dict
from unsup3d.model import PhotoGeometricAutoencoder

__all__ = [
    "DEFAULT_MODEL",
    "SHIPPED_MODELS",
    "WEIGHT_DTYPES",
    "export_weights",
    "load_model",
    "load_weights",
    "model_card",
    "model_for_crop",
    "shipped_weights",
]

SHIPPED_MODELS = {"faces": "faces_real", "cats": "cats_real", "faces-synthetic": "faces_synthetic"}
"""The models inside the package, by name: their file stems in ``unsup3d/weights/``. ``faces``: real face photos
(UTKFace); ``cats``: real cat-face photos; ``faces-synthetic``: the built-in synthetic faces. How each was trained,
on what, under which terms and how well it does: the ``card`` of its JSON (:func:`model_card`) and the README."""

DEFAULT_MODEL = "faces"
CROP_MODELS = {"cat": "cats"}
"""The model a crop kind calls for when none is named (:func:`model_for_crop`); others get :data:`DEFAULT_MODEL`."""

CARD_FIELDS = ("name", "training_data", "terms", "recipe", "command", "scores")
"""What every shipped model's card states."""

WEIGHT_DTYPES = {"float16": torch.float16, "float32": torch.float32}


def shipped_weights(name: str = DEFAULT_MODEL) -> Path:
    """Path of the shipped model ``name``'s ``.safetensors`` file (its ``.json`` lies beside it).

    Raises:
        ValueError: ``name`` is not one of :data:`SHIPPED_MODELS`.
    """
    if name not in SHIPPED_MODELS:
        raise ValueError(f"unknown model {name!r}: the package ships {', '.join(SHIPPED_MODELS)}")
    return Path(str(resources.files("unsup3d") / "weights" / f"{SHIPPED_MODELS[name]}.safetensors"))


def model_for_crop(crop: str) -> str:
    """The shipped model for photos cropped with ``crop`` (``"cat"`` → ``"cats"``, else ``"faces"``)."""
    return CROP_MODELS.get(crop, DEFAULT_MODEL)


def model_card(name: str = DEFAULT_MODEL) -> dict[str, Any]:
    """The card of the shipped model ``name``: its training data, their terms, the recipe, the command that
    trained it and its measured scores (the ``card`` object of its JSON, fields :data:`CARD_FIELDS`)."""
    description = json.loads(shipped_weights(name).with_suffix(".json").read_text(encoding="utf-8"))
    return description["card"]


def export_weights(
    checkpoint: str | Path, out_dir: str | Path, name: str, dtype: str = "float16", card: dict | None = None
) -> Path:
    """Write the model of a checkpoint (or of a run directory's newest one) as ``out_dir/name.safetensors`` and
    ``out_dir/name.json``.

    Args:
        checkpoint: one of our checkpoints, a run directory, or a converted original checkpoint.
        dtype: ``"float16"`` (half the size) or ``"float32"``; loading casts back to float32.
        card: the model card stored as the JSON's ``card`` (training data, terms, recipe, command, scores).
    Returns:
        The ``.safetensors`` path.
    Raises:
        CheckpointError: no usable checkpoint.
    """
    from safetensors.torch import save_file

    if dtype not in WEIGHT_DTYPES:
        raise ValueError(f"dtype must be one of {sorted(WEIGHT_DTYPES)}, got {dtype!r}")
    found, state = find_checkpoint(checkpoint)
    model = _build(stored_model_config(state), state["model"], found)
    tensors = {k: v.detach().to(WEIGHT_DTYPES[dtype]).contiguous() for k, v in model.state_dict().items()}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name}.safetensors"
    save_file(tensors, str(target), metadata={"format": "pt", "unsup3d": "PhotoGeometricAutoencoder"})
    description = {
        "model_config": dataclasses.asdict(model.config),
        "dtype": dtype,
        "source": {"checkpoint": found.name, "iteration": int(state.get("iteration", 0))},
    }
    if card is not None:
        description["card"] = card
    target.with_suffix(".json").write_text(json.dumps(description, indent=2) + "\n")
    return target


def load_weights(path: str | Path) -> tuple[PhotoGeometricAutoencoder, dict[str, Any]]:
    """The float32 model stored as ``path`` (``.safetensors``) and its ``.json``, and that description.

    Raises:
        CheckpointError: a missing or unreadable file (the message says what it looks like), or weights that do
            not fit the stored configuration.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    description_path = path.with_suffix(".json")
    if not path.is_file() or not description_path.is_file():
        raise CheckpointError(f"weights need both {path.name} and {description_path.name} in {path.parent}")
    try:
        text = description_path.read_text(encoding="utf-8", errors="replace")
        tensors = load_file(str(path))
    except SafetensorError as error:
        raise not_a_checkpoint(path, f"not a safetensors file: {_describe(path)}") from error
    except OSError as error:
        raise CheckpointError(f"cannot read weights {path}: {error.strerror or error}") from error
    try:
        description = json.loads(text)
    except ValueError as error:
        raise not_a_checkpoint(path, f"{description_path.name} is not JSON ({error})") from error
    if not isinstance(description, dict):
        raise not_a_checkpoint(path, f"{description_path.name} must hold a JSON object with 'model_config'")
    return _build(description.get("model_config"), tensors, path), description


def _describe(path: Path) -> str:
    """What a file that is not safetensors looks like."""
    try:
        return unreadable_reason(path.read_bytes())
    except OSError as error:
        return error.strerror or str(error)


def load_model(path: str | Path) -> tuple[PhotoGeometricAutoencoder, Path, int]:
    """The float32 model stored at ``path``: weights (``.safetensors`` + ``.json``), one of our checkpoints, a
    converted original one, or a run directory (its newest loadable checkpoint). Only the stored model
    configuration is read, so training or data keys of another version never stop a checkpoint loading.

    Returns:
        The model (CPU, train mode as built), the file it came from, and its training iteration (0 if unknown).
    Raises:
        CheckpointError: nothing usable at ``path``.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        model, description = load_weights(path)
        source = description.get("source")
        return model, path, int(source.get("iteration", 0)) if isinstance(source, dict) else 0
    found, state = find_checkpoint(path)
    return _build(stored_model_config(state), state["model"], found), found, int(state.get("iteration", 0))


def _build(model_config: Any, tensors: dict[str, torch.Tensor], source: Path) -> PhotoGeometricAutoencoder:
    """A float32 model of ``model_config`` (a dict) holding ``tensors``."""
    try:
        model = PhotoGeometricAutoencoder(model_config_from_dict(model_config))
        model.load_state_dict({k: v.float() for k, v in tensors.items()})
    except (ConfigError, RuntimeError, TypeError, KeyError) as error:
        raise CheckpointError(f"{source} does not describe a loadable model: {error}") from error
    return model
