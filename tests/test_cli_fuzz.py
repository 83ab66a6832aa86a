"""Property-based: any value of any numeric flag of any command either runs (up to the missing data the tests point
it at, exit 3, or a stand-in for the real work, exit 0) or is refused with exit code 2 and one line naming the
flag; never a traceback or another exit code."""

import dataclasses
import itertools
import logging
import math
from contextlib import contextmanager
from unittest import mock

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from unsup3d.checkpoint import write_checkpoint
from unsup3d.cli import main
from unsup3d.config import build_config
from unsup3d.model import PhotoGeometricAutoencoder

SETTINGS = settings(max_examples=50, deadline=None)
TINY = {"depth_nf": 4, "albedo_nf": 4, "encoder_nf": 4, "conf_nf": 4, "autoencoder_zdim": 8, "conf_zdim": 8}

# flag: (type, smallest, largest) as the documentation states them; floats must also be finite and > smallest.
FLAGS = {
    "synth": {"n-train": (int, 0, None), "n-test": (int, 0, None), "size": (int, 2, 1024), "seed": (int, 0, None)},
    "train": {"iterations": (int, 1, None), "max-minutes": (float, 0, None)},
    "evaluate": {"batch-size": (int, 1, None)},
    "reconstruct": {"batch-size": (int, 1, None), "workers": (int, 1, None), "mesh-size": (int, 2, 1024)},
    "serve": {"port": (int, 1, 65535)},
}
VALUES = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.integers(-3, 1100).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(
        ["", " 7 ", "1_000", "+3", "-0", "0x10", "1e3", "5.0", "nan", "-inf", "1e400", "\u0663", "9" * 5000]
    ),
    st.text(max_size=12),
)


def accepted(spec, text: str) -> bool:
    """The reference: does the documentation allow ``text`` for a flag of ``spec``?"""
    kind, low, high = spec
    try:
        value = kind(text)
    except ValueError:
        return False
    if kind is float:
        return math.isfinite(value) and value > low
    return value >= low and (high is None or value <= high)


@contextmanager
def errors_logged():
    """The messages of ERROR records of the ``unsup3d`` logger while the block runs."""
    messages = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("unsup3d")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """A tiny checkpoint, an empty folder, a missing one, and fresh output folders."""
    root = tmp_path_factory.mktemp("cli_fuzz")
    config = build_config({"model": TINY}).model
    checkpoint = write_checkpoint(
        root / "tiny.pt",
        {
            "iteration": 0,
            "model_config": dataclasses.asdict(config),
            "model": PhotoGeometricAutoencoder(config).state_dict(),
        },
    )
    (root / "empty").mkdir()
    counter = itertools.count()
    return {
        "checkpoint": str(checkpoint),
        "empty": str(root / "empty"),
        "missing": str(root / "missing"),
        "out": lambda: str(root / f"out{next(counter)}"),
    }


def base_arguments(command: str, places) -> tuple[list[str], int]:
    """The arguments ``command`` needs, and its exit code when every number is valid: 3 where the data is missing
    or empty, 0 where the real work is replaced by a stand-in."""
    return {
        "synth": (["synth", "--out", places["out"]()], 0),
        "train": (["train", "--data", places["missing"], "--out", places["out"](), "--no-progress"], 3),
        "evaluate": (["evaluate", "--checkpoint", places["checkpoint"], "--data", places["missing"]], 3),
        "reconstruct": (
            ["reconstruct", places["empty"], "--checkpoint", places["checkpoint"], "--output", places["out"]()],
            3,
        ),
        "serve": (["serve", "--checkpoint", places["checkpoint"]], 0),
    }[command]


def check(command: str, values: dict, places) -> None:
    arguments, success = base_arguments(command, places)
    given = {flag: text for flag, text in values.items() if text is not None}
    argv = [*arguments, *(f"--{flag}={text}" for flag, text in given.items())]
    refused = [flag for flag, text in given.items() if not accepted(FLAGS[command][flag], text)]
    event("refused" if refused else "accepted")
    with (
        errors_logged() as errors,
        mock.patch("unsup3d.synthetic.dataset.write_dataset") as write_dataset,
        mock.patch("unsup3d.cli.training_commands.require"),
        mock.patch("unsup3d.app.serve") as serve,
    ):
        code = main(argv)  # raises nothing: no traceback
    if refused:
        assert code == 2, (argv, errors)
        [message] = errors
        assert f"argument --{refused[0]}: " in message and "\n" not in message
    else:
        assert code == success, (argv, errors)
        if command == "synth":
            called = write_dataset.call_args
            assert called.args[1:] == (int(given.get("n-train", 6000)), int(given.get("n-test", 300)))
            assert called.kwargs == {
                "size": int(given.get("size", 64)),
                "seed": int(given.get("seed", 0)),
                "perturb": False,
                "category": "face",
            }
        if command == "serve":
            assert serve.call_args.args[2] == int(given.get("port", 7860))


def flag_values(command: str):
    return st.fixed_dictionaries({flag: st.none() | VALUES for flag in FLAGS[command]})


@SETTINGS
@given(flag_values("synth"))
def test_synth_numbers(places, values):
    check("synth", values, places)


@SETTINGS
@given(flag_values("train"))
def test_train_numbers(places, values):
    check("train", values, places)


@SETTINGS
@given(flag_values("evaluate"))
def test_evaluate_numbers(places, values):
    check("evaluate", values, places)


@SETTINGS
@given(flag_values("reconstruct"))
def test_reconstruct_numbers(places, values):
    check("reconstruct", values, places)


@SETTINGS
@given(flag_values("serve"))
def test_serve_numbers(places, values):
    check("serve", values, places)
