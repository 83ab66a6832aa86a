"""Turntable animations of a reconstruction: the original demo's view sequence, its frames, GIF and MP4 files.

The sequence (``demo/demo.py`` of the original code): hold the predicted view, morph it linearly (the 6-vector)
to ``view_zero``, hold, turn the object about its vertical axis from the centre to +90°, over to −90° and back to
the centre, hold, morph back to the predicted view, hold; 5 + 15 + 5 + 40 + 80 + 40 + 5 + 15 + 5 = 210 frames.

Signs (``docs/conventions.md``: x right, y down, z forward, ``R = Rz · Ry · Rx``, ``X' = R (X − c) + c + t``):

- ``view_zero`` is ``rx = +9°`` (the original's ``0.15 · 60°``, same convention): it turns the top of the object
  towards the camera and moves the nose down, so the object is seen slightly from above.
- The yaw is applied to the object first, about its own vertical axis through ``c``, then the view (as the
  original's ``render_yaw``): ``R = R_view · Ry(yaw)``, returned as Euler angles of that product. Positive yaw
  turns the nose towards −u (the image's left), as in the synthetic data.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from unsup3d.extras import require
from unsup3d.geometry import FOV_DEGREES, euler_to_matrix
from unsup3d.render.grid_mesh import upsample_canonical
from unsup3d.render.views import render_view
from unsup3d.viz import to_uint8

__all__ = [
    "HOLD_FRAMES",
    "MAX_YAW_DEGREES",
    "MORPH_FRAMES",
    "PITCH_DEGREES",
    "YAW_FRAMES",
    "compose_yaw",
    "matrix_to_euler",
    "turntable_frames",
    "turntable_schedule",
    "turntable_views",
    "write_animation",
]

MORPH_FRAMES = 15  # predicted view → view_zero
HOLD_FRAMES = 5  # still frames at each end of a morph
YAW_FRAMES = 80  # a full −90° … +90° sweep
MAX_YAW_DEGREES = 90.0
PITCH_DEGREES = 9.0  # view_zero's rx
FPS = 25
# Frames rendered together: about this many pixels per renderer call (64 frames at 128², 256 at 64²).
CHUNK_PIXELS = 1 << 20
ANIMATION_SUFFIXES = (".gif", ".mp4")


def turntable_schedule(
    morph_frames: int = MORPH_FRAMES,
    hold_frames: int = HOLD_FRAMES,
    yaw_frames: int = YAW_FRAMES,
    max_yaw: float = MAX_YAW_DEGREES,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The sequence as per-frame morph weights and yaw angles.

    Returns:
        ``weight`` (T,) float64 in [0, 1]: 0 is the predicted view, 1 ``view_zero``; and ``yaw`` (T,) float64
        radians, ``linspace(−max_yaw, max_yaw, yaw_frames)`` visited from its middle up, down, and back up to the
        middle (zero outside the sweep). ``T = 4·hold_frames + 2·morph_frames + 2·yaw_frames``.
    """
    if morph_frames < 1 or hold_frames < 0 or yaw_frames < 0:
        raise ValueError(
            f"need morph_frames >= 1 and hold, yaw frames >= 0, got {morph_frames}, {hold_frames}, {yaw_frames}"
        )
    morph = torch.linspace(0.0, 1.0, morph_frames, dtype=torch.float64)
    sweep = torch.linspace(-math.radians(max_yaw), math.radians(max_yaw), yaw_frames, dtype=torch.float64)
    half = yaw_frames // 2
    zeros, ones = torch.zeros(hold_frames, dtype=torch.float64), torch.ones(hold_frames, dtype=torch.float64)
    there = torch.cat([zeros, morph, ones])  # hold, morph, hold
    turn = torch.cat([sweep[half:], sweep.flip(0), sweep[:half]])  # centre → +max → −max → centre
    weight = torch.cat([there, torch.ones_like(turn), there.flip(0)])
    yaw = torch.cat([torch.zeros_like(there), turn, torch.zeros_like(there)])
    return weight, yaw


