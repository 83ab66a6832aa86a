"""The training loop: the trainer keeps the books (data order, optimiser, checkpoints, logs, signals).

Runs are exactly resumable: the data order is a function of (seed, epoch), flips a function of (seed,
iteration), and the checkpoint carries weights, optimiser state and the iteration.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path

import torch
import yaml
from torch.utils.data import DataLoader, Subset

from unsup3d.checkpoint import CheckpointError, load_latest, resume_point, save_checkpoint
from unsup3d.config import Config
from unsup3d.data import ImageFolderDataset, PairedDepthDataset
from unsup3d.data.cache import CachedImageDataset, open_cache
from unsup3d.engine import distributed
from unsup3d.engine.schedule import EpochBatchSampler, learning_rate
from unsup3d.engine.writer import RunWriter
from unsup3d.evaluation import evaluate_depth
from unsup3d.files import ensure_writable_folder
from unsup3d.losses import Objective
from unsup3d.model import PhotoGeometricAutoencoder, Prediction, ellipsoid_depth, to_signed
from unsup3d.nets import build_perceptual
from unsup3d.viz import depth_to_image, image_grid, normals_to_image

log = logging.getLogger(__name__)
MAX_NONFINITE_STEPS = 20


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss stays non-finite); the state was saved first."""


