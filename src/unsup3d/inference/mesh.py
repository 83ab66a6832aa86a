"""The canonical depth grid as a textured triangle mesh, and a small Wavefront OBJ writer / reader.

Frames. The model's camera frame is x right, y down, z forward (``docs/conventions.md``). Meshes are written in
the usual right-handed OBJ frame, **x right, y up, z toward the viewer**: ``(x, y, z) → (x, −y, 1 − z)``. The
origin is the model's rotation centre ``(0, 0, 1)``, and units stay those of the depth maps (about 1 at the
object; call them metres), so a face 0.2 deep stays 0.2 deep. (The original demo used the same axes, then scaled
by 100.)

Topology. One vertex per pixel, row-major; two triangles per cell, ``(i,j),(i+1,j),(i,j+1)`` and
``(i,j+1),(i+1,j),(i+1,j+1)`` as in the renderer. In the OBJ frame both wind counter-clockwise seen from +z, so a
fronto-parallel plane's face normals point at the viewer (+z). Texture coordinates put pixel centres at texel
centres: ``u = (j + 0.5) / W``, ``v = 1 − (i + 0.5) / H`` (OBJ's v grows upward, image row 0 is the top).

Finer meshes. :func:`upsample_canonical` resamples the canonical depth and albedo to N × N (bilinear,
``align_corners=True``); the N-grid back-projects onto the same rays and spans the same surface, only with more,
smaller triangles. :func:`canonical_mesh` does the whole job: resample, triangulate, normals, texture.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from unsup3d.geometry import FOV_DEGREES, ROTATION_CENTER, depth_to_points, normals_from_depth
from unsup3d.render import grid_faces

# The camera→OBJ axis flip (y down → up, z forward → toward the viewer).
CAMERA_TO_OBJ = np.array([1.0, -1.0, -1.0])


def depth_grid_mesh(
    canonical_depth: torch.Tensor | np.ndarray, fov: float = FOV_DEGREES, trim_border: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Back-project a canonical depth map with K⁻¹ and triangulate its pixel grid.

    Args:
        canonical_depth: (S, S) depth in the canonical camera frame.
        fov: field of view in degrees.
        trim_border: drop this many pixel columns on the left and on the right. The model clamps its 2
            outermost columns on each side to a fixed border depth (a flat wall behind the object); 2 removes
            them. Default 0 keeps the whole grid, exactly the surface the model renders.
    Returns:
        vertices (N, 3) float64 in the OBJ frame (x right, y up, z toward the viewer, origin (0, 0, 1) of the
        camera frame); faces (F, 3) int64, 0-based, F = 2·(S−1)·(S−2·trim−1); uvs (N, 2) float64 in [0, 1].
        N = S·(S−2·trim), vertices in row-major pixel order.
    """
    depth = torch.as_tensor(canonical_depth, dtype=torch.float64).detach().cpu()
    if depth.dim() != 2 or depth.shape[0] != depth.shape[1]:
        raise ValueError(f"canonical_depth must be (S, S), got shape {tuple(depth.shape)}")
    size = depth.shape[0]
    if not 0 <= trim_border <= (size - 2) // 2:
        raise ValueError(f"trim_border must be in [0, {(size - 2) // 2}] for S={size}, got {trim_border}")
    if not torch.isfinite(depth).all():
        raise ValueError("canonical_depth must be finite")
    points = depth_to_points(depth[None], fov)[0]  # (S, S, 3) camera frame
    columns = slice(trim_border, size - trim_border)
    points = points[:, columns]  # (S, W', 3)
    height, width = points.shape[:2]
    vertices = camera_to_obj(points.reshape(-1, 3).numpy(), translate=True)
    faces = grid_faces(height, width).numpy()
    rows, cols = np.meshgrid(np.arange(height), np.arange(trim_border, size - trim_border), indexing="ij")
    uvs = np.stack([(cols + 0.5) / size, 1.0 - (rows + 0.5) / size], axis=-1).reshape(-1, 2)
    return vertices, faces.astype(np.int64), uvs


def camera_to_obj(points: np.ndarray, translate: bool = True) -> np.ndarray:
    """(N, 3) camera-frame points → OBJ frame ``(x, −y, 1 − z)``; ``translate=False`` only flips axes."""
    out = np.asarray(points, dtype=np.float64) * CAMERA_TO_OBJ
    if translate:
        out[:, 2] += ROTATION_CENTER[2]  # the mesh origin is the model's rotation centre
    return out


