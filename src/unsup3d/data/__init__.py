"""Datasets: folders of images for training, images paired with ground-truth depth for evaluation, and the
memory-mapped cache of resized training images. Nothing synthetic (that is :mod:`unsup3d.synthetic`), and nothing
of the package outside itself: the ground floor."""

from unsup3d.data.folder import ImageFolderDataset
from unsup3d.data.images import (
    IMAGE_EXTENSIONS,
    DataError,
    ImageLoadError,
    find_images,
    load_image,
    open_image,
    resize_square,
    to_rgb,
    to_tensor,
)
from unsup3d.data.paired import PairedDepthDataset

__all__ = [
    "IMAGE_EXTENSIONS",
    "DataError",
    "ImageFolderDataset",
    "ImageLoadError",
    "PairedDepthDataset",
    "find_images",
    "load_image",
    "open_image",
    "resize_square",
    "to_rgb",
    "to_tensor",
]
