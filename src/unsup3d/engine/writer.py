"""Run bookkeeping: scalars to ``metrics.jsonl`` (always) and TensorBoard (when installed)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from unsup3d.extras import install_hint

log = logging.getLogger(__name__)


class RunWriter:
    """Writes scalars and image grids of one run. ``close()`` when done."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._jsonl = (self.run_dir / "metrics.jsonl").open("a")
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.info(
                    "tensorboard is not installed (%s): scalars go to metrics.jsonl only", install_hint("tensorboard")
                )
            else:
                self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))

    def scalars(self, step: int, values: dict[str, float], prefix: str) -> None:
        """Record ``values`` under ``prefix/`` at ``step``."""
        record = {"step": step, **{f"{prefix}/{k}": float(v) for k, v in values.items()}}
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(f"{prefix}/{key}", float(value), step)

    def images(self, step: int, grids: dict[str, torch.Tensor]) -> None:
        """Record (3, H, W) image grids in [0, 1] (TensorBoard only)."""
        if self._tb is not None:
            for key, grid in grids.items():
                self._tb.add_image(key, grid.clamp(0, 1), step)

    def close(self) -> None:
        self._jsonl.close()
        if self._tb is not None:
            self._tb.close()