def grid_vertex_normals(canonical_normal: torch.Tensor | np.ndarray, trim_border: int = 0) -> np.ndarray:
    """Per-vertex normals of :func:`depth_grid_mesh`, facing the viewer, in the OBJ frame.

    Args:
        canonical_normal: (S, S, 3) unit normals in the camera frame (a frontal plane is (0, 0, 1), pointing
            away from the camera), e.g. ``Reconstruction.canonical_normal[i]``.
        trim_border: as in :func:`depth_grid_mesh`.
    Returns:
        (N, 3) float64 ``(−nx, ny, nz)``: the camera normal turned toward the viewer, then flipped to the OBJ
        frame; a frontal plane gets (0, 0, 1).
    """
    normals = np.asarray(torch.as_tensor(canonical_normal).detach().cpu(), dtype=np.float64)
    if normals.ndim != 3 or normals.shape[-1] != 3 or normals.shape[0] != normals.shape[1]:
        raise ValueError(f"canonical_normal must be (S, S, 3), got shape {normals.shape}")
    size = normals.shape[0]
    normals = normals[:, trim_border : size - trim_border].reshape(-1, 3)
    return camera_to_obj(-normals, translate=False)


def upsample_canonical(
    canonical_depth: torch.Tensor, canonical_albedo: torch.Tensor | None = None, *, size: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Resample the canonical depth grid, and its albedo, from S × S to ``size`` × ``size`` (bilinear).

    Same rays, same surface: sampling uses ``align_corners=True``, so column ``j`` of the new grid is column
    ``u = j·(S−1)/(N−1)`` of the old, and since ``f = (N−1)/2/tan(fov/2)`` scales the same way, back-projecting
    the new grid with the same fov puts vertex ``j`` on the ray of ``u``. The corner rays coincide, so the mesh
    spans the same extent; a constant-depth plane stays that plane; when ``N−1`` is a multiple of ``S−1`` every
    old vertex is also a new one. Between old pixels depth is interpolated bilinearly in the image (not along the
    old triangles): a smoother version of the same surface. The clamped border columns (a flat wall at the
    border depth) stay a wall; the columns between the wall and the object mix both, as the old mesh's steep
    triangles there did; :func:`resampled_trim_border` gives the trim that drops the wall on the new grid.
    The albedo is resampled the same way, so :func:`depth_grid_mesh`'s uvs (texel centre = vertex) still fit.
    ``size`` < S downsamples (a lighter mesh).

    Args:
        canonical_depth: (S, S) or (B, S, S) finite canonical depth.
        canonical_albedo: (C, S, S) or (B, C, S, S), e.g. the (B, 3, S, S) albedo in [0, 1]; or None.
        size: N ≥ 2, the new grid's size.
    Returns:
        depth (N, N) or (B, N, N), and albedo (C, N, N) or (B, C, N, N) (or None), each with its input's
        layout and dtype; albedo in [0, 1] stays in [0, 1] (bilinear weights are convex).
    """
    if canonical_depth.dim() not in (2, 3) or canonical_depth.shape[-1] != canonical_depth.shape[-2]:
        raise ValueError(f"canonical_depth must be (S, S) or (B, S, S), got shape {tuple(canonical_depth.shape)}")
    if size < 2:
        raise ValueError(f"size must be at least 2, got {size}")
    source = canonical_depth.shape[-1]
    depth = _resample(canonical_depth.reshape(-1, 1, source, source), size).reshape(
        *canonical_depth.shape[:-2], size, size
    )
    if canonical_albedo is None:
        return depth, None
    if canonical_albedo.dim() not in (3, 4) or canonical_albedo.shape[-2:] != canonical_depth.shape[-2:]:
        raise ValueError(
            f"canonical_albedo must be (C, S, S) or (B, C, S, S) with S={source}, "
            f"got shape {tuple(canonical_albedo.shape)}"
        )
    albedo = _resample(canonical_albedo.reshape(-1, *canonical_albedo.shape[-3:]), size)
    return depth, albedo.reshape(*canonical_albedo.shape[:-2], size, size)


def _resample(grid: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, S, S) → (B, C, N, N) bilinear with ``align_corners=True``; S == N returns the input."""
    if grid.shape[-1] == size:
        return grid
    return F.interpolate(grid, size=(size, size), mode="bilinear", align_corners=True)


def resampled_trim_border(trim_border: int, source_size: int, size: int) -> int:
    """The trim of an N-grid resampled from an S-grid that drops what ``trim_border`` drops on the S-grid.

    Column ``j`` of the N-grid lies at ``u = j·(S−1)/(N−1)``; the trimmed S-mesh starts at ``u = trim_border``,
    so the N-mesh keeps the columns with ``u ≥ trim_border``: ``ceil(trim_border·(N−1)/(S−1))`` dropped on each
    side (symmetric). Returns ``trim_border`` when N == S.
    """
    if source_size < 2 or size < 2:
        raise ValueError(f"grid sizes must be at least 2, got {source_size} and {size}")
    return -(-trim_border * (size - 1) // (source_size - 1))


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
