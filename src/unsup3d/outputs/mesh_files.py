"""Mesh and map files beyond the core OBJ: binary glTF and PLY (through trimesh, the ``mesh`` extra), a 16-bit depth
PNG and an 8-bit normal PNG (Pillow, core).

Meshes are written in the frame of :mod:`unsup3d.outputs.mesh` (and ``docs/conventions.md``): x right, y up,
z toward the viewer, origin at the model's rotation centre, depth units. glTF's own frame is the same (y up, +z
the front, metres), so GLB vertices are written unchanged; texture v grows upward as in OBJ (trimesh turns it
into glTF's top-left origin on export and back on import).

16-bit depth PNG (:func:`save_depth_png16`): a grey PNG of 16-bit integers ``q``,

- ``q = 0``: no surface (NaN or infinite depth);
- ``q = 1 + round(65534 · (far − d) / (far − near))`` for depth ``d`` clamped to ``[near, far]``: near is bright
  (65535), far is dark (1);
- decode with ``d = far − (q − 1) / 65534 · (far − near)`` (:func:`load_depth_png16`); the error is at most
  ``(far − near) / 131068``, half a step. ``near`` and ``far`` are stored in the PNG's text chunks
  ``depth_near`` and ``depth_far``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from unsup3d.extras import require
from unsup3d.outputs.mesh import check_mesh

DEPTH_PNG_STEPS = 65534
"""Steps between ``near`` (value 65535) and ``far`` (value 1) in a 16-bit depth PNG; value 0 is no surface."""

DEPTH_PNG_DECODE = "depth = far - (value - 1) / 65534 * (far - near); value 0 = no surface"


def write_glb(
    path: str | Path,
    vertices: np.ndarray,
    faces: np.ndarray,
    uvs: np.ndarray,
    texture: torch.Tensor | Image.Image,
    normals: np.ndarray | None = None,
) -> Path:
    """Write a binary glTF (``.glb``) of a textured mesh, the texture embedded as PNG.

    One mesh, one PBR material: ``baseColorTexture`` = ``texture``, metallic 0, roughness 1, double-sided
    (a depth relief is open at the back). Vertex order and count are kept (no merging).

    Args:
        path: the ``.glb`` file.
        vertices: (N, 3) in the OBJ frame (x right, y up, z toward the viewer; glTF's frame), depth units.
        faces: (F, 3) 0-based, counter-clockwise seen from the front.
        uvs: (N, 2) in [0, 1], v up (as in OBJ).
        texture: (3, H, W) tensor in [0, 1], or a PIL image.
        normals: (N, 3) unit vertex normals, or None (viewers then compute their own).
    Returns:
        the path written.
    Raises:
        MissingExtraError: trimesh is not installed (``pip install 'unsup3d[mesh]'``).
    """
    trimesh = require("trimesh", "GLB export")
    gltf = require("trimesh.exchange.gltf", "GLB export")

    vertices, faces, uvs = np.asarray(vertices), np.asarray(faces), np.asarray(uvs)
    check_mesh(vertices, faces, uvs, normals)
    material = trimesh.visual.material.PBRMaterial(
        name="albedo",
        baseColorTexture=texture_image(texture),
        metallicFactor=0.0,
        roughnessFactor=1.0,
        doubleSided=True,
    )
    mesh = trimesh.Trimesh(
        vertices=vertices,
        faces=faces,
        vertex_normals=None if normals is None else np.asarray(normals),
        visual=trimesh.visual.TextureVisuals(uv=uvs, material=material),
        process=False,
        validate=False,
    )
    data = gltf.export_glb(trimesh.Scene(mesh), include_normals=normals is not None)
    path = Path(path)
    path.write_bytes(data)
    return path


def write_ply(
    path: str | Path,
    vertices: np.ndarray,
    faces: np.ndarray | None = None,
    colors: np.ndarray | torch.Tensor | None = None,
) -> Path:
    """Write a binary little-endian PLY: a mesh with vertex colours, or coloured points when ``faces`` is None.

    Args:
        path: the ``.ply`` file.
        vertices: (N, 3) in the OBJ frame; stored as float32.
        faces: (F, 3) 0-based, or None for a point cloud.
        colors: (N, 3) RGB, uint8 in [0, 255] or float in [0, 1] (e.g. :func:`~unsup3d.outputs.mesh.sample_texture`
            of the albedo at the mesh's uvs); or None.
    Returns:
        the path written.
    Raises:
        MissingExtraError: trimesh is not installed (``pip install 'unsup3d[mesh]'``).
    """
    trimesh = require("trimesh", "PLY export")
    ply = require("trimesh.exchange.ply", "PLY export")

    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or not np.isfinite(vertices).all():
        raise ValueError(f"vertices must be finite (N, 3), got {vertices.shape}")
    rgba = None if colors is None else _rgba(colors, len(vertices))
    if faces is None:
        geometry = trimesh.PointCloud(vertices, colors=rgba)
    else:
        faces = np.asarray(faces)
        if (
            faces.ndim != 2
            or faces.shape[1] != 3
            or (faces.size and not 0 <= faces.min() <= faces.max() < len(vertices))
        ):
            raise ValueError(f"faces must be (F, 3) indices into {len(vertices)} vertices")
        geometry = trimesh.Trimesh(vertices, faces, vertex_colors=rgba, process=False, validate=False)
    path = Path(path)
    path.write_bytes(ply.export_ply(geometry, encoding="binary"))
    return path


def _rgba(colors: np.ndarray | torch.Tensor, count: int) -> np.ndarray:
    """(N, 3) uint8 or [0, 1] float colours → (N, 4) uint8 with opaque alpha."""
    colors = np.asarray(colors.detach().cpu() if isinstance(colors, torch.Tensor) else colors)
    if colors.shape != (count, 3):
        raise ValueError(f"colors must be ({count}, 3), got {colors.shape}")
    if colors.dtype != np.uint8:
        colors = np.round(np.clip(np.nan_to_num(colors.astype(np.float64)), 0.0, 1.0) * 255).astype(np.uint8)
    return np.concatenate([colors, np.full((count, 1), 255, dtype=np.uint8)], axis=1)


def texture_image(texture: torch.Tensor | Image.Image) -> Image.Image:
    """A PIL RGB image of a (3, H, W) tensor in [0, 1] (clamped, rounded to 8 bits), or a PIL image as RGB."""
    if isinstance(texture, Image.Image):
        return texture.convert("RGB")
    if not isinstance(texture, torch.Tensor) or texture.dim() != 3 or texture.shape[0] != 3:
        raise ValueError(f"texture must be a (3, H, W) tensor or a PIL image, got {getattr(texture, 'shape', texture)}")
    array = texture.detach().float().cpu().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0)
    return Image.fromarray(np.ascontiguousarray(array.numpy()))


def save_depth_png16(path: str | Path, depth: torch.Tensor | np.ndarray, near: float, far: float) -> Path:
    """Write an (H, W) depth map as a 16-bit grey PNG (the encoding of the module doc).

    ``q = 1 + round(65534 · (far − d) / (far − near))`` for finite ``d`` clamped to ``[near, far]``, ``q = 0``
    where ``d`` is NaN or infinite (no surface). Decode: ``d = far − (q − 1) / 65534 · (far − near)``, exact to
    ``(far − near) / 131068``; :func:`load_depth_png16` does it. ``near`` and ``far`` go into the text chunks
    ``depth_near`` and ``depth_far``. For the model's maps use its depth range, e.g. ``ModelConfig.near_depth``
    and ``far_depth`` (0.8, 1.2 by default) for rendered depth.

    Args:
        path: the ``.png`` file.
        depth: (H, W) float depth, NaN where there is no surface.
        near, far: the depths stored as 65535 and 1; ``near < far``.
    Returns:
        the path written.
    """
    if not (np.isfinite(near) and np.isfinite(far) and near < far):
        raise ValueError(f"need finite near < far, got near={near}, far={far}")
    depth = np.asarray(depth.detach().cpu() if isinstance(depth, torch.Tensor) else depth, dtype=np.float64)
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {depth.shape}")
    finite = np.isfinite(depth)
    scaled = (far - np.clip(np.where(finite, depth, far), near, far)) / (far - near)
    values = np.where(finite, 1 + np.round(DEPTH_PNG_STEPS * scaled), 0).astype("<u2")
    info = PngInfo()
    info.add_text("depth_near", repr(float(near)))
    info.add_text("depth_far", repr(float(far)))
    info.add_text("depth_encoding", DEPTH_PNG_DECODE)
    path = Path(path)
    Image.fromarray(values).save(path, pnginfo=info)
    return path


def load_depth_png16(path: str | Path, near: float | None = None, far: float | None = None) -> np.ndarray:
    """Read a :func:`save_depth_png16` file → float64 (H, W) depth, NaN where there is no surface.

    ``near`` and ``far`` default to the values stored in the file's text chunks.
    """
    with Image.open(path) as image:
        text = getattr(image, "text", {})
        values = np.asarray(image).astype(np.float64)
    near = float(text["depth_near"]) if near is None else near
    far = float(text["depth_far"]) if far is None else far
    depth = far - (values - 1) / DEPTH_PNG_STEPS * (far - near)
    return np.where(values > 0, depth, np.nan)
