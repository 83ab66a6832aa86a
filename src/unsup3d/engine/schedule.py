"""What each training step sees, as pure functions of the seed and the iteration, so that a resumed or a
multi-process run repeats a single uninterrupted one exactly: its batch of image indices (and this rank's share
of it) and its learning rate."""

from __future__ import annotations

import math

import torch

from unsup3d.config import TrainConfig

__all__ = ["EpochBatchSampler", "learning_rate"]


class EpochBatchSampler:
    """Endless batches of indices: epoch ``e`` is a permutation seeded by ``(seed, e)``; full batches only.

    Starting at ``start`` (a global batch count) yields exactly what an uninterrupted run yields from there.
    With ``world_size`` > 1, rank ``rank`` gets its contiguous slice of each global batch.
    """

    def __init__(
        self, size: int, batch_size: int, seed: int, start: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        if size < batch_size:
            raise ValueError(f"{size} training images are fewer than one batch of {batch_size}")
        if batch_size % world_size:
            raise ValueError(f"train.batch_size {batch_size} must be a multiple of the {world_size} processes")
        self.size, self.batch_size, self.seed, self.start = size, batch_size, seed, start
        self.per_epoch = size // batch_size
        self.local = slice(rank * batch_size // world_size, (rank + 1) * batch_size // world_size)

    def __iter__(self):
        step = self.start
        while True:
            epoch, position = divmod(step, self.per_epoch)
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 100003 + epoch))
            for i in range(position, self.per_epoch):
                yield order[i * self.batch_size : (i + 1) * self.batch_size][self.local].tolist()
            step = (epoch + 1) * self.per_epoch


def learning_rate(train: TrainConfig, iteration: int) -> float:
    """The learning rate of step ``iteration`` (a pure function of it, so resuming is exact).

    Linear warm-up over ``lr_warmup`` steps, then constant or a cosine decay from ``lr`` at the end of the warm-up
    to ``lr · lr_final_ratio`` at ``iterations``.
    """
    if iteration < train.lr_warmup:
        return train.lr * (iteration + 1) / train.lr_warmup
    if train.lr_schedule == "constant":
        return train.lr
    progress = min((iteration - train.lr_warmup) / max(train.iterations - train.lr_warmup, 1), 1.0)
    return train.lr * (train.lr_final_ratio + (1 - train.lr_final_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
