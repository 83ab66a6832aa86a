"""How does a trained model see the synthetic test faces? View, translation, canonical-shape and relief statistics.

Runs a checkpoint on the built-in synthetic test set (``test/image``, ``test/depth``, and the true views in
``test/meta.jsonl``, written by ``unsup3d synth``) and prints, with a label each:

    python benchmarks/experiments/view_analysis.py --checkpoint runs/cpu20 --data data/synth/test \
        [--limit 100] [--json out.json] [--refine STEPS]

``--refine STEPS`` refines each reconstruction on its photo first (``unsup3d reconstruct --refine``).

Views (``(rx, ry, rz)`` = pitch, yaw, roll in radians; ``(tx, ty, tz)`` in metres, ``docs/conventions.md``):

- ``r``: Pearson correlation of predicted and true angle over the images; ``k``: least-squares slope of
  predicted on true angle, both centred (1: the right size of turn, below 1: turns under-estimated).
- per |true yaw| band (0–15°, 15–30°, 30–45°): ``predicted/true yaw`` = Σ ŷ·y / Σ y² over the band's images
  (a slope through the origin, as ``benchmarks/experiments/oracle_depth.py`` prints it).
- ``tx~yaw``: correlation of the predicted horizontal translation with the true yaw.
- ``tx ≈ a·sin(yaw)``: ``a`` is the centred least-squares slope of tx on sin(yaw), for the model (its own tx on
  its own yaw) and for the data (true tx on true yaw). Turning about ``p = (0, 0, z_p)`` instead of the
  rotation centre ``c = (0, 0, 1)`` is the same as turning about ``c`` and translating by ``(R − I)(c − p)``,
  whose x component is ``(1 − z_p)·sin(yaw)`` for small pitch and roll; so the model turns its faces about
  depth ``z_p = 1 − a`` (printed as ``pivot depth``).

Canonical depth (the predicted depth in the symmetric frame, S × S):

- ``mean over the central S/2 × S/2``: mean canonical depth over that square, averaged over the images.
- ``centre to border``: per image, mean depth on the one-pixel frame of the map minus the mean over the
  central 4 × 4 pixels; the median over the images (m).
- ``antisymmetric share``: on the central 3S/4 × 3S/4 square, ``A = (D − flip(D)) / 2`` (flip of the width
  axis) and the relief ``D − mean(D)``; their RMS over all images and pixels, and the ratio of the two.
- ``residual rotation``: per image, the yaw ``θ`` whose linear depth change ``−θ·x`` best fits ``A`` in least
  squares, with ``x = (u − (S − 1) / 2) / f`` the pixel's horizontal position at depth 1 (m, ``f`` the focal
  length in pixels); printed: the standard deviation of θ over the images (°), its correlation with the true
  yaw, and the standard deviation of the true yaw (°) to compare with.

Depth in the input view, inside the metrics' evaluation mask (``unsup3d.metrics.evaluation_mask``):

- ``SIDE`` (×1e-2) and ``MAD`` (°): means over the images, as ``unsup3d evaluate`` prints them.
- ``SIDE >= 3 px inside``: SIDE on the evaluation mask eroded by 3 more pixels; ``rim share``: the fraction of
  evaluated pixels (over all images) that this erosion removes.
- ``SIDE after relief rescaling``: per image, with ``a`` and ``b`` the predicted and true log-depth minus their
  means over the mask, the relief factor ``s = Σab / Σa²`` minimises SIDE of the depth ``exp(mean + s·a)``
  (its predicted relief rescaled in log-depth); the mean of that minimal SIDE (×1e-2) and the median of ``s``
  (above 1: predicted relief too shallow).
- ``relief``: median over the images of max − min depth inside the mask (m), model and ground truth.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

from unsup3d.data import PairedDepthDataset
from unsup3d.geometry import focal_length
from unsup3d.inference import Reconstructor, RefineSettings
from unsup3d.metrics import depth_metrics, erode_mask, evaluation_mask, pearson, side, slope

YAW_BANDS = ((0, 15), (15, 30), (30, 45))  # degrees of |true yaw|; the last band includes 45
RIM_PIXELS = 3  # "inside" = at least this many pixels inside the evaluation mask
CENTRE_FRACTION = 0.5  # side of the square for the mean canonical depth, as a fraction of S
FACE_FRACTION = 0.75  # side of the square for the antisymmetric share, as a fraction of S
ANGLES = (("pitch", 0), ("yaw", 1), ("roll", 2))


def true_views(test_dir: Path) -> dict[str, list[float]]:
    """Name → true view (6,) from ``meta.jsonl`` of a synthetic test set."""
    path = test_dir / "meta.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: --data must be a synthetic test set written by `unsup3d synth`")
    records = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {record["name"]: record["view"] for record in records}


@torch.no_grad()
def predict(reconstructor: Reconstructor, dataset, batch_size: int) -> dict[str, torch.Tensor]:
    """Run the model over a paired dataset: float64 depth/gt/canonical (N, S, S), views (N, 6), true views."""
    truth = true_views(Path(dataset.dataset.root if isinstance(dataset, Subset) else dataset.root))
    out: dict[str, list] = {"depth": [], "gt": [], "canonical": [], "view": [], "true_view": []}
    for batch in DataLoader(dataset, batch_size=batch_size):
        recon = reconstructor(batch["image"])
        out["depth"].append(recon.depth.double())  # NaN where there is no surface
        out["gt"].append(batch["depth"].double())
        out["canonical"].append(recon.canonical_depth.double())
        out["view"].append(recon.view.double())
        out["true_view"].append(torch.tensor([truth[name] for name in batch["name"]], dtype=torch.float64))
    return {key: torch.cat(value) for key, value in out.items()}


def view_stats(view: torch.Tensor, true: torch.Tensor) -> dict[str, float]:
    """Correlation and slope of predicted on true pitch, yaw and roll: (N, 6) views → dict."""
    stats = {}
    for name, i in ANGLES:
        stats[f"{name}_r"] = pearson(view[:, i], true[:, i])
        stats[f"{name}_k"] = slope(view[:, i], true[:, i])
    return stats


def band_stats(yaw: torch.Tensor, true_yaw: torch.Tensor) -> dict[str, float]:
    """Image count and predicted/true yaw (slope through the origin) per |true yaw| band: (N,), (N,) → dict."""
    stats = {}
    size = true_yaw.abs().rad2deg()
    for low, high in YAW_BANDS:
        inside = (size >= low) & ((size < high) if high != YAW_BANDS[-1][1] else (size <= high))
        ratio = (yaw[inside] * true_yaw[inside]).sum() / (true_yaw[inside] ** 2).sum() if inside.any() else math.nan
        stats[f"yaw_{low}_{high}_count"] = int(inside.sum())
        stats[f"yaw_{low}_{high}_ratio"] = float(ratio)
    return stats


def translation_stats(view: torch.Tensor, true: torch.Tensor) -> dict[str, float]:
    """tx~yaw and the fits tx ≈ a·sin(yaw) of the model and of the data: (N, 6), (N, 6) → dict."""
    a_model = slope(view[:, 3], view[:, 1].sin())
    return {
        "tx_vs_true_yaw_r": pearson(view[:, 3], true[:, 1]),
        "tx_sin_yaw_a_model": a_model,
        "tx_sin_yaw_a_data": slope(true[:, 3], true[:, 1].sin()),
        "pivot_depth": 1.0 - a_model,
    }


def central(maps: torch.Tensor, fraction: float) -> torch.Tensor:
    """(N, S, S) → the central square of side ``fraction·S`` (rounded to keep it centred), (N, s, s)."""
    size = maps.shape[-1]
    margin = round(size * (1 - fraction) / 2)
    return maps[:, margin : size - margin, margin : size - margin]


def canonical_stats(canonical: torch.Tensor, true_yaw: torch.Tensor, fov: float) -> dict[str, float]:
    """Central depth, centre-to-border depth, antisymmetric share and residual rotation: (N, S, S), (N,) → dict."""
    size = canonical.shape[-1]
    frame = torch.cat([canonical[:, 0], canonical[:, -1], canonical[:, 1:-1, 0], canonical[:, 1:-1, -1]], 1)
    face = central(canonical, FACE_FRACTION)
    anti = (face - face.flip(-1)) / 2  # (N, s, s)
    relief = face - face.mean(dim=(1, 2), keepdim=True)
    width = face.shape[-1]
    x = (torch.arange(width, dtype=face.dtype) - (width - 1) / 2) / focal_length(size, fov)  # (s,) metres at depth 1
    theta = -(anti * x).sum(dim=(1, 2)) / (x**2).sum() / width  # (N,) radians
    rms_anti, rms_relief = float(anti.pow(2).mean().sqrt()), float(relief.pow(2).mean().sqrt())
    return {
        "central_mean_depth": float(central(canonical, CENTRE_FRACTION).mean()),
        "centre_to_border": float((frame.mean(1) - central(canonical, 4 / size).mean(dim=(1, 2))).median()),
        "antisymmetric_rms": rms_anti,
        "relief_rms": rms_relief,
        "antisymmetric_share": rms_anti / max(rms_relief, 1e-12),
        "residual_rotation_std_deg": math.degrees(float(theta.std())) if len(theta) > 1 else math.nan,
        "residual_rotation_vs_true_yaw_r": pearson(theta, true_yaw),
        "true_yaw_std_deg": math.degrees(float(true_yaw.std())) if len(true_yaw) > 1 else math.nan,
    }


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, S, S) values, (N, S, S) bool → (N,) means over the mask; values outside never enter."""
    return torch.where(mask, values, torch.zeros_like(values)).sum(dim=(1, 2)) / mask.sum(dim=(1, 2))


