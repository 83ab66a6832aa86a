"""Reconstructing a video frame by frame (the paper's VoxCeleb demo): a side-by-side video of input |
reconstruction | shape, and per-frame outputs on request.

Frames are read with imageio's ffmpeg plugin (the ``video`` extra, which ships its own ffmpeg), cropped like
photos (a frame where the detector finds nothing reuses the last crop, or the whole frame before the first
detection), reconstructed in batches and written as they come, so a long video never sits in memory.

Videos that fight back:

- a file that ffmpeg cannot open (empty, random bytes, a damaged header, an MP4 cut before its index, a container
  with no video stream) raises :class:`VideoError` with ffmpeg's reason in words, before any output is written;
- a video whose frames stop mid-way (a frame that cannot be decoded or used, or a stream that ends well before the
  duration its header announces: a truncated file) keeps the frames done so far: ``comparison.mp4`` holds them
  and :attr:`VideoResult.stopped` says where and why it stopped (nothing read at all is a :class:`VideoError`);
- frames whose size changes mid-stream are scaled by ffmpeg to the first frame's size (aspect ratio not kept);
  every frame is then cropped and resized on its own, so frames of any size are handled alike.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from unsup3d.data.images import ImageLoadError
from unsup3d.extras import require
from unsup3d.inference import crop as cropping
from unsup3d.inference.reconstruction import Reconstruction
from unsup3d.inference.reconstructor import Reconstructor
from unsup3d.outputs.write import OutputOptions, write_outputs
from unsup3d.render.views import render_view, shape_colour
from unsup3d.viz import to_uint8

__all__ = ["COMPARISON_NAME", "PANEL_SIZE", "VideoError", "VideoResult", "comparison_frames", "reconstruct_video"]

COMPARISON_NAME = "comparison.mp4"
PANEL_SIZE = 256  # pixels of each of the three panels of the comparison video
DEFAULT_FPS = 25.0
EARLY_END_FRACTION = 0.9
"""A video that gives fewer than this fraction of the frames its header announces (duration × frame rate), less
one, is reported as stopped early. The announced count is approximate (variable frame rates, an audio track
longer than the picture), hence the margin."""

# ffmpeg's words for a file it cannot open, most specific first, and what they mean.
_FFMPEG_REASONS = (
    ("does not contain any stream", "no video stream (a container with no frames, or sound only)"),
    ("partial file", "the file ends before its first frame (truncated)"),
    ("moov atom not found", "its index ('moov atom') is missing: an MP4 cut short, or not a video at all"),
    ("Invalid data found when processing input", "the data is corrupt or not a video"),
    ("No such file or directory", "no such file"),
    ("Permission denied", "permission denied"),
)


class VideoError(ValueError):
    """A video that cannot be read (corrupt, truncated, no video stream) or gave no usable frame.

    Attributes:
        path: the file.
        reason: what went wrong, in words.
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read video {self.path}: {reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


@dataclass
class VideoResult:
    """What :func:`reconstruct_video` wrote."""

    comparison: Path  # the side-by-side video
    frames: int  # frames reconstructed (the comparison video's length)
    stopped: str | None = None  # why the video stopped before its end ("stopped after N frames: ..."), or None


def reconstruct_video(
    reconstructor: Reconstructor,
    path: str | Path,
    out_dir: str | Path,
    crop: str = "none",
    batch_size: int = 32,
    frame_options: OutputOptions | None = None,
) -> VideoResult:
    """Reconstruct every frame of the video at ``path`` into ``out_dir/comparison.mp4`` and, with
    ``frame_options``, each frame's outputs into ``out_dir/frames/<frame number>/``.

    Returns:
        The comparison video's path, the number of frames, and why it stopped early if it did (the frames before
        are kept).
    Raises:
        VideoError: the video cannot be opened, or not one frame could be read and used (nothing is written).
        unsup3d.extras.MissingExtraError: the ``video`` extra is missing.
    """
    imageio = require("imageio", "Video input")
    require("imageio_ffmpeg", "Video input")
    path, out = Path(path), Path(out_dir)
    reader, fps, expected = _open(imageio, path)
    stop: list[str] = []  # why reading or preparing frames stopped, if it did
    with reader:
        batches = _batches(_read_frames(reader, stop), reconstructor, crop, batch_size, stop)
        first = next(batches, None)
        if first is None:
            raise VideoError(path, stop[0] if stop else "no video frames could be read")
        out.mkdir(parents=True, exist_ok=True)
        target = out / COMPARISON_NAME
        count = 0
        with imageio.get_writer(target, fps=fps, macro_block_size=1) as writer:
            for start, batch in itertools.chain([first], batches):
                rec = reconstructor(batch)
                for picture in comparison_frames(rec):
                    writer.append_data(to_uint8(picture))
                if frame_options is not None:
                    for k in range(len(rec)):
                        write_outputs(rec, k, out / "frames" / f"{start + k:06d}", frame_options)
                count += len(rec)
    return VideoResult(target, count, _stopped(count, expected, stop))


def comparison_frames(rec: Reconstruction) -> torch.Tensor:
    """(B, 3, P, 3P) frames: input | reconstruction | shape (grey, in the input view), each enlarged to P pixels."""
    shape = render_view(rec.canonical_depth, shape_colour(rec.canonical_normal), rec.view, rec.fov)
    panels = [rec.image, rec.recon_image, shape]
    size = (PANEL_SIZE, PANEL_SIZE)
    return torch.cat(
        [F.interpolate(p.clamp(0, 1), size=size, mode="bilinear", align_corners=False) for p in panels], -1
    )


def _open(imageio, path: Path):
    """``(reader, frames per second, announced frame count or None)``; a file ffmpeg cannot open is a
    :class:`VideoError` with the reason in words."""
    if not path.is_file():
        raise VideoError(path, "not a file" if path.exists() else "no such file")
    if path.stat().st_size == 0:
        raise VideoError(path, "file is empty (0 bytes)")
    try:
        reader = imageio.get_reader(path, "ffmpeg")
        meta = reader.get_meta_data()
    except Exception as error:  # noqa: BLE001 - any failure to open is an unreadable video
        raise VideoError(path, f"not a readable video: {_ffmpeg_reason(error)}") from error
    fps = _positive(meta.get("fps"))
    duration = _positive(meta.get("duration"))
    expected = round(duration * fps) if fps and duration else None
    return reader, fps or DEFAULT_FPS, expected


def _positive(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def _ffmpeg_reason(error: Exception) -> str:
    """ffmpeg's complaint in a few words: a known message explained, else imageio's own words (before the
    ``=== stderr ===`` of ffmpeg's log), else the log's last error line."""
    text = str(error)
    for needle, reason in _FFMPEG_REASONS:
        if needle in text:
            return reason
    own, _, log = text.partition("=== stderr ===")
    generic = re.compile(r"^(could not load meta information|could not read frame \d+:?)$", re.IGNORECASE)
    own_lines = [line.strip() for line in own.splitlines() if line.strip() and not generic.match(line.strip())]
    log_lines = [re.sub(r"^(\[[^\]]*\]\s*)+", "", line).strip() for line in log.splitlines()]
    log_lines = [line for line in log_lines if line and not line.startswith("ffmpeg version")]
    errors = [line for line in log_lines if re.search(r"error|invalid|cannot|could not|failed", line, re.IGNORECASE)]
    return (own_lines or errors or log_lines or [type(error).__name__])[-1]


def _stopped(count: int, expected: int | None, stop: list[str]) -> str | None:
    """Why a video that gave ``count`` frames stopped before its end, or None."""
    if stop:
        return f"stopped after {count} frames: {stop[0]}"
    if expected is not None and count < EARLY_END_FRACTION * expected - 1:
        return f"stopped after {count} of about {expected} frames: the file ends early (truncated or damaged)"
    return None


def _read_frames(reader, stop: list[str]) -> Iterator[Image.Image]:
    """The frames of a video as RGB PIL images, until its end or the first frame that cannot be read (its
    reason appended to ``stop``)."""
    for index in itertools.count():
        try:
            frame = reader.get_next_data()
        except (IndexError, StopIteration):
            return
        except Exception as error:  # noqa: BLE001 - a damaged stream fails in many ways
            stop.append(f"frame {index} cannot be decoded ({_ffmpeg_reason(error)})")
            return
        yield Image.fromarray(np.asarray(frame)[..., :3]).convert("RGB")


def _batches(frames, reconstructor: Reconstructor, crop: str, batch_size: int, stop: list[str]):
    """(first frame number, (B, 3, S, S) batch) of cropped frames; a frame without a detection reuses the last
    crop square (the whole frame before the first detection). Frames are cropped and resized one by one, so
    their sizes may differ. A frame that cannot be used (too small) ends the video (reason appended to ``stop``).
    """
    square = None
    batch: list[torch.Tensor] = []
    start = 0
    for index, frame in enumerate(frames):
        if crop != "none":
            box = cropping.detect(frame, crop)
            square = cropping.square_box(box) if box is not None else square
        picture = cropping.crop_square(frame, *square) if square is not None else frame
        try:
            batch.append(reconstructor.prepare(picture, "none", name=f"frame {index}"))
        except ImageLoadError as error:
            stop.append(f"frame {index}: {error.reason}")
            break
        if len(batch) == batch_size:
            yield start, torch.stack(batch)
            start, batch = index + 1, []
    if batch:
        yield start, torch.stack(batch)
