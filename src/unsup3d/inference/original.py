"""Converting the original code's checkpoints (``checkpoint030.pth`` ...) into unsup3d checkpoints, safely.

The original saves ``{'netD', 'netA', 'netL', 'netV'[, 'netC'], 'optimizer*', 'metrics_trace', 'epoch'}`` with
``torch.save``, where ``metrics_trace`` is a pickled ``unsup3d.meters.MetricsTrace``, so
``torch.load(weights_only=True)`` refuses the file. Instead of unpickling it freely (which would run whatever a
malicious file asks for), :func:`load_original` uses a restricted unpickler: it builds tensors, storages and
plain containers, replaces the metrics trace by an inert placeholder whose state is discarded, and refuses every
other global with :class:`~unsup3d.checkpoint.CheckpointError` naming the global. Our networks keep the
original's layer indices, so the state dicts load unchanged under the new names.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
from pathlib import Path
from typing import Any

import torch

from unsup3d.checkpoint import FORMAT_VERSION, CheckpointError, RefusedGlobal, unreadable_reason, write_checkpoint
from unsup3d.config import ModelConfig
from unsup3d.model import PhotoGeometricAutoencoder

__all__ = ["NETWORK_NAMES", "convert_original", "load_original"]

NETWORK_NAMES = {
    "netD": "depth_net",
    "netA": "albedo_net",
    "netL": "light_net",
    "netV": "view_net",
    "netC": "conf_net",
}
"""The original checkpoint's network keys and the :class:`PhotoGeometricAutoencoder` attributes they load into."""

_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch", "Size"),
}
_PLACEHOLDER_GLOBALS = {("unsup3d.meters", "MetricsTrace")}


class _Discarded:
    """Stands in for an unpickled object of the original code that conversion does not need."""

    def __setstate__(self, state: Any) -> None:
        """Drop the state (already unpickled under the same restrictions)."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only tensor-building globals and plain containers."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PLACEHOLDER_GLOBALS:
            return _Discarded
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise RefusedGlobal(f"{module}.{name}")


class _RestrictedPickle:
    """A ``pickle_module`` for ``torch.load`` whose unpickler is :class:`_RestrictedUnpickler`."""

    Unpickler = _RestrictedUnpickler
    __name__ = "unsup3d_restricted_pickle"

    @staticmethod
    def load(file, **kwargs) -> Any:
        return _RestrictedUnpickler(file, **kwargs).load()


def load_original(path: str | Path) -> dict[str, Any]:
    """Read an original unsup3d checkpoint without running code from it.

    Returns:
        The checkpoint dictionary; ``metrics_trace`` (if present) is an inert placeholder.
    Raises:
        CheckpointError: missing or unreadable file, a global outside the allowed set (e.g. a pickle that tries
            to run a command), or no ``netD``/``netA``/``netL``/``netV`` state dicts.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CheckpointError(f"cannot read original checkpoint {path}: {error.strerror or error}") from error
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", pickle_module=_RestrictedPickle, weights_only=False)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means an unusable or unsafe file
        raise _not_original(path, unreadable_reason(data, error)) from error
    if isinstance(state, dict) and state.get("format_version") == FORMAT_VERSION:
        raise _not_original(path, "it is already an unsup3d checkpoint: use it as it is")
    required = [key for key in ("netD", "netA", "netL", "netV") if key not in state] if isinstance(state, dict) else []
    if not isinstance(state, dict) or required:
        raise _not_original(path, f"a PyTorch file without the original's networks (missing {required or 'a dict'})")
    return state


def _not_original(path: Path, reason: str) -> CheckpointError:
    return CheckpointError(
        f"{path} is not a checkpoint of the original code: {reason}; expected the original code's checkpoint "
        "(e.g. checkpoint030.pth)"
    )


def convert_original(source: str | Path, target: str | Path, model_config: ModelConfig) -> Path:
    """Convert an original checkpoint into an unsup3d checkpoint usable by ``Reconstructor.from_checkpoint``.

    Args:
        source: the original ``.pth`` file.
        target: the unsup3d checkpoint to write (with its ``.sha256``).
        model_config: the model configuration to store, with ``use_conf`` set from whether the file has
            ``netC`` (in a copy: the caller's object is left alone). The constants must be those the original was
            trained with (the ``paper`` preset for CelebA and synthetic faces; ``z_translation_range=0.1`` for
            cats).
    Raises:
        CheckpointError: unsafe or unreadable source, or weights that do not fit the configured networks.
    """
    state = load_original(source)
    model_config = dataclasses.replace(model_config, use_conf="netC" in state)
    model_config.validate()
    weights = {
        f"{ours}.{key}": tensor
        for theirs, ours in NETWORK_NAMES.items()
        if theirs in state
        for key, tensor in state[theirs].items()
    }
    try:
        PhotoGeometricAutoencoder(model_config).load_state_dict(weights)
    except RuntimeError as error:
        raise CheckpointError(f"{source}: weights do not fit the configured networks: {error}") from error
    epoch = state.get("epoch")
    return write_checkpoint(
        target,
        {
            "iteration": 0,
            "model_config": dataclasses.asdict(model_config),
            "model": weights,
            "source": f"{Path(source).name}, epoch {epoch}",
        },
    )
