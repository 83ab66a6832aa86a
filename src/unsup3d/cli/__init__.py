"""Command line: a thin shell over the library. ``unsup3d COMMAND --help``.

Exit codes: 0 success, 1 unexpected error, 2 bad arguments or configuration (including a feature whose optional
extra is not installed, see :mod:`unsup3d.extras`), 3 bad data, 4 bad checkpoint, 5 cannot write the output
(folder not writable, disk full), 6 training stopped on non-finite numbers (state saved), 130 interrupted.
``--debug`` shows tracebacks.

Every numeric flag is read by one of the ``type=`` functions of :mod:`.arguments`, which check its range; any
argument error (a bad number, an unknown flag, a missing one) is one line naming the flag, exit code 2, like a bad
configuration key.

The commands live in :mod:`.training_commands` (synth, train, evaluate) and :mod:`.model_commands`
(reconstruct, convert-original, export-weights, serve); :mod:`.arguments` holds the argument types and the parser.
"""

from __future__ import annotations

import argparse
import logging

from unsup3d.cli import model_commands, training_commands
from unsup3d.cli.arguments import Parser, UsageError
from unsup3d.config import ConfigError
from unsup3d.extras import MissingExtraError
from unsup3d.files import OutputError

__all__ = ["main"]

log = logging.getLogger("unsup3d")
LOG_FORMAT = "%(levelname)s %(message)s"


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
    parser = Parser(prog="unsup3d", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    training_commands.add_commands(sub)
    model_commands.add_commands(sub)
    return parser
