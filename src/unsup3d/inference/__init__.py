"""Inference: models in (the shipped ones by name, checkpoints, the original code's checkpoints), photos in (crop),
the :class:`Reconstructor` that turns photos into a :class:`Reconstruction`, a plain value of tensors, and
per-photo refinement (:mod:`unsup3d.inference.refine`), which minimises the paper's objective on the photo at hand
through :class:`unsup3d.losses.Objective`, the one owner of the loss that the training engine uses too.

What a reconstruction becomes (pictures, meshes, files, videos, the report) is :mod:`unsup3d.outputs`, which
imports this package and never the other way round. Imports ``model``, ``geometry``, ``render`` and ``data``;
never ``engine``.
"""

from unsup3d.inference.original import convert_original, load_original
from unsup3d.inference.reconstruction import Reconstruction
from unsup3d.inference.reconstructor import Reconstructor
from unsup3d.inference.refine import RefineSettings
from unsup3d.inference.weights import SHIPPED_MODELS, export_weights, load_weights, model_card, shipped_weights

__all__ = [
    "SHIPPED_MODELS",
    "Reconstruction",
    "Reconstructor",
    "RefineSettings",
    "convert_original",
    "export_weights",
    "load_original",
    "load_weights",
    "model_card",
    "shipped_weights",
]
