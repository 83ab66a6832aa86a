"""End to end on CPU: synthetic data → a few training steps → checkpoint → kill → resume → evaluate →
reconstruct → a mesh that parses."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from unsup3d.checkpoint import list_checkpoints, load_checkpoint
from unsup3d.cli import main
from unsup3d.config import build_config
from unsup3d.engine.trainer import Trainer
from unsup3d.outputs import read_obj
from unsup3d.synthetic.dataset import write_dataset

TINY = [
    "model.depth_nf=8",
    "model.albedo_nf=8",
    "model.encoder_nf=8",
    "model.conf_nf=8",
    "model.autoencoder_zdim=16",
    "model.conf_zdim=16",
    "model.perceptual=none",
    "train.batch_size=4",
    "train.num_workers=0",
    "train.log_every=1",
    "train.validate_every=1000",
    "train.image_log_every=1000",
]


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    write_dataset(root, n_train=12, n_test=4, size=64, seed=3, progress=False)
    return root


def tiny_config(synth: Path, **train):
    overrides = {"model": {}, "train": {}, "data": {"train_dir": str(synth / "train"), "val_fraction": 0.0}}
    for item in TINY:
        key, value = item.split("=")
        section, name = key.split(".")
        overrides[section][name] = value if not value.isdigit() else int(value)
    overrides["train"].update(train)
    return build_config(overrides)


def test_resume_continues_exactly(synth, tmp_path):
    straight = Trainer(tiny_config(synth, iterations=6, checkpoint_every=3), tmp_path / "a", progress=False)
    straight.fit()
    first = Trainer(tiny_config(synth, iterations=6, checkpoint_every=3), tmp_path / "b", progress=False)
    first.fit(until=3)
    resumed = Trainer(tiny_config(synth, iterations=6, checkpoint_every=3), tmp_path / "b", resume=True, progress=False)
    assert resumed.iteration == 3
    resumed.fit()
    assert resumed.iteration == 6
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, atol=0, rtol=0, msg=key)


def test_cli_train_killed_then_resumed_then_reconstructed(synth, tmp_path):
    run = tmp_path / "run"
    base = ["train", "--data", str(synth / "train"), "--out", str(run), "--no-progress"]
    settings = ["--set", *TINY, "train.checkpoint_every=2"]
    command = [sys.executable, "-m", "unsup3d.cli", *base, "--iterations", "40", *settings]
    process = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while not list_checkpoints(run / "checkpoints") and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = load_checkpoint(list_checkpoints(run / "checkpoints")[-1])["iteration"]
    assert 2 <= killed_at < 40
    assert main([*base, "--iterations", str(killed_at + 2), "--resume", *settings]) == 0
    assert load_checkpoint(list_checkpoints(run / "checkpoints")[-1])["iteration"] == killed_at + 2

    scores = tmp_path / "scores.json"
    assert main(["evaluate", "--checkpoint", str(run), "--data", str(synth / "test"), "--output", str(scores)]) == 0
    per_image = json.loads(scores.read_text())["per_image"]
    assert set(per_image) == {"ours", "constant", "average"} and len(per_image["ours"]["side"]) == 4

    out = tmp_path / "out"
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    inputs = [str(synth / "test" / "image"), str(bad)]
    assert main(["reconstruct", *inputs, "--checkpoint", str(run), "--output", str(out), "--no-progress"]) == 0
    folders = sorted(p.name for p in out.iterdir())
    assert len(folders) == 4 and "broken" not in folders
    vertices, faces = read_obj(out / folders[0] / "mesh.obj")[:2]
    assert vertices.shape == (64 * 64, 3) and faces.shape == (2 * 63 * 63, 3)
