"""Command-line argument types and the parser class: every numeric flag is checked by one of the ``type=``
functions here, and any argument error is a :class:`UsageError` naming the flag (exit code 2)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from unsup3d.config import ConfigError


class UsageError(ConfigError):
    """A command-line argument is missing, unknown or out of range; the message names the flag (exit code 2)."""


class Parser(argparse.ArgumentParser):
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
