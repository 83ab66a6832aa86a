"""Per-photo refinement: the paper's objective minimised on the one photo at hand, starting from the network's guess.

The networks give every photo their average guess. The objective needs no labels, so after the forward pass the
factors of each photo (:class:`unsup3d.model.Factors`: raw depth, albedo, light and view) become free variables,
initialised from the network, and Adam lowers that photo's own objective
(:meth:`unsup3d.losses.Objective.image_terms`: the photometric likelihood of the image and of its flip under the
network's confidence maps, and the depth priors) plus a pull towards the network's guess, which keeps the view
and the relief from drifting where one photo's evidence is weak. The confidence maps stay the network's: free,
they would shrink where the fit is already good. The model's weights are never touched.

Each photo is refined on its own, one at a time, so a batch gives exactly what one photo at a time gives. No random
numbers are drawn: the same photo and settings give the same result.

Variables live where the networks' last activations put them (``tanh`` ranges), so that every step stays inside
the model's ranges: raw depth and the inverse ``tanh`` of the albedo change by coarse fields of offsets, upsampled
bilinearly (``depth_grid``, ``albedo_grid``: a coarse change keeps the network's detail and cannot paint the
shading into the albedo pixel by pixel); light and view are the inverse ``tanh`` of their ranges.
The defaults were chosen on synthetic faces with true depth and on real faces (``docs/benchmarks.md``,
"Per-photo refinement").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F

from unsup3d.config import Config
from unsup3d.losses import Objective
from unsup3d.model import Factors, PhotoGeometricAutoencoder, scale_range
from unsup3d.render import light_direction

__all__ = ["DEFAULT_STEPS", "NO_REFINEMENT", "RefineSettings", "refine"]

DEFAULT_STEPS = 50
# Past every schedule of the objective (the λ_f warm-up, the switch of photometric residual): a trained model's.
AFTER_TRAINING = 1 << 62
_EDGE = 0.999  # tanh ranges are open: values at their ends are pulled this far inside before atanh


@dataclass(frozen=True)
class RefineSettings:
    """How per-photo refinement runs.

    Attributes:
        steps: Adam steps per photo (0: the network's prediction unchanged).
        lr: Adam's learning rate on the variables (raw depth, and the inverse tanh of albedo, light and view).
        anchor: weight of the pull towards the network's guess: the mean squared change of each variable, summed
            over the variables.
        depth_grid: the raw depth changes by a ``depth_grid`` × ``depth_grid`` field of offsets, upsampled
            bilinearly to the image size: the network's detail stays, the change is smooth.
        albedo_grid: the same for the albedo (in its inverse-tanh space); the image size frees every pixel.
    """

    steps: int = DEFAULT_STEPS
    lr: float = 0.1
    anchor: float = 1.0
    depth_grid: int = 4
    albedo_grid: int = 32

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {self.steps!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if not (math.isfinite(self.anchor) and self.anchor >= 0):
            raise ValueError(f"anchor must be non-negative, got {self.anchor!r}")
        for name in ("depth_grid", "albedo_grid"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 2:
                raise ValueError(f"{name} must be an integer of at least 2, got {value!r}")


NO_REFINEMENT = RefineSettings(steps=0)


def refine(
    model: PhotoGeometricAutoencoder,
    images: torch.Tensor,
    settings: RefineSettings = RefineSettings(),
    on_step: Callable[[int, int], None] | None = None,
) -> Factors:
    """Refine the model's prediction for each of (B, 3, S, S) images in [0, 1] on that image alone.

    The photos go one at a time, through the network too, so that a photo's result does not depend on the batch it
    came in, bit for bit. A batched loop is faster, and its forward pass matches one photo's bit for bit, but its
    backward pass sums in another order, and Adam's steps, each about ``lr`` whatever the gradient's size, turn
    that rounding into visible differences after a few dozen steps.

    Args:
        model: the trained model (its weights are not changed; it is run in eval mode).
        settings: steps, learning rate, anchor weight, depth and albedo grids.
        on_step: called as ``on_step(done, total)`` after each step, counted over the whole batch.
    Returns:
        the refined :class:`Factors` (detached); with ``settings.steps == 0`` the network's own.
    """
    model.eval()
    objective = Objective(Config(model=model.config)).to(images.device)
    total = settings.steps * images.shape[0]
    refined = []
    for index, image in enumerate(images.split(1)):
        with torch.no_grad():
            start = model.predict_factors(image)
        variables = _Variables.from_factors(model, start, settings.depth_grid, settings.albedo_grid)
        optimizer = torch.optim.Adam(variables.parameters(), lr=settings.lr)
        with torch.enable_grad():
            for step in range(settings.steps):
                optimizer.zero_grad(set_to_none=True)
                prediction = model.render_factors(variables.factors(model, start))
                loss = objective.image_terms(prediction, image, AFTER_TRAINING)["total"]
                (loss + settings.anchor * variables.change()).backward()
                optimizer.step()
                if on_step is not None:
                    on_step(index * settings.steps + step + 1, total)
        with torch.no_grad():
            refined.append(variables.factors(model, start))
    return _concatenate(refined)


class _Variables:
    """The free variables of a photo: raw depth offsets (1, 1, g, g), albedo offsets (1, 3, g', g'), light (1, 4)
    and view (1, 6), with their starting values for the anchor."""

    NAMES = ("depth", "albedo", "light", "view")

    def __init__(self, values: dict[str, torch.Tensor], albedo_logit: torch.Tensor) -> None:
        self.start = {name: value.detach().clone() for name, value in values.items()}
        self.values = {name: value.detach().clone().requires_grad_() for name, value in values.items()}
        self.albedo_logit = albedo_logit  # (1, 3, S, S) the network's albedo in inverse-tanh space

    @classmethod
    def from_factors(
        cls, model: PhotoGeometricAutoencoder, factors: Factors, depth_grid: int, albedo_grid: int
    ) -> _Variables:
        cfg = model.config
        direction = factors.light_direction
        lxy = direction[:, :2] / direction[:, 2:]
        light = torch.stack(
            [
                _unscale(factors.ambient, cfg.min_ambient, cfg.max_ambient),
                _unscale(factors.diffuse, cfg.min_diffuse, cfg.max_diffuse),
                lxy[:, 0],
                lxy[:, 1],
            ],
            dim=1,
        )
        scale = model.view_scale().to(factors.view)
        view = torch.where(scale > 0, factors.view / scale.clamp(min=1e-12), 0.0)  # a 0 range stays 0
        return cls(
            {
                "depth": factors.depth_raw.new_zeros(factors.depth_raw.shape[0], 1, depth_grid, depth_grid),
                "albedo": factors.albedo.new_zeros(factors.albedo.shape[0], 3, albedo_grid, albedo_grid),
                "light": _atanh(light),
                "view": _atanh(view),
            },
            _atanh(factors.albedo * 2 - 1),
        )

    def parameters(self) -> list[torch.Tensor]:
        return [self.values[name] for name in self.NAMES]

    def factors(self, model: PhotoGeometricAutoencoder, start: Factors) -> Factors:
        """The factors the variables stand for; shading map and confidence stay the network's."""
        cfg, size = model.config, start.albedo.shape[-1]
        light = torch.tanh(self.values["light"])
        view = torch.tanh(self.values["view"]) * model.view_scale().to(light)
        return replace(
            start,
            depth_raw=start.depth_raw + self._upsampled(self.values["depth"], size)[:, 0],
            albedo=(torch.tanh(self.albedo_logit + self._upsampled(self.values["albedo"], size)) + 1) / 2,
            ambient=scale_range(light[:, 0], cfg.min_ambient, cfg.max_ambient),
            diffuse=scale_range(light[:, 1], cfg.min_diffuse, cfg.max_diffuse),
            light_direction=light_direction(light[:, 2:]),
            view=view,
        )

    @staticmethod
    def _upsampled(offsets: torch.Tensor, size: int) -> torch.Tensor:
        """(B, C, g, g) offsets → (B, C, S, S), bilinear with the grid's corners on the image's corner pixels (the
        identity where g = S)."""
        if offsets.shape[-1] == size:
            return offsets
        return F.interpolate(offsets, size=(size, size), mode="bilinear", align_corners=True)

    def change(self) -> torch.Tensor:
        """Σ over the variables of the mean squared change since the start."""
        total = 0.0
        for name in self.NAMES:
            change = (self.values[name] - self.start[name]) ** 2
            total = total + change.flatten(1).mean(dim=1).sum()
        return total


def _concatenate(parts: list[Factors]) -> Factors:
    """Factors of single photos → one batch (fields that are None stay None)."""
    values = {}
    for field in fields(Factors):
        items = [getattr(part, field.name) for part in parts]
        values[field.name] = None if items[0] is None else torch.cat(items)
    return Factors(**values)


def _atanh(x: torch.Tensor) -> torch.Tensor:
    return torch.atanh(x.clamp(-_EDGE, _EDGE))


def _unscale(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Inverse of :func:`unsup3d.model.scale_range`: [low, high] → [-1, 1]."""
    return (2 * x - high - low) / (high - low)
