"""Pure-PyTorch renderer in named stages: rasterize, interpolate, warp, shading.

Built on the stages, and imported by their module paths: :mod:`unsup3d.render.views` draws canonical maps under new
lights and from new views, :mod:`unsup3d.render.grid_mesh` makes the canonical depth grid a triangle mesh. The
renderer imports only ``geometry`` and ``conventions``.
"""

from unsup3d.render.interpolate import BACKGROUND_DEPTH, interpolate_attributes, interpolate_depth
from unsup3d.render.rasterize import Fragments, barycentric_weights, grid_faces, rasterize, rasterize_grid
from unsup3d.render.shading import diffuse_shading, lambertian, light_direction
from unsup3d.render.warp import inverse_warp_grid, render_depth, sample_canonical

__all__ = [
    "BACKGROUND_DEPTH",
    "Fragments",
    "barycentric_weights",
    "diffuse_shading",
    "grid_faces",
    "interpolate_attributes",
    "interpolate_depth",
    "inverse_warp_grid",
    "lambertian",
    "light_direction",
    "rasterize",
    "rasterize_grid",
    "render_depth",
    "sample_canonical",
]
