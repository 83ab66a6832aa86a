"""Inference: load a trained model (the shipped one by default), reconstruct photos and videos, export depth,
maps, meshes, the paper's visualisations and an HTML report.

Imports ``model``, ``geometry``, ``render``, ``data`` and ``viz``; never ``engine``.
"""

from unsup3d.inference.batch import BatchResult, collect_inputs, reconstruct_to_folder
from unsup3d.inference.export import GROUP_FILES, OutputOptions, write_outputs
from unsup3d.inference.mesh import depth_grid_mesh, grid_vertex_normals, read_obj, write_obj
from unsup3d.inference.original import convert_original, load_original
from unsup3d.inference.reconstruction import Reconstruction
from unsup3d.inference.reconstructor import Reconstructor
from unsup3d.inference.report import write_report
from unsup3d.inference.weights import SHIPPED_MODELS, export_weights, load_weights, model_card, shipped_weights

__all__ = [
    "GROUP_FILES",
    "SHIPPED_MODELS",
    "BatchResult",
    "OutputOptions",
    "Reconstruction",
    "Reconstructor",
    "collect_inputs",
    "convert_original",
    "depth_grid_mesh",
    "export_weights",
    "grid_vertex_normals",
    "load_original",
    "load_weights",
    "model_card",
    "read_obj",
    "reconstruct_to_folder",
    "shipped_weights",
    "write_obj",
    "write_outputs",
    "write_report",
]
