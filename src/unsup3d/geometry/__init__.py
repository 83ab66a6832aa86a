"""Pure geometric functions: camera, rotations, back-projection, normals. The ground floor of the model: it imports
nothing of the package but ``conventions``."""

from unsup3d.geometry.camera import FOV_DEGREES, depth_to_points, focal_length, intrinsics, pixel_grid, project
from unsup3d.geometry.normals import normals_from_depth, normals_from_points
from unsup3d.geometry.rotation import (
    ROTATION_CENTER,
    euler_to_matrix,
    inverse_transform_points,
    split_view,
    transform_points,
)

__all__ = [
    "FOV_DEGREES",
    "ROTATION_CENTER",
    "depth_to_points",
    "euler_to_matrix",
    "focal_length",
    "intrinsics",
    "inverse_transform_points",
    "normals_from_depth",
    "normals_from_points",
    "pixel_grid",
    "project",
    "split_view",
    "transform_points",
]
