"""The training loop: the trainer keeps the books (data order, optimiser, checkpoints, logs, signals).

Runs are exactly resumable: the data order is a function of (seed, epoch), flips a function of (seed,
iteration), and the checkpoint carries weights, optimiser state and the iteration.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
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
from unsup3d.diagnostics import CollapseInputs, fired
from unsup3d.engine import distributed
from unsup3d.engine.schedule import EpochBatchSampler
from unsup3d.engine.training import Training, build_training, configure_process, train_step
from unsup3d.engine.writer import RunWriter
from unsup3d.evaluation import eval_mode, evaluate_depth
from unsup3d.files import ensure_writable_folder
from unsup3d.losses import DepthOnly, supervised_terms
from unsup3d.viz import depth_to_image, image_grid, normals_to_image

log = logging.getLogger(__name__)
MAX_NONFINITE_STEPS = 20


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss stays non-finite); the state was saved first."""


class Trainer:
    """Trains the photo-geometric autoencoder on ``config.data.train_dir``, writing into ``run_dir``; with
    ``train.supervised``, its depth network on the image/depth pairs of that folder
    (:mod:`unsup3d.engine.supervised`)."""

    def __init__(self, config: Config, run_dir: str | Path, resume: bool = False, progress: bool = True) -> None:
        if config.data.train_dir is None:
            raise ValueError("data.train_dir is not set: give the folder of training images")
        self.config = config.validate()
        self.job, self.device = distributed.setup(config.train.device)
        self.run_dir = ensure_writable_folder(run_dir) if self.job.is_main else Path(run_dir)
        self.progress = progress and self.job.is_main
        configure_process(config.train)
        self.training: Training = build_training(config, self.device)
        self.training.wrap = self._parallel
        self.iteration = 0
        self.train_set, self.val_set = self._datasets()
        self.eval_set = self._eval_set()
        if resume:
            self._resume()
        if self.job.is_main:
            (self.run_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        self._stop_signal: str | None = None
        self._warned: set[str] = set()  # collapse detectors already reported in this run
        if config.train.depth_prior_iterations >= config.train.iterations and not config.train.supervised:
            log.warning(
                "train.depth_prior_iterations (%d) >= train.iterations (%d): the run only fits the depth prior",
                config.train.depth_prior_iterations,
                config.train.iterations,
            )

    @property
    def model(self):
        """The :class:`unsup3d.model.PhotoGeometricAutoencoder` being trained."""
        return self.training.model

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.training.optimizer

    @property
    def objective(self):
        return self.training.objective

    # ------------------------------------------------------------------ data
    def _datasets(self):
        data, size = self.config.data, self.config.model.image_size
        if self.config.train.supervised:  # image/depth pairs (PairedDepthDataset logs images without depth)
            full = PairedDepthDataset(data.train_dir, size, data.crop)
            val = None if data.val_dir is None else PairedDepthDataset(data.val_dir, size, data.crop)
        else:
            full = self._training_images()
            val = None if data.val_dir is None else ImageFolderDataset(data.val_dir, size, data.crop)
        if val is not None:
            return full, val
        count = int(len(full) * data.val_fraction)
        if count == 0:
            return full, None
        order = torch.randperm(len(full), generator=torch.Generator().manual_seed(12345)).tolist()
        return Subset(full, order[count:]), Subset(full, order[:count])

    def _training_images(self) -> ImageFolderDataset | CachedImageDataset:
        """The readable images of ``data.train_dir`` (unreadable ones reported and skipped), cached as
        ``data.cache_dir`` says."""
        data, size = self.config.data, self.config.model.image_size
        full = ImageFolderDataset(data.train_dir, size, data.crop)
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
        if data.cache_dir is not None:
            full = self._cached(full, data.cache_dir)
        return full

    def _cached(self, dataset: ImageFolderDataset, cache_dir: str) -> CachedImageDataset:
        """The memory-mapped cache of ``dataset``, built by rank 0 while the other ranks wait."""
        if self.job.is_main:
            cached = open_cache(dataset, cache_dir, progress=self.progress)
        self.job.barrier()
        if not self.job.is_main:
            cached = open_cache(dataset, cache_dir)
        return cached

    def _eval_set(self):
        data = self.config.data
        if data.eval_dir is None:
            return None
        dataset = PairedDepthDataset(data.eval_dir, self.config.model.image_size, data.crop)
        return Subset(dataset, range(min(len(dataset), data.eval_limit)))

    def _loader(self) -> DataLoader:
        train, job = self.config.train, self.job
        size = len(self.train_set)
        sampler = EpochBatchSampler(size, train.batch_size, train.seed, self.iteration, job.rank, job.world_size)
        return DataLoader(
            self.train_set,
            batch_sampler=sampler,
            num_workers=train.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=train.num_workers > 0,
        )

    def augment(self, maps: torch.Tensor) -> torch.Tensor:
        """Horizontal flips with p = 0.5 drawn from (seed, iteration) for the global batch; this rank's share
        of them: (B / world size, ..., S) images (or their depth maps: the same flips in one iteration) → same."""
        if not self.config.data.hflip:
            return maps
        generator = torch.Generator().manual_seed(self.config.train.seed * 7919 + self.iteration)
        local = maps.shape[0]
        flip = torch.rand(local * self.job.world_size, generator=generator) < 0.5
        flip = flip[self.job.rank * local : (self.job.rank + 1) * local].to(maps.device)
        return torch.where(flip.view(-1, *[1] * (maps.dim() - 1)), maps.flip(-1), maps)

    # ------------------------------------------------------------------ loop
    def fit(self, until: int | None = None, minutes: float | None = None) -> None:
        """Train until ``until`` (default ``train.iterations``), for at most ``minutes`` of wall time (default
        ``train.max_minutes``), or until SIGINT/SIGTERM.

        Checkpoints every ``train.checkpoint_every`` iterations and whenever it stops.
        """
        train = self.config.train
        until = train.iterations if until is None else min(until, train.iterations)
        minutes = train.max_minutes if minutes is None else minutes
        if self.iteration >= until:
            return
        writer = RunWriter(self.run_dir) if self.job.is_main else None
        started = time.monotonic()
        handlers = self._install_signal_handlers()
        bar = _progress(self.progress, self.iteration, until)
        nonfinite = 0
        try:
            for batch in self._loader():
                images = self.augment(batch["image"].to(self.device, non_blocking=True))
                depth = self.augment(batch["depth"].to(self.device)) if self.config.train.supervised else None
                terms = self.train_step(images, depth)
                if terms is None:
                    nonfinite += 1
                    if nonfinite >= MAX_NONFINITE_STEPS:
                        self.save()
                        raise TrainingError(f"loss non-finite for {nonfinite} consecutive steps; state saved")
                    continue
                nonfinite = 0
                self.iteration += 1
                bar.update(1)
                self._record(writer, terms, bar)
                out_of_time = minutes is not None and time.monotonic() - started > minutes * 60
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

    def train_step(self, images: torch.Tensor, depth: torch.Tensor | None = None) -> dict[str, float] | None:
        """One optimiser step on (B, 3, S, S) images, with their (B, S, S) ground-truth depth in supervised runs
        (:func:`unsup3d.engine.training.train_step`); None if it was skipped for a non-finite loss or gradient."""
        return train_step(self.training, images, self.iteration, lambda ok: self.job.all(ok, self.device), depth)

    def _record(self, writer: RunWriter | None, terms: dict[str, float], bar) -> None:
        """Logs (loss terms averaged over ranks), checkpoints, validation and images, written by rank 0."""
        train, iteration = self.config.train, self.iteration
        if iteration % train.log_every == 0:
            terms = self.job.mean(terms, self.device)
            if writer is not None:
                writer.scalars(iteration, terms, "train")
                bar.set_postfix(loss=f"{terms['total']:.4f}")
        if iteration % train.checkpoint_every == 0:
            self.save()
        if writer is None:
            return
        if iteration % train.validate_every == 0:
            values = self.validate()
            writer.scalars(iteration, values, "val")
            self._warn_collapse(values)
        if iteration % train.image_log_every == 0 and self.val_set is not None:
            writer.images(iteration, self.visualize())

    @property
    def interrupted(self) -> bool:
        """True once SIGINT or SIGTERM stopped :meth:`fit`; callers looping over ``fit`` should stop too."""
        return self._stop_signal is not None

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean validation loss terms, the collapse statistics of the validation images
        (:mod:`unsup3d.diagnostics`; not in supervised runs) and, with ``data.eval_dir``, mean SIDE and MAD."""
        results: dict[str, float] = {}
        if self.val_set is not None:
            results.update(self._validation_loss())
        if self.eval_set is not None:
            scores = evaluate_depth(self.model, self.eval_set, self.config.train.batch_size, self.device)
            results.update({k: float(v.nanmean()) for k, v in scores.items()})
        return results

    def _validation_loss(self) -> dict[str, float]:
        """The objective's terms averaged over the validation images and, from the same predictions, their
        collapse statistics (not in supervised runs)."""
        sums: dict[str, float] = {}
        count = 0
        collapse = CollapseInputs()
        with eval_mode(self.model):
            for batch in DataLoader(self.val_set, batch_size=self.config.train.batch_size):
                images = batch["image"].to(self.device)
                if self.config.train.supervised:
                    terms = supervised_terms(DepthOnly(self.model)(images), batch["depth"].to(self.device))
                else:
                    pred = self.model(images)
                    terms = self.objective.image_terms(pred, images, self.iteration)
                    collapse.add(pred)
                for key, value in terms.items():
                    sums[key] = sums.get(key, 0.0) + float(value) * images.shape[0]
                count += images.shape[0]
        results = {k: v / count for k, v in sums.items()}
        if not self.config.train.supervised:
            results.update(collapse.statistics(self.model.config))
        return results

    def _warn_collapse(self, values: dict[str, float]) -> None:
        """Warn once per run for each collapse detector that fires on validation ``values``, from the end of the
        depth-prior iterations on (before that only the depth network trains)."""
        if self.iteration <= self.config.train.depth_prior_iterations:
            return
        for detector in fired(values):
            if detector.name in self._warned:
                continue
            self._warned.add(detector.name)
            log.warning(
                "collapse detector '%s' fires at iteration %d: %s (%s = %.4g, allowed [%.4g, %.4g]; "
                "see unsup3d.diagnostics)",
                detector.name,
                self.iteration,
                detector.meaning,
                detector.statistic,
                values[detector.statistic],
                detector.low,
                detector.high,
            )

    @torch.no_grad()
    def visualize(self, count: int = 8) -> dict[str, torch.Tensor]:
        """Image grids of the first ``count`` validation images: input, reconstruction, canonical maps."""
        images = torch.stack([self.val_set[i]["image"] for i in range(min(count, len(self.val_set)))])
        with eval_mode(self.model):
            recon = self.model(images.to(self.device), with_flip=False).recon
        rows = [
            images,
            recon.image,
            recon.canonical_image,
            recon.canonical_albedo,
            recon.canonical_shading.expand(-1, 3, -1, -1),
            depth_to_image(recon.canonical_depth),
            normals_to_image(recon.canonical_normal),
        ]
        return {"val/decomposition": image_grid([row.clamp(0, 1).cpu() for row in rows])}

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        """What a checkpoint holds: the model's configuration on its own (all inference reads), the whole run
        configuration (for resuming), the weights and the optimiser state."""
        return {
            "model_config": dataclasses.asdict(self.config.model),
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }

    def save(self) -> Path | None:
        """Checkpoint the current iteration (rank 0 only; other ranks return None)."""
        if not self.job.is_main:
            return None
        keep = self.config.train.keep_checkpoints
        return save_checkpoint(self.run_dir / "checkpoints", self.iteration, self.state(), keep)

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
