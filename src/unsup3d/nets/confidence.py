"""Confidence network (the original's ``ConfNet``): per-pixel sigma maps for the two reconstruction losses.

State-dict keys match the original at 64x64: ``network.{0,3,6,9,11,13,15,18}.weight`` with GroupNorms at
``network.{1,4,7,16,19}``, ``out_net1.{0,3,6}.weight`` with GroupNorms at ``out_net1.{1,4}``, and
``out_net2.0.weight``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .autoencoder import encoder_layers, up_conv
from .encoder import DOWN_STAGES, check_image_size, check_images

# Channel multipliers (of ``nf``) of the trunk's x2 stages from 4x4 to S/4 (the perceptual resolution).
TRUNK_UP_STAGES: dict[int, tuple[int, ...]] = {64: (4, 2), 128: (8, 4, 2), 256: (8, 8, 4, 2)}


class ConfidenceMaps(NamedTuple):
    """The two outputs of :class:`ConfidenceNet`, both positive (Softplus).

    Channel 0 is sigma for the reconstruction, channel 1 for the flipped reconstruction.
    """

    photometric: torch.Tensor  # (B, 2, S, S), sigma of the Laplacian L1 loss
    perceptual: torch.Tensor | None  # (B, 2, S/4, S/4), sigma of the Gaussian perceptual loss


class ConfidenceNet(nn.Module):
    """Predicts confidence (sigma) maps from the input image (the original's ``ConfNet``).

    The trunk is EDDeconv's encoder (``zdim`` bottleneck), a transposed conv 1 -> 4 (``8nf``) and two x2
    transposed-conv stages (``4nf``, ``2nf``) to S/4. ``out_net1`` adds two more x2 stages (``nf``) and a 5x5
    conv to 2 channels; ``out_net2`` is a 3x3 conv to 2 channels at S/4. Both end in Softplus. No biases.

    Args:
        cin: input channels.
        zdim: size of the bottleneck code.
        nf: width (channels of the first stage).
        image_size: input height and width: 64, 128 or 256.

    Shapes:
        forward: ``(B, cin, S, S)`` -> ``ConfidenceMaps((B, 2, S, S), (B, 2, S/4, S/4))``.
    """

    def __init__(self, cin: int = 3, zdim: int = 128, nf: int = 64, image_size: int = 64) -> None:
        super().__init__()
        self.cin, self.image_size = cin, check_image_size(image_size)
        top = DOWN_STAGES[image_size][-1] * nf
        layers = encoder_layers(cin, zdim, nf, image_size)
        layers += [nn.ConvTranspose2d(zdim, top, 4, stride=1, padding=0, bias=False), nn.ReLU(inplace=True)]
        channels = [top] + [m * nf for m in TRUNK_UP_STAGES[image_size]]
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):  # 4 -> S/4
            layers += up_conv(c_in, c_out)
        self.network = nn.Sequential(*layers)
        mid = channels[-1]
        self.out_net1 = nn.Sequential(  # S/4 -> S
            *up_conv(mid, nf),
            *up_conv(nf, nf),
            nn.Conv2d(nf, 2, 5, stride=1, padding=2, bias=False),
            nn.Softplus(),
        )
        self.out_net2 = nn.Sequential(nn.Conv2d(mid, 2, 3, stride=1, padding=1, bias=False), nn.Softplus())

    def forward(self, images: torch.Tensor, perceptual: bool = True) -> ConfidenceMaps:
        """``(B, cin, S, S)`` images in [-1, 1] -> sigma maps ``(B, 2, S, S)`` and ``(B, 2, S/4, S/4)``; the
        second is None with ``perceptual=False`` (no perceptual loss to weigh: ``out_net2`` is skipped)."""
        check_images(images, self.cin, self.image_size, type(self).__name__)
        features = self.network(images)  # (B, 2nf, S/4, S/4)
        return ConfidenceMaps(self.out_net1(features), self.out_net2(features) if perceptual else None)
