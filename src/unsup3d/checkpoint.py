"""Self-describing, atomically written checkpoints, loaded without executing code.

A checkpoint is a ``torch.save`` dictionary of tensors and plain Python values only, so it loads with
``torch.load(weights_only=True)``: loading never runs code from the file. It holds ``model`` (the weights),
``model_config`` (the model's configuration, all that inference reads), and for training runs ``config`` (the
whole run configuration, for resuming), ``optimizer`` and ``iteration``. Checkpoints written before
``model_config`` existed carry it as ``config["model"]``. Each ``step_*.pt`` has a
``step_*.pt.sha256`` beside it holding the SHA-256 of its bytes. Both are written to temporary names, flushed to
disk and renamed into place (the checksum first), so a killed process never leaves a half-written
``step_*.pt``; a file whose bytes do not match its checksum, or that fails to load, is reported and skipped when
resuming. A checkpoint without a checksum file (copied alone) still loads if ``torch.load`` accepts it.

A file that does not load is reported by what it looks like (empty, a zip or pickle that is not a PyTorch file,
JSON, text, a refused pickled object) and what was expected, never with the loader's own advice: PyTorch's
suggests ``weights_only=False``, which would run code from the file.

Shared by the engine (writes, resumes) and inference (reads); neither imports the other.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import re
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from unsup3d.files import OutputError

FORMAT_VERSION = 1
PATTERN = re.compile(r"^step_(\d{8})\.pt$")
EXPECTED = (
    "expected one of our checkpoints (step_*.pt), weights (.safetensors with its .json) "
    "or a converted original checkpoint (unsup3d convert-original)"
)
log = logging.getLogger(__name__)

_ZIP_MAGIC = b"PK\x03\x04"
_LEGACY_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)  # how torch.save's pre-1.6 format begins
_TORCH_REFUSAL = re.compile(r"GLOBAL ([\w.]+)")  # the global named in torch.load(weights_only=True)'s refusal
_ORIGINAL_TRACE = "unsup3d.meters.MetricsTrace"  # pickled in every checkpoint of the original code
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")  # characters no text file holds


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, corrupt or not an unsup3d checkpoint."""


class CheckpointWriteError(OutputError):
    """A checkpoint could not be written (disk full, folder not writable); older checkpoints are intact."""


class RefusedGlobal(pickle.UnpicklingError):
    """A restricted unpickler met a global it does not allow (``name``: ``module.qualname``)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"refused to unpickle '{name}'")
        self.name = name


def not_a_checkpoint(path: str | Path, reason: str) -> CheckpointError:
    """The error for a file that is not an unsup3d checkpoint: the file, why, and what is expected."""
    return CheckpointError(f"{path} is not an unsup3d checkpoint: {reason}; {EXPECTED}")


def unreadable_reason(data: bytes, error: BaseException | None = None) -> str:
    """Why ``data``, the bytes of a file, did not load, in a few words that are safe to show.

    A global refused by the unpickler (in ``error``) is named; otherwise the file is described by its content
    (as damaged if ``error`` is given and it looks like a PyTorch file).
    The loader's message is never repeated: PyTorch's advises ``weights_only=False``, which would run code from
    the file.
    """
    refused = _refused_global(error)
    if refused == _ORIGINAL_TRACE:
        return (
            f"it is a checkpoint of the original code (it pickles {refused}): convert it with unsup3d convert-original"
        )
    if refused is not None:
        return f"refused to unpickle '{refused}': it holds pickled objects other than tensors and plain values"
    if not data:
        return "the file is empty (0 bytes)"
    damaged = " that is damaged or truncated" if error is not None else ""
    if data.startswith(_ZIP_MAGIC):
        return _zip_kind(data, damaged)
    if data.startswith(_LEGACY_MAGIC):
        return f"a PyTorch file (pre-1.6 format){damaged}"
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a plain pickle, not a PyTorch file"
    text = _as_text(data)
    if text is None:
        return "not a zip or pickle archive (unrecognised bytes)"
    try:
        json.loads(text)
    except ValueError:
        return "a text file, not a zip or pickle archive"
    return "a JSON file, not a zip or pickle archive"


def _refused_global(error: BaseException | None) -> str | None:
    """The global a restricted unpickler refused, if that is what ``error`` reports."""
    if isinstance(error, RefusedGlobal):
        return error.name
    if isinstance(error, pickle.UnpicklingError):
        found = _TORCH_REFUSAL.search(str(error))
        return found.group(1) if found else None
    return None


def _zip_kind(data: bytes, damaged: str) -> str:
    """What a file beginning like a zip archive is (``damaged``: appended to a PyTorch archive that failed)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, ValueError, EOFError):
        return "a damaged or truncated zip archive"
    if not any(name.endswith("/data.pkl") for name in names):
        return "a zip archive that is not a PyTorch file"
    return f"a PyTorch archive{damaged}"


