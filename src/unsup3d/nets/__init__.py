"""Networks: the image encoders and encoder-decoders of the photo-geometric autoencoder, and the frozen
feature extractors of the perceptual loss.

``Encoder`` (light, view), ``EncoderDecoder`` (canonical depth, albedo) and ``ConfidenceNet`` keep the
original code's ``nn.Sequential`` layouts, so the original's pretrained ``netL/netV/netD/netA/netC`` state
dicts load unchanged.
"""

from .autoencoder import EncoderDecoder
from .confidence import ConfidenceMaps, ConfidenceNet
from .encoder import SUPPORTED_IMAGE_SIZES, Encoder
from .perceptual import (
    PERCEPTUAL_NETS,
    EfficientNetLite0,
    EfficientNetLite0Stride4,
    VGG16Relu33,
    build_perceptual,
    efficientnet_lite0_weights_path,
    find_vgg16_weights,
    load_efficientnet_lite0_weights,
    load_vgg16_weights,
)

__all__ = [
    "PERCEPTUAL_NETS",
    "SUPPORTED_IMAGE_SIZES",
    "ConfidenceMaps",
    "ConfidenceNet",
    "EfficientNetLite0",
    "EfficientNetLite0Stride4",
    "Encoder",
    "EncoderDecoder",
    "VGG16Relu33",
    "build_perceptual",
    "efficientnet_lite0_weights_path",
    "find_vgg16_weights",
    "load_efficientnet_lite0_weights",
    "load_vgg16_weights",
]
