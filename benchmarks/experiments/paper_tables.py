"""The paper's Tables 2–5 with one command, on built-in synthetic data that needs no licence and no download.

    python benchmarks/experiments/paper_tables.py --tables 2 3 4 5 --minutes 20 --out runs/paper [--seeds 2]

It writes the data sets it needs under ``OUT/data`` (``unsup3d synth``: faces; faces with the paper's asymmetric
perturbation; cars; paired faces of another seed to train the supervised baseline), trains every row of the
chosen tables under ``OUT/runs/<row>/seed<k>`` with the same wall-clock budget (``--minutes``, and at most the
preset's iterations), evaluates each on its test set (``unsup3d evaluate``'s report, kept as ``scores.json``) and
writes ``OUT/tables.md`` (mean ± std over test images, the run-to-run spread over seeds, each row's settings, the
paper's numbers beside ours) and ``OUT/tables.json`` (every number). Rows run one after another; run the same
command again after an interruption and it resumes: finished rows are kept, a row cut short continues from its
last checkpoint with what is left of its budget.

Tables (rows of a table share its test set; the trivial baselines of Table 2 come with every evaluation):

- 2: ours on faces, the supervised model (``unsup3d train --supervised``: the depth network with L1 on
  ground-truth depth, output range 0.9–1.1 as ground-truth depth in the input view needs), ours on cars;
- 3: ablations: the full model, without albedo flip, depth flip, light (a predicted shading map), confidence;
  with the offline perceptual loss (EfficientNet-Lite0, the ``perceptual`` extra); and each of the ``cpu``
  preset's own additions switched off (the depth-prior start, the depth TV prior, the narrow depth range, the
  cosine learning-rate schedule);
- 4: faces with asymmetric perturbation (train and test), with and without confidence;
- 5: the keypoint depth correlation (DepthNet's 3DFAW score: Σ|r| over the keypoints, max = their number) of
  every face row, from the same evaluations.

The data differ from the paper's (BFM faces rendered with the 3DFAW-like keypoints of this project's generator,
not the paper's BFM set), so its numbers are a reference for the direction of each effect, not for the values.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from unsup3d.checkpoint import list_checkpoints
from unsup3d.config import build_config, load_preset, parse_overrides
from unsup3d.data import PairedDepthDataset
from unsup3d.engine.trainer import Trainer
from unsup3d.evaluation import evaluation_report
from unsup3d.inference import Reconstructor
from unsup3d.metrics import summarize
from unsup3d.synthetic.dataset import write_dataset
from unsup3d.synthetic.keypoints import has_keypoints

log = logging.getLogger("paper_tables")


@dataclass(frozen=True)
class DataSet:
    """A synthetic set under ``OUT/data/<name>``: its category, perturbation and seed offset from ``--data-seed``.
    ``paired_train``: the training images are the test split of its own set (images with depth)."""

    category: str = "face"
    perturb: bool = False
    seed_offset: int = 0
    paired_train: bool = False


DATASETS = {
    "face": DataSet(),
    "face_perturbed": DataSet(perturb=True),
    "car": DataSet(category="car"),
    "face_paired": DataSet(seed_offset=1, paired_train=True),
}


@dataclass(frozen=True)
class Row:
    """One trained model of a table: where it trains and is tested, and how it differs from the preset."""

    key: str  # its folder under OUT/runs
    label: str
    train_data: str  # a DATASETS key
    test_data: str
    overrides: tuple[str, ...] = ()
    supervised: bool = False
    paper: tuple[float, float] | None = None  # the paper's SIDE (×1e-2) and MAD of the matching row


FULL = Row("full", "ours, full model", "face", "face", paper=(0.793, 16.51))
ROWS = {
    2: [
        FULL,
        Row("supervised", "supervised (L1 on depth)", "face_paired", "face", ("model.min_depth=0.9",
            "model.max_depth=1.1", "model.use_conf=false"), supervised=True, paper=(0.410, 10.78)),
        Row("car", "ours on cars", "car", "car"),
    ],
    3: [
        FULL,
        Row("no_albedo_flip", "w/o albedo flip", "face", "face", ("model.flip_albedo=false",), paper=(2.916, 39.04)),
        Row("no_depth_flip", "w/o depth flip", "face", "face", ("model.flip_depth=false",), paper=(1.139, 27.06)),
        Row("no_light", "w/o light (shading map)", "face", "face", ("model.use_light=false",), paper=(2.406, 41.64)),
        Row("no_conf", "w/o confidence", "face", "face", ("model.use_conf=false",), paper=(0.829, 16.39)),
        Row("perceptual", "w/ perceptual loss (EfficientNet-Lite0)", "face", "face",
            ("model.perceptual=efficientnet_lite0",)),
        Row("no_prior_start", "w/o the ellipsoid start", "face", "face", ("train.depth_prior_iterations=0",)),
        Row("no_tv", "w/o the depth TV prior", "face", "face", ("model.lam_depth_smooth=0",)),
        Row("wide_range", "depth range 0.9–1.1 (the paper's)", "face", "face",
            ("model.min_depth=0.9", "model.max_depth=1.1")),
        Row("constant_lr", "constant learning rate", "face", "face", ("train.lr_schedule=constant",
            "train.lr_warmup=0")),
    ],
    4: [
        Row("perturbed_conf", "perturbed, with confidence", "face_perturbed", "face_perturbed", paper=(0.878, 17.14)),
        Row("perturbed_no_conf", "perturbed, w/o confidence", "face_perturbed", "face_perturbed",
            ("model.use_conf=false",), paper=(2.141, 26.61)),
    ],
}  # fmt: skip
ROWS[5] = [row for row in dict.fromkeys(ROWS[2] + ROWS[3]) if has_keypoints(DATASETS[row.test_data].category)]
PAPER_BASELINES = {"constant": (2.723, 43.34), "average": (1.990, 23.26)}
PAPER_KEYPOINTS = 48.98  # "Ours" on 3DFAW, 66 keypoints


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, nargs="+", choices=sorted(ROWS), default=sorted(ROWS))
    parser.add_argument("--minutes", type=float, required=True, help="training budget of every row (wall time)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=1, help="training seeds per row (0, 1, ...)")
    parser.add_argument("--n-train", type=int, default=6000)
    parser.add_argument("--n-test", type=int, default=300)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--iterations", type=int, help="iterations of every row (default: the preset's)")
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], help="applied to every row")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.seeds < 1 or args.n_train < 1 or args.n_test < 2:
        parser.error("--minutes must be > 0, --seeds and --n-train >= 1, --n-test >= 2")
    return args


def ensure_data(out: Path, name: str, args: argparse.Namespace) -> Path:
    """The folder of data set ``name``, written unless a complete copy is there (marked once written)."""
    spec, folder = DATASETS[name], out / "data" / name
    complete = folder / "complete"
    if not complete.is_file():
        n_train, n_test = (0, args.n_train) if spec.paired_train else (args.n_train, args.n_test)
        log.info("writing data set %s (%d + %d images)", name, n_train, n_test)
        write_dataset(
            folder, n_train, n_test, seed=args.data_seed + spec.seed_offset, category=spec.category,
            perturb=spec.perturb, progress=False,
        )  # fmt: skip
        complete.write_text("written by benchmarks/experiments/paper_tables.py\n")
    return folder


def row_config(row: Row, seed: int, train_dir: Path, args: argparse.Namespace):
    layers = [load_preset(args.preset), parse_overrides([*args.overrides, *row.overrides, f"train.seed={seed}"])]
    train = {"supervised": row.supervised, "max_minutes": args.minutes}
    if args.iterations is not None:
        train["iterations"] = args.iterations
    layers.append({"train": train, "data": {"train_dir": str(train_dir)}})
    return build_config(*layers)


def minutes_used(run: Path) -> float:
    """Training minutes a row has spent: finished attempts, plus an interrupted one up to its last checkpoint."""
    path = run / "budget.json"
    if not path.is_file():
        return 0.0
    budget = json.loads(path.read_text())
    used = budget["minutes"]
    if budget.get("started") is not None:  # the last attempt never returned
        checkpoints = list_checkpoints(run / "checkpoints")
        if checkpoints:
            used += max(0.0, (checkpoints[-1].stat().st_mtime - budget["started"]) / 60)
    return used


def train_row(row: Row, seed: int, run: Path, out: Path, args: argparse.Namespace) -> None:
    """Train (or continue) one row within what is left of its budget."""
    used = minutes_used(run)
    left = args.minutes - used
    data = ensure_data(out, row.train_data, args)
    train_dir = data / "test" if DATASETS[row.train_data].paired_train else data / "train"
    config = row_config(row, seed, train_dir, args)
    resume = bool(list_checkpoints(run / "checkpoints"))
    trainer = Trainer(config, run, resume=resume, progress=False)
    if left > 0 and trainer.iteration < config.train.iterations:
        (run / "budget.json").write_text(json.dumps({"minutes": used, "started": time.time()}))
        started = time.monotonic()
        trainer.fit(minutes=left)
        used += (time.monotonic() - started) / 60
    (run / "budget.json").write_text(json.dumps({"minutes": used, "started": None}))
    if trainer.interrupted:
        raise KeyboardInterrupt(f"{row.key} seed {seed} stopped at iteration {trainer.iteration}; run again to resume")
    log.info("%s seed %d: iteration %d in %.1f minutes", row.key, seed, trainer.iteration, used)


def run_row(row: Row, seed: int, out: Path, args: argparse.Namespace) -> dict:
    """The row's evaluation report (``scores.json``), training and evaluating it first where needed."""
    run = out / "runs" / row.key / f"seed{seed}"
    scores = run / "scores.json"
    if scores.is_file():
        return json.loads(scores.read_text())
    train_row(row, seed, run, out, args)
    reconstructor = Reconstructor.from_checkpoint(run)
    dataset = PairedDepthDataset(ensure_data(out, row.test_data, args) / "test", reconstructor.config.image_size)
    report, _ = evaluation_report(reconstructor.model, dataset, 64, reconstructor.device)
    budget = json.loads((run / "budget.json").read_text())
    report["training"] = {"iteration": reconstructor.iteration, "minutes": budget["minutes"]}
    scores.write_text(json.dumps(report))
    return report