def _as_text(data: bytes) -> str | None:
    """``data`` as UTF-8 text, or None if it holds bytes text does not (control characters, invalid UTF-8)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _CONTROL.search(text) else text


def checkpoint_path(folder: Path, iteration: int) -> Path:
    return Path(folder) / f"step_{iteration:08d}.pt"


def checksum_path(path: Path) -> Path:
    """The file holding the SHA-256 of checkpoint ``path``."""
    return path.with_name(path.name + ".sha256")


def save_checkpoint(folder: str | Path, iteration: int, state: dict[str, Any], keep: int) -> Path:
    """Write ``state`` (plus format version and iteration) as ``folder/step_<iteration>.pt`` (see
    :func:`write_checkpoint`), then keep the newest ``keep`` checkpoints and delete older ones.

    Returns:
        The written path.
    Raises:
        CheckpointWriteError: as :func:`write_checkpoint`.
    """
    folder = Path(folder)
    target = write_checkpoint(checkpoint_path(folder, iteration), {"iteration": iteration, **state})
    for old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
        checksum_path(old).unlink(missing_ok=True)
    return target


def write_checkpoint(target: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` plus the format version atomically to ``target``, with its SHA-256 beside it.

    Raises:
        CheckpointWriteError: the folder cannot be created or written (e.g. no space left); nothing partial is
            left behind and other files are untouched.
    """
    target = Path(target)
    buffer = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, **state}, buffer)
    data = buffer.getbuffer()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(data).hexdigest()
        _write_atomic(checksum_path(target), f"{digest}  {target.name}\n".encode())
        _write_atomic(target, data)
        _sync_folder(target.parent)
    except OSError as error:
        raise CheckpointWriteError(
            f"cannot write checkpoint {target}: {error.strerror or error}; older checkpoints are intact"
        ) from error
    return target


def _write_atomic(target: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to a temporary file in ``target``'s folder, flush it to disk and rename it to ``target``."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=target.suffix, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sync_folder(folder: Path) -> None:
    """Flush the folder entry so the renames survive a power cut (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def verify_checksum(path: Path, data: bytes) -> None:
    """Compare ``data``, the bytes of checkpoint ``path``, with its ``.sha256`` file, if it has one.

    Raises:
        CheckpointError: the bytes do not match (a truncated or corrupted file).
    """
    sidecar = checksum_path(path)
    if not sidecar.is_file():
        return
    fields = sidecar.read_text().split()
    if hashlib.sha256(data).hexdigest() != (fields[0] if fields else ""):
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated: its SHA-256 does not match {sidecar.name}")


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Checkpoint files in ``folder``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if PATTERN.match(p.name))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``: no code from the file runs) and check it is one of ours.

    Raises:
        CheckpointError: missing or unreadable file, checksum mismatch, a file ``torch.load`` refuses (truncated,
            not a checkpoint, or pickled objects other than tensors and plain values; the message says what the
            file looks like, see :func:`unreadable_reason`), or not an unsup3d checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        data = path.read_bytes()  # read once: checksummed, then unpickled from memory
        verify_checksum(path, data)
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error.strerror or error}") from error
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the file is refused anyway
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise not_a_checkpoint(path, unreadable_reason(data, error)) from error
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        if isinstance(state, dict) and "netD" in state:
            raise not_a_checkpoint(
                path, "it is a checkpoint of the original code: convert it with unsup3d convert-original"
            )
        raise not_a_checkpoint(path, f"a PyTorch file, but not one unsup3d wrote (no format_version {FORMAT_VERSION})")
    if "model" not in state or ("model_config" not in state and "config" not in state):
        raise CheckpointError(f"checkpoint {path} lacks its weights ('model') or its 'model_config'")
    return state


def stored_model_config(state: dict[str, Any]) -> dict[str, Any]:
    """The model configuration a loaded checkpoint stores: ``model_config``, or ``config["model"]`` in
    checkpoints written before it existed.

    Raises:
        CheckpointError: neither is a mapping.
    """
    found = state.get("model_config")
    if found is None and isinstance(state.get("config"), dict):
        found = state["config"].get("model")
    if not isinstance(found, dict):
        raise CheckpointError("the checkpoint holds no model configuration (a 'model_config' mapping)")
    return found


def load_latest(
    folder: str | Path, map_location: str | torch.device = "cpu", quarantine: bool = False
) -> tuple[Path, dict] | None:
    """Newest checkpoint in ``folder`` that loads; None if none does.

    Newer checkpoints that do not load (corrupt, truncated, wrong checksum) are reported and skipped; with
    ``quarantine`` they are also renamed ``*.corrupt`` with their checksum files, kept for inspection but out of
    the way of later saves and resumes.
    """
    for path in reversed(list_checkpoints(folder)):
        try:
            return path, load_checkpoint(path, map_location)
        except CheckpointError as error:
            if not quarantine:
                log.warning("skipping unusable checkpoint: %s", error)
                continue
            log.warning("skipping unusable checkpoint (renamed *.corrupt): %s", error)
            for bad in (path, checksum_path(path)):
                if bad.exists():
                    bad.rename(bad.with_name(bad.name + ".corrupt"))
    return None


def resume_point(folder: str | Path, map_location: str | torch.device = "cpu") -> tuple[Path, dict] | None:
    """The newest loadable checkpoint in ``folder`` for resuming training, after tidying what a kill left:
    temporary files of interrupted writes are deleted and newer unloadable checkpoints quarantined (see
    :func:`load_latest`). Returns None if no checkpoint loads.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    for leftover in folder.glob(".tmp_*"):
        leftover.unlink(missing_ok=True)
    return load_latest(folder, map_location, quarantine=True)


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
