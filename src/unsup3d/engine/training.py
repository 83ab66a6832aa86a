"""What every training tool shares: the process settings, the training objects built from a config, and one pure
optimiser step.

:class:`unsup3d.engine.trainer.Trainer` keeps the books around these (data, checkpoints, logs, signals);
``benchmarks/speed/step_time.py`` times them. Neither builds a model, a loss or an optimiser of its own.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from unsup3d.config import Config, TrainConfig
from unsup3d.engine.schedule import learning_rate
from unsup3d.engine.supervised import fix_view_and_appearance
from unsup3d.losses import DepthOnly, Objective
from unsup3d.model import PhotoGeometricAutoencoder
from unsup3d.nets import build_perceptual

__all__ = ["Training", "build_training", "configure_process", "train_step"]

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
        """The loss of step ``iteration`` on (B, 3, S, S) images in [0, 1] through this run's (wrapped) forward
        passes: :meth:`unsup3d.losses.Objective.step_terms`; ``depth`` is the (B, S, S) ground truth of a
        ``train.supervised`` run."""
        return self.objective.step_terms(self, images, iteration, depth)


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
    objective = Objective(config, perceptual).to(device)
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
