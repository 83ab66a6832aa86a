"""The page's functions without a browser: bad uploads become messages, requests get their own folders, relighting
changes the picture, and the workspace cleans up after itself."""

from __future__ import annotations

import os
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("gradio")

from unsup3d import app  # noqa: E402
from unsup3d.inference import Reconstructor  # noqa: E402


@pytest.fixture(scope="module")
def reconstructor():
    return Reconstructor.pretrained(device="cpu")


@pytest.fixture
def workspace(tmp_path):
    space = app.Workspace(tmp_path)
    yield space
    space.close()


def bomb(path: Path, side: int = 60_000) -> Path:
    """A valid 1 × 1 PNG whose header claims ``side`` × ``side`` pixels."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", side, side)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p.write_text("hello") or p, "is not a usable image"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64)) or p, "is not a usable image"),
        (bomb, "decompression bomb"),
        (lambda p: p.write_bytes(b"") or p, "empty"),
    ],
    ids=["text", "corrupt", "bomb", "empty"],
)
def test_bad_uploads_become_messages(reconstructor, workspace, tmp_path, make, expected):
    path = make(tmp_path / "upload.png")
    result = app.reconstruct_upload(reconstructor, workspace, str(path), "none")
    assert result.status.startswith("**Error:**") and expected in result.status, result.status
    assert str(tmp_path) not in result.status  # no server folders in messages
    assert result.reconstruction is None and all(v is None for v in result.pictures.values())
    assert not list(workspace.root.glob("request-*"))  # nothing written for a refused upload


def test_no_face_is_a_message_and_none_processes_the_whole_photo(reconstructor, workspace, tmp_path):
    blank = tmp_path / "wall.jpg"
    Image.new("RGB", (300, 200), (90, 100, 110)).save(blank)
    refused = app.reconstruct_upload(reconstructor, workspace, str(blank), "face")
    assert "no face found in wall.jpg" in refused.status
    accepted = app.reconstruct_upload(reconstructor, workspace, str(blank), "none")
    assert accepted.status.startswith("Reconstructed wall.jpg")


def test_each_request_has_its_own_folder_and_outputs(reconstructor, workspace, tmp_path):
    paths = []
    for k in range(2):
        paths.append(tmp_path / f"face{k}.png")
        Image.fromarray(np.random.default_rng(k).integers(0, 256, (80, 80, 3), dtype=np.uint8)).save(paths[-1])
    first, second = (app.reconstruct_upload(reconstructor, workspace, str(p), "none") for p in paths)
    assert Path(first.model).parent != Path(second.model).parent
    for result in (first, second):
        folder = Path(result.model).parent
        assert folder.parent == workspace.root
        assert {Path(p).name for p in result.downloads} == {"mesh.glb", "mesh_obj.zip", "depth_16bit.png", "depth.npy"}
        assert all(Path(p).parent == folder for p in result.downloads)
        assert Path(result.turntable).is_file() and all(Path(v).is_file() for v in result.pictures.values())
    assert not torch.equal(first.reconstruction.canonical_depth, second.reconstruction.canonical_depth)


def test_relighting_changes_the_picture(reconstructor, workspace, tmp_path):
    path = tmp_path / "face.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    rec = app.reconstruct_upload(reconstructor, workspace, str(path), "none").reconstruction
    left, right = app.relight_picture(rec, -1.2, 0.0), app.relight_picture(rec, 1.2, 0.0)
    assert left.shape == (app.DISPLAY_SIZE, app.DISPLAY_SIZE, 3) and left.dtype == np.uint8
    assert np.abs(left.astype(float) - right).mean() > 1.0
    assert app.relight_picture(None, 0.0, 0.0) is None


def test_huge_photos_are_downscaled_first():
    assert max(app._bounded(Image.new("RGB", (5000, 3000))).size) == app.MAX_SIDE
    small = Image.new("RGB", (300, 200))
    assert app._bounded(small) is small


def test_old_request_folders_are_deleted_and_close_removes_everything(workspace):
    old = workspace.new_folder()
    past = time.time() - app.KEEP_SECONDS - 10
    os.utime(old, (past, past))
    fresh = workspace.new_folder()
    assert not old.exists() and fresh.exists()
    workspace.close()
    assert not workspace.root.exists()


def test_only_the_newest_request_folders_are_kept(workspace, monkeypatch):
    monkeypatch.setattr(app, "MAX_FOLDERS", 3)
    folders = []
    for k in range(5):
        folders.append(workspace.new_folder())
        os.utime(folders[-1], (time.time() - 100 + k, time.time() - 100 + k))  # a strict age order
    assert [f.exists() for f in folders] == [False, False, True, True, True]


def test_the_model_choice_follows_the_crop_unless_named(tmp_path):
    shelf = app.ModelShelf("cpu")
    assert shelf.choices == [app.AUTO, "faces", "cats", "faces-synthetic"]
    assert shelf.resolve(app.AUTO, "cat") == "cats"
    assert shelf.resolve(app.AUTO, "face") == shelf.resolve(app.AUTO, "none") == "faces"
    assert shelf.resolve("faces-synthetic", "cat") == "faces-synthetic"
    assert shelf.get("cats") is shelf.get("cats")  # loaded once, then shared
    assert shelf.get("cats").checkpoint_path.name == "cats_real.safetensors"


def test_a_served_checkpoint_is_offered_and_is_what_auto_means(tmp_path):
    from unsup3d.inference import shipped_weights

    own = shipped_weights("faces-synthetic")
    shelf = app.ModelShelf("cpu", own)
    assert shelf.choices[:2] == [app.AUTO, f"checkpoint {own.name}"]
    assert shelf.resolve(app.AUTO, "cat") == f"checkpoint {own.name}"
    assert shelf.get(shelf.resolve(app.AUTO, "face")).checkpoint_path == own


def test_the_status_line_names_the_model(reconstructor, workspace, tmp_path):
    path = tmp_path / "face.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(path)
    result = app.reconstruct_upload(reconstructor, workspace, str(path), "none", "faces")
    assert "model: faces" in result.status


def test_refinement_reports_progress_and_changes_the_reconstruction(reconstructor, workspace, tmp_path):
    path = tmp_path / "face.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    plain = app.reconstruct_upload(reconstructor, workspace, str(path), "none")
    steps = []
    refined = app.reconstruct_upload(reconstructor, workspace, str(path), "none", "", 4, lambda *s: steps.append(s))
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)] and "refined in 4 steps" in refined.status
    assert not torch.equal(plain.reconstruction.canonical_depth, refined.reconstruction.canonical_depth)
