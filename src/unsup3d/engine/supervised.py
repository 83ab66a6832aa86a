"""The supervised baseline of the paper's Table 2: "a version of our model trained to regress the ground-truth
depth maps using an L1 loss".

It is the photo-geometric autoencoder of the run's configuration (same depth network, widths and output range),
trained by the same :class:`unsup3d.engine.trainer.Trainer` (``train.supervised``, ``unsup3d train
--supervised``) on a paired image/depth folder; only the depth network learns, from
:func:`unsup3d.losses.supervised_terms`.

Ground truth is depth in the input view, so a supervised model predicts in the input view. Its checkpoint is an
ordinary checkpoint of the model, made so that the input view *is* its canonical frame:
:func:`fix_view_and_appearance` zeroes the output layer of every network but the depth network before training,
and nothing trains them afterwards, so whatever the image the view is the identity (the rendered depth that
``unsup3d evaluate`` scores is the predicted depth), the albedo is a uniform 0.5 grey and the light is half
ambient, half diffuse from the camera's direction. ``unsup3d reconstruct`` on such a checkpoint writes true depth,
normals and meshes, and grey shaded pictures in place of an appearance it never learnt. The configuration must
say ``model.use_conf=false``: without a photometric loss there is nothing for confidence maps to weigh.

The model clamps the two left and right border columns of its depth to the border depth (a canonical-frame
convention); ground truth there is usually background, and where a face reaches them those pixels stay wrong.
"""

from __future__ import annotations

import torch
from torch import nn

from unsup3d.model import PhotoGeometricAutoencoder

__all__ = ["fix_view_and_appearance"]


def fix_view_and_appearance(model: PhotoGeometricAutoencoder) -> PhotoGeometricAutoencoder:
    """Zero the last convolution of every network but ``depth_net``, in place, and return the model.

    Each of them ends in that convolution (no bias) and its activation, so afterwards the view is
    ``(0, 0, 0, 0, 0, 0)``, the albedo 0.5 (and the shading 1 for a model without light), ambient and diffuse at the
    middle of their ranges and the light direction ``(0, 0, 1)``, for every image.
    """
    for name, network in model.networks().items():
        if name == "depth_net":
            continue
        convolutions = [m for m in network.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
        with torch.no_grad():
            convolutions[-1].weight.zero_()
    return model
