"""The result of a reconstruction: a plain value of CPU tensors, with what can be computed from it alone (one
image of the batch, relighting, other views, the mesh). Writing it to files is :mod:`unsup3d.outputs.write`'s
(``write_outputs(reconstruction, index, folder)``); making one is :class:`~unsup3d.inference.reconstructor.
Reconstructor`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from unsup3d.geometry import FOV_DEGREES
from unsup3d.render.grid_mesh import depth_grid_mesh, upsample_canonical
from unsup3d.render.views import relight, render_view, shape_colour
from unsup3d.viz import normals_to_image

__all__ = ["Reconstruction"]


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
    depth_range: tuple[float, float] = (0.8, 1.2)  # (near, far) the rendered depth is clamped to

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

    def relight(
        self, light_direction: torch.Tensor, ambient: torch.Tensor | None = None, diffuse: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The canonical images (B, 3, S, S) in [0, 1] under another light: a (3,) or (B, 3) direction (normalised
        here), and optionally other (B,) or scalar ambient and diffuse strengths (default: the predicted ones)."""
        batch = len(self)
        direction = torch.nn.functional.normalize(torch.as_tensor(light_direction).float().expand(batch, 3), dim=1)
        ambient = self.ambient if ambient is None else torch.as_tensor(ambient).float().expand(batch)
        diffuse = self.diffuse if diffuse is None else torch.as_tensor(diffuse).float().expand(batch)
        return relight(self.canonical_albedo, self.canonical_normal, ambient, diffuse, direction)

    def render(self, view: torch.Tensor, appearance: str = "texture") -> torch.Tensor:
        """The objects seen from a (6,) or (B, 6) view ``(rx, ry, rz, tx, ty, tz)`` (radians) on white:
        ``appearance`` ``"texture"`` (the canonical image), ``"shape"`` (grey) or ``"normals"``; (B, 3, S, S)."""
        colours = {
            "texture": lambda: self.canonical_image,
            "shape": lambda: shape_colour(self.canonical_normal),
            "normals": lambda: normals_to_image(self.canonical_normal),
        }
        if appearance not in colours:
            raise ValueError(f"appearance must be one of {sorted(colours)}, got {appearance!r}")
        view = torch.as_tensor(view).float().expand(len(self), 6)
        return render_view(self.canonical_depth, colours[appearance](), view, self.fov)

    def mesh(self, index: int = 0, size: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vertices, faces and uvs of image ``index``'s canonical depth grid (upsampled to ``size`` × ``size``),
        in the mesh frame of ``docs/conventions.md`` (:func:`unsup3d.render.grid_mesh.depth_grid_mesh`)."""
        depth = self.canonical_depth[index : index + 1]
        if size is not None:
            depth, _ = upsample_canonical(depth, size=size)
        return depth_grid_mesh(depth[0], self.fov)
