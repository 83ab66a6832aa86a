"""Every user mistake gets a one-line message naming the problem and a documented exit code, no traceback."""

import io
import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from unsup3d.checkpoint import EXPECTED, CheckpointError
from unsup3d.cli import _exit_code, main
from unsup3d.engine.trainer import TrainingError
from unsup3d.inference import Reconstructor

TINY = [
    "model.depth_nf=4",
    "model.albedo_nf=4",
    "model.encoder_nf=4",
    "model.conf_nf=4",
    "model.autoencoder_zdim=8",
    "model.conf_zdim=8",
    "train.batch_size=4",
    "train.num_workers=0",
    "data.val_fraction=0",
]


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def train(data, out, *extra):
    return main(["train", "--data", str(data), "--out", str(out), "--no-progress", "--set", *TINY, *extra])


def test_data_errors_exit_3(tmp_path, caplog):
    assert train(tmp_path / "missing", tmp_path / "run") == 3
    assert "image folder does not exist" in caplog.text
    (tmp_path / "empty").mkdir()
    assert train(tmp_path / "empty", tmp_path / "run") == 3
    assert "no images found" in caplog.text
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"nope")
    assert train(tmp_path / "bad", tmp_path / "run") == 3
    assert "no readable images" in caplog.text and "a.png" in caplog.text


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lr_sched=cosine", "unknown config key 'train.lr_sched'"),
        ("train.batch_size=many", "wrong type for 'train.batch_size'"),
        ("train.lr_schedule=step", "'train.lr_schedule': allowed"),
        ("model.depth_nf=6", "'model.depth_nf': allowed a positive multiple of 4"),
    ],
)
def test_config_errors_exit_2_and_name_the_key(images, tmp_path, caplog, override, message):
    assert train(images, tmp_path / "run", override) == 2
    assert message in caplog.text


def test_unwritable_outputs_exit_5(images, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    assert train(images, blocker / "run") == 5
    assert "cannot write to folder" in caplog.text
    assert train(images, tmp_path / "run", "train.iterations=1") == 0
    command = ["reconstruct", str(images), "--checkpoint", str(tmp_path / "run"), "--no-progress"]
    assert main([*command, "--output", str(blocker / "out")]) == 5
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run"), "--data", str(images)]) == 3  # no depth/


def test_checkpoint_errors_exit_4(images, tmp_path, caplog):
    command = ["reconstruct", str(images), "--output", str(tmp_path / "out"), "--no-progress", "--checkpoint"]
    assert main([*command, str(tmp_path / "nothing.pt")]) == 4
    assert "no such checkpoint" in caplog.text
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "step_00000001.pt").write_bytes(b"garbage")
    assert main([*command, str(tmp_path / "run")]) == 4
    assert "no loadable checkpoint" in caplog.text


def test_resuming_with_other_settings_exits_4(images, tmp_path, caplog):
    assert train(images, tmp_path / "run", "train.iterations=1") == 0
    assert train(images, tmp_path / "run", "train.iterations=2", "model.depth_nf=8", "--resume") == 4
    assert "different model or optimiser configuration" in caplog.text


def test_non_finite_training_exit_code():
    assert _exit_code(TrainingError("loss non-finite")) == 6


def test_no_traceback_unless_debug(tmp_path):
    command = [
        sys.executable,
        "-m",
        "unsup3d.cli",
        "train",
        "--data",
        str(tmp_path / "missing"),
        "--out",
        str(tmp_path / "x"),
    ]
    quiet = subprocess.run(command, capture_output=True, text=True)
    assert quiet.returncode == 3
    assert "image folder does not exist" in quiet.stderr and "Traceback" not in quiet.stderr
    loud = subprocess.run([*command[:3], "--debug", *command[3:]], capture_output=True, text=True)
    assert loud.returncode != 0 and "Traceback" in loud.stderr


class RunsACommand:
    """A pickle payload that would run a shell command under an unrestricted unpickler."""

    def __reduce__(self):
        return (os.system, ("echo never",))


class Foreign:
    """An object of some other program, pickled by ``torch.save``."""


def saved(obj, legacy=False) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


def zip_of(**files) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


# Each kind of file that is not a checkpoint, and the reason its message gives.
BAD_FILES = {
    "random_bytes": (np.random.default_rng(0).bytes(5000), "not a zip or pickle archive"),
    "json_renamed": (json.dumps({"model": [1, 2], "iteration": 3}).encode(), "a JSON file"),
    "zip_not_torch": (zip_of(**{"notes.txt": "hello", "data/x.csv": "1,2"}), "a zip archive that is not a PyTorch"),
    "empty": (b"", "the file is empty (0 bytes)"),
    "text": (b"these are my training notes\nlr = 1e-4\n", "a text file"),
    "plain_pickle": (pickle.dumps({"model": {}}), "a plain pickle, not a PyTorch file"),
    "malicious_pickle": (saved({"payload": RunsACommand()}), "refused to unpickle '"),
    "malicious_legacy_pickle": (saved({"payload": RunsACommand()}, legacy=True), "refused to unpickle '"),
    "foreign_pickle": (saved({"thing": Foreign()}), f"refused to unpickle '{Foreign.__module__}.Foreign'"),
    "truncated_torch_file": (saved({"w": torch.zeros(1000)})[:-300], "a damaged or truncated zip archive"),
    "torch_file_not_ours": (saved({"state_dict": {"w": torch.zeros(3)}}), "a PyTorch file, but not one unsup3d"),
}


