"""What a :class:`~unsup3d.inference.Reconstruction` becomes: the paper's pictures and overlays, meshes and their
files, turntable animations, every output of an image written to a folder, folders and videos of photos run
through a :class:`~unsup3d.inference.Reconstructor`, and the HTML report.

Imports ``inference`` (above which it sits), ``render``, ``geometry``, ``data`` and ``viz``; never ``engine``.
"""

from unsup3d.outputs.batch import BatchResult, collect_inputs, reconstruct_to_folder
from unsup3d.outputs.mesh import TexturedMesh, canonical_mesh, read_obj, write_obj
from unsup3d.outputs.report import write_report
from unsup3d.outputs.write import GROUP_FILES, OutputOptions, write_outputs

__all__ = [
    "GROUP_FILES",
    "BatchResult",
    "OutputOptions",
    "TexturedMesh",
    "canonical_mesh",
    "collect_inputs",
    "read_obj",
    "reconstruct_to_folder",
    "write_obj",
    "write_outputs",
    "write_report",
]
