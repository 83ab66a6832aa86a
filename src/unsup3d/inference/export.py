"""Writing one image's reconstruction to a folder: depth arrays, PNG maps, a textured mesh, view and light.

Files written by :func:`write_outputs` (S × S pixels unless said otherwise):

- ``depth.npy``: float32 (S, S) depth in the input view, NaN where there is no surface (the layout of the
  synthetic test sets' ground truth); ``canonical_depth.npy``: float32 (S, S) canonical depth.
- ``input.png``, ``reconstruction.png`` (the input view re-rendered), ``canonical_image.png`` (albedo × shading),
  ``albedo.png`` (canonical albedo; also the mesh texture), ``shading.png`` (ambient + diffuse shading, clipped
  to [0, 1]), ``normal.png`` (canonical normals as ``n / 2 + 0.5``).
- ``depth.png`` and ``canonical_depth.png``: grey, near bright, stretched over each map's own depth range;
  no surface is black. Use the ``.npy`` files for values.
- ``confidence.png`` (only when the model predicts confidence): one grey strip of two or four S × S maps, left to
  right σ and σ′ of the photometric loss (image, flipped image), then, for models trained with a perceptual
  loss, σ and σ′ of that loss (S/4, enlarged ×4 with nearest neighbours), each shown as ``1 / (1 + σ)``:
  bright is confident.
- ``mesh.obj`` + ``mesh.mtl``: the canonical depth grid (see :mod:`unsup3d.inference.mesh` for the frame),
  textured with ``albedo.png``, with viewer-facing vertex normals. It is in the canonical frame; ``view_light.json``
  holds the view that takes it to the input view.
- ``view_light.json``: ``{"rotation_degrees": {"x", "y", "z"}, "translation": {"x", "y", "z"},
  "light": {"ambient", "diffuse", "direction": [3]}, "fov_degrees"}``; rotations are the model's
  ``R = Rz·Ry·Rx`` about (0, 0, 1) in the camera frame, translation in depth units, the light direction a
  unit vector in the canonical camera frame.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from unsup3d.data.images import ImageLoadError, find_images
from unsup3d.files import OutputError, ensure_writable_folder
from unsup3d.inference.mesh import depth_grid_mesh, grid_vertex_normals, write_obj
from unsup3d.inference.reconstructor import Reconstruction, Reconstructor
from unsup3d.viz import depth_to_image, normals_to_image

OUTPUT_FILES = (
    "depth.npy",
    "canonical_depth.npy",
    "input.png",
    "reconstruction.png",
    "canonical_image.png",
    "albedo.png",
    "shading.png",
    "normal.png",
    "depth.png",
    "canonical_depth.png",
    "mesh.obj",
    "mesh.mtl",
    "view_light.json",
)
"""Files :func:`write_outputs` always writes; ``confidence.png`` is added when confidence is predicted."""


def write_outputs(rec: Reconstruction, index: int, out_dir: str | Path, trim_border: int = 0) -> list[Path]:
    """Write image ``index`` of ``rec`` into ``out_dir`` (created if needed); see the module doc for the files.

    Args:
        rec: a reconstruction of B images.
        index: which image, in [0, B).
        out_dir: destination folder.
        trim_border: border columns dropped from each side of the mesh (see :func:`depth_grid_mesh`).
    Returns:
        the paths written.
    """
    if not 0 <= index < len(rec):
        raise IndexError(f"index {index} out of range for a reconstruction of {len(rec)} images")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    one = rec.select(index)
    written = [
        _save_npy(out / "depth.npy", one.depth[0]),
        _save_npy(out / "canonical_depth.npy", one.canonical_depth[0]),
    ]
    pictures = {
        "input.png": one.image[0],
        "reconstruction.png": one.recon_image[0],
        "canonical_image.png": one.canonical_image[0],
        "albedo.png": one.canonical_albedo[0],
        "shading.png": one.canonical_shading[0].clamp(0, 1),
        "normal.png": normals_to_image(one.canonical_normal)[0],
        "depth.png": depth_to_image(one.depth)[0, 0],
        "canonical_depth.png": depth_to_image(one.canonical_depth)[0, 0],
    }
    if one.confidence is not None:
        pictures["confidence.png"] = confidence_strip(one.confidence[0], one.confidence_perceptual)
    written += [save_png(out / name, picture) for name, picture in pictures.items()]
    written += _write_mesh(one, out, trim_border)
    written.append(_write_view_light(one, out / "view_light.json"))
    return written


def confidence_strip(photometric: torch.Tensor, perceptual: torch.Tensor | None) -> torch.Tensor:
    """(H, k·S) grey strip ``1 / (1 + σ)`` of (2, S, S) photometric and optional (1, 2, S/4, S/4) perceptual σ."""
    maps = [photometric]
    if perceptual is not None:
        maps.append(F.interpolate(perceptual.reshape(1, 2, *perceptual.shape[-2:]), size=photometric.shape[-2:])[0])
    sigma = torch.cat(maps)  # (k, S, S)
    return torch.cat(list(1.0 / (1.0 + sigma.clamp(min=0))), dim=1)


def save_png(path: Path, picture: torch.Tensor) -> Path:
    """Write a (3, H, W) colour, or (1, H, W) or (H, W) / (H, W) grey tensor in [0, 1] as an 8-bit PNG."""
    if picture.dim() == 3 and picture.shape[0] == 1:
        picture = picture[0]
    array = picture.detach().float().cpu().clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    if array.ndim == 3:
        image = Image.fromarray(np.ascontiguousarray(array.transpose(1, 2, 0)))
    elif array.ndim == 2:
        image = Image.fromarray(array)
    else:
        raise ValueError(f"picture must be (3, H, W) or (H, W), got shape {tuple(picture.shape)}")
    image.save(path)
    return path


def _save_npy(path: Path, array: torch.Tensor) -> Path:
    np.save(path, array.detach().cpu().numpy().astype(np.float32))
    return path


def _write_mesh(one: Reconstruction, out: Path, trim_border: int) -> list[Path]:
    vertices, faces, uvs = depth_grid_mesh(one.canonical_depth[0], one.fov, trim_border)
    normals = grid_vertex_normals(one.canonical_normal[0], trim_border)
    obj = write_obj(out / "mesh.obj", vertices, faces, uvs, normals, "albedo", "albedo.png")
    return [obj, obj.with_suffix(".mtl")]


def view_light_dict(one: Reconstruction) -> dict:
    """The view and light of a batch-of-one reconstruction as plain JSON-ready values."""
    view = [float(v) for v in one.view[0]]
    return {
        "rotation_degrees": dict(zip("xyz", (math.degrees(r) for r in view[:3]), strict=True)),
        "translation": dict(zip("xyz", view[3:], strict=True)),
        "light": {
            "ambient": float(one.ambient[0]),
            "diffuse": float(one.diffuse[0]),
            "direction": [float(v) for v in one.light_direction[0]],
        },
        "fov_degrees": one.fov,
    }


def _write_view_light(one: Reconstruction, path: Path) -> Path:
    path.write_text(json.dumps(view_light_dict(one), indent=2) + "\n")
    return path


def collect_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Image files named directly, plus every image under named folders (recursive, sorted)."""
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
    checkpoint: str | Path,
    inputs: Sequence[str | Path],
    output: str | Path,
    batch_size: int = 64,
    device: str | None = None,
    progress: bool = True,
) -> tuple[int, list[tuple[Path, str]]]:
    """Reconstruct every input image into ``output/<stem>/`` (see :func:`write_outputs`).

    Unreadable inputs are reported, not raised. Returns (number written, [(path, reason), ...] of failures).

    Raises:
        CheckpointError: no usable checkpoint.
        OutputError: ``output`` cannot be created or written, checked before any work, or a write fails (disk
            full).
    """
    from tqdm.auto import tqdm

    reconstructor = Reconstructor.from_checkpoint(checkpoint, device=device)
    paths = collect_inputs(inputs)
    output = ensure_writable_folder(output)
    stems = _unique_stems(paths)
    written, failed = 0, []
    results = reconstructor.reconstruct_paths(paths, batch_size)
    for path, result in tqdm(results, total=len(paths), disable=not progress, unit="img"):
        if isinstance(result, ImageLoadError):
            failed.append((path, result.reason))
            continue
        try:
            write_outputs(result, 0, output / stems[path])
        except OSError as error:
            raise OutputError(f"cannot write {output / stems[path]}: {error.strerror or error}") from error
        written += 1
    return written, failed


def _unique_stems(paths: list[Path]) -> dict[Path, str]:
    """Output folder names: the file stem, with ``_2``, ``_3``... when two inputs share a stem."""
    seen: dict[str, int] = {}
    names = {}
    for path in paths:
        count = seen.get(path.stem, 0) + 1
        seen[path.stem] = count
        names[path] = path.stem if count == 1 else f"{path.stem}_{count}"
    return names
