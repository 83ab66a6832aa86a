"""End to end: ``unsup3d serve`` in a subprocess, driven by Debian's Chromium through Playwright.

Runs wherever /usr/bin/chromium exists; in CI (``CI=true``) a missing browser is a failure, never a skip
(``scripts/test.sh`` installs it). Screenshots go to ``$UNSUP3D_SCREENSHOTS`` when set (``docs/images`` keeps
one), else to the test's temporary folder.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unsup3d.testing import CHROMIUM, browser_page, image_of, set_light_x, upload, workspace_of


def _browser_or_skip() -> str:
    if Path(CHROMIUM).is_file():
        return CHROMIUM
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {CHROMIUM} is missing: scripts/test.sh installs Debian's chromium")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium); CI runs this test")


@pytest.fixture
def page(server):
    with browser_page(server[0], _browser_or_skip()) as tab:
        yield tab


def _screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("UNSUP3D_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_photo_to_3d_relight_and_bad_upload(page, tmp_path):
    from skimage import data

    shots = _screenshots(tmp_path)
    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    upload(page, photo)
    assert "Reconstructed astronaut.png" in page.inner_text("#status")
    page.wait_for_selector("#depth img")
    assert image_of(page, "#depth img").std() > 10, "the depth picture is blank"
    symmetry = image_of(page, "#symmetry img")
    assert (np.abs(symmetry[..., 1] - symmetry[..., 0]) > 100).any(), "no green symmetry line"
    canvas = page.wait_for_selector("#model3d canvas")
    page.wait_for_timeout(1500)  # the viewer loads the GLB and draws
    viewer = np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB")).reshape(-1, 3)
    assert len(np.unique(viewer, axis=0)) > 50, "the 3D viewer's canvas drew nothing"
    names = page.inner_text("#downloads").replace("\n", "")  # the page breaks names before the suffix
    for name in ("mesh.glb", "mesh_obj.zip", "depth_16bit.png", "depth.npy"):
        assert name in names
    page.screenshot(path=str(shots / "web_page.png"), full_page=True)

    before = image_of(page, "#relit img")
    set_light_x(page, 1.4)
    assert np.abs(image_of(page, "#relit img") - before).mean() > 1.0, "relighting did not change the picture"

    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("this is not a photo\n")
    upload(page, not_an_image)
    message = page.inner_text("#status")
    assert re.search(r"Error: notes\.txt is not a usable image", message), message
    assert "Traceback" not in page.content() and "/tmp" not in message  # no internals shown
    page.screenshot(path=str(shots / "web_page_error.png"), full_page=True)


def test_server_keeps_its_files_in_its_own_temporary_folder(server):
    _, log, _ = server
    root = workspace_of(log)
    assert root is not None and root.is_dir(), log.read_text()
    assert root.parent == log.parent  # under the TMPDIR the server was given; deleted when it stops


def test_refinement_on_the_page_reports_its_steps(page, tmp_path):
    from skimage import data

    photo = tmp_path / "astronaut_refined.png"
    Image.fromarray(data.astronaut()).save(photo)
    page.fill("#refine input[type=number]", "20")
    page.press("#refine input[type=number]", "Enter")
    upload(page, photo)
    status = page.inner_text("#status")
    assert "Reconstructed astronaut_refined.png" in status and "refined in 20 steps" in status, status
    page.wait_for_selector("#depth img")
    assert image_of(page, "#depth img").std() > 10, "the depth picture is blank"
    for selector in ("#asymmetry img", "#turntable img", "#relit img", "#model3d canvas"):
        page.wait_for_selector(selector)
    page.wait_for_timeout(1500)  # the viewer loads the GLB and draws
    page.screenshot(path=str(_screenshots(tmp_path) / "web_page_refined.png"), full_page=True)
