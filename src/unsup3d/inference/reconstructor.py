"""Single-image 3D reconstruction with a trained photo-geometric autoencoder.

``Reconstructor.from_checkpoint(path)`` loads a checkpoint file, or the newest loadable checkpoint of a run
directory (``RUN/checkpoints/step_XXXXXXXX.pt``), and turns (B, 3, S, S) images in [0, 1] into a
:class:`Reconstruction` of CPU tensors. Checkpoints are read safely by :mod:`unsup3d.checkpoint`, the module the
engine writes them with (inference never imports the engine).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image

from unsup3d.config import ModelConfig
from unsup3d.data.images import (
    ANIMATED_FRAMES,
    ImageLoadError,
    check_photo_size,
    frame_count,
    iter_frames,
    load_image,
    to_tensor,
)
from unsup3d.inference.crop import NoDetectionError, crop_photo
from unsup3d.inference.reconstruction import Reconstruction
from unsup3d.inference.refine import DEFAULT_STEPS, NO_REFINEMENT, RefineSettings, refine
from unsup3d.inference.weights import DEFAULT_MODEL, load_model, shipped_weights
from unsup3d.model import PhotoGeometricAutoencoder, Prediction

# Images may overshoot [0, 1] by this much (resampling round-off) before __call__ rejects them.
RANGE_TOLERANCE = 1e-3

log = logging.getLogger(__name__)
InputError = ImageLoadError | NoDetectionError  # an input file that cannot be reconstructed


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Reconstructor:
    """Runs a trained model on images: ``Reconstructor(model, device)(images) -> Reconstruction``.

    Attributes:
        model: the :class:`PhotoGeometricAutoencoder`, in eval mode on ``device``.
        config: its :class:`ModelConfig`.
        refinement: the per-photo refinement every call applies (:meth:`refine`); none by default (0 steps).
        checkpoint_path, iteration: where the weights came from (``from_checkpoint`` only, else None).
    """

    def __init__(
        self,
        model: PhotoGeometricAutoencoder,
        device: str | torch.device | None = None,
        refinement: RefineSettings = NO_REFINEMENT,
    ) -> None:
        self.device = torch.device(device) if device is not None else default_device()
        self.refinement = refinement
        # Channels-last convolutions: about twice the images per second on CPU
        # (benchmarks/experiments/shipped_model.py).
        self.model = model.to(self.device, memory_format=torch.channels_last).eval()
        self.config: ModelConfig = model.config
        self.checkpoint_path: Path | None = None
        self.iteration: int | None = None

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device | None = None) -> Reconstructor:
        """Build the model stored at ``path`` (see :func:`unsup3d.inference.weights.load_model`).

        Args:
            path: weights (``.safetensors`` with its ``.json``), a checkpoint file (ours or a converted original),
                or a run directory (its newest loadable ``checkpoints/step_*.pt``).
            device: where to run; None: CUDA when available, else CPU.
        Raises:
            CheckpointError: no usable checkpoint, or weights that do not fit the stored model configuration.
        """
        model, found, iteration = load_model(path)
        reconstructor = cls(model, device)
        reconstructor.checkpoint_path = found
        reconstructor.iteration = iteration
        return reconstructor

    @classmethod
    def pretrained(cls, name: str = DEFAULT_MODEL, device: str | torch.device | None = None) -> Reconstructor:
        """A model that ships inside the package: ``"faces"`` (real face photos, the default), ``"cats"`` (real
        cat-face photos) or ``"faces-synthetic"`` (the built-in synthetic faces); see
        :data:`~unsup3d.inference.weights.SHIPPED_MODELS`. What each was trained on, under which terms, and how
        well it does: :func:`~unsup3d.inference.weights.model_card` and the README.

        Raises:
            ValueError: ``name`` is not a shipped model.
        """
        return cls.from_checkpoint(shipped_weights(name), device)

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> Reconstruction:
        """Decompose (B, 3, S, S) images in [0, 1] (S = the model's image size) into a :class:`Reconstruction`,
        refined as :attr:`refinement` says (by default not at all)."""
        return self.refine(images, self.refinement.steps, self.refinement)

    def _checked(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) images in [0, 1] (a small tolerance) as float32 on the device, clamped; model in eval."""
        if not isinstance(images, torch.Tensor) or not images.is_floating_point():
            raise TypeError("images must be a floating-point tensor (B, 3, S, S) in [0, 1]")
        if images.numel() and (images.min() < -RANGE_TOLERANCE or images.max() > 1 + RANGE_TOLERANCE):
            raise ValueError(f"images must be in [0, 1], got [{float(images.min()):.3f}, {float(images.max()):.3f}]")
        self.model.eval()
        return images.to(self.device, torch.float32).clamp(0, 1)

    def refine(
        self,
        images: torch.Tensor,
        steps: int = DEFAULT_STEPS,
        settings: RefineSettings | None = None,
        on_step: Callable[[int, int], None] | None = None,
    ) -> Reconstruction:
        """Decompose (B, 3, S, S) images in [0, 1], then refine each photo's factors on that photo alone
        (:mod:`unsup3d.inference.refine`); the model's weights are not changed.

        Args:
            images: (B, 3, S, S) in [0, 1].
            steps: Adam steps per photo (0: the network's prediction, unrefined).
            settings: learning rate and anchor weight (its ``steps`` is replaced by ``steps``).
            on_step: called as ``on_step(done, total)`` after each step.
        """
        settings = replace(settings or RefineSettings(), steps=steps)
        images = self._checked(images)
        with torch.no_grad():
            if settings.steps == 0:
                return _to_reconstruction(images, self.model(images, with_flip=False), self.config)
            prediction = self.model.render_factors(refine(self.model, images, settings, on_step), with_flip=False)
        return _to_reconstruction(images, prediction, self.config)

    def prepare(self, image: Image.Image, crop: str = "none", crop_fallback: str = "skip", name: str = "image"):
        """A photo as the model's (3, S, S) input in [0, 1]: cropped to the face or cat face it shows (``crop``,
        see :func:`unsup3d.inference.crop.crop_photo`) or whole, then resized with an antialiased filter.

        Raises:
            ImageLoadError: the photo is smaller than :data:`~unsup3d.data.images.MIN_PHOTO_SIDE` on a side.
            NoDetectionError: ``crop`` found nothing and ``crop_fallback="skip"``.
        """
        check_photo_size(image, name)
        return to_tensor(crop_photo(image, crop, self.image_size, crop_fallback, name))

    def load_images(self, paths: Sequence[str | Path], crop: str = "none", crop_fallback: str = "skip") -> torch.Tensor:
        """Read image files as a (N, 3, S, S) float32 tensor in [0, 1] (see :meth:`prepare`); the first frame of
        an animated file.

        Raises:
            ImageLoadError: a file cannot be read, or is too small.
            NoDetectionError: ``crop`` found nothing in a file and ``crop_fallback="skip"``.
        """
        tensors = [self.prepare(load_image(path), crop, crop_fallback, Path(path).name) for path in paths]
        if not tensors:
            return torch.zeros(0, 3, self.image_size, self.image_size)
        return torch.stack(tensors)

    def reconstruct_paths(
        self, paths: Sequence[str | Path], batch_size: int = 16, crop: str = "none", crop_fallback: str = "skip"
    ) -> Iterator[tuple[Path, Reconstruction | InputError]]:
        """Reconstruct image files in batches, yielding ``(path, result)`` in input order.

        ``result`` is a batch-of-one :class:`Reconstruction`, or the error of a file that could not be used
        (:class:`ImageLoadError`, :class:`NoDetectionError`); the other files are processed anyway.
        """
        for path, _, result in self.reconstruct_frames(paths, batch_size, crop, crop_fallback):
            yield path, result

    def reconstruct_frames(
        self,
        paths: Sequence[str | Path],
        batch_size: int = 16,
        crop: str = "none",
        crop_fallback: str = "skip",
        animated: str = "first",
    ) -> Iterator[tuple[Path, int | None, Reconstruction | InputError]]:
        """Reconstruct image files in batches, yielding ``(path, frame, result)`` in input order.

        ``animated`` (one of :data:`~unsup3d.data.images.ANIMATED_FRAMES`) says what an animated GIF, WebP or PNG
        gives: ``"first"`` its first frame, like a still photo; ``"all"`` every frame, one result each. ``frame``
        is None for a still photo or a first frame taken alone, and the frame number for each frame of an
        animation taken whole. ``result`` is a batch-of-one :class:`Reconstruction` or the error of an input that
        could not be used. With ``frame=None`` the error is the whole file's; with a frame number it is that
        frame's: a :class:`NoDetectionError` skips the frame only, an :class:`ImageLoadError` (a frame that
        cannot be decoded) ends the animation there, after the frames before it.
        """
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if animated not in ANIMATED_FRAMES:
            raise ValueError(f"animated must be one of {ANIMATED_FRAMES}, got {animated!r}")
        inputs = (
            item for path in map(Path, paths) for item in self._prepared_frames(path, crop, crop_fallback, animated)
        )
        while chunk := list(itertools.islice(inputs, batch_size)):
            good = [item for _, _, item in chunk if isinstance(item, torch.Tensor)]
            batch = self(torch.stack(good)) if good else None
            index = 0
            for path, frame, item in chunk:
                if isinstance(item, torch.Tensor):
                    yield path, frame, batch.select(index)
                    index += 1
                else:
                    yield path, frame, item

    def _prepared_frames(
        self, path: Path, crop: str, crop_fallback: str, animated: str
    ) -> Iterator[tuple[Path, int | None, torch.Tensor | InputError]]:
        """``(path, frame, (3, S, S) input or error)`` for each input of one file (see :meth:`reconstruct_frames`)."""
        try:
            count = frame_count(path) if animated == "all" else 1
            if count == 1:
                yield path, None, self.load_images([path], crop, crop_fallback)[0]
                return
        except (ImageLoadError, NoDetectionError) as error:
            yield path, None, error
            return
        frames = iter_frames(path)
        for index in range(count):
            try:
                frame = next(frames, None)
            except ImageLoadError as error:  # a frame that cannot be decoded ends the animation
                yield path, index, error
                return
            if frame is None:
                return
            name = f"{path.name} (frame {index})"
            try:
                yield path, index, self.prepare(frame, crop, crop_fallback, name)
            except (ImageLoadError, NoDetectionError) as error:
                yield path, index, error


def _to_reconstruction(images: torch.Tensor, pred: Prediction, config: ModelConfig) -> Reconstruction:
    """The (unflipped) reconstruction of a :class:`Prediction` on the CPU; images clamped to [0, 1]."""
    recon = pred.recon
    depth = torch.where(recon.depth >= config.far_depth, float("nan"), recon.depth)

    def cpu(tensor: torch.Tensor | None) -> torch.Tensor | None:
        return None if tensor is None else tensor.detach().float().cpu()

    return Reconstruction(
        image=cpu(images),
        depth=cpu(depth),
        canonical_depth=cpu(recon.canonical_depth),
        canonical_normal=cpu(recon.canonical_normal),
        canonical_albedo=cpu(recon.canonical_albedo.clamp(0, 1)),
        canonical_shading=cpu(recon.canonical_shading),
        canonical_image=cpu(recon.canonical_image.clamp(0, 1)),
        recon_image=cpu(recon.image.clamp(0, 1)),
        confidence=cpu(pred.confidence),
        confidence_perceptual=cpu(pred.confidence_perceptual),
        view=cpu(pred.view),
        ambient=cpu(pred.ambient),
        diffuse=cpu(pred.diffuse),
        light_direction=cpu(pred.light_direction),
        fov=float(config.fov),
        depth_range=(config.near_depth, config.far_depth),
    )
