"""A reconstruction's textured mesh (:class:`TexturedMesh`) and a small Wavefront OBJ writer / reader.

The mesh is the canonical depth grid of :mod:`unsup3d.render.grid_mesh` (frame, topology and uvs are described
there): x right, y up, z toward the viewer, origin at the model's rotation centre, depth units.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from unsup3d.geometry import FOV_DEGREES, normals_from_depth
from unsup3d.render.grid_mesh import depth_grid_mesh, grid_vertex_normals, resampled_trim_border, upsample_canonical


@dataclass(frozen=True)
class TexturedMesh:
    """A mesh of the canonical depth grid and the texture its uvs index (see the module doc for the frame)."""

    vertices: np.ndarray  # (N, 3) float64, OBJ frame: x right, y up, z toward the viewer
    faces: np.ndarray  # (F, 3) int64, 0-based, counter-clockwise seen from the viewer
    uvs: np.ndarray  # (N, 2) float64 in [0, 1], v up
    normals: np.ndarray  # (N, 3) float64 unit vertex normals facing the viewer, OBJ frame
    texture: torch.Tensor  # (3, T, T) albedo in [0, 1] (T the grid size)


def canonical_mesh(
    canonical_depth: torch.Tensor,
    canonical_albedo: torch.Tensor,
    fov: float = FOV_DEGREES,
    size: int | None = None,
    trim_border: int = 0,
    canonical_normal: torch.Tensor | None = None,
) -> TexturedMesh:
    """The textured mesh of one canonical reconstruction, optionally on a finer (or coarser) N × N grid.

    Args:
        canonical_depth: (S, S) canonical depth, e.g. ``Reconstruction.canonical_depth[i]``.
        canonical_albedo: (3, S, S) albedo in [0, 1], e.g. ``Reconstruction.canonical_albedo[i]``.
        fov: field of view in degrees (``Reconstruction.fov``).
        size: None or S keeps the S-grid; otherwise depth and albedo go through :func:`upsample_canonical`.
        trim_border: border columns to drop, counted on the S-grid (mapped by :func:`resampled_trim_border`).
        canonical_normal: (S, S, 3) camera-frame normals to use on the S-grid (``Reconstruction.canonical_normal``);
            None, or a resampled grid, computes them from the depth (:func:`unsup3d.geometry.normals_from_depth`,
            the model's own rule).
    Returns:
        a :class:`TexturedMesh` with N² vertices (N·(N − 2·trim) when trimmed) and 2·(N−1)² faces.
    """
    source = canonical_depth.shape[-1]
    size = source if size is None else size
    if canonical_albedo.dim() != 3 or canonical_albedo.shape[0] != 3:
        raise ValueError(f"canonical_albedo must be (3, S, S), got shape {tuple(canonical_albedo.shape)}")
    depth, albedo = upsample_canonical(canonical_depth.detach().cpu(), canonical_albedo.detach().cpu(), size=size)
    trim = resampled_trim_border(trim_border, source, size)
    vertices, faces, uvs = depth_grid_mesh(depth, fov, trim)
    if canonical_normal is None or size != source:
        canonical_normal = normals_from_depth(depth[None].double(), fov)[0]
    normals = grid_vertex_normals(canonical_normal, trim)
    return TexturedMesh(vertices, faces, uvs, normals, albedo.float().clamp(0, 1))


def sample_texture(texture: torch.Tensor, uvs: np.ndarray) -> np.ndarray:
    """Bilinear colours of a (C, H, W) texture at (N, 2) uvs (``u`` right, ``v`` up, texel centres at
    ``(j + 0.5) / W``, ``1 − (i + 0.5) / H``; edges clamp) → (N, C) float32. At :func:`depth_grid_mesh`'s uvs it
    returns each vertex's own pixel exactly (the PLY vertex colours)."""
    if texture.dim() != 3:
        raise ValueError(f"texture must be (C, H, W), got shape {tuple(texture.shape)}")
    uvs = np.asarray(uvs, dtype=np.float64)
    if uvs.ndim != 2 or uvs.shape[1] != 2:
        raise ValueError(f"uvs must be (N, 2), got {uvs.shape}")
    grid = torch.from_numpy(np.stack([2 * uvs[:, 0] - 1, 1 - 2 * uvs[:, 1]], axis=-1))  # v up → rows down
    sampled = F.grid_sample(
        texture.detach().cpu().double()[None],
        grid[None, None],
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )  # (1, C, 1, N)
    return sampled[0, :, 0].T.float().numpy()


def write_obj(
    path: str | Path,
    vertices: np.ndarray,
    faces: np.ndarray,
    uvs: np.ndarray,
    normals: np.ndarray | None = None,
    material_name: str = "albedo",
    texture_filename: str | None = "albedo.png",
) -> Path:
    """Write a Wavefront OBJ (``v``, ``vt``, optional ``vn``, ``f a/a[/a]`` 1-based) and its ``.mtl``.

    Vertices, uvs and normals share one index, so each face corner is ``i/i`` or ``i/i/i``.

    Args:
        path: the ``.obj`` file; the material goes beside it with the suffix ``.mtl``.
        vertices: (N, 3); faces: (F, 3) 0-based; uvs: (N, 2); normals: (N, 3) or None.
        material_name: the material's name in the ``.mtl``.
        texture_filename: the diffuse texture (``map_Kd``), relative to the ``.obj``; None writes no material.
    Returns:
        the path of the ``.obj``.
    """
    path = Path(path)
    vertices, faces, uvs = np.asarray(vertices), np.asarray(faces), np.asarray(uvs)
    check_mesh(vertices, faces, uvs, normals)
    lines = ["# unsup3d mesh: x right, y up, z toward the viewer"]
    if texture_filename is not None:
        mtl = path.with_suffix(".mtl")
        _write_mtl(mtl, material_name, texture_filename)
        lines.append(f"mtllib {mtl.name}")
    lines.append(_rows("v %.7g %.7g %.7g", vertices))
    lines.append(_rows("vt %.7g %.7g", uvs))
    if normals is not None:
        lines.append(_rows("vn %.6g %.6g %.6g", np.asarray(normals)))
    if texture_filename is not None:
        lines.append(f"usemtl {material_name}")
    corner = "%d/%d/%d" if normals is not None else "%d/%d"
    one_based = np.repeat(faces.astype(np.int64) + 1, corner.count("%d"), axis=1)  # (F, 3·k)
    lines.append(_rows("f " + " ".join([corner] * 3), one_based))
    path.write_text("\n".join(line for line in lines if line) + "\n")
    return path


def _rows(template: str, values: np.ndarray) -> str:
    """Lines of ``template % row`` for each row of (N, k) ``values``, formatted in one operation."""
    if len(values) == 0:
        return ""
    return "\n".join([template] * len(values)) % tuple(values.ravel().tolist())


def _write_mtl(path: Path, material_name: str, texture_filename: str) -> None:
    path.write_text(f"newmtl {material_name}\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\nmap_Kd {texture_filename}\n")


def check_mesh(vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, normals: np.ndarray | None) -> None:
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must be (N, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must be (F, 3), got {faces.shape}")
    if uvs.shape != (len(vertices), 2):
        raise ValueError(f"uvs must be ({len(vertices)}, 2), got {uvs.shape}")
    if normals is not None and np.shape(normals) != (len(vertices), 3):
        raise ValueError(f"normals must be ({len(vertices)}, 3), got {np.shape(normals)}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError("faces index vertices out of range")
    for name, values in (("vertices", vertices), ("uvs", uvs), ("normals", normals)):
        if values is not None and not np.isfinite(np.asarray(values, dtype=np.float64)).all():
            raise ValueError(f"{name} must be finite")


def read_obj(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Minimal OBJ reader: ``v`` lines and ``f`` lines (polygons fanned into triangles).

    Returns:
        vertices (N, 3) float64 and faces (F, 3) int64, 0-based (negative, relative indices resolved).
    """
    vertices: list[list[float]] = []
    faces: list[list[int]] = []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v":
            vertices.append([float(x) for x in parts[1:4]])
        elif parts[0] == "f":
            corners = [int(token.split("/")[0]) for token in parts[1:]]
            corners = [k - 1 if k > 0 else len(vertices) + k for k in corners]
            faces += [[corners[0], corners[k], corners[k + 1]] for k in range(1, len(corners) - 1)]
    return np.array(vertices, dtype=np.float64).reshape(-1, 3), np.array(faces, dtype=np.int64).reshape(-1, 3)