def assert_safe_message(text, path, reason):
    assert f"{path} is not an unsup3d checkpoint: {reason}" in text
    assert EXPECTED in text
    assert "weights_only=False" not in text and "add_safe_globals" not in text and "Traceback" not in text


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_file_that_is_not_a_checkpoint_says_what_is_expected(kind, images, tmp_path, capsys, caplog):
    data, reason = BAD_FILES[kind]
    bad = tmp_path / f"{kind}.pt"
    bad.write_bytes(data)
    commands = {
        "reconstruct": ["reconstruct", str(images), "--output", str(tmp_path / "out"), "--checkpoint", str(bad)],
        "evaluate": ["evaluate", "--checkpoint", str(bad), "--data", str(images)],
        "export-weights": ["export-weights", str(bad), "--out", str(tmp_path / "weights")],
    }
    for command in commands.values():
        caplog.clear()
        assert main(command) == 4
        assert_safe_message(caplog.text + capsys.readouterr().err, bad, reason)
    with pytest.raises(CheckpointError) as info:
        Reconstructor.from_checkpoint(bad)
    assert_safe_message(str(info.value), bad, reason)
    weights = tmp_path / f"{kind}.safetensors"  # the same bytes given as weights
    weights.write_bytes(data)
    weights.with_suffix(".json").write_text(json.dumps({"model_config": {}}))
    caplog.clear()
    assert main([*commands["reconstruct"][:-1], str(weights)]) == 4
    assert_safe_message(caplog.text, weights, "not a safetensors file: ")


def test_resuming_past_files_that_are_not_checkpoints(images, tmp_path, capsys, caplog):
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    for step, (data, _) in enumerate(BAD_FILES.values(), start=1):
        (folder / f"step_{step:08d}.pt").write_bytes(data)
    assert train(images, tmp_path / "run", "train.iterations=1", "--resume") == 0
    for step, (_, reason) in enumerate(BAD_FILES.values(), start=1):
        assert_safe_message(caplog.text, folder / f"step_{step:08d}.pt", reason)
        assert (folder / f"step_{step:08d}.pt.corrupt").exists()
    assert "trained to iteration 1" in capsys.readouterr().out  # none was usable: the run started afresh


# Every numeric flag, the arguments its command needs, and values it refuses.
COMMANDS = {
    "synth": ["synth", "--out", "OUT"],
    "train": ["train", "--data", "DATA", "--out", "OUT"],
    "evaluate": ["evaluate", "--checkpoint", "CKPT", "--data", "DATA"],
    "reconstruct": ["reconstruct", "DATA", "--output", "OUT"],
    "serve": ["serve"],
}
BAD_NUMBERS = [
    ("synth", "--n-train", ["-5", "1.5", "many", ""]),
    ("synth", "--n-test", ["-1", "3e2"]),
    ("synth", "--size", ["1", "0", "-64", "1025", "64.0"]),
    ("synth", "--seed", ["-1", "0x10"]),
    ("train", "--iterations", ["0", "-3", "1e3", "ten"]),
    ("train", "--max-minutes", ["0", "-1", "nan", "inf", "-inf", "1e400", "soon"]),
    ("evaluate", "--batch-size", ["0", "-8", "2.5"]),
    ("reconstruct", "--batch-size", ["0", "-1"]),
    ("reconstruct", "--workers", ["0", "-2", "two"]),
    ("reconstruct", "--mesh-size", ["1", "-3", "1025", "nan"]),
    ("serve", "--port", ["0", "-1", "65536", "80.5", "http"]),
]


@pytest.mark.parametrize(("command", "flag", "value"), [(c, f, v) for c, f, values in BAD_NUMBERS for v in values])
def test_bad_numbers_exit_2_and_name_the_flag(command, flag, value, caplog):
    for argv in ([*COMMANDS[command], flag, value], [*COMMANDS[command], f"{flag}={value}"]):
        caplog.clear()
        assert main(argv) == 2  # returned, like every other error: argparse's SystemExit never escapes
        [record] = [r for r in caplog.records if r.levelname == "ERROR"]
        assert f"argument {flag}: expected " in record.getMessage() and "\n" not in record.getMessage()
        assert f"see unsup3d {command} --help" in record.getMessage()


def test_other_argument_errors_are_one_line_and_exit_2(caplog):
    for argv, message in [
        (["synth"], "the following arguments are required: --out"),
        (["train", "--out", "x", "--bogus"], "unrecognized arguments: --bogus"),
        (["reconstruct", "x", "--output", "y", "--crop", "nose"], "argument --crop: invalid choice"),
        (["serve", "--port"], "argument --port: expected one argument"),
        (["paint"], "argument COMMAND: invalid choice: 'paint'"),
    ]:
        caplog.clear()
        assert main(argv) == 2
        assert message in caplog.text and "usage:" not in caplog.text
