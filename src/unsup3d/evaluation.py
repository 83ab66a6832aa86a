"""Depth evaluation on images with ground truth: the model against the constant and average-depth baselines."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from unsup3d.geometry import FOV_DEGREES
from unsup3d.metrics import depth_metrics, summarize


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode inside the block and give it back in the mode it had."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@torch.no_grad()
def predict_view_depth(model, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Depth rendered in the input view, its validity mask and the view (the model in eval mode, then back in
    its own mode).

    Args:
        model: a :class:`unsup3d.model.PhotoGeometricAutoencoder`.
        images: (B, 3, S, S) in [0, 1].
    Returns:
        depth (B, S, S), valid (B, S, S) bool, view (B, 6).
    """
    with eval_mode(model):
        pred = model(images, with_flip=False)
    depth = pred.recon.depth
    return depth, depth < model.config.far_depth, pred.view


@torch.no_grad()
def evaluate_depth(model, dataset: Dataset, batch_size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Per-image SIDE, MAD, MAE, MSE of the model's input-view depth on a paired dataset.

    Args:
        dataset: items with ``"image"`` (3, S, S) and ``"depth"`` (S, S) with NaN background.
    Returns:
        dict of (N,) tensors.
    """
    scores: dict[str, list[torch.Tensor]] = {}
    for batch in DataLoader(dataset, batch_size=batch_size):
        images, gt = batch["image"].to(device), batch["depth"].to(device)
        depth, valid, _ = predict_view_depth(model, images)
        for key, value in depth_metrics(depth.double(), gt.double(), valid, model.config.fov).items():
            scores.setdefault(key, []).append(value.cpu())
    return {k: torch.cat(v) for k, v in scores.items()}


def baseline_scores(dataset: Dataset, fov: float = FOV_DEGREES) -> dict[str, dict[str, torch.Tensor]]:
    """Per-image scores of the trivial baselines of the paper's Table 2.

    ``constant``: a flat depth map; ``average``: the per-pixel mean of all ground-truth depth maps of the set.
    """
    gts = torch.stack([dataset[i]["depth"] for i in range(len(dataset))]).double()  # (N, S, S)
    average = gts.nanmean(dim=0, keepdim=True).expand_as(gts)
    flat = torch.ones_like(gts)
    everywhere = torch.ones_like(gts, dtype=torch.bool)
    return {
        "constant": depth_metrics(flat, gts, everywhere, fov),
        "average": depth_metrics(torch.nan_to_num(average, nan=1.0), gts, torch.isfinite(average), fov),
    }


def summary_table(results: dict[str, dict[str, torch.Tensor]]) -> str:
    """A text table of mean ± std per method for SIDE (×10⁻²) and MAD (degrees)."""
    lines = [f"{'method':<12} {'SIDE (x1e-2)':>18} {'MAD (deg)':>16} {'images':>7}"]
    for name, scores in results.items():
        side_mean, side_std = summarize(scores["side"] * 100)
        mad_mean, mad_std = summarize(scores["mad"])
        count = len(scores["side"])
        lines.append(f"{name:<12} {side_mean:>9.3f} ± {side_std:<6.3f} {mad_mean:>8.2f} ± {mad_std:<5.2f} {count:>7}")
    return "\n".join(lines)