def turntable_views(
    view: torch.Tensor,
    morph_frames: int = MORPH_FRAMES,
    hold_frames: int = HOLD_FRAMES,
    yaw_frames: int = YAW_FRAMES,
    max_yaw: float = MAX_YAW_DEGREES,
    pitch: float = PITCH_DEGREES,
) -> torch.Tensor:
    """The original demo's animation views for B predicted views (module docstring; 210 frames by default).

    Args:
        view: (B, 6) predicted views ``(rx, ry, rz, tx, ty, tz)``, radians.
        morph_frames, hold_frames, yaw_frames: frame counts (:func:`turntable_schedule`).
        max_yaw: the sweep's extent in degrees.
        pitch: ``view_zero``'s rx in degrees (+9°: seen slightly from above).
    Returns:
        (T, B, 6) views, ``lerp(view, view_zero, weight)`` turned by the frame's yaw (:func:`compose_yaw`).
    """
    if view.dim() != 2 or view.shape[1] != 6:
        raise ValueError(f"view must be (B, 6), got shape {tuple(view.shape)}")
    weight, yaw = turntable_schedule(morph_frames, hold_frames, yaw_frames, max_yaw)
    frames, batch = weight.shape[0], view.shape[0]
    zero = torch.zeros(6, dtype=torch.float64)
    zero[0] = math.radians(pitch)
    w = weight.view(-1, 1, 1)
    base = (1 - w) * view.detach().double().cpu().unsqueeze(0) + w * zero  # (T, B, 6)
    turned = compose_yaw(base.reshape(-1, 6), yaw.repeat_interleave(batch))
    return turned.view(frames, batch, 6).to(dtype=view.dtype, device=view.device)


