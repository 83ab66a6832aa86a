"""Multi-process training with PyTorch's own ``torch.distributed``, launched by ``torchrun``.

``torchrun --nproc_per_node=N -m unsup3d.cli train ...`` (or with ``--nnodes``/``--rdzv_endpoint`` for several
machines) sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; :func:`setup` then joins the process group (NCCL on
CUDA, gloo on CPU). Semantics:

- ``train.batch_size`` is the **global** batch: each step draws the same global batch as a single process
  would, and rank ``r`` of ``N`` takes its ``r``-th contiguous slice of ``batch_size / N`` images (which must be
  whole). DistributedDataParallel averages the gradients, so a step equals a single-process step on the
  global batch up to the masked means being taken per rank (equal when the ranks' valid-pixel counts are).
- Rank 0 alone writes the run directory (config, logs, checkpoints, images); every rank resumes from the same
  checkpoint. Decisions that must agree (skip a non-finite step, stop on a signal or the time limit) are
  all-reduced.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["Distributed", "setup"]


@dataclass(frozen=True)
class Distributed:
    """This process's place in the job; ``world_size == 1`` for a plain single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all(self, flag: bool, device: torch.device) -> bool:
        """True on every rank iff ``flag`` is True on every rank."""
        if not self.enabled:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return bool(value.item() > 0)

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank iff ``flag`` is True on some rank."""
        return not self.all(not flag, device)

    def mean(self, values: dict[str, float], device: torch.device) -> dict[str, float]:
        """The average over ranks of each value (same keys on every rank)."""
        if not self.enabled:
            return values
        keys = sorted(values)
        tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return {k: float(v) / self.world_size for k, v in zip(keys, tensor.tolist(), strict=True)}

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def setup(device_name: str) -> tuple[Distributed, torch.device]:
    """Join the ``torchrun`` process group if there is one, and pick this process's device.

    Args:
        device_name: ``train.device`` ("auto", "cpu" or "cuda").
    Returns:
        The job description and the device (``cuda:LOCAL_RANK`` for multi-GPU jobs).
    Raises:
        RuntimeError: "cuda" requested without a GPU.
    """
    if device_name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    use_cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed(), torch.device("cuda" if use_cuda else "cpu")
    job = Distributed(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if use_cuda:
        torch.cuda.set_device(job.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return job, torch.device(f"cuda:{job.local_rank}" if use_cuda else "cpu")


def teardown(wait: bool = True) -> None:
    """Leave the process group (a no-op without one); with ``wait``, first wait until every rank has got here,
    so that no rank exits while another still talks to it."""
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()
