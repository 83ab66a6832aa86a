"""Reconstructing files and folders of photos (and videos) into an output folder: the work of
``unsup3d reconstruct``, as a library function the command line and the web page call.

The model runs on batches; the files of each image are written by a small pool of threads (PNG, GIF and MP4
encoding release the interpreter lock), so writing does not serialise behind the forward passes. An input that
cannot be used (unreadable, too small, no face found, a video ffmpeg cannot open) is recorded in
:attr:`BatchResult.failed` with the reason in words and the others go on; an input that stopped part-way (a
truncated video or animation) keeps what was done and is recorded in :attr:`BatchResult.warnings`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from unsup3d.data.images import ANIMATED_FRAMES, ImageLoadError, find_images, frame_count
from unsup3d.files import OutputError, ensure_writable_folder
from unsup3d.inference.reconstructor import Reconstructor
from unsup3d.outputs.write import OutputOptions, write_outputs

__all__ = ["BatchResult", "VIDEO_SUFFIXES", "collect_inputs", "reconstruct_to_folder"]

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
# Images whose files may be waiting to be written at once, per writer thread (bounds memory on large folders).
PENDING_PER_WORKER = 8


@dataclass
class BatchResult:
    """What :func:`reconstruct_to_folder` did: output folder names (relative to the output) in input order, the
    inputs that produced nothing, with the reason, and the inputs that produced part of what they hold (a video
    or animation that stopped part-way, or frames of an animation skipped), with what went wrong."""

    folders: list[str] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[tuple[Path, str]] = field(default_factory=list)

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
    animated: str = "first",
) -> BatchResult:
    """Reconstruct every input into ``output/<stem>/`` (see :func:`unsup3d.outputs.write.write_outputs`);
    videos (by suffix, :data:`VIDEO_SUFFIXES`) go through :func:`unsup3d.outputs.video.reconstruct_video`.

    ``animated`` (:data:`~unsup3d.data.images.ANIMATED_FRAMES`): an animated GIF, WebP or PNG gives its first
    frame (``"first"``, into ``<stem>/``) or every frame, each into its own ``<stem>_f000/``, ``<stem>_f001/``...
    (``"all"``; at least three digits, more for animations of 1000 frames or more).

    Raises:
        OutputError: ``output`` cannot be created or written (checked before any work), or a write fails.
        FileNotFoundError: an input does not exist.
        ValueError: an unknown ``animated``.
    """
    if animated not in ANIMATED_FRAMES:
        raise ValueError(f"animated must be one of {ANIMATED_FRAMES}, got {animated!r}")
    paths = collect_inputs(inputs)
    output = ensure_writable_folder(output)
    names = _unique_stems(paths)
    run = _Run(output, names, options, {path: k for k, path in enumerate(paths)})
    images = [p for p in paths if p.suffix.lower() not in VIDEO_SUFFIXES]
    _reconstruct_images(reconstructor, images, run, (crop, crop_fallback), batch_size, workers, progress, animated)
    for path in (p for p in paths if p.suffix.lower() in VIDEO_SUFFIXES):
        _reconstruct_one_video(reconstructor, path, run, crop, batch_size, video_frames)
    return run.finish()


@dataclass
class _Run:
    """The bookkeeping of one :func:`reconstruct_to_folder` call."""

    output: Path
    names: dict[Path, str]  # input → output folder name (its stem, made unique)
    options: OutputOptions | None
    position: dict[Path, int]  # input → its place in the input order
    result: BatchResult = field(default_factory=BatchResult)
    order: dict[str, tuple[int, int]] = field(default_factory=dict)  # folder → (input, frame), for sorting
    frames: dict[Path, list] = field(default_factory=dict)  # animation → [frames written, [problems]]
    stems: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.stems = set(self.names.values())

    def folder(self, path: Path, frame: int | None, count: int = 1) -> str:
        """The output folder of ``path`` (``frame`` None) or of its frame ``frame`` of ``count``, reserved in
        input order: ``<stem>_f007``, with ``_`` added while another input already has that name."""
        name = self.names[path]
        if frame is not None:
            name = f"{name}_f{frame:0{max(3, len(str(count - 1)))}d}"
            while name in self.order or name in self.stems:
                name += "_"
        self.order[name] = (self.position[path], -1 if frame is None else frame)
        return name

    def written(self, path: Path, frame: int | None, name: str) -> None:
        self.result.folders.append(name)
        if frame is not None:
            self.frames.setdefault(path, [0, []])[0] += 1

    def failed(self, path: Path, reason: str) -> None:
        self.result.failed.append((path, reason))

    def warn(self, path: Path, message: str) -> None:
        log.warning("%s: %s", path, message)
        self.result.warnings.append((path, message))

    def frame_problem(self, path: Path, frame: int, reason: str) -> None:
        self.frames.setdefault(path, [0, []])[1].append((frame, reason))

    def finish(self) -> BatchResult:
        """Settle animations (nothing written: failed; some frames lost: a warning), sort into input order."""
        for path, (written, problems) in self.frames.items():
            if not problems:
                continue
            if written == 0:
                self.failed(path, f"no frame could be used: {problems[0][1]}")
            else:
                self.warn(path, "; ".join(reason for _, reason in problems))
        self.result.folders.sort(key=self.order.__getitem__)
        self.result.failed.sort(key=lambda item: self.position[item[0]])
        self.result.warnings.sort(key=lambda item: self.position[item[0]])
        return self.result


def _reconstruct_images(reconstructor, images, run: _Run, crop, batch_size, workers, progress, animated):
    """Forward passes in this thread, file writing in ``workers`` threads, at most a bounded number pending."""
    from tqdm.auto import tqdm

    pending: deque[tuple[Path, int | None, str, Future]] = deque()
    results = reconstructor.reconstruct_frames(images, batch_size, *crop, animated=animated)
    counts: dict[Path, int] = {}
    with ThreadPoolExecutor(max(1, workers)) as pool:
        total = len(images) if animated == "first" else None  # every frame of an animation counts with "all"
        for path, frame, item in tqdm(results, total=total, disable=not progress, unit="img"):
            if isinstance(item, Exception):
                _record_error(run, path, frame, item)
                continue
            if frame is not None and path not in counts:
                counts[path] = _frame_count(path)
            name = run.folder(path, frame, counts.get(path, 1))
            pending.append((path, frame, name, pool.submit(write_outputs, item, 0, run.output / name, run.options)))
            while len(pending) > PENDING_PER_WORKER * max(1, workers):
                _collect(*pending.popleft(), run)
        while pending:
            _collect(*pending.popleft(), run)


def _record_error(run: _Run, path: Path, frame: int | None, error: Exception) -> None:
    reason = getattr(error, "reason", None) or str(error)
    if frame is None:
        run.failed(path, reason)
    elif isinstance(error, ImageLoadError):  # a frame that cannot be decoded ends the animation
        run.frame_problem(path, frame, f"stopped after {frame} frames: {reason}")
    else:  # this frame only (no face found)
        run.frame_problem(path, frame, f"frame {frame}: {reason}")


def _frame_count(path: Path) -> int:
    try:
        return frame_count(path)
    except ImageLoadError:
        return 1


def _collect(path: Path, frame: int | None, name: str, future: Future, run: _Run) -> None:
    """Wait for one image's files; record its folder."""
    try:
        future.result()
    except OSError as error:
        raise OutputError(f"cannot write the outputs of {path}: {error.strerror or error}") from error
    run.written(path, frame, name)


def _reconstruct_one_video(reconstructor, path: Path, run: _Run, crop, batch_size, video_frames) -> None:
    from unsup3d.outputs.video import VideoError, reconstruct_video

    name = run.names[path]
    options = run.options if video_frames else None
    try:
        video = reconstruct_video(reconstructor, path, run.output / name, crop, batch_size, options)
    except VideoError as error:
        run.failed(path, error.reason)
        return
    except OSError as error:  # writing the comparison video or a frame's files
        raise OutputError(f"cannot write the outputs of {path}: {error.strerror or error}") from error
    run.written(path, None, run.folder(path, None))
    if video.stopped:
        run.warn(path, f"{video.stopped} ({video.comparison.name} holds the {video.frames} frames before)")


def _unique_stems(paths: list[Path]) -> dict[Path, str]:
    """Output folder names: the file stem, with ``_2``, ``_3``... when two inputs share a stem."""
    seen: dict[str, int] = {}
    names = {}
    for path in paths:
        count = seen.get(path.stem, 0) + 1
        seen[path.stem] = count
        names[path] = path.stem if count == 1 else f"{path.stem}_{count}"
    return names