class DepthOnly(torch.nn.Module):
    """The canonical-depth branch of a model as a module of its own (for the depth-prior iterations, so that
    DistributedDataParallel sees them as a forward pass): (B, 3, S, S) images in [0, 1] → (B, S, S) depth."""

    def __init__(self, model: PhotoGeometricAutoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.predict_depth(to_signed(images))[1]


class Trainer:
    """Trains the photo-geometric autoencoder on ``config.data.train_dir``, writing into ``run_dir``."""

    def __init__(self, config: Config, run_dir: str | Path, resume: bool = False, progress: bool = True) -> None:
        if config.data.train_dir is None:
            raise ValueError("data.train_dir is not set: give the folder of training images")
        self.config = config.validate()
        tc = config.train
        self.job, self.device = distributed.setup(tc.device)
        self.run_dir = ensure_writable_folder(run_dir) if self.job.is_main else Path(run_dir)
        self.progress = progress and self.job.is_main
        if tc.threads:
            torch.set_num_threads(tc.threads)
        torch.manual_seed(tc.seed)
        self.model = PhotoGeometricAutoencoder(config.model).to(self.device)
        if tc.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS' condition for determinism
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        if tc.channels_last:  # convolutions follow their weights' memory format
            self.model.to(memory_format=torch.channels_last)
        if tc.compile:
            for network in self.model.networks().values():
                network.compile()
        mc = config.model
        perceptual = None
        if mc.uses_perceptual:
            perceptual = build_perceptual(mc.perceptual, mc.vgg16_weights)
        self.objective = Objective(mc, perceptual).to(self.device)
        if tc.channels_last:
            self.objective.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        self.iteration = 0
        self.train_set, self.val_set = self._datasets()
        self.eval_set = self._eval_set()
        if resume:
            self._resume()
        if self.job.is_main:
            (self.run_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        self.train_model = self._parallel(self.model)
        self._stop_signal: str | None = None
        self._prior: tuple[torch.Tensor, torch.nn.Module] | None = None  # built by the first depth-prior step
        if tc.depth_prior_iterations >= tc.iterations:
            log.warning(
                "train.depth_prior_iterations (%d) >= train.iterations (%d): the run only fits the depth prior",
                tc.depth_prior_iterations,
                tc.iterations,
            )

    # ------------------------------------------------------------------ data
    def _datasets(self):
        dc, mc = self.config.data, self.config.model
        full = ImageFolderDataset(dc.train_dir, mc.image_size, dc.crop, hflip=False)
        skipped = full.scan(progress=self.progress and len(full) >= 1000)
        if skipped and self.job.is_main:
            report = self.run_dir / "skipped_files.txt"
            report.write_text("".join(f"{path}\t{reason}\n" for path, reason in skipped))
            log.warning(
                "%d of %d training file(s) unreadable and skipped (list in %s), e.g. %s: %s",
                len(skipped),
                len(full.paths) + len(skipped),
                report,
                *skipped[0],
            )
        if dc.cache_dir is not None:
            full = self._cached(full, dc.cache_dir)
        if dc.val_dir is not None:
            return full, ImageFolderDataset(dc.val_dir, mc.image_size, dc.crop, hflip=False)
        count = int(len(full) * dc.val_fraction)
        if count == 0:
            return full, None
        order = torch.randperm(len(full), generator=torch.Generator().manual_seed(12345)).tolist()
        return Subset(full, order[count:]), Subset(full, order[:count])

    def _cached(self, dataset: ImageFolderDataset, cache_dir: str) -> CachedImageDataset:
        """The memory-mapped cache of ``dataset``, built by rank 0 while the other ranks wait."""
        if self.job.is_main:
            cached = open_cache(dataset, cache_dir, progress=self.progress)
        self.job.barrier()
        if not self.job.is_main:
            cached = open_cache(dataset, cache_dir)
        return cached

    def _eval_set(self):
        dc = self.config.data
        if dc.eval_dir is None:
            return None
        dataset = PairedDepthDataset(dc.eval_dir, self.config.model.image_size, dc.crop)
        return Subset(dataset, range(min(len(dataset), dc.eval_limit)))

    def _loader(self) -> DataLoader:
        tc = self.config.train
        job = self.job
        size = len(self.train_set)
        sampler = EpochBatchSampler(size, tc.batch_size, tc.seed, self.iteration, job.rank, job.world_size)
        return DataLoader(
            self.train_set,
            batch_sampler=sampler,
            num_workers=tc.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=tc.num_workers > 0,
        )

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        """Horizontal flips with p = 0.5 drawn from (seed, iteration) for the global batch; this rank's share
        of them: (B / world size, 3, S, S) → same."""
        if not self.config.data.hflip:
            return images
        gen = torch.Generator().manual_seed(self.config.train.seed * 7919 + self.iteration)
        local = images.shape[0]
        flip = torch.rand(local * self.job.world_size, generator=gen) < 0.5
        flip = flip[self.job.rank * local : (self.job.rank + 1) * local].to(images.device)
        return torch.where(flip[:, None, None, None], images.flip(-1), images)

    # ------------------------------------------------------------------ loop
    def fit(self, until: int | None = None) -> None:
        """Train until ``until`` (default ``train.iterations``), ``train.max_minutes`` or SIGINT/SIGTERM.

        Checkpoints every ``train.checkpoint_every`` iterations and whenever it stops.
        """
        tc = self.config.train
        until = tc.iterations if until is None else min(until, tc.iterations)
        if self.iteration >= until:
            return
        writer = RunWriter(self.run_dir) if self.job.is_main else None
        started = time.monotonic()
        handlers = self._install_signal_handlers()
        bar = _progress(self.progress, self.iteration, until)
        nonfinite = 0
        try:
            for batch in self._loader():
                images = self._augment(batch["image"].to(self.device, non_blocking=True))
                terms = self.train_step(images)
                if terms is None:
                    nonfinite += 1
                    if nonfinite >= MAX_NONFINITE_STEPS:
                        self.save()
                        raise TrainingError(f"loss non-finite for {nonfinite} consecutive steps; state saved")
                    continue
                nonfinite = 0
                self.iteration += 1
                bar.update(1)
                self._book(writer, terms, bar)
                out_of_time = tc.max_minutes is not None and time.monotonic() - started > tc.max_minutes * 60
                if self.iteration >= until or self.job.any(out_of_time or bool(self._stop_signal), self.device):
                    break
            if self._stop_signal:
                log.warning("received %s: checkpoint written at iteration %d", self._stop_signal, self.iteration)
        finally:
            self.save()
            bar.close()
            if writer is not None:
                writer.close()
            _restore_signal_handlers(handlers)

    def train_step(self, images: torch.Tensor) -> dict[str, float] | None:
        """One optimiser step on (B, 3, S, S) images; None (step skipped) if the loss or gradients are not finite."""
        self.model.train()
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.config.train.amp == "bf16"):
            if self.iteration < self.config.train.depth_prior_iterations:
                terms = self.prior_terms(images)
            else:
                terms = self.objective(self.train_model(images), images, self.iteration)
        total = terms["total"]
        self.optimizer.zero_grad(set_to_none=True)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.config.train, self.iteration)
        if not self.job.all(bool(torch.isfinite(total)), self.device):
            log.warning("non-finite loss at iteration %d: step skipped", self.iteration)
            return None
        total.backward()
        # One host sync for all gradients (and one for the logged terms below), not one per tensor.
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if not bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()):
            log.warning("non-finite gradient at iteration %d: step skipped", self.iteration)
            self.optimizer.zero_grad(set_to_none=True)
            return None
        self.optimizer.step()
        values = torch.stack([v.detach().float() for v in terms.values()]).tolist()
        return {**dict(zip(terms, values, strict=True)), "lr": self.optimizer.param_groups[0]["lr"]}

    def prior_terms(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss of the depth-prior iterations: mean squared distance (in cm²) of the canonical depth of
        (B, 3, S, S) images to the ellipsoid (:func:`unsup3d.model.ellipsoid_depth`)."""
        if self._prior is None:  # every rank gets here at the same iteration, as DDP's wrapping needs
            target = ellipsoid_depth(self.config.model, self.config.train.depth_prior_relief).to(self.device)
            self._prior = target, self._parallel(DepthOnly(self.model))
        target, depth_model = self._prior
        depth = depth_model(images)
        error = ((depth - target) * 100) ** 2
        return {"total": error.mean(), "depth_prior": error.mean()}

    def _book(self, writer: RunWriter | None, terms: dict[str, float], bar) -> None:
        """Logs (loss terms averaged over ranks), checkpoints, validation and images, written by rank 0."""
        tc = self.config.train
        it = self.iteration
        if it % tc.log_every == 0:
            terms = self.job.mean(terms, self.device)
            if writer is not None:
                writer.scalars(it, terms, "train")
                bar.set_postfix(loss=f"{terms['total']:.4f}")
        if it % tc.checkpoint_every == 0:
            self.save()
        if writer is None:
            return
        if it % tc.validate_every == 0:
            writer.scalars(it, self.validate(), "val")
        if it % tc.image_log_every == 0 and self.val_set is not None:
            writer.images(it, self.visualize())

    @property
    def interrupted(self) -> bool:
        """True once SIGINT or SIGTERM stopped :meth:`fit`; callers looping over ``fit`` should stop too."""
        return self._stop_signal is not None

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean validation loss terms and, with ``data.eval_dir``, mean SIDE and MAD."""
        self.model.eval()
        results: dict[str, float] = {}
        if self.val_set is not None:
            loader = DataLoader(self.val_set, batch_size=self.config.train.batch_size)
            sums: dict[str, float] = {}
            count = 0
            for batch in loader:
                images = batch["image"].to(self.device)
                terms = self.objective(self.model(images), images, self.iteration)
                for key, value in terms.items():
                    sums[key] = sums.get(key, 0.0) + float(value) * images.shape[0]
                count += images.shape[0]
            results.update({k: v / count for k, v in sums.items()})
        if self.eval_set is not None:
            scores = evaluate_depth(self.model, self.eval_set, self.config.train.batch_size, self.device)
            results.update({k: float(v.nanmean()) for k, v in scores.items()})
        return results

    @torch.no_grad()
    def visualize(self, count: int = 8) -> dict[str, torch.Tensor]:
        """Image grids of the first ``count`` validation images: input, reconstruction, canonical maps."""
        self.model.eval()
        images = torch.stack([self.val_set[i]["image"] for i in range(min(count, len(self.val_set)))])
        pred: Prediction = self.model(images.to(self.device))
        b = images.shape[0]
        rows = [
            images,
            (pred.recon_image[:b] / 2 + 0.5).cpu(),
            (pred.canon_image[:b] / 2 + 0.5).cpu(),
            (pred.canon_albedo[:b] / 2 + 0.5).cpu(),
            pred.canon_shading[:b].expand(-1, 3, -1, -1).clamp(0, 1).cpu(),
            depth_to_image(pred.canon_depth[:b]).cpu(),
            normals_to_image(pred.canon_normal[:b]).cpu(),
        ]
        return {"val/decomposition": image_grid(rows)}

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }

    def save(self) -> Path | None:
        """Checkpoint the current iteration (rank 0 only; other ranks return None)."""
        if not self.job.is_main:
            return None
        tc = self.config.train
        return save_checkpoint(self.run_dir / "checkpoints", self.iteration, self.state(), tc.keep_checkpoints)

    def _resume(self) -> None:
        folder = self.run_dir / "checkpoints"
        found = resume_point(folder, self.device) if self.job.is_main else None  # rank 0 tidies first
        self.job.barrier()
        if not self.job.is_main:
            found = load_latest(folder, self.device)
        if found is None:
            log.info("no checkpoint in %s: starting from scratch", self.run_dir)
            return
        path, state = found
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, ValueError, RuntimeError) as error:
            raise CheckpointError(
                f"cannot resume from {path}: it was written with a different model or optimiser configuration "
                f"(see {self.run_dir / 'config.yaml'}); use a new run directory or the same settings. {error}"
            ) from error
        self.iteration = int(state["iteration"])
        log.info("resumed from %s at iteration %d", path, self.iteration)

    def _parallel(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` wrapped in DistributedDataParallel in a multi-process job, else itself.

        Some parameters get no gradient in some steps (all but the depth network in the depth-prior iterations,
        the perceptual confidence head without a perceptual loss, ablations), so DDP looks for unused ones;
        their gradients stay None, as in a single process.
        """
        if not self.job.enabled:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)

    # ------------------------------------------------------------------ signals
    def _install_signal_handlers(self):
        def handler(signum, _frame):
            if self._stop_signal is not None:
                raise KeyboardInterrupt
            self._stop_signal = signal.Signals(signum).name

        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                previous[sig] = signal.signal(sig, handler)
        return previous


def _restore_signal_handlers(previous) -> None:
    for sig, old in previous.items():
        signal.signal(sig, old)


def _progress(enabled: bool, start: int, total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, disable=not enabled, unit="it", dynamic_ncols=True)
