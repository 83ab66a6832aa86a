"""Image-to-vector encoder (the original's ``Encoder``, used for the light and the view).

Layer indices of ``Encoder.network`` match the original code, so its ``netL`` / ``netV`` state dicts
(``network.{0,2,4,6,8,10}.weight``) load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

# Channel multipliers (of ``nf``) of the stride-2 stages that take an image of each size down to 4x4: one more
# stage per doubling, the width capped at 8nf. A new size is supported by adding its schedule here and in
# ``autoencoder.UP_STAGES`` and ``confidence.TRUNK_UP_STAGES``. At 64 the layer indices match the original's
# checkpoints.
DOWN_STAGES: dict[int, tuple[int, ...]] = {64: (1, 2, 4, 8), 128: (1, 2, 4, 8, 8), 256: (1, 2, 4, 8, 8, 8)}
SUPPORTED_IMAGE_SIZES: tuple[int, ...] = tuple(sorted(DOWN_STAGES))


def check_image_size(image_size: int) -> int:
    """Return ``image_size`` if the networks support it, else raise ``ValueError``."""
    if image_size not in SUPPORTED_IMAGE_SIZES:
        raise ValueError(
            f"image_size={image_size} is not supported by unsup3d.nets; supported sizes: "
            f"{SUPPORTED_IMAGE_SIZES}. Other sizes need their own down/up-sampling stages "
            "(see DOWN_STAGES in unsup3d/nets/encoder.py)."
        )
    return image_size


def check_images(images: torch.Tensor, channels: int, image_size: int, name: str) -> None:
    """Raise ``ValueError`` unless ``images`` has shape ``(B, channels, image_size, image_size)``."""
    expected = (channels, image_size, image_size)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise ValueError(
            f"{name} expects input of shape (B, {', '.join(map(str, expected))}), got {tuple(images.shape)}"
        )


class Encoder(nn.Module):
    """Convolutional encoder from an image to a vector in (-1, 1) (the original's ``netL`` / ``netV``).

    Stride-2 4x4 convs with ReLU take 64 -> 32 -> 16 -> 8 -> 4 with ``nf, 2nf, 4nf, 8nf`` channels (larger
    images get one more ``8nf`` stage per doubling); a 4x4 valid conv (4 -> 1, ``8nf`` channels) with ReLU, a
    1x1 conv to ``cout`` and Tanh follow. No biases.

    Args:
        cin: input channels.
        cout: output size.
        nf: width (channels of the first stage).
        image_size: input height and width: 64, 128 or 256.

    Shapes:
        forward: ``(B, cin, S, S)`` -> ``(B, cout)``, values in (-1, 1).
    """

    def __init__(self, cin: int, cout: int, nf: int = 64, image_size: int = 64) -> None:
        super().__init__()
        self.cin, self.cout, self.image_size = cin, cout, check_image_size(image_size)
        layers: list[nn.Module] = []
        channels = [cin] + [m * nf for m in DOWN_STAGES[image_size]]
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):  # S -> 4
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.ReLU(inplace=True)]
        top = channels[-1]
        layers += [
            nn.Conv2d(top, top, 4, stride=1, padding=0, bias=False),  # 4x4 -> 1x1
            nn.ReLU(inplace=True),
            nn.Conv2d(top, cout, 1, stride=1, padding=0, bias=False),
            nn.Tanh(),
        ]
        self.network = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, cin, S, S)`` images in [-1, 1] -> ``(B, cout)`` in (-1, 1)."""
        check_images(images, self.cin, self.image_size, type(self).__name__)
        return self.network(images).reshape(images.shape[0], self.cout)
