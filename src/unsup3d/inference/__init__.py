"""Inference: load a trained checkpoint, reconstruct images, export depth, maps and a textured mesh.

Imports ``model``, ``geometry``, ``render``, ``data`` and ``viz``; never ``engine``.
"""

from unsup3d.inference.export import OUTPUT_FILES, collect_inputs, reconstruct_to_folder, write_outputs
from unsup3d.inference.mesh import depth_grid_mesh, grid_vertex_normals, read_obj, write_obj
from unsup3d.inference.original import convert_original, load_original
from unsup3d.inference.reconstructor import Reconstruction, Reconstructor

__all__ = [
    "OUTPUT_FILES",
    "Reconstruction",
    "Reconstructor",
    "collect_inputs",
    "convert_original",
    "load_original",
    "reconstruct_to_folder",
    "depth_grid_mesh",
    "grid_vertex_normals",
    "read_obj",
    "write_obj",
    "write_outputs",
]
