"""Reconstructing a video frame by frame (the paper's VoxCeleb demo): a side-by-side video of input |
reconstruction | shape, and per-frame outputs on request.

Frames are read with imageio's ffmpeg plugin (the ``video`` extra, which ships its own ffmpeg), cropped like
photos (a frame where the detector finds nothing reuses the last crop, or the whole frame before the first
detection), reconstructed in batches and written as they come, so a long video never sits in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from unsup3d.extras import require
from unsup3d.inference import crop as cropping
from unsup3d.inference import visualize
from unsup3d.inference.export import OutputOptions, write_outputs
from unsup3d.inference.reconstructor import Reconstruction, Reconstructor

__all__ = ["COMPARISON_NAME", "PANEL_SIZE", "VideoError", "comparison_frames", "reconstruct_video"]

COMPARISON_NAME = "comparison.mp4"
PANEL_SIZE = 256  # pixels of each of the three panels of the comparison video
DEFAULT_FPS = 25.0


class VideoError(ValueError):
    """A video that cannot be read (corrupt, truncated, no frames) or gave no usable frame."""


def reconstruct_video(
    reconstructor: Reconstructor,
    path: str | Path,
    out_dir: str | Path,
    crop: str = "none",
    batch_size: int = 32,
    frame_options: OutputOptions | None = None,
) -> Path:
    """Reconstruct every frame of the video at ``path`` into ``out_dir/comparison.mp4`` and, with
    ``frame_options``, each frame's outputs into ``out_dir/frames/<frame number>/``.

    Returns:
        The comparison video's path.
    Raises:
        VideoError: the video cannot be read or has no frames.
        unsup3d.extras.MissingExtraError: the ``video`` extra is missing.
    """
    imageio = require("imageio", "Video input")
    require("imageio_ffmpeg", "Video input")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / COMPARISON_NAME
    frames = _read_frames(imageio, Path(path))
    count = 0
    with imageio.get_writer(target, fps=_fps(imageio, Path(path)), macro_block_size=1) as writer:
        for start, batch in _batches(frames, reconstructor, crop, batch_size):
            rec = reconstructor(batch)
            for picture in comparison_frames(rec):
                writer.append_data(_to_uint8(picture))
            if frame_options is not None:
                for k in range(len(rec)):
                    write_outputs(rec, k, out / "frames" / f"{start + k:06d}", frame_options)
            count += len(rec)
    if count == 0:
        target.unlink(missing_ok=True)
        raise VideoError(f"{path}: no frames could be read")
    return target


def comparison_frames(rec: Reconstruction) -> torch.Tensor:
    """(B, 3, P, 3P) frames: input | reconstruction | shape (grey, in the input view), each enlarged to P pixels."""
    shape = visualize.render_view(rec.canonical_depth, visualize.shape_colour(rec.canonical_normal), rec.view, rec.fov)
    panels = [rec.image, rec.recon_image, shape]
    size = (PANEL_SIZE, PANEL_SIZE)
    return torch.cat(
        [F.interpolate(p.clamp(0, 1), size=size, mode="bilinear", align_corners=False) for p in panels], -1
    )


def _read_frames(imageio, path: Path) -> Iterator[Image.Image]:
    """The frames of a video as RGB PIL images; read errors become :class:`VideoError`."""
    try:
        reader = imageio.get_reader(path, "ffmpeg")
    except Exception as error:  # noqa: BLE001 - any failure to open is an unreadable video
        raise VideoError(f"{path}: not a readable video ({error})") from error
    with reader:
        index = 0
        while True:
            try:
                frame = reader.get_next_data()
            except (IndexError, StopIteration):
                return
            except Exception as error:  # noqa: BLE001 - a truncated stream ends the video early
                if index == 0:
                    raise VideoError(f"{path}: no frames could be decoded ({error})") from error
                return
            index += 1
            yield Image.fromarray(np.asarray(frame)[..., :3]).convert("RGB")


def _fps(imageio, path: Path) -> float:
    try:
        with imageio.get_reader(path, "ffmpeg") as reader:
            return float(reader.get_meta_data().get("fps") or DEFAULT_FPS)
    except Exception:  # noqa: BLE001 - the frame reader reports unreadable videos
        return DEFAULT_FPS


def _batches(frames, reconstructor: Reconstructor, crop: str, batch_size: int):
    """(first frame number, (B, 3, S, S) batch) of cropped frames; a frame without a detection reuses the last
    crop square (the whole frame before the first detection)."""
    square = None
    batch: list[torch.Tensor] = []
    start = 0
    for index, frame in enumerate(frames):
        if crop != "none":
            box = cropping.detect(frame, crop)
            square = cropping.square_box(box) if box is not None else square
        picture = cropping.crop_square(frame, *square) if square is not None else frame
        batch.append(reconstructor.prepare(picture, "none"))
        if len(batch) == batch_size:
            yield start, torch.stack(batch)
            start, batch = index + 1, []
    if batch:
        yield start, torch.stack(batch)


def _to_uint8(picture: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] → (H, W, 3) uint8."""
    return picture.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