def statistics(values: list[list[float]]) -> dict[str, float]:
    """Per-image values of each seed → mean and std over all images, and the std of the per-seed means."""
    images = torch.tensor([v for seed in values for v in seed], dtype=torch.float64)
    mean, std = summarize(images)
    seed_means = [float(torch.tensor(seed, dtype=torch.float64).nanmean()) for seed in values]
    spread = float(torch.tensor(seed_means).std()) if len(seed_means) > 1 else math.nan
    return {"mean": mean, "std": std, "seed_spread": spread, "seeds": len(values)}


def row_summary(reports: list[dict], method: str = "ours") -> dict:
    """SIDE (×1e-2), MAD and, where present, the keypoint score of one method over a row's seeds."""
    per_image = [report["per_image"][method] for report in reports]
    summary = {
        "side": statistics([[v * 100 for v in scores["side"]] for scores in per_image]),
        "mad": statistics([scores["mad"] for scores in per_image]),
        "collapse": sorted({name for report in reports for name in report["collapse"]["fired"]}),
        "iterations": [report["training"]["iteration"] for report in reports],
        "minutes": [round(report["training"]["minutes"], 2) for report in reports],
    }
    if method == "ours" and all("keypoint_depth" in report for report in reports):
        kp = [[report["keypoint_depth"]["depth_corr"]] for report in reports]
        summary["keypoint_depth"] = statistics(kp)
        summary["keypoints"] = len(reports[0]["keypoint_depth"]["correlations"])
    return summary