def compose_yaw(view: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """The view that first turns the canonical object by ``yaw`` about its vertical axis through ``c``, then
    applies ``view``: rotation ``R_view · Ry(yaw)``, translation unchanged.

    Args:
        view: (N, 6) views, radians.
        yaw: (N,) angles in radians.
    Returns:
        (N, 6) views whose Euler angles (:func:`matrix_to_euler`) give that rotation.
    """
    if view.dim() != 2 or view.shape[1] != 6 or yaw.shape != (view.shape[0],):
        raise ValueError(f"view must be (N, 6) and yaw (N,), got {tuple(view.shape)} and {tuple(yaw.shape)}")
    turn = torch.zeros(view.shape[0], 3, dtype=view.dtype, device=view.device)
    turn[:, 1] = yaw.to(view)
    rotation = euler_to_matrix(view[:, :3]) @ euler_to_matrix(turn)
    return torch.cat([matrix_to_euler(rotation), view[:, 3:]], dim=1)


def matrix_to_euler(rotation: torch.Tensor) -> torch.Tensor:
    """Euler angles ``(rx, ry, rz)`` with ``R = Rz(rz) · Ry(ry) · Rx(rx)``, ``ry`` in [−90°, 90°].

    The inverse of :func:`unsup3d.geometry.euler_to_matrix`. At ``ry = ±90°`` (gimbal lock) only a combination
    of rx and rz is defined; then ``rz = 0``.

    Args:
        rotation: (N, 3, 3) rotation matrices.
    Returns:
        (N, 3) radians.
    """
    if rotation.dim() != 3 or rotation.shape[1:] != (3, 3):
        raise ValueError(f"rotation must be (N, 3, 3), got shape {tuple(rotation.shape)}")
    r = rotation
    ry = torch.asin((-r[:, 2, 0]).clamp(-1.0, 1.0))
    cos_y = torch.sqrt(r[:, 2, 1] ** 2 + r[:, 2, 2] ** 2)
    locked = cos_y < 1e-6
    rx = torch.where(locked, torch.atan2(-r[:, 1, 2], r[:, 1, 1]), torch.atan2(r[:, 2, 1], r[:, 2, 2]))
    rz = torch.where(locked, torch.zeros_like(ry), torch.atan2(r[:, 1, 0], r[:, 0, 0]))
    return torch.stack([rx, ry, rz], dim=1)


@torch.no_grad()
def turntable_frames(
    canonical_depth: torch.Tensor,
    colour: torch.Tensor,
    views: torch.Tensor,
    fov: float = FOV_DEGREES,
    size: int | None = None,
    background: float | tuple[float, ...] = 1.0,
    chunk: int | None = None,
) -> torch.Tensor:
    """Render every frame of an animation (:func:`~unsup3d.render.views.render_view`).

    With ``size`` N the canonical depth and colour are first resampled to N × N (bilinear,
    ``align_corners=True``: the corner pixel centres stay on the same rays, since ``f = (N − 1)/2 / tan(fov/2)``),
    and rendered at N, as the original rendered its 128² output on the upsampled depth mesh. Frames go through the
    renderer as the batch dimension, ``chunk`` at a time (default: :data:`CHUNK_PIXELS` pixels' worth).

    Args:
        canonical_depth: (B, S, S) canonical depth.
        colour: (B, C, S, S) canonical image (shape, normals or texture).
        views: (T, B, 6) views, e.g. :func:`turntable_views`.
        fov: field of view in degrees.
        size: render size N (default S).
        background: where no surface is (white, as the original).
    Returns:
        (B, T, C, N, N).
    """
    if views.dim() != 3 or views.shape[1:] != (canonical_depth.shape[0], 6):
        raise ValueError(f"views must be (T, {canonical_depth.shape[0]}, 6), got shape {tuple(views.shape)}")
    if chunk is not None and chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}")
    depth, colour = canonical_depth.float(), colour.float()
    if size is not None and size != depth.shape[-1]:
        depth, colour = upsample_canonical(depth, colour, size=size)
    frames, batch = views.shape[:2]
    chunk = chunk or max(1, CHUNK_PIXELS // depth.shape[-1] ** 2)
    flat = views.reshape(-1, 6).to(depth)  # frame-major: row t·B + b is frame t of image b
    out = []
    for start in range(0, flat.shape[0], chunk):
        rows = torch.arange(start, min(start + chunk, flat.shape[0]), device=depth.device)
        image = rows % batch
        out.append(render_view(depth[image], colour[image], flat[rows], fov, background))
    rendered = torch.cat(out)  # (T·B, C, N, N)
    return rendered.view(frames, batch, *rendered.shape[1:]).transpose(0, 1)


def _write_gif(frames: np.ndarray, path: Path, fps: float) -> Path:
    """(T, H, W, 3) uint8 frames as a looping GIF with one palette for all frames (median cut over every tenth
    frame), Floyd–Steinberg dithered: ten times faster than a palette per frame, and no palette flicker."""
    sample = Image.fromarray(np.concatenate(list(frames[:: max(1, len(frames) // 20)]), axis=0))
    palette = sample.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    images = [Image.fromarray(frame).quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=1000.0 / fps, loop=0)
    return path


def write_animation(frames: torch.Tensor, path: str | Path, fps: float = FPS, quality: float = 8.0) -> Path:
    """Write (T, 3, H, W) frames in [0, 1] as a GIF or an MP4, chosen by the suffix.

    - ``.gif``: Pillow, looping forever, ``1000/fps`` ms a frame, one palette for all frames. Pillow merges
      consecutive identical frames into one frame of their summed duration (the holds), so the file may hold
      fewer frames; the timing is kept.
    - ``.mp4``: H.264 (yuv420p) by imageio-ffmpeg's bundled ffmpeg at ``quality`` (0–10). Every frame is kept and
      the size too: no resize to a multiple of 16; an odd height or width is padded by one edge row or column
      (yuv420p needs even sizes).

    MP4 needs the ``video`` extra (imageio, imageio-ffmpeg). Returns the path written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ANIMATION_SUFFIXES:
        raise ValueError(f"animation files must end in {' or '.join(ANIMATION_SUFFIXES)}, got '{path.name}'")
    if frames.dim() != 4 or frames.shape[1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames must be (T, 3, H, W) with T > 0, got shape {tuple(frames.shape)}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    pixels = to_uint8(frames)  # (T, H, W, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        return _write_gif(pixels, path, fps)
    imageio = require("imageio", "MP4 animations")
    require("imageio_ffmpeg", "MP4 animations")
    height, width = pixels.shape[1:3]
    pixels = np.pad(pixels, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    writer = imageio.get_writer(
        path,
        format="FFMPEG",
        mode="I",
        fps=fps,
        codec="libx264",
        quality=quality,
        pixelformat="yuv420p",
        macro_block_size=1,
        ffmpeg_log_level="error",
    )
    try:
        for frame in pixels:
            writer.append_data(frame)
    finally:
        writer.close()
    return path