def rescaled_side(depth: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, the relief factor s on the predicted log-depth that minimises SIDE, and that SIDE: (N,), (N,)."""
    one = torch.ones_like(depth)
    log_pred, log_gt = torch.where(mask, depth, one).log(), torch.where(mask, gt, one).log()
    a = log_pred - masked_mean(log_pred, mask)[:, None, None]
    b = log_gt - masked_mean(log_gt, mask)[:, None, None]
    factor = masked_mean(a * b, mask) / masked_mean(a * a, mask).clamp(min=1e-30)
    residual = factor[:, None, None] * a - b
    return factor, masked_mean(residual**2, mask).sqrt()


def depth_stats(depth: torch.Tensor, gt: torch.Tensor, fov: float) -> dict[str, float]:
    """SIDE, MAD, interior SIDE and rim share, relief-rescaled SIDE and relief: (N, S, S) ×2 → dict."""
    valid = torch.isfinite(depth)  # the reconstruction's depth is NaN where it has no surface
    mask = evaluation_mask(gt, valid)
    scores = depth_metrics(depth, gt, valid, fov)
    interior = mask
    for _ in range(RIM_PIXELS):
        interior = erode_mask(interior)
    factor, side_rescaled = rescaled_side(depth, gt, mask)
    inside = side(depth, gt, interior)

    def relief(maps: torch.Tensor) -> float:
        high = torch.where(mask, maps, torch.full_like(maps, -math.inf)).amax(dim=(1, 2))
        low = torch.where(mask, maps, torch.full_like(maps, math.inf)).amin(dim=(1, 2))
        return float((high - low)[mask.any(dim=(1, 2))].median())

    return {
        "side": float(scores["side"].nanmean()) * 100,
        "mad": float(scores["mad"].nanmean()),
        "side_inside": float(inside.nanmean()) * 100,
        "rim_share": 1.0 - float(interior.sum()) / max(float(mask.sum()), 1.0),
        "side_rescaled": float(side_rescaled.nanmean()) * 100,
        "relief_factor_median": float(factor.nanmedian()),
        "relief_model": relief(depth),
        "relief_truth": relief(gt),
    }


LABELS = {
    "pitch_r": "pitch r (predicted vs true)",
    "pitch_k": "pitch k (slope, predicted on true)",
    "yaw_r": "yaw r (predicted vs true)",
    "yaw_k": "yaw k (slope, predicted on true)",
    "roll_r": "roll r (predicted vs true)",
    "roll_k": "roll k (slope, predicted on true)",
    "tx_vs_true_yaw_r": "tx~yaw (predicted tx vs true yaw, r)",
    "tx_sin_yaw_a_model": "tx = a·sin(yaw), a of the model",
    "tx_sin_yaw_a_data": "tx = a·sin(yaw), a of the data",
    "pivot_depth": "pivot depth of the model's turns (1 − a)",
    "central_mean_depth": "canonical depth, mean over the central S/2 × S/2",
    "centre_to_border": "canonical depth, centre to border (m, median)",
    "antisymmetric_rms": "canonical antisymmetric part, RMS (m)",
    "relief_rms": "canonical relief, RMS (m)",
    "antisymmetric_share": "antisymmetric share of the relief",
    "residual_rotation_std_deg": "residual rotation of the asymmetry, std (°)",
    "residual_rotation_vs_true_yaw_r": "residual rotation vs true yaw, r",
    "true_yaw_std_deg": "true yaw, std (°)",
    "side": "SIDE (x1e-2)",
    "mad": "MAD (°)",
    "side_inside": f"SIDE >= {RIM_PIXELS} px inside the mask (x1e-2)",
    "rim_share": f"rim share (evaluated pixels < {RIM_PIXELS} px from the mask's edge)",
    "side_rescaled": "SIDE after relief rescaling (x1e-2)",
    "relief_factor_median": "relief factor s of that rescaling (median)",
    "relief_model": "relief, max − min inside the mask (m), model",
    "relief_truth": "relief, max − min inside the mask (m), ground truth",
}


def label(key: str) -> str:
    """The printed label of a statistic; the per-band keys are spelled out here."""
    if key in LABELS:
        return LABELS[key]
    _, low, high, what = key.split("_")
    return f"|yaw| {low}–{high}°: " + ("images" if what == "count" else "predicted/true yaw")


def analyse(reconstructor: Reconstructor, dataset, batch_size: int) -> dict[str, float]:
    """Every statistic of the module docstring for ``reconstructor`` on a synthetic test set."""
    data = predict(reconstructor, dataset, batch_size)
    view, true = data["view"], data["true_view"]
    fov = float(reconstructor.config.fov)
    stats: dict[str, float] = {"images": len(view)}
    stats.update(depth_stats(data["depth"], data["gt"], fov))
    stats.update(view_stats(view, true))
    stats.update(band_stats(view[:, 1], true[:, 1]))
    stats.update(translation_stats(view, true))
    stats.update(canonical_stats(data["canonical"], true[:, 1], fov))
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint file or run directory (its newest)")
    parser.add_argument("--data", type=Path, default=Path("data/synth/test"), help="synthetic test set")
    parser.add_argument("--limit", type=int, default=None, help="only the first N test images")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="also write the statistics to this JSON file")
    parser.add_argument("--refine", type=int, default=0, help="steps of per-photo refinement (0: none)")
    args = parser.parse_args()

    reconstructor = Reconstructor.from_checkpoint(args.checkpoint, device=args.device)
    reconstructor.refinement = RefineSettings(steps=args.refine)
    dataset = PairedDepthDataset(args.data, reconstructor.image_size)
    if args.limit is not None:
        dataset = Subset(dataset, range(min(args.limit, len(dataset))))
    stats = analyse(reconstructor, dataset, args.batch_size)
    print(f"checkpoint {reconstructor.checkpoint_path} (iteration {reconstructor.iteration}), {stats['images']} images")
    for key, value in stats.items():
        if key != "images":
            print(f"{label(key):<58} {value:>9.4f}" if isinstance(value, float) else f"{label(key):<58} {value:>9}")
    if args.json is not None:
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in stats.items()}
        record = {"checkpoint": str(reconstructor.checkpoint_path), "iteration": reconstructor.iteration, **clean}
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
