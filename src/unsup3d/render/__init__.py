"""Pure-PyTorch renderer in named stages: rasterize, interpolate, warp, shading."""

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
