"""Named keypoints of the synthetic faces, with their exact depth and visibility in the input view.

For the keypoint depth evaluation of the paper's Table 5 (3DFAW, DepthNet's protocol) on the built-in data. A
keypoint is the head-mesh vertex nearest (in canonical x, y) to a facial landmark placed by the sample's own
shape and albedo parameters (:func:`face_landmarks`): brows, eye corners, nose bridge and tip, nostril wings,
mouth corners, lips and chin. Being a vertex of the rendered mesh, it lies exactly on the rendered surface: its
pixel position ``(u, v)`` is the projection of the vertex and its depth the vertex's camera depth in the input
view. "left" and "right" are image sides in the canonical (frontal) view: ``_left`` lies at −x.

A keypoint is visible when nothing hides it and it lies in the frame: the renderer's nearest surface along the
ray through ``(u, v)`` is within :data:`VISIBILITY_TOLERANCE` of the keypoint's depth, and ``(u, v)`` lies in
``[0, S − 1]²`` (the pixel-centre hull, where a depth map can be interpolated). A turned head hides far-side
points behind the nose or cheek, and a low chin can leave the frame. The keypoints are face-specific: another
object category has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from unsup3d.geometry import FOV_DEGREES, project
from unsup3d.render import interpolate_depth, rasterize
from unsup3d.synthetic import face_shapes as shapes
from unsup3d.synthetic.generator import SampleParams, mesh_in_view

FACE_KEYPOINTS = (
    "brow_outer_left", "brow_inner_left", "brow_inner_right", "brow_outer_right",
    "eye_outer_left", "eye_inner_left", "eye_inner_right", "eye_outer_right",
    "nose_bridge", "nose_tip", "ala_left", "ala_right",
    "mouth_left", "mouth_right", "upper_lip", "lower_lip", "chin",
)  # fmt: skip
VISIBILITY_TOLERANCE = 1e-4  # metres: an occluder nearer than this in front of the keypoint does not hide it
BROW_ENDS = (-0.015, 0.019)  # inner and outer brow ends, from the brow texture's origin (eye_x − 0.002)
CHIN_RISE = 0.017  # the chin point sits this far above the bottom of the outline, on the chin's bulge
VERTICES_PER_PASS = 1 << 18  # moved mesh vertices rasterised together (70 meshes at 64 px, 1 at 1024 px)


@dataclass
class Keypoints:
    """Keypoints of B samples in the input view; K is ``len(FACE_KEYPOINTS)``.

    Attributes:
        uv: (B, K, 2) pixel coordinates (column, row), pixel centres at integers.
        depth: (B, K) camera depth of each keypoint, metres.
        visible: (B, K) bool, unoccluded and inside ``[0, S − 1]²``.
    """

    uv: torch.Tensor
    depth: torch.Tensor
    visible: torch.Tensor

    def record(self, index: int) -> dict:
        """Sample ``index`` as a JSON-ready dict ``{"uv": [[u, v], ...], "depth": [...], "visible": [...]}``."""
        return {
            "uv": self.uv[index].tolist(),
            "depth": self.depth[index].tolist(),
            "visible": self.visible[index].tolist(),
        }


def face_landmarks(shape: dict[str, torch.Tensor], albedo: dict[str, torch.Tensor]) -> torch.Tensor:
    """Canonical (x, y) of the :data:`FACE_KEYPOINTS` landmarks, where the geometry and albedo put them.

    Args:
        shape: stacked shape parameters (:func:`unsup3d.synthetic.face_shapes.stack_params`), (B, 1) scalars.
        albedo: stacked albedo parameters of the same samples (``eye`` (B, 4), ``brow`` (B, 4)).
    Returns:
        (B, K, 2) metres in the canonical frame, in the order of :data:`FACE_KEYPOINTS`.
    """
    lay = shapes.layout(shape)
    eye_x, eye_y, zero = shape["eye_x"], shape["eye_y"], torch.zeros_like(shape["eye_x"])
    eye_half = albedo["eye"][:, :1]  # half-width of the eye opening
    _, _, arch, offset = albedo["brow"][:, :, None].unbind(1)  # (B, 1) each
    brow = [(eye_x - 0.002 + end, eye_y - offset + arch * end * end) for end in BROW_ENDS]  # (|x|, y): inner, outer
    bend, nose_len, ala_x = shape["nose_bend"], shape["nose_len"], 1.55 * shape["nose_width"]
    ala_y = lay["nose_tip"] + 0.001  # the nostril wings of the nose geometry
    ala_bend = bend * ((ala_y - lay["nose_top"]) / nose_len).clamp(0.0, 1.2)
    mouth_width = shape["mouth_width"]
    mouth_centre, gap = shapes.mouth_line(zero, shape, lay), 0.5 * shape["mouth_open"]
    points = [
        (-brow[1][0], brow[1][1]), (-brow[0][0], brow[0][1]), brow[0], brow[1],
        (-eye_x - eye_half, eye_y), (-eye_x + eye_half, eye_y), (eye_x - eye_half, eye_y), (eye_x + eye_half, eye_y),
        (zero, eye_y), (0.93 * bend, lay["nose_top"] + 0.93 * nose_len),
        (ala_bend - ala_x, ala_y), (ala_bend + ala_x, ala_y),
        (-mouth_width, shapes.mouth_line(-mouth_width, shape, lay)),
        (mouth_width, shapes.mouth_line(mouth_width, shape, lay)),
        (zero, mouth_centre - 0.0035 - gap), (zero, mouth_centre + 0.0045 + gap),
        (zero, lay["chin"] - CHIN_RISE),
    ]  # fmt: skip
    return torch.stack([torch.cat([x, y], dim=1) for x, y in points], dim=1)


def nearest_head_vertices(shape: dict[str, torch.Tensor], landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """(B, K) long index of the head-mesh vertex (first in :func:`~unsup3d.synthetic.face_shapes.object_mesh`)
    nearest to each (B, K, 2) canonical landmark in (x, y)."""
    x, y = shapes.head_points(shape, *shapes.head_grid(size))  # (B, N) each
    grid = torch.stack([x.expand_as(y), y], dim=-1)  # (B, N, 2)
    return ((landmarks[:, :, None] - grid[:, None]) ** 2).sum(-1).argmin(dim=-1)  # (B, K, N) -> (B, K)


def has_keypoints(category: str) -> bool:
    """Whether the generator defines keypoints for samples of ``category`` (faces only, :data:`FACE_KEYPOINTS`)."""
    return category == "face"


def face_keypoints(params: Sequence[SampleParams], size: int = 64, fov: float = FOV_DEGREES) -> Keypoints:
    """The :data:`FACE_KEYPOINTS` of drawn face samples in their input views (see the module docstring).

    Args:
        params: B samples from :func:`unsup3d.synthetic.generator.sample_params` drawn for ``size``.
        size: image size S the samples are rendered at (sets the mesh).
        fov: field of view in degrees.
    Returns:
        :class:`Keypoints`.
    Raises:
        ValueError: a sample that is not a face (other categories have no keypoints).
    """
    others = sorted({p.category for p in params if not has_keypoints(p.category)})
    if others:
        raise ValueError(f"keypoints are defined for faces only, got samples of {others}")
    shape = shapes.stack_params([p.shape for p in params])
    albedo = shapes.stack_params([p.albedo for p in params])
    index = nearest_head_vertices(shape, face_landmarks(shape, albedo), size)  # (B, K)
    vertices, faces = mesh_in_view(params, size)  # (B, N, 3) camera frame
    screen = project(vertices, size, fov)  # (B, N, 3) (u, v, z)
    keypoints = screen.gather(1, index[..., None].expand(-1, -1, 3))  # (B, K, 3)
    uv, depth = keypoints[..., :2], keypoints[..., 2]
    in_frame = ((uv >= 0) & (uv <= size - 1)).all(dim=-1)
    return Keypoints(uv, depth, in_frame & unoccluded(screen, faces, keypoints))


def unoccluded(screen: torch.Tensor, faces: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Whether the mesh's nearest surface along each point's pixel ray is the point itself.

    Each point's ray is rasterised as the single pixel centre of a 1×1 image, with the mesh moved so that the
    point's ``(u, v)`` falls on it (up to :data:`VERTICES_PER_PASS` vertices at a time); the point is unoccluded when
    that depth is within :data:`VISIBILITY_TOLERANCE` of its own, or not in front of it at all. (The point's own
    triangles can escape the inside test where they are seen edge-on, on a silhouette; then only the surfaces
    behind it, or none, are found, and it is rightly unoccluded.)

    Args:
        screen: (B, N, 3) ``(u, v, z)`` mesh vertices.
        faces: (F, 3) long.
        points: (B, K, 3) ``(u, v, z)`` points on the mesh.
    Returns:
        (B, K) bool.
    """
    batch, count = points.shape[:2]
    flat = points.reshape(batch * count, 3)
    mesh = torch.arange(batch, device=points.device).repeat_interleave(count)  # (B·K,) the mesh of each point
    per_pass = max(1, VERTICES_PER_PASS // screen.shape[1])
    visible = []
    for start in range(0, batch * count, per_pass):
        rows = slice(start, start + per_pass)
        shift = torch.cat([flat[rows, :2], torch.zeros_like(flat[rows, :1])], dim=-1)  # (P, 3)
        moved = screen[mesh[rows]] - shift[:, None, :]  # (P, N, 3)
        nearest = interpolate_depth(moved, faces, rasterize(moved, faces, 1, 1), background=float("inf"))
        visible.append(nearest[:, 0, 0] >= flat[rows, 2] - VISIBILITY_TOLERANCE)
    return torch.cat(visible).view(batch, count)
