"""Writing one image's reconstruction to a folder, in groups of files that ``--only`` can choose.

Groups and their files (S × S pixels unless said otherwise):

- ``depth``: ``depth.npy`` float32 (S, S) depth in the input view, NaN where there is no surface (the layout of
  the synthetic test sets' ground truth); ``canonical_depth.npy``; ``depth_16bit.png`` (the input-view depth as a
  16-bit PNG, encoding in ``docs/conventions.md``).
- ``maps``: ``input.png``, ``reconstruction.png`` (the input view re-rendered), ``canonical_image.png`` (albedo ×
  shading), ``albedo.png``, ``shading.png`` (clipped to [0, 1]), ``normal.png`` (canonical normals as
  ``n / 2 + 0.5``), ``depth.png`` and ``canonical_depth.png`` (grey, near bright, each map's own range; no surface
  is black), and when the model predicts confidence ``confidence.png``: a strip of σ and σ′ of the photometric
  loss, then for models with a perceptual loss its σ and σ′ (enlarged ×4), each as ``1 / (1 + σ)``.
- ``obj``: ``mesh.obj`` + ``mesh.mtl`` textured with ``albedo.png`` (canonical frame, see
  :mod:`unsup3d.outputs.mesh`); ``glb``: ``mesh.glb``, the same mesh with the texture embedded; ``ply``:
  ``mesh.ply`` with vertex colours (the ``mesh`` extra for both).
- ``overlays``: ``symmetry.png`` (the symmetry plane over the input, the paper's Fig. 6a) and ``asymmetry.png``
  (σ′ in red over the input, Fig. 6b; only with confidence).
- ``relight``: ``relight.png``, the canonical face under a 3 × 3 grid of light directions (Fig. 10).
- ``views``: ``views.png``, rows shape (grey), normals and textured face, columns yaw −45°, 0°, +45°.
- ``turntable``: ``turntable.gif`` and ``turntable.mp4`` (textured | shape side by side, the original demo's
  sequence; the ``video`` extra).
- ``json``: ``view_light.json``: ``{"rotation_degrees": {"x", "y", "z"}, "translation": {"x", "y", "z"},
  "light": {"ambient", "diffuse", "direction": [3]}, "fov_degrees"}``; rotations are the model's ``R = Rz·Ry·Rx``
  about (0, 0, 1) in the camera frame, translation in depth units, the light a unit vector in the canonical frame.

``--mesh-size N`` builds the meshes and the turntable on the canonical depth upsampled to N × N.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from unsup3d.inference.reconstruction import Reconstruction
from unsup3d.outputs import overlays, turntable
from unsup3d.outputs.mesh import TexturedMesh, canonical_mesh, sample_texture, write_obj
from unsup3d.render.views import light_grid, relight_grid, render_view, shape_colour
from unsup3d.viz import depth_to_image, image_grid, normals_to_image, to_uint8

__all__ = [
    "DEFAULT_GROUPS",
    "GROUP_FILES",
    "OutputOptions",
    "available_groups",
    "confidence_strip",
    "save_png",
    "view_light_dict",
    "write_outputs",
]

GROUP_FILES: dict[str, tuple[str, ...]] = {
    "depth": ("depth.npy", "canonical_depth.npy", "depth_16bit.png"),
    "maps": (
        "input.png",
        "reconstruction.png",
        "canonical_image.png",
        "albedo.png",
        "shading.png",
        "normal.png",
        "depth.png",
        "canonical_depth.png",
    ),
    "obj": ("mesh.obj", "mesh.mtl", "albedo.png"),
    "glb": ("mesh.glb",),
    "ply": ("mesh.ply",),
    "overlays": ("symmetry.png",),
    "relight": ("relight.png",),
    "views": ("views.png",),
    "turntable": ("turntable.gif", "turntable.mp4"),
    "json": ("view_light.json",),
}
"""Files of each group that every model writes (``confidence.png`` and ``asymmetry.png`` need confidence)."""
# Groups that need an optional package (its import name): skipped by default when it is missing.
GROUP_NEEDS = {"glb": "trimesh", "ply": "trimesh", "turntable": "imageio"}
DEFAULT_GROUPS = tuple(GROUP_FILES)
RELIGHT_STEPS, RELIGHT_EXTENT = (
    3,
    0.8,
)  # a 3 × 3 grid of lights, lx and ly in [−0.8, 0.8] (unsup3d.render.views.light_grid)
VIEW_YAWS = (-45.0, 0.0, 45.0)


@dataclass(frozen=True)
class OutputOptions:
    """What :func:`write_outputs` writes: the groups, and the grid size of meshes and turntables (None: S)."""

    groups: tuple[str, ...] = DEFAULT_GROUPS
    mesh_size: int | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.groups) - set(GROUP_FILES))
        if unknown:
            raise ValueError(f"unknown output group(s) {unknown}: choose from {sorted(GROUP_FILES)}")
        if self.mesh_size is not None and not 2 <= self.mesh_size <= 1024:
            raise ValueError(f"mesh size must be in [2, 1024], got {self.mesh_size}")


def available_groups() -> tuple[str, ...]:
    """The groups whose optional packages are installed (the default of ``reconstruct``)."""
    return tuple(g for g in DEFAULT_GROUPS if g not in GROUP_NEEDS or importlib.util.find_spec(GROUP_NEEDS[g]))


def write_outputs(
    rec: Reconstruction, index: int, out_dir: str | Path, options: OutputOptions | None = None
) -> list[Path]:
    """Write image ``index`` of ``rec`` into ``out_dir`` (created if needed); see the module doc for the files.

    Returns:
        The paths written.
    Raises:
        IndexError: ``index`` outside [0, B).
        unsup3d.extras.MissingExtraError: a chosen group needs an extra that is not installed.
    """
    if not 0 <= index < len(rec):
        raise IndexError(f"index {index} out of range for a reconstruction of {len(rec)} images")
    options = options or OutputOptions(available_groups())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    job = _Job(rec.select(index), out, options)
    written: list[Path] = []
    for group in dict.fromkeys(options.groups):  # in order, once each
        written += WRITERS[group](job)
    return list(dict.fromkeys(written))


@dataclass
class _Job:
    """One image's files to write: the batch-of-one reconstruction, the folder, the options, and the mesh that
    the obj, glb and ply groups share (built once, on first use)."""

    one: Reconstruction
    out: Path
    options: OutputOptions

    @functools.cached_property
    def mesh(self) -> TexturedMesh:
        """The textured mesh of the canonical depth grid, upsampled to ``mesh_size`` (its texture to match)."""
        one = self.one
        return canonical_mesh(
            one.canonical_depth[0], one.canonical_albedo[0], one.fov, self.options.mesh_size, 0, one.canonical_normal[0]
        )


def _write_depth(job: _Job) -> list[Path]:
    from unsup3d.outputs.mesh_files import save_depth_png16

    one, out = job.one, job.out
    depth = one.depth[0]
    return [
        _save_npy(out / "depth.npy", depth),
        _save_npy(out / "canonical_depth.npy", one.canonical_depth[0]),
        save_depth_png16(out / "depth_16bit.png", depth, *one.depth_range),
    ]


def _write_maps(job: _Job) -> list[Path]:
    one, out = job.one, job.out
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
    return [save_png(out / name, picture) for name, picture in pictures.items()]


def _write_obj(job: _Job) -> list[Path]:
    one, out, mesh = job.one, job.out, job.mesh
    size = mesh.texture.shape[-1]
    name = "albedo.png" if size == one.canonical_albedo.shape[-1] else f"albedo_{size}.png"
    texture = save_png(out / name, mesh.texture)
    obj = write_obj(out / "mesh.obj", mesh.vertices, mesh.faces, mesh.uvs, mesh.normals, "albedo", texture.name)
    return [obj, obj.with_suffix(".mtl"), texture]


def _write_glb(job: _Job) -> list[Path]:
    from unsup3d.outputs.mesh_files import write_glb

    out, mesh = job.out, job.mesh
    return [write_glb(out / "mesh.glb", mesh.vertices, mesh.faces, mesh.uvs, mesh.texture, mesh.normals)]


def _write_ply(job: _Job) -> list[Path]:
    from unsup3d.outputs.mesh_files import write_ply

    out, mesh = job.out, job.mesh
    colours = sample_texture(mesh.texture, mesh.uvs)  # each vertex's own texel
    return [write_ply(out / "mesh.ply", mesh.vertices, mesh.faces, colours)]


def _write_overlays(job: _Job) -> list[Path]:
    one, out = job.one, job.out
    plane = overlays.symmetry_plane_overlay(one.image, one.canonical_depth, one.view, one.fov)
    written = [save_png(out / "symmetry.png", plane[0])]
    if one.confidence is not None:
        mask = overlays.object_mask(one.canonical_depth, one.view, one.fov)
        written.append(save_png(out / "asymmetry.png", overlays.asymmetry_overlay(one.image, one.confidence, mask)[0]))
    return written


def _write_relight(job: _Job) -> list[Path]:
    one, out = job.one, job.out
    directions = light_grid(RELIGHT_STEPS, RELIGHT_EXTENT)  # (9, 3), row-major
    grid = relight_grid(one.canonical_albedo, one.canonical_normal, one.ambient, one.diffuse, directions)
    rows = [grid[0, RELIGHT_STEPS * r : RELIGHT_STEPS * (r + 1)] for r in range(RELIGHT_STEPS)]  # (3, 3, S, S)
    return [save_png(out / "relight.png", image_grid(rows))]


def _write_views(job: _Job) -> list[Path]:
    one, out = job.one, job.out
    views = torch.zeros(len(VIEW_YAWS), 6)
    views[:, 1] = torch.tensor([math.radians(yaw) for yaw in VIEW_YAWS])
    rows = [render_view(_repeat(one.canonical_depth), _repeat(colour), views, one.fov) for colour in _appearances(one)]
    return [save_png(out / "views.png", image_grid(rows))]


def _appearances(one: Reconstruction) -> list[torch.Tensor]:
    """(1, 3, S, S) canonical colours of the shape (grey Lambertian), the normals and the textured face."""
    return [
        shape_colour(one.canonical_normal),
        normals_to_image(one.canonical_normal),
        one.canonical_image,
    ]


def _repeat(tensor: torch.Tensor, count: int = len(VIEW_YAWS)) -> torch.Tensor:
    return tensor.expand(count, *tensor.shape[1:])


def _write_turntable(job: _Job) -> list[Path]:
    one, out, options = job.one, job.out, job.options
    views = turntable.turntable_views(one.view)  # (T, 1, 6), the original demo's sequence
    colours = torch.cat([one.canonical_image, shape_colour(one.canonical_normal)], dim=1)  # (1, 6, S, S)
    frames = turntable.turntable_frames(one.canonical_depth, colours, views, one.fov, options.mesh_size)[0]
    side_by_side = torch.cat([frames[:, :3], frames[:, 3:]], dim=-1)  # (T, 3, N, 2N): textured | shape
    return [turntable.write_animation(side_by_side, out / name) for name in ("turntable.gif", "turntable.mp4")]


def _write_json(job: _Job) -> list[Path]:
    one, out = job.one, job.out
    path = out / "view_light.json"
    path.write_text(json.dumps(view_light_dict(one), indent=2) + "\n")
    return [path]


WRITERS: dict[str, Callable[[_Job], list[Path]]] = {
    "depth": _write_depth,
    "maps": _write_maps,
    "obj": _write_obj,
    "glb": _write_glb,
    "ply": _write_ply,
    "overlays": _write_overlays,
    "relight": _write_relight,
    "views": _write_views,
    "turntable": _write_turntable,
    "json": _write_json,
}


def confidence_strip(photometric: torch.Tensor, perceptual: torch.Tensor | None) -> torch.Tensor:
    """(H, k·S) grey strip ``1 / (1 + σ)`` of (2, S, S) photometric and optional (1, 2, S/4, S/4) perceptual σ."""
    maps = [photometric]
    if perceptual is not None:
        maps.append(F.interpolate(perceptual.reshape(1, 2, *perceptual.shape[-2:]), size=photometric.shape[-2:])[0])
    sigma = torch.cat(maps)  # (k, S, S)
    return torch.cat(list(1.0 / (1.0 + sigma.clamp(min=0))), dim=1)


def save_png(path: Path, picture: torch.Tensor) -> Path:
    """Write a (3, H, W) colour, or (1, H, W) or (H, W) grey tensor in [0, 1] as an 8-bit PNG."""
    if picture.dim() == 3 and picture.shape[0] == 1:
        picture = picture[0]
    if picture.dim() == 3 and picture.shape[0] == 3:
        image = Image.fromarray(to_uint8(picture))
    elif picture.dim() == 2:
        image = Image.fromarray(to_uint8(picture[None])[..., 0])
    else:
        raise ValueError(f"picture must be (3, H, W) or (H, W), got shape {tuple(picture.shape)}")
    image.save(path)
    return path


def _save_npy(path: Path, array: torch.Tensor) -> Path:
    np.save(path, array.detach().cpu().numpy().astype(np.float32))
    return path


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
