"""Reconstructing files and folders of photos (and videos) into an output folder: the work of
``unsup3d reconstruct``, as a library function the command line and the web page call.

The model runs on batches; the files of each image are written by a small pool of threads (PNG, GIF and MP4
encoding release the interpreter lock), so writing does not serialise behind the forward passes. A file that
cannot be used (unreadable, no face found) is reported and the others go on.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from unsup3d.data.images import find_images
from unsup3d.files import OutputError, ensure_writable_folder
from unsup3d.inference.export import OutputOptions, write_outputs
from unsup3d.inference.reconstructor import Reconstructor

__all__ = ["BatchResult", "VIDEO_SUFFIXES", "collect_inputs", "reconstruct_to_folder"]

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
# Images whose files may be waiting to be written at once, per writer thread (bounds memory on large folders).
PENDING_PER_WORKER = 8


@dataclass
class BatchResult:
    """What :func:`reconstruct_to_folder` did: output folder names (relative to the output) in input order, and
    the inputs that produced nothing, with the reason."""

    folders: list[str] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def written(self) -> int:
        return len(self.folders)


def collect_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Files named directly (images or videos), plus every image under named folders (recursive, sorted)."""
    paths: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            paths.extend(find_images(item))
        elif item.exists() or item.is_symlink():
            paths.append(item)
        else:
            raise FileNotFoundError(f"input not found: {item}")
    return paths


def reconstruct_to_folder(
    reconstructor: Reconstructor,
    inputs: Sequence[str | Path],
    output: str | Path,
    options: OutputOptions | None = None,
    crop: str = "none",
    crop_fallback: str = "skip",
    batch_size: int = 64,
    workers: int = 2,
    progress: bool = True,
    video_frames: bool = False,
) -> BatchResult:
    """Reconstruct every input into ``output/<stem>/`` (see :func:`unsup3d.inference.export.write_outputs`);
    videos (by suffix, :data:`VIDEO_SUFFIXES`) go through :func:`unsup3d.inference.video.reconstruct_video`.

    Raises:
        OutputError: ``output`` cannot be created or written (checked before any work), or a write fails.
        FileNotFoundError: an input does not exist.
    """
    paths = collect_inputs(inputs)
    output = ensure_writable_folder(output)
    names = _unique_stems(paths)
    result = BatchResult()
    images = [p for p in paths if p.suffix.lower() not in VIDEO_SUFFIXES]
    _reconstruct_images(
        reconstructor, images, output, names, options, (crop, crop_fallback), batch_size, workers, progress, result
    )
    for path in (p for p in paths if p.suffix.lower() in VIDEO_SUFFIXES):
        _reconstruct_one_video(
            reconstructor, path, output / names[path], options, crop, batch_size, video_frames, result, names[path]
        )
    order = {name: i for i, name in enumerate(names[p] for p in paths)}
    result.folders.sort(key=order.__getitem__)
    return result


def _reconstruct_images(reconstructor, images, output, names, options, crop, batch_size, workers, progress, result):
    """Forward passes in this thread, file writing in ``workers`` threads, at most a bounded number pending."""
    from tqdm.auto import tqdm

    pending: deque[tuple[Path, Future]] = deque()
    results = reconstructor.reconstruct_paths(images, batch_size, *crop)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for path, item in tqdm(results, total=len(images), disable=not progress, unit="img"):
            if isinstance(item, Exception):
                result.failed.append((path, getattr(item, "reason", str(item))))
                continue
            pending.append((path, pool.submit(write_outputs, item, 0, output / names[path], options)))
            while len(pending) > PENDING_PER_WORKER * max(1, workers):
                _collect(*pending.popleft(), names, result)
        while pending:
            _collect(*pending.popleft(), names, result)


def _collect(path: Path, future: Future, names: dict[Path, str], result: BatchResult) -> None:
    """Wait for one image's files; record its folder."""
    try:
        future.result()
    except OSError as error:
        raise OutputError(f"cannot write the outputs of {path}: {error.strerror or error}") from error
    result.folders.append(names[path])


def _reconstruct_one_video(reconstructor, path, out_dir, options, crop, batch_size, video_frames, result, name):
    from unsup3d.inference.video import VideoError, reconstruct_video

    try:
        reconstruct_video(reconstructor, path, out_dir, crop, batch_size, options if video_frames else None)
    except VideoError as error:
        result.failed.append((path, str(error)))
        return
    result.folders.append(name)


def _unique_stems(paths: list[Path]) -> dict[Path, str]:
    """Output folder names: the file stem, with ``_2``, ``_3``... when two inputs share a stem."""
    seen: dict[str, int] = {}
    names = {}
    for path in paths:
        count = seen.get(path.stem, 0) + 1
        seen[path.stem] = count
        names[path] = path.stem if count == 1 else f"{path.stem}_{count}"
    return names
