"""Depth evaluation on images with ground truth: the model against the constant and average-depth baselines; the
collapse statistics of a model's predictions over a dataset; the keypoint depth correlation (Table 5) where the
images have keypoints."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from unsup3d.diagnostics import CollapseInputs, collapse_table, fired
from unsup3d.geometry import FOV_DEGREES
from unsup3d.metrics import (
    depth_metrics,
    keypoint_correlations,
    keypoint_depth_correlation,
    sample_depth_at,
    summarize,
)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode inside the block and give it back in the mode it had."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _view_depth(model, pred) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, S, S) depth rendered in the input view of a prediction and its (B, S, S) bool validity mask."""
    depth = pred.recon.depth
    return depth, depth < model.config.far_depth


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
    return *_view_depth(model, pred), pred.view


@torch.no_grad()
def evaluation_pass(
    model,
    dataset: Dataset,
    batch_size: int,
    device: torch.device,
    *,
    depth: bool = True,
    collapse: bool = False,
    keypoints: bool = False,
) -> dict:
    """One pass of the model (eval mode, then back in its own mode) over a dataset, gathering what is asked:
    the per-image depth scores, the collapse statistics, the keypoint depth samples.

    Args:
        dataset: items with ``"image"`` (3, S, S) in [0, 1]; with ``depth`` also ``"depth"`` (S, S) with NaN
            background; with ``keypoints`` also ``"keypoints"`` (K, 2) pixel ``(u, v)``, ``"keypoint_depth"``
            (K,) and ``"keypoint_visible"`` (K,) bool.
    Returns:
        with ``depth``, ``"depth"``: {SIDE, MAD, MAE, MSE: (N,)}; with ``collapse``, ``"collapse"``: {statistic:
        value}, see :mod:`unsup3d.diagnostics`; with ``keypoints``, ``"keypoints"``: (predicted (N, K), true
        (N, K), visible (N, K)) keypoint depths.
    """
    scores: dict[str, list[torch.Tensor]] = {}
    inputs = CollapseInputs()
    predicted, true, visible = [], [], []  # keypoint depths, batch by batch
    with eval_mode(model):
        for batch in DataLoader(dataset, batch_size=batch_size):
            pred = model(batch["image"].to(device), with_flip=False)
            view_depth, valid = _view_depth(model, pred)
            if depth:
                gt = batch["depth"].to(device).double()
                for key, value in depth_metrics(view_depth.double(), gt, valid, model.config.fov).items():
                    scores.setdefault(key, []).append(value.cpu())
            if collapse:
                inputs.add(pred)
            if keypoints:
                predicted.append(sample_depth_at(view_depth.double(), batch["keypoints"].to(device)).cpu())
                true.append(batch["keypoint_depth"].double())
                visible.append(batch["keypoint_visible"])
    results: dict = {}
    if depth:
        results["depth"] = {k: torch.cat(v) for k, v in scores.items()}
    if collapse:
        results["collapse"] = inputs.statistics(model.config)
    if keypoints:
        results["keypoints"] = (torch.cat(predicted), torch.cat(true), torch.cat(visible))
    return results


def evaluate_depth(model, dataset: Dataset, batch_size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Per-image SIDE, MAD, MAE, MSE (dict of (N,) tensors) of the model's input-view depth on a paired dataset
    (see :func:`evaluation_pass`)."""
    return evaluation_pass(model, dataset, batch_size, device)["depth"]


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


def evaluate_keypoint_depth(model, dataset: Dataset, batch_size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """The keypoint depth correlation of the paper's Table 5 (DepthNet's 3DFAW score) on a set with keypoints.

    The model's input-view depth is sampled bilinearly at each item's keypoints
    (:func:`unsup3d.metrics.sample_depth_at`, in :func:`evaluation_pass`) and correlated with the true depth.
    """
    samples = evaluation_pass(model, dataset, batch_size, device, depth=False, keypoints=True)["keypoints"]
    return keypoint_scores(*samples)


def keypoint_scores(predicted: torch.Tensor, true: torch.Tensor, visible: torch.Tensor) -> dict[str, torch.Tensor]:
    """Keypoint depth scores of (N, K) predicted and true keypoint depths and their (N, K) bool visibility: each
    keypoint's depth correlated with the truth across the images where it is visible
    (:func:`unsup3d.metrics.keypoint_depth_correlation`). Hidden keypoints are left out: a depth map holds the
    depth of the surface in front of them, not theirs (3DFAW scores all 66 keypoints, which suits its
    frontal-ish test faces).

    Returns:
        ``{"depth_corr": Σ|r_k|, "depth_corr_signed": Σ r_k}`` (0-dim, NaN if some keypoint's correlation is
        undefined), ``"correlations"`` (K,) ``r_k`` and ``"images"`` (K,) the number of images each is visible in.
    """
    return {
        "depth_corr": keypoint_depth_correlation(predicted, true, visible),
        "depth_corr_signed": keypoint_depth_correlation(predicted, true, visible, absolute=False),
        "correlations": keypoint_correlations(predicted, true, visible),
        "images": visible.sum(0),
    }


def keypoint_summary(scores: dict[str, torch.Tensor]) -> str:
    """One line for :func:`evaluate_keypoint_depth`'s scores."""
    count = len(scores["correlations"])
    return (
        f"keypoint depth correlation (Table 5, sum of |r| over {count} keypoints, max {count}): "
        f"{float(scores['depth_corr']):.2f}; signed sum {float(scores['depth_corr_signed']):.2f}; "
        f"{int(scores['images'].min())}-{int(scores['images'].max())} images per keypoint"
    )


def evaluation_report(model, dataset, batch_size: int, device: torch.device) -> tuple[dict, str]:
    """Everything ``unsup3d evaluate`` reports on a paired dataset: the model's per-image SIDE, MAD, MAE, MSE next
    to the trivial baselines, the collapse statistics and, when the set has keypoints, the keypoint depth
    correlation.

    Args:
        dataset: a :class:`unsup3d.data.PairedDepthDataset`.
    Returns:
        The report (JSON-serialisable: ``"table"`` lines, ``"per_image"`` {method: {metric: list}},
        ``"collapse"`` {``"statistics"``, ``"fired"``}, and ``"keypoint_depth"`` where there are keypoints) and
        its text for a terminal.
    """
    with_keypoints = getattr(dataset, "has_keypoints", False)
    passed = evaluation_pass(model, dataset, batch_size, device, collapse=True, keypoints=with_keypoints)
    results = {"ours": passed["depth"]}
    results.update(baseline_scores(dataset, model.config.fov))
    table = summary_table(results)
    collapse = passed["collapse"]
    report = {
        "table": table.splitlines(),
        "per_image": {name: {k: v.tolist() for k, v in scores.items()} for name, scores in results.items()},
        "collapse": {"statistics": collapse, "fired": [detector.name for detector in fired(collapse)]},
    }
    text = [table, collapse_table(collapse)]
    if with_keypoints:
        keypoints = keypoint_scores(*passed["keypoints"])
        report["keypoint_depth"] = {k: v.tolist() for k, v in keypoints.items()}
        text.append(keypoint_summary(keypoints))
    return report, "\n".join(text)
