"""Command line: a thin shell over the library. ``unsup3d {synth,train,evaluate,reconstruct} --help``.

Exit codes: 0 success, 1 unexpected error, 2 bad arguments or configuration (including a feature whose optional
extra is not installed, see :mod:`unsup3d.extras`), 3 bad data, 4 bad checkpoint, 5 cannot write the output
(folder not writable, disk full), 6 training stopped on non-finite numbers (state saved), 130 interrupted.
``--debug`` shows tracebacks.

Every numeric flag is read by one of the ``type=`` functions below (:func:`integer`, :func:`positive_float`),
which check its range; any argument error (a bad number, an unknown flag, a missing one) is one line naming the
flag, exit code 2, like a bad configuration key.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path

from unsup3d.config import ConfigError
from unsup3d.extras import MissingExtraError, require
from unsup3d.files import OutputError

log = logging.getLogger("unsup3d")
LOG_FORMAT = "%(levelname)s %(message)s"


class UsageError(ConfigError):
    """A command-line argument is missing, unknown or out of range; the message names the flag (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """An argument parser that raises :class:`UsageError` instead of printing the usage and exiting, so
    argument errors are reported like every other error. Sub-command parsers are of the same class."""

    def error(self, message: str):
        message = " ".join(message.splitlines())  # one line, whatever the arguments held
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer in [low, high] (no upper bound if ``high`` is None)."""
    allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {_shown(text)}")
        return value

    return parse


def positive_float(text: str) -> float:
    """An argparse ``type``: a finite number > 0 (NaN and infinities are refused)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {_shown(text)}")
    return value


def _shown(text: str) -> str:
    """``text`` quoted on one line and cut to a readable length, for an error message."""
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "..."


positive_int = integer(1)
non_negative_int = integer(0)


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except UsageError as error:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
        log.error("%s", error)
        return 2
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format=LOG_FORMAT)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except Exception as error:  # noqa: BLE001 - the CLI turns every failure into a message and an exit code
        if args.debug:
            raise
        log.error("%s", error)
        return _exit_code(error)


def _exit_code(error: Exception) -> int:
    """The documented exit code of a failure (see the module docstring)."""
    from unsup3d.checkpoint import CheckpointError
    from unsup3d.data import DataError, ImageLoadError
    from unsup3d.engine.trainer import TrainingError

    if isinstance(error, ConfigError | MissingExtraError):
        return 2
    if isinstance(error, CheckpointError):
        return 4
    if isinstance(error, OutputError):
        return 5
    if isinstance(error, TrainingError):
        return 6
    if isinstance(error, DataError | ImageLoadError | FileNotFoundError | NotADirectoryError):
        return 3
    return 1


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="unsup3d", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    _add_synth(sub)
    _add_train(sub)
    _add_evaluate(sub)
    _add_reconstruct(sub)
    _add_convert(sub)
    _add_export_weights(sub)
    _add_serve(sub)
    return parser


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


# ---------------------------------------------------------------------- reconstruct
def _add_reconstruct(sub) -> None:
    from unsup3d.data.images import ANIMATED_FRAMES
    from unsup3d.inference.crop import CROP_FALLBACKS, CROP_KINDS
    from unsup3d.inference.export import GROUP_FILES

    p = sub.add_parser(
        "reconstruct", help="depth, albedo, light, view, meshes, overlays and turntables for each photo or video"
    )
    p.add_argument("inputs", nargs="+", type=Path, help="image or video files, or folders of images")
    _add_model_choice(p)
    p.add_argument("--output", required=True, type=Path, help="output folder: one sub-folder per input")
    p.add_argument("--crop", choices=CROP_KINDS, default="none", help="find a face or cat face and crop to it")
    p.add_argument(
        "--crop-fallback",
        choices=CROP_FALLBACKS,
        default="skip",
        help="when --crop finds nothing: skip the file (default) or use the whole photo",
    )
    p.add_argument("--only", nargs="+", choices=sorted(GROUP_FILES), help="write only these groups of outputs")
    p.add_argument(
        "--mesh-size",
        type=integer(2, 1024),
        help="upsample the depth grid to N x N (2 to 1024) for meshes and turntables",
    )
    p.add_argument("--report", action="store_true", help="write index.html over the outputs (offline)")
    p.add_argument("--video-frames", action="store_true", help="videos: also write every frame's outputs")
    p.add_argument(
        "--animated",
        choices=ANIMATED_FRAMES,
        default=ANIMATED_FRAMES[0],
        help="animated GIF/WebP/PNG: the first frame, or every frame as its own output",
    )
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--workers", type=positive_int, default=2, help="threads writing files")
    p.add_argument("--device", default=None, choices=["cpu", "cuda"])
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_reconstruct)


