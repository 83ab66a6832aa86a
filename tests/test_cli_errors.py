"""Every user mistake gets a one-line message naming the problem and a documented exit code, no traceback."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from unsup3d.cli import _exit_code, main
from unsup3d.engine.trainer import TrainingError

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
