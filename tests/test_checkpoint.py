"""Checkpoints: atomic, checksummed, corrupt files detected and skipped, write failures clear, no code run."""

import os
import pickle
import tempfile

import pytest
import torch

from unsup3d import checkpoint as ckpt
from unsup3d.checkpoint import (
    CheckpointError,
    CheckpointWriteError,
    checksum_path,
    list_checkpoints,
    load_checkpoint,
    resume_point,
    save_checkpoint,
)
from unsup3d.files import OutputError


def state(value: float) -> dict:
    return {"config": {"model": {}}, "model": {"w": torch.full((3,), value)}}


def test_save_writes_checksum_and_keeps_the_newest(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, state(step), keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000002.pt", "step_00000003.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "step_00000002.pt",
        "step_00000002.pt.sha256",
        "step_00000003.pt",
        "step_00000003.pt.sha256",
    ]
    loaded = load_checkpoint(tmp_path / "step_00000003.pt")
    assert loaded["iteration"] == 3 and torch.equal(loaded["model"]["w"], torch.full((3,), 3.0))


@pytest.mark.parametrize("damage", ["flip_one_byte", "truncate", "empty"])
def test_damaged_checkpoint_is_detected(tmp_path, damage):
    path = save_checkpoint(tmp_path, 5, state(1.0), keep=3)
    data = bytearray(path.read_bytes())
    if damage == "flip_one_byte":
        data[len(data) // 2] ^= 0x01
    elif damage == "truncate":
        data = data[: len(data) - 100]
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_checkpoint_without_checksum_still_loads_and_truncation_is_still_caught(tmp_path):
    path = save_checkpoint(tmp_path, 5, state(1.0), keep=3)
    checksum_path(path).unlink()
    assert load_checkpoint(path)["iteration"] == 5
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(CheckpointError, match="not an unsup3d checkpoint: a damaged or truncated zip archive"):
        load_checkpoint(path)


def test_resume_point_falls_back_and_tidies(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, state(step), keep=5)
    newest = tmp_path / "step_00000003.pt"
    newest.write_bytes(newest.read_bytes()[:50])
    (tmp_path / ".tmp_abc.pt").write_bytes(b"half a checkpoint")
    path, loaded = resume_point(tmp_path)
    assert path.name == "step_00000002.pt" and loaded["iteration"] == 2
    assert not list(tmp_path.glob(".tmp_*"))
    assert (tmp_path / "step_00000003.pt.corrupt").exists()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000001.pt", "step_00000002.pt"]


def test_disk_full_during_a_write_leaves_older_checkpoints_intact(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, 1, state(1.0), keep=2)
    before = sorted(p.name for p in tmp_path.iterdir())

    def full_disk(prefix, suffix, dir):  # a real ENOSPC from the kernel: writes to /dev/full fail
        return os.open("/dev/full", os.O_WRONLY), os.path.join(dir, f"{prefix}full{suffix}")

    monkeypatch.setattr(ckpt.tempfile, "mkstemp", full_disk)
    with pytest.raises(CheckpointWriteError, match="No space left on device") as info:
        save_checkpoint(tmp_path, 2, state(2.0), keep=2)
    assert isinstance(info.value, OutputError)
    monkeypatch.setattr(ckpt.tempfile, "mkstemp", tempfile.mkstemp)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert load_checkpoint(tmp_path / "step_00000001.pt")["iteration"] == 1


def test_unwritable_folder_is_a_write_error(tmp_path):
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(CheckpointWriteError, match="cannot write checkpoint"):
        save_checkpoint(tmp_path / "file" / "checkpoints", 1, state(1.0), keep=2)


class RunsACommand:
    """A pickle payload that runs a shell command when unpickled by an unrestricted loader."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "step_00000001.pt"
    torch.save({"format_version": 1, "config": {}, "model": {}, "payload": RunsACommand(marker)}, path)
    with pytest.raises(CheckpointError, match="refused to unpickle '(posix|os).system'") as info:
        load_checkpoint(path)
    assert "weights_only" not in str(info.value)
    assert not marker.exists()
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(RunsACommand(marker)))  # a bare pickle, not even a torch file
    with pytest.raises(CheckpointError):
        load_checkpoint(raw)
    assert not marker.exists()
    assert resume_point(tmp_path) is None
    assert not marker.exists()
    pickle.loads(raw.read_bytes())  # the payload is live: an unrestricted unpickler does run it
    assert marker.exists()