def _cell(stat: dict, per_image: bool = True) -> str:
    spread = "" if math.isnan(stat["seed_spread"]) else f" (seeds ± {stat['seed_spread']:.3f})"
    if not per_image:  # one value per seed
        return f"{stat['mean']:.2f}{spread}"
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}{spread}"


def _paper(pair: tuple[float, float] | None) -> str:
    return "—" if pair is None else f"{pair[0]:.3f} / {pair[1]:.2f}"


def table_lines(table: int, results: dict, args: argparse.Namespace) -> list[str]:
    """The Markdown of one table from the row summaries in ``results``."""
    lines = [f"## Table {table}", ""]
    if table == 5:
        lines += ["| row | keypoint depth correlation (Σ\\|r\\|) | keypoints | paper (3DFAW, 66 keypoints) |",
                  "|---|---|---|---|"]  # fmt: skip
        for row in ROWS[5]:
            summary = results[row.key]["ours"]
            if "keypoint_depth" in summary:
                cell = _cell(summary["keypoint_depth"], per_image=False)
                paper = f"{PAPER_KEYPOINTS}" if row is FULL else "—"
                lines.append(f"| {row.label} | {cell} | {summary['keypoints']} | {paper} |")
        return lines + [""]
    lines += ["| row | SIDE (×10⁻²) | MAD (°) | paper SIDE / MAD | settings | iterations | collapse |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    tested = set()
    for row in ROWS[table]:
        if table == 2 and row.test_data not in tested:  # the trivial baselines, once per test set
            tested.add(row.test_data)
            for name in ("constant", "average"):
                base = results[row.key][name]
                paper = _paper(PAPER_BASELINES[name]) if row.test_data == "face" else "—"
                lines.append(f"| {name} depth ({row.test_data}) | {_cell(base['side'])} | {_cell(base['mad'])} "
                             f"| {paper} | — | — | — |")  # fmt: skip
        summary = results[row.key]["ours"]
        settings = " ".join(f"`{o}`" for o in row.overrides) or "the preset"
        collapse = ", ".join(summary["collapse"]) or "none"
        lines.append(
            f"| {row.label} | {_cell(summary['side'])} | {_cell(summary['mad'])} | {_paper(row.paper)} | {settings} "
            f"| {'/'.join(map(str, summary['iterations']))} | {collapse} |"
        )
    return lines + [""]


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces a run with ``args`` (every option that changes a number)."""
    parts = [
        "python benchmarks/experiments/paper_tables.py",
        f"--tables {' '.join(map(str, args.tables))} --minutes {args.minutes:g}",
        f"--out {args.out} --seeds {args.seeds} --n-train {args.n_train} --n-test {args.n_test}",
        f"--data-seed {args.data_seed} --preset {args.preset}",
    ]
    if args.iterations is not None:
        parts.append(f"--iterations {args.iterations}")
    if args.overrides:
        parts.append("--set " + " ".join(args.overrides))
    return " ".join(parts)


def write_tables(out: Path, results: dict, args: argparse.Namespace) -> str:
    header = [
        "# The paper's tables, measured",
        "",
        f"`{command_line(args)}` "
        f"(preset `{args.preset}`; every row trains for at most {args.minutes:g} minutes; seeds "
        f"{', '.join(map(str, range(args.seeds)))}; built-in synthetic data, seed {args.data_seed}, not the paper's "
        "BFM faces). Cells: mean ± std over the test images of all seeds, and the std of the per-seed means. "
        "Paper columns: the paper's numbers for the matching row, on its own data.",
        "",
    ]
    body = [line for table in args.tables for line in table_lines(table, results, args)]
    text = "\n".join(header + body)
    (out / "tables.md").write_text(text)
    (out / "tables.json").write_text(json.dumps({"settings": vars(args) | {"out": str(out)}, "rows": results}))
    return text


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    rows = {row.key: row for table in args.tables for row in ROWS[table]}
    results = {}
    for row in rows.values():
        reports = [run_row(row, seed, out, args) for seed in range(args.seeds)]
        results[row.key] = {method: row_summary(reports, method) for method in ("ours", "constant", "average")}
    print(write_tables(out, results, args))


if __name__ == "__main__":
    main()
