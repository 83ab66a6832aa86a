"""Image-to-image encoder-decoder (the original's ``EDDeconv``, used for canonical depth and albedo).

The layer indices of ``EncoderDecoder.network`` match the original code at 64x64, so its ``netD`` / ``netA``
state dicts load unchanged: convs at ``network.{0,3,6,9,11,13,15,17,20,23,26,29,32,36,39,42}``, GroupNorms at
``network.{1,4,7,18,21,24,27,30,33,37,40}``, the nearest x2 upsampling at 35 and the optional final
activation at 43.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .encoder import DOWN_STAGES, check_image_size, check_images

# Channel multipliers (of ``nf``) of the decoder's upsampling stages from 4x4, each a transposed conv
# (x2) then a 3x3 conv; a final nearest x2 upsampling reaches the image size. One entry per image size.
UP_STAGES: dict[int, tuple[int, ...]] = {64: (4, 2, 1), 128: (8, 4, 2, 1), 256: (8, 8, 4, 2, 1)}


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` that runs in float32 under autocast, as CUDA's autocast runs it; CPU's autocast leaves it
    in bfloat16, whose backward is 2-3 times slower than float32's on CPU (``docs/benchmarks.md``). Outside
    autocast it is ``nn.GroupNorm``; its parameters and state-dict keys are the same.

    Shapes: ``(B, C, H, W)`` -> ``(B, C, H, W)``, float32 under autocast, else the input's dtype.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32 or not torch.is_autocast_enabled(x.device.type):
            return super().forward(x)
        with torch.autocast(x.device.type, enabled=False):
            return F.group_norm(x.float(), self.num_groups, self.weight.float(), self.bias.float(), self.eps)


def group_norm(channels: int) -> GroupNorm:
    """GroupNorm with 4 channels per group (16 groups at 64 channels, as in the original)."""
    if channels % 4:
        raise ValueError(f"GroupNorm needs a channel count divisible by 4, got {channels}")
    return GroupNorm(channels // 4, channels)


def encoder_layers(cin: int, zdim: int, nf: int, image_size: int) -> list[nn.Module]:
    """Layers taking ``(B, cin, S, S)`` to a ``(B, zdim, 1, 1)`` code (shared by EDDeconv and ConfNet).

    Stride-2 4x4 convs, each with GroupNorm (except the last) and LeakyReLU(0.2), then a 4x4 valid conv to
    ``zdim`` with ReLU. At S = 64 this is 12 modules (indices 0..12 of the original's Sequential).
    """
    layers: list[nn.Module] = []
    channels = [cin] + [m * nf for m in DOWN_STAGES[image_size]]
    for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:], strict=True)):
        layers.append(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False))
        if i < len(channels) - 2:
            layers.append(group_norm(c_out))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    layers += [nn.Conv2d(channels[-1], zdim, 4, stride=1, padding=0, bias=False), nn.ReLU(inplace=True)]
    return layers


def up_conv(cin: int, cout: int) -> list[nn.Module]:
    """Transposed 4x4 stride-2 conv (x2 size) + GroupNorm + ReLU."""
    return [
        nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
        group_norm(cout),
        nn.ReLU(inplace=True),
    ]


def conv_gn_relu(cin: int, cout: int, kernel: int) -> list[nn.Module]:
    """Size-preserving ``kernel``x``kernel`` conv + GroupNorm + ReLU."""
    conv = nn.Conv2d(cin, cout, kernel, stride=1, padding=kernel // 2, bias=False)
    return [conv, group_norm(cout), nn.ReLU(inplace=True)]


def _decoder_layers(zdim: int, cout: int, nf: int, image_size: int) -> list[nn.Module]:
    """Layers taking a ``(B, zdim, 1, 1)`` code to a ``(B, cout, S, S)`` map (no final activation)."""
    top = DOWN_STAGES[image_size][-1] * nf
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(zdim, top, 4, stride=1, padding=0, bias=False),  # 1x1 -> 4x4
        nn.ReLU(inplace=True),
        nn.Conv2d(top, top, 3, stride=1, padding=1, bias=False),
        nn.ReLU(inplace=True),
    ]
    channels = [top] + [m * nf for m in UP_STAGES[image_size]]
    for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):  # 4 -> S/2
        layers += up_conv(c_in, c_out) + conv_gn_relu(c_out, c_out, 3)
    last = channels[-1]
    layers.append(nn.Upsample(scale_factor=2, mode="nearest"))  # S/2 -> S
    layers += conv_gn_relu(last, nf, 3) + conv_gn_relu(nf, nf, 5)
    layers.append(nn.Conv2d(nf, cout, 5, stride=1, padding=2, bias=False))
    return layers


class EncoderDecoder(nn.Module):
    """Image-to-map encoder-decoder (the original's ``EDDeconv``; depth and albedo networks).

    The exact layers are listed in the module docstring. No biases; GroupNorm with 4 channels per group.

    Args:
        cin: input channels.
        cout: output channels.
        zdim: size of the bottleneck code.
        nf: width (channels of the first stage).
        activation: optional final activation, a module class such as ``nn.Tanh`` (albedo) or ``None``
            (raw depth).
        image_size: input height and width: 64, 128 or 256.

    Shapes:
        forward: ``(B, cin, S, S)`` -> ``(B, cout, S, S)``.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        zdim: int = 256,
        nf: int = 64,
        activation: Callable[[], nn.Module] | None = None,
        image_size: int = 64,
    ) -> None:
        super().__init__()
        self.cin, self.cout, self.image_size = cin, cout, check_image_size(image_size)
        layers = encoder_layers(cin, zdim, nf, image_size) + _decoder_layers(zdim, cout, nf, image_size)
        if activation is not None:
            layers.append(activation())
        self.network = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, cin, S, S)`` images in [-1, 1] -> ``(B, cout, S, S)``."""
        check_images(images, self.cin, self.image_size, type(self).__name__)
        return self.network(images)
