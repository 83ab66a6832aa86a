"""Self-describing, atomically written checkpoints, loaded without executing code.

A checkpoint is a ``torch.save`` dictionary of tensors and plain Python values only (config as a dict), so it
loads with ``torch.load(weights_only=True)``. Files are written to a temporary name and renamed into place, so a
killed process never leaves a half-written ``step_*.pt``; a file that fails to load anyway is skipped when
resuming.

Shared by the engine (writes, resumes) and inference (reads); neither imports the other.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT_VERSION = 1
PATTERN = re.compile(r"^step_(\d{8})\.pt$")
log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or not an unsup3d checkpoint."""


def checkpoint_path(folder: Path, iteration: int) -> Path:
    return Path(folder) / f"step_{iteration:08d}.pt"


def save_checkpoint(folder: str | Path, iteration: int, state: dict[str, Any], keep: int) -> Path:
    """Write ``state`` (plus format version and iteration) atomically as ``folder/step_<iteration>.pt``.

    Keeps the newest ``keep`` checkpoints and deletes older ones. Returns the written path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"format_version": FORMAT_VERSION, "iteration": iteration, **state}
    target = checkpoint_path(folder, iteration)
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=".pt", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return target


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Checkpoint files in ``folder``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if PATTERN.match(p.name))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``) and check it is one of ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from error
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not an unsup3d checkpoint (format version {FORMAT_VERSION})")
    missing = [key for key in ("model", "config") if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}")
    return state


def load_latest(folder: str | Path, map_location: str | torch.device = "cpu") -> tuple[Path, dict] | None:
    """Newest checkpoint in ``folder`` that loads; unreadable ones are reported and skipped. None if none."""
    for path in reversed(list_checkpoints(folder)):
        try:
            return path, load_checkpoint(path, map_location)
        except CheckpointError as error:
            log.warning("skipping unusable checkpoint: %s", error)
    return None


def find_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[Path, dict[str, Any]]:
    """A checkpoint file, or the newest loadable checkpoint of a run directory, with its contents.

    A directory is searched in ``path/checkpoints`` and then ``path`` itself, newest first; unreadable files are
    logged and skipped.

    Raises:
        CheckpointError: the file does not load, or no checkpoint in the directory does.
    """
    path = Path(path)
    if path.is_file():
        return path, load_checkpoint(path, map_location)
    if not path.is_dir():
        raise CheckpointError(f"no such checkpoint file or run directory: {path}")
    for folder in (path / "checkpoints", path):
        found = load_latest(folder, map_location)
        if found is not None:
            return found
    raise CheckpointError(f"no loadable checkpoint (step_XXXXXXXX.pt) in {path} or {path / 'checkpoints'}")


def strip_wrappers(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove the key prefixes that DDP (``module.``) and ``torch.compile`` (``_orig_mod.``) add."""
    for prefix in ("module.", "_orig_mod."):
        if state_dict and all(key.startswith(prefix) for key in state_dict):
            state_dict = {key[len(prefix) :]: value for key, value in state_dict.items()}
    return state_dict
