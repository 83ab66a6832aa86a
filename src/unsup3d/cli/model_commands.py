"""The model-side commands: ``reconstruct`` (photos and videos to 3D), ``convert-original``, ``export-weights``
and ``serve`` (the web page)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from unsup3d.cli.arguments import integer, positive_int
from unsup3d.config import ConfigError


def add_commands(sub) -> None:
    """Add ``reconstruct``, ``convert-original``, ``export-weights`` and ``serve`` to ``sub``."""
    _add_reconstruct(sub)
    _add_convert(sub)
    _add_export_weights(sub)
    _add_serve(sub)


# ---------------------------------------------------------------------- reconstruct
def _add_reconstruct(sub) -> None:
    from unsup3d.data.images import ANIMATED_FRAMES
    from unsup3d.inference.crop import CROP_FALLBACKS, CROP_KINDS
    from unsup3d.inference.refine import DEFAULT_STEPS
    from unsup3d.outputs.write import GROUP_FILES

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
    p.add_argument(
        "--refine",
        nargs="?",
        type=integer(1, 10_000),
        const=DEFAULT_STEPS,
        metavar="STEPS",
        help=f"fit each photo's depth, albedo, light and view to that photo alone, with the paper's objective "
        f"(STEPS Adam steps, 1 to 10000; {DEFAULT_STEPS} without a number)",
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
    from unsup3d.inference import Reconstructor
    from unsup3d.inference.refine import RefineSettings
    from unsup3d.outputs import reconstruct_to_folder, write_report
    from unsup3d.outputs.write import OutputOptions, available_groups

    try:
        options = OutputOptions(tuple(args.only or available_groups()), args.mesh_size)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    reconstructor = _chosen_model(args, Reconstructor)
    if args.refine:
        reconstructor.refinement = RefineSettings(steps=args.refine)
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
