"""Single-image 3D reconstruction with a trained photo-geometric autoencoder.

``Reconstructor.from_checkpoint(path)`` loads a checkpoint file, or the newest loadable checkpoint of a run
directory (``RUN/checkpoints/step_XXXXXXXX.pt``), and turns (B, 3, S, S) images in [0, 1] into a
:class:`Reconstruction` of CPU tensors. Checkpoints are read safely by :mod:`unsup3d.checkpoint`, the module the
engine writes them with (inference never imports the engine).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from unsup3d.checkpoint import CheckpointError, find_checkpoint, stored_model_config
from unsup3d.config import ModelConfig, model_config_from_dict
from unsup3d.data.images import ImageLoadError, load_image, resize_square, to_tensor
from unsup3d.geometry import FOV_DEGREES
from unsup3d.model import PhotoGeometricAutoencoder, Prediction

# Images may overshoot [0, 1] by this much (resampling round-off) before __call__ rejects them.
RANGE_TOLERANCE = 1e-3

log = logging.getLogger(__name__)


@dataclass
class Reconstruction:
    """The decomposition of B images of size S, as CPU tensors, batch first.

    Images are in [0, 1]. Depth is camera z (around 1.0, see ``docs/conventions.md``); the canonical frame is
    the symmetric frame the networks predict in; ``view`` takes it to the input view. Names match
    :class:`unsup3d.model.Prediction`.
    """

    image: torch.Tensor  # (B, 3, S, S) input image in [0, 1]
    depth: torch.Tensor  # (B, S, S) float32 depth rendered in the input view, NaN where there is no surface
    canonical_depth: torch.Tensor  # (B, S, S) depth in the canonical frame (2 border columns clamped)
    canonical_normal: torch.Tensor  # (B, S, S, 3) unit normals of the canonical depth, camera frame
    canonical_albedo: torch.Tensor  # (B, 3, S, S) in [0, 1]
    canonical_shading: torch.Tensor  # (B, 1, S, S) ambient + diffuse · max(0, ⟨n, l⟩), in [0, 2]
    canonical_image: torch.Tensor  # (B, 3, S, S) albedo × shading, clamped to [0, 1]
    recon_image: torch.Tensor  # (B, 3, S, S) reconstruction in the input view, clamped to [0, 1]
    confidence: torch.Tensor | None  # (B, 2, S, S) σ of the photometric loss (image, flipped image), or None
    confidence_perceptual: torch.Tensor | None  # (B, 2, S/4, S/4) σ of the perceptual loss, or None
    view: torch.Tensor  # (B, 6) (rx, ry, rz) radians, (tx, ty, tz)
    ambient: torch.Tensor  # (B,) ambient light coefficient
    diffuse: torch.Tensor  # (B,) diffuse light coefficient
    light_direction: torch.Tensor  # (B, 3) unit light direction in the canonical frame
    fov: float = FOV_DEGREES  # camera field of view in degrees

    def __len__(self) -> int:
        return self.image.shape[0]

    def select(self, index: int | slice) -> Reconstruction:
        """The reconstruction of one image (a batch of one) or of a slice of the batch."""
        if isinstance(index, int):
            if not -len(self) <= index < len(self):
                raise IndexError(f"index {index} out of range for a batch of {len(self)}")
            index = slice(index, index + 1 if index != -1 else None)
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            values[f.name] = value[index] if isinstance(value, torch.Tensor) else value
        return Reconstruction(**values)


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Reconstructor:
    """Runs a trained model on images: ``Reconstructor(model, device)(images) -> Reconstruction``.

    Attributes:
        model: the :class:`PhotoGeometricAutoencoder`, in eval mode on ``device``.
        config: its :class:`ModelConfig`.
        checkpoint_path, iteration: where the weights came from (``from_checkpoint`` only, else None).
    """

    def __init__(self, model: PhotoGeometricAutoencoder, device: str | torch.device | None = None) -> None:
        self.device = torch.device(device) if device is not None else default_device()
        self.model = model.to(self.device).eval()
        self.config: ModelConfig = model.config
        self.checkpoint_path: Path | None = None
        self.iteration: int | None = None

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device | None = None) -> Reconstructor:
        """Build the model a checkpoint describes and load its weights; only the checkpoint's model
        configuration is read, so training or data keys of another version never stop a checkpoint loading.

        Args:
            path: a checkpoint file, or a run directory (its newest loadable ``checkpoints/step_*.pt``).
            device: where to run; None: CUDA when available, else CPU.
        Raises:
            CheckpointError: no usable checkpoint, or weights that do not fit the configured model.
        """
        found, state = find_checkpoint(path)
        try:
            model = PhotoGeometricAutoencoder(model_config_from_dict(stored_model_config(state)))
            model.load_state_dict(state["model"])
        except (ValueError, RuntimeError, TypeError, KeyError) as error:
            raise CheckpointError(f"checkpoint {found} does not describe a loadable model: {error}") from error
        reconstructor = cls(model, device)
        reconstructor.checkpoint_path = found
        reconstructor.iteration = int(state.get("iteration", 0))
        return reconstructor

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> Reconstruction:
        """Decompose (B, 3, S, S) images in [0, 1] (S = the model's image size) into a :class:`Reconstruction`."""
        if not isinstance(images, torch.Tensor) or not images.is_floating_point():
            raise TypeError("images must be a floating-point tensor (B, 3, S, S) in [0, 1]")
        if images.numel() and (images.min() < -RANGE_TOLERANCE or images.max() > 1 + RANGE_TOLERANCE):
            raise ValueError(f"images must be in [0, 1], got [{float(images.min()):.3f}, {float(images.max()):.3f}]")
        self.model.eval()
        images = images.to(self.device, torch.float32).clamp(0, 1)
        prediction = self.model(images, with_flip=False)
        return _to_reconstruction(images, prediction, self.config)

    def load_images(self, paths: Sequence[str | Path]) -> torch.Tensor:
        """Read image files as a (N, 3, S, S) float32 tensor in [0, 1], each resized to the model's size.

        Raises:
            ImageLoadError: a file cannot be read.
        """
        size = self.image_size
        tensors = [to_tensor(resize_square(load_image(path), size)) for path in paths]
        if not tensors:
            return torch.zeros(0, 3, size, size)
        return torch.stack(tensors)

    def reconstruct_paths(
        self, paths: Sequence[str | Path], batch_size: int = 16
    ) -> Iterator[tuple[Path, Reconstruction | ImageLoadError]]:
        """Reconstruct image files in batches, yielding ``(path, result)`` in input order.

        ``result`` is a batch-of-one :class:`Reconstruction`, or the :class:`ImageLoadError` of a file that
        could not be read; the other files are processed anyway.
        """
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        paths = [Path(p) for p in paths]
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            loaded: list[torch.Tensor | ImageLoadError] = []
            for path in chunk:
                try:
                    loaded.append(self.load_images([path])[0])
                except ImageLoadError as error:
                    loaded.append(error)
            good = [item for item in loaded if isinstance(item, torch.Tensor)]
            batch = self(torch.stack(good)) if good else None
            index = 0
            for path, item in zip(chunk, loaded, strict=True):
                if isinstance(item, ImageLoadError):
                    yield path, item
                else:
                    yield path, batch.select(index)
                    index += 1


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
    )