def _reconstruct(args) -> int:
    from unsup3d.inference import Reconstructor, reconstruct_to_folder, write_report
    from unsup3d.inference.export import OutputOptions, available_groups

    try:
        options = OutputOptions(tuple(args.only or available_groups()), args.mesh_size)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    reconstructor = _chosen_model(args, Reconstructor)
    result = reconstruct_to_folder(
        reconstructor,
        args.inputs,
        args.output,
        options,
        crop=args.crop,
        crop_fallback=args.crop_fallback,
        batch_size=args.batch_size,
        workers=args.workers,
        progress=not args.no_progress,
        video_frames=args.video_frames,
        animated=args.animated,
    )
    print(f"{result.written} reconstruction(s) written to {args.output}")
    if args.report:
        print(f"report: {write_report(args.output, result.folders, result.failed)}")
    for path, reason in result.failed:
        print(f"failed: {path}: {reason}", file=sys.stderr)
    if result.failed:
        print(f"{len(result.failed)} input(s) failed, {result.written} succeeded", file=sys.stderr)
    return 3 if result.failed and not result.written else 0


def _add_model_choice(p) -> None:
    """``--model NAME`` (a shipped model) or ``--checkpoint PATH`` (your own), at most one."""
    from unsup3d.inference.weights import SHIPPED_MODELS

    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--model",
        choices=list(SHIPPED_MODELS),
        help="a model shipped in the package; default: cats with --crop cat, else faces",
    )
    group.add_argument("--checkpoint", type=Path, help="your own weights (.safetensors), checkpoint or run directory")


def _chosen_model(args, reconstructor_class):
    """The Reconstructor that ``--model`` / ``--checkpoint`` (and ``--crop``) name."""
    from unsup3d.inference.weights import model_for_crop

    if args.checkpoint is not None:
        return reconstructor_class.from_checkpoint(args.checkpoint, device=args.device)
    name = args.model or model_for_crop(getattr(args, "crop", "none"))
    return reconstructor_class.pretrained(name, device=args.device)


# ---------------------------------------------------------------------- serve
def _add_serve(sub) -> None:
    p = sub.add_parser("serve", help="a web page for one photo to 3D (Gradio, the web extra)")
    p.add_argument(
        "--checkpoint", type=Path, help="your own weights, checkpoint or run directory, offered beside the shipped ones"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=integer(1, 65535), default=7860)
    p.add_argument("--device", default=None, choices=["cpu", "cuda"])
    p.add_argument("--concurrency", type=positive_int, default=2, help="requests reconstructed at once")
    p.add_argument(
        "--max-queue", type=positive_int, default=32, help="requests that may wait; more are told the server is busy"
    )
    p.set_defaults(func=_serve)


def _serve(args) -> None:
    from unsup3d.app import serve

    serve(args.checkpoint, args.host, args.port, args.device, args.concurrency, args.max_queue)


# ---------------------------------------------------------------------- export-weights
def _add_export_weights(sub) -> None:
    p = sub.add_parser("export-weights", help="write a checkpoint's model as safetensors + JSON (no pickle)")
    p.add_argument("checkpoint", type=Path, help="checkpoint file or run directory")
    p.add_argument("--out", required=True, type=Path, help="folder for NAME.safetensors and NAME.json")
    p.add_argument("--name", default="model", help="file name without suffix (default: model)")
    p.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    p.add_argument(
        "--card", type=Path, help="JSON file of the model card (training data, terms, recipe, command, scores)"
    )
    p.set_defaults(func=_export_weights)


def _export_weights(args) -> None:
    from unsup3d.inference.weights import export_weights

    card = None
    if args.card is not None:
        try:
            card = json.loads(args.card.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ConfigError(f"--card {args.card}: not a readable JSON file ({error})") from error
        if not isinstance(card, dict):
            raise ConfigError(f"--card {args.card}: must hold a JSON object")
    written = export_weights(args.checkpoint, args.out, args.name, args.dtype, card)
    print(f"weights written to {written} and {written.with_suffix('.json')}")


# ---------------------------------------------------------------------- convert-original
def _add_convert(sub) -> None:
    p = sub.add_parser(
        "convert-original",
        help="convert a checkpoint of the original code (checkpoint030.pth) without running code from it",
    )
    p.add_argument("source", type=Path, help="the original .pth file")
    p.add_argument("--out", required=True, type=Path, help="unsup3d checkpoint to write (.pt)")
    p.add_argument("--preset", default="paper", help="model constants it was trained with (default: paper)")
    p.add_argument(
        "--set",
        dest="overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="e.g. for cats: model.z_translation_range=0.1",
    )
    p.set_defaults(func=_convert)


def _convert(args) -> None:
    from unsup3d.config import build_config, load_preset, parse_overrides
    from unsup3d.inference import convert_original

    config = build_config(load_preset(args.preset), parse_overrides(args.overrides))
    written = convert_original(args.source, args.out, config.model)
    print(f"converted {args.source} to {written}; use it with --checkpoint {written}")


if __name__ == "__main__":
    sys.exit(main())
