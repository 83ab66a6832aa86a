"""The training-side commands: ``synth`` (the built-in synthetic data), ``train`` and ``evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

from unsup3d.cli.arguments import integer, non_negative_int, positive_float, positive_int
from unsup3d.extras import require
from unsup3d.files import OutputError


def add_commands(sub) -> None:
    """Add ``synth``, ``train`` and ``evaluate`` to the sub-command parsers ``sub``."""
    _add_synth(sub)
    _add_train(sub)
    _add_evaluate(sub)


# ---------------------------------------------------------------------- synth
def _add_synth(sub) -> None:
    from unsup3d.synthetic.categories import CATEGORIES

    p = sub.add_parser("synth", help="write the built-in synthetic dataset with exact ground-truth depth")
    p.add_argument("--out", required=True, type=Path, help="output folder (train/ and test/ are created)")
    p.add_argument("--n-train", type=non_negative_int, default=6000, help="training images (default: 6000)")
    p.add_argument("--n-test", type=non_negative_int, default=300, help="test images with depth (default: 300)")
    p.add_argument(
        "--size",
        type=integer(2, 1024),
        default=64,
        help="image size in pixels (default 64; the networks take 64, 128, 256)",
    )
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument(
        "--category",
        choices=list(CATEGORIES),
        default="face",
        help="object category: face (default) or car (seen from the front and above, with its tyres)",
    )
    p.add_argument(
        "--perturb",
        action="store_true",
        help="asymmetric perturbation (paper, Table 4): blend one random colour rectangle, sides 20-50%% of the "
        "image, alpha 0.5-1, onto every image; the other pixels are those of the unperturbed set",
    )
    p.set_defaults(func=_synth)


def _synth(args) -> None:
    from unsup3d.synthetic.dataset import write_dataset
    from unsup3d.synthetic.keypoints import has_keypoints

    require("skimage.data", "The synthetic face generator (photo backgrounds)")  # fail before writing files
    write_dataset(
        args.out, args.n_train, args.n_test, size=args.size, seed=args.seed, perturb=args.perturb,
        category=args.category,
    )  # fmt: skip
    perturbed = ", perturbed" if args.perturb else ""
    extras = "depth and keypoints" if has_keypoints(args.category) else "depth"
    print(
        f"synthetic {args.category} data written to {args.out}: train/ ({args.n_train} images{perturbed}), "
        f"test/ ({args.n_test} with {extras}{perturbed})"
    )


# ---------------------------------------------------------------------- train
def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train the photo-geometric autoencoder on a folder of images")
    p.add_argument("--data", type=Path, help="folder of training images (recursive)")
    p.add_argument("--out", required=True, type=Path, help="run directory (checkpoints, logs, config)")
    p.add_argument("--preset", default="cpu", help="shipped preset: cpu (default) or paper")
    p.add_argument("--config", type=Path, help="YAML file of overrides, applied after the preset")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE", help="e.g. train.lr=2e-4")
    p.add_argument("--iterations", type=positive_int, help="total iterations (train.iterations)")
    p.add_argument("--max-minutes", type=positive_float, help="stop after this many minutes (train.max_minutes)")
    p.add_argument("--eval-data", type=Path, help="paired image/depth folder: validation reports SIDE and MAD")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="train.device")
    p.add_argument("--resume", action="store_true", help="continue from the run directory's newest checkpoint")
    p.add_argument(
        "--supervised",
        action="store_true",
        help="the supervised baseline: --data is a paired image/ + depth/ folder; trains only the depth network, "
        "with L1 on the ground-truth depth (train.supervised=true, model.use_conf=false)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)


def training_config(args):
    """Preset → config file → --set → explicit flags, validated."""
    from unsup3d.config import build_config, load_preset, load_yaml, parse_overrides

    layers = [load_preset(args.preset)]
    if args.config is not None:
        layers.append(load_yaml(args.config))
    layers.append(parse_overrides(args.overrides))
    flags = {"model": {}, "train": {}, "data": {}}
    if args.supervised:
        flags["train"]["supervised"] = True
        flags["model"]["use_conf"] = False
    if args.data is not None:
        flags["data"]["train_dir"] = str(args.data)
    if args.eval_data is not None:
        flags["data"]["eval_dir"] = str(args.eval_data)
    for key, value in (("iterations", args.iterations), ("max_minutes", args.max_minutes), ("device", args.device)):
        if value is not None:
            flags["train"][key] = value
    layers.append(flags)
    return build_config(*layers)


def _train(args) -> None:
    from unsup3d.engine.distributed import teardown
    from unsup3d.engine.trainer import Trainer

    config = training_config(args)
    trainer, finished = None, False
    try:
        trainer = Trainer(config, args.out, resume=args.resume, progress=not args.no_progress)
        trainer.fit()
        iteration, is_main, finished = trainer.iteration, trainer.job.is_main, True
    finally:
        del trainer  # its DistributedDataParallel wrappers go before the process group they use
        teardown(wait=finished)  # after an error another rank may never arrive: do not wait for it
    if is_main:
        print(f"trained to iteration {iteration}; checkpoints in {args.out / 'checkpoints'}")


# ---------------------------------------------------------------------- evaluate
def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="SIDE and MAD on images with ground-truth depth, with baselines, and collapse statistics"
    )
    p.add_argument("--checkpoint", required=True, type=Path, help="checkpoint file or run directory")
    p.add_argument(
        "--data",
        required=True,
        type=Path,
        help="paired folder: image/ and depth/ (.npy or .png); keypoints in meta.jsonl add the keypoint depth "
        "correlation (paper, Table 5)",
    )
    p.add_argument("--output", type=Path, help="write scores here (JSON); default: next to the checkpoint")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--device", default=None, choices=["cpu", "cuda"])
    p.set_defaults(func=_evaluate)


def _evaluate(args) -> None:
    from unsup3d.data import PairedDepthDataset
    from unsup3d.evaluation import evaluation_report
    from unsup3d.inference import Reconstructor

    reconstructor = Reconstructor.from_checkpoint(args.checkpoint, device=args.device)
    model = reconstructor.model
    dataset = PairedDepthDataset(args.data, model.config.image_size)
    report, text = evaluation_report(model, dataset, args.batch_size, reconstructor.device)
    print(text)
    output = args.output or Path(reconstructor.checkpoint_path).parent / "eval_scores.json"
    try:
        output.write_text(json.dumps(report))
    except OSError as error:
        raise OutputError(f"cannot write scores to {output}: {error.strerror or error}") from error
    print(f"scores written to {output}")
