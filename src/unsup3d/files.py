"""Output folders, checked for writability before long work starts, and the error for outputs that fail."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["OutputError", "ensure_writable_folder"]


class OutputError(OSError):
    """An output (folder, checkpoint, result file) cannot be written: not writable, in the way, or disk full."""


def ensure_writable_folder(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) if needed and check a file can be written in it.

    Returns:
        ``path`` as a Path.
    Raises:
        OutputError: it cannot be created (e.g. a file is in the way) or written (permissions, read-only disk,
            no space left).
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise OutputError(f"cannot write to folder {path}: {error.strerror or error}") from error
    return path
