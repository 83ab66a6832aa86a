"""What every training tool shares: the process settings, the training objects built from a config, and one pure
optimiser step.

:class:`unsup3d.engine.trainer.Trainer` keeps the books around these (data, checkpoints, logs, signals);
``benchmarks/speed/step_time.py`` times them. Neither builds a model, a loss or an optimiser of its own.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from unsup3d.config import Config, TrainConfig
from unsup3d.engine.schedule import learning_rate
from unsup3d.engine.supervised import fix_view_and_appearance, supervised_terms
from unsup3d.losses import Objective, depth_prior_loss, view_loss
from unsup3d.model import PhotoGeometricAutoencoder, Prediction, ellipsoid_depth
from unsup3d.nets import build_perceptual
from unsup3d.ops import to_signed

__all__ = ["DepthOnly", "Training", "build_training", "configure_process", "train_step", "view_cycle_loss"]

log = logging.getLogger(__name__)


def configure_process(train: TrainConfig) -> None:
    """The process-wide settings of a run, all set here: torch's CPU threads (``train.threads``), the global seed
    that initialises the networks (``train.seed``) and deterministic algorithms (``train.deterministic``)."""
    if train.threads:
        torch.set_num_threads(train.threads)
    torch.manual_seed(train.seed)
    if train.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS' condition for determinism
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


class DepthOnly(nn.Module):
    """The canonical-depth branch of a model as a module of its own (for the depth-prior iterations and supervised
    training, so that DistributedDataParallel sees them as a forward pass): (B, 3, S, S) images in [0, 1] →
    (B, S, S) depth."""

    def __init__(self, model: PhotoGeometricAutoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.predict_depth(to_signed(images))[1]


def _identity(module: nn.Module) -> nn.Module:
    return module


@dataclass
class Training:
    """The model, objective and optimiser of a run, and how its forward passes are wrapped.

    ``wrap`` turns a module into what the step calls (DistributedDataParallel in a multi-process job, else the
    module itself); the depth-only module of the prior iterations (and of supervised training) is wrapped on first
    use, so runs without prior iterations (or resumed past them) never build it.
    """

    config: Config
    model: PhotoGeometricAutoencoder
    objective: Objective
    optimizer: torch.optim.Optimizer
    wrap: Callable[[nn.Module], nn.Module] = _identity
    _forward: nn.Module | None = field(default=None, repr=False)
    _depth_forward: nn.Module | None = field(default=None, repr=False)
    _prior_target: torch.Tensor | None = field(default=None, repr=False)

    @property
    def forward(self) -> nn.Module:
        """The (wrapped) model: images → :class:`unsup3d.model.Prediction`."""
        if self._forward is None:
            self._forward = self.wrap(self.model)
        return self._forward

    @property
    def depth_forward(self) -> nn.Module:
        """The (wrapped) :class:`DepthOnly` module of the model, built on first use (every rank gets there at the
        same iteration, as DDP's wrapping needs)."""
        if self._depth_forward is None:
            self._depth_forward = self.wrap(DepthOnly(self.model))
        return self._depth_forward

    def loss_terms(
        self, images: torch.Tensor, iteration: int, depth: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """The loss of step ``iteration`` on (B, 3, S, S) images in [0, 1]: the depth prior during the first
        ``train.depth_prior_iterations`` steps, then the objective. With ``train.supervised``: the L1 distance to
        ``depth``, the images' (B, S, S) ground truth (:mod:`unsup3d.engine.supervised`)."""
        if self.config.train.supervised:
            if depth is None:
                raise ValueError("supervised training needs the ground-truth depth of each batch")
            return supervised_terms(self.depth_forward(images), depth)
        if iteration >= self.config.train.depth_prior_iterations:
            pred = self.forward(images)
            terms = self.objective(pred, images, iteration)
            lam_cycle = self.config.model.lam_view_cycle
            if lam_cycle > 0:
                terms["view_cycle"] = view_cycle_loss(self.model, pred, images)
                terms["total"] = terms["total"] + lam_cycle * terms["view_cycle"]
            return terms
        if self._prior_target is None:
            relief = self.config.train.depth_prior_relief
            self._prior_target = ellipsoid_depth(self.config.model, relief).to(images.device)
        loss = depth_prior_loss(self.depth_forward(images), self._prior_target)
        return {"total": loss, "depth_prior": loss}


def view_cycle_loss(model: PhotoGeometricAutoencoder, pred: Prediction, images: torch.Tensor) -> torch.Tensor:
    """View self-supervision: the view net must recover views that the model's own renderer made.

    The batch's canonical depth and image (detached) are rendered at its predicted view (detached) turned by a
    random rotation of up to ``model.view_cycle_degrees`` about each axis, translations unchanged, over the input
    image where no surface covers; the loss is the L1 distance (in units of each component's range) of the view
    the view net reads from that rendering to the view it was rendered in. Only the view net learns from it. A turn
    that the renderer made must be read as a turn of that size, not as a smaller turn plus a shift.

    The canonical maps are extended by ``model.view_cycle_margin`` pixels beyond the frame before rendering: without
    that, a turn uncovers borders as wide as the turn, a cue the view net can read instead of the face (measured
    without the extension: the turns predicted for the training images shrank, docs/benchmarks.md).

    Args:
        pred: the model's prediction for ``images`` (B, 3, S, S) in [0, 1].
    Returns:
        scalar loss.
    """
    views = pred.view.detach()
    scale = model.view_scale().to(views)
    turn = (torch.rand_like(views[:, :3]) * 2 - 1) * math.radians(model.config.view_cycle_degrees)
    limit = 0.95 * scale[:3]  # the view net's tanh reaches the targets
    target = torch.cat([torch.max(torch.min(views[:, :3] + turn, limit), -limit), views[:, 3:]], dim=1)
    canonical = pred.recon
    image, mask = model.render_in_view(
        canonical.canonical_depth.detach(),
        canonical.canonical_image.detach().clamp(0, 1),
        target,
        model.config.view_cycle_margin,
    )
    rendered = image + images * (1 - mask.unsqueeze(1))
    return view_loss(model.predict_view(to_signed(rendered)), target, scale)


def build_training(config: Config, device: torch.device | str = "cpu", perceptual: nn.Module | None = None) -> Training:
    """The model (channels-last and compiled as ``train`` says), the objective with its perceptual network, and
    Adam (fused: one kernel for all parameters), on ``device``. Call :func:`configure_process` first for a seeded
    initialisation. A ``train.supervised`` run's model has its view and appearance fixed
    (:func:`unsup3d.engine.supervised.fix_view_and_appearance`) and no perceptual network.

    Args:
        perceptual: a feature network to use instead of building the configured pretrained one (the step
            benchmark times a randomly initialised one); ignored without a perceptual loss.
    """
    model = PhotoGeometricAutoencoder(config.model).to(device)
    if config.train.supervised:
        fix_view_and_appearance(model)
    if not config.model.uses_perceptual or config.train.supervised:
        perceptual = None
    elif perceptual is None:
        weights = config.model.vgg16_weights if config.model.perceptual == "vgg16" else None
        perceptual = build_perceptual(config.model.perceptual, weights)
    objective = Objective(config.model, perceptual).to(device)
    if config.train.channels_last:  # convolutions follow their weights' memory format
        model.to(memory_format=torch.channels_last)
        objective.to(memory_format=torch.channels_last)
    if config.train.compile:
        for network in model.networks().values():
            network.compile()
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay, fused=True
    )
    optimizer.register_load_state_dict_pre_hook(_load_as_fused)
    return Training(config, model, objective, optimizer)


def _load_as_fused(optimizer: torch.optim.Optimizer, state: dict) -> dict:
    """Optimiser states saved by the unfused Adam (older checkpoints) load as fused, their step counts placed
    where the fused kernel reads them."""
    return {**state, "param_groups": [{**group, "fused": True} for group in state["param_groups"]]}


def _agree_alone(flag: bool) -> bool:
    return flag


def train_step(
    training: Training,
    images: torch.Tensor,
    iteration: int,
    agree: Callable[[bool], bool] = _agree_alone,
    depth: torch.Tensor | None = None,
) -> dict[str, float] | None:
    """One optimiser step of ``iteration`` on (B, 3, S, S) images in [0, 1], at the scheduled learning rate.

    Args:
        agree: combines this process's "the loss is finite" with the other processes' (all must agree to step).
        depth: (B, S, S) ground-truth depth of the images, for ``train.supervised`` runs.
    Returns:
        The loss terms and ``"lr"`` as floats, or None when the step was skipped because the loss or a gradient
        was not finite (parameters and optimiser state untouched).
    """
    config = training.config
    training.model.train()
    with torch.autocast(images.device.type, torch.bfloat16, enabled=config.train.amp == "bf16"):
        terms = training.loss_terms(images, iteration, depth)
    optimizer = training.optimizer
    optimizer.zero_grad(set_to_none=True)
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(config.train, iteration)
    if not agree(bool(torch.isfinite(terms["total"]))):
        log.warning("non-finite loss at iteration %d: step skipped", iteration)
        return None
    terms["total"].backward()
    # One multi-tensor norm and one host sync for all gradients (and one for the logged terms below): the norm is
    # finite exactly when every gradient is (or its square sum overflows float32, also a step to skip).
    grads = [p.grad for p in training.model.parameters() if p.grad is not None]
    if not bool(torch.isfinite(torch.nn.utils.get_total_norm(grads, foreach=True))):
        log.warning("non-finite gradient at iteration %d: step skipped", iteration)
        optimizer.zero_grad(set_to_none=True)
        return None
    optimizer.step()
    values = torch.stack([v.detach().float() for v in terms.values()]).tolist()
    return {**dict(zip(terms, values, strict=True)), "lr": optimizer.param_groups[0]["lr"]}
