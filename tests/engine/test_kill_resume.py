"""SIGKILL a training run at several moments (including in the middle of a checkpoint write), resume each time:
at most one checkpoint interval is lost, and the final weights equal those of an uninterrupted run."""

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _tiny_runs import write_run_config

from unsup3d.checkpoint import list_checkpoints, load_checkpoint, resume_point

ITERATIONS = 30
DRIVER = """
import os, signal, sys
from pathlib import Path

import yaml

from unsup3d import checkpoint
from unsup3d.config import build_config
from unsup3d.engine.trainer import Trainer

config_file, run_dir, kill_step, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
real_write = checkpoint._write_atomic


def write(target, data):
    if target.suffix == ".pt" and int(target.name[5:13]) == kill_step:
        if mode == "mid-write":  # half the bytes in the temporary file, then killed
            target.with_name(".tmp_killed.pt").write_bytes(bytes(data[: len(data) // 2]))
        elif mode == "torn":  # a filesystem that lost data behind a completed rename
            target.write_bytes(bytes(data[: len(data) // 2]))
        os.kill(os.getpid(), signal.SIGKILL)  # "after-checksum": the checksum is in place, the checkpoint not yet
    real_write(target, data)


checkpoint._write_atomic = write
config = build_config(yaml.safe_load(Path(config_file).read_text()))
Trainer(config, run_dir, resume=True, progress=False).fit()
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    settings = {"batch_size": 4, "iterations": ITERATIONS, "checkpoint_every": 1, "keep_checkpoints": 2}
    schedule = {"lr_schedule": "cosine", "lr_warmup": 3, "depth_prior_iterations": 2}
    root = write_run_config(tmp_path_factory.mktemp("kill"), 12, **settings, **schedule)
    (root / "driver.py").write_text(DRIVER)
    return root


def start(setup: Path, run: Path, kill_step: int = -1, mode: str = "none") -> subprocess.Popen:
    command = [sys.executable, str(setup / "driver.py"), str(setup / "config.yaml"), str(run), str(kill_step), mode]
    return subprocess.Popen(command, stderr=subprocess.PIPE)


def newest_step(run: Path) -> int:
    """The newest checkpoint's iteration, from the file names only."""
    return max((int(path.name[5:13]) for path in list_checkpoints(run / "checkpoints")), default=-1)


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(list_checkpoints(run / "checkpoints")[-1])
    assert state["iteration"] == ITERATIONS
    return state["model"]


def test_killed_runs_resume_to_the_same_weights(setup, tmp_path):
    reference = start(setup, tmp_path / "straight")
    assert reference.wait(timeout=300) == 0, reference.stderr.read().decode()
    run = tmp_path / "killed"
    for kill_step, mode in ((4, "mid-write"), (9, "after-checksum"), (13, "torn")):
        process = start(setup, run, kill_step, mode)
        assert process.wait(timeout=300) == -signal.SIGKILL
        iteration = resume_point(run / "checkpoints")[1]["iteration"]
        assert iteration == kill_step - 1, (mode, iteration)  # one checkpoint interval lost, no more

    for delay in random.Random(0).sample([0.05, 0.1, 0.2, 0.3, 0.4], 2):  # at an arbitrary moment
        before = resume_point(run / "checkpoints")[1]["iteration"]
        process = start(setup, run)
        deadline = time.monotonic() + 120
        while newest_step(run) <= before and time.monotonic() < deadline:  # read-only while it writes
            time.sleep(0.01)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL, "finished before the kill: lengthen the run"
        assert before < resume_point(run / "checkpoints")[1]["iteration"] < ITERATIONS

    process = start(setup, run)
    assert process.wait(timeout=300) == 0, process.stderr.read().decode()
    assert not list((run / "checkpoints").glob(".tmp_*"))
    straight, resumed = final_weights(tmp_path / "straight"), final_weights(run)
    for key, value in straight.items():
        assert torch.equal(resumed[key], value), key
