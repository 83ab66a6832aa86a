"""Driving the web page from outside, for its browser tests and its latency and load benchmarks: ``unsup3d serve``
started in a subprocess on a free loopback port, and Debian's Chromium driven through Playwright (the ``test``
extra; imported only by :func:`browser_page`). Nothing in the package imports this module.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
# Flags for a closed network and a headless machine; SwiftShader gives WebGL without a GPU (the 3D viewer).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
]
RESULT_TIMEOUT_MS = 120_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(folder: Path, *options: str) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    """``unsup3d serve`` on a free loopback port with ``TMPDIR=folder``: yields (url, log file, process); stops it
    with SIGINT (as Ctrl-C would) and checks that its temporary folder is gone."""
    port = free_port()
    log = folder / "serve.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "TMPDIR": str(folder)}
    command = [sys.executable, "-m", "unsup3d.cli", "serve", "--port", str(port), *options]
    with open(log, "w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=handle, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(url, process, log)
        yield url, log, process
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    root = workspace_of(log)
    if root is not None and root.exists():
        raise RuntimeError(f"the server left its temporary folder behind: {root}")


def _wait_until_up(url: str, process: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text()}") from None
            time.sleep(0.5)
    raise RuntimeError(f"server did not start in {seconds} s: {log.read_text()}")


def workspace_of(log: Path) -> Path | None:
    """The server's temporary folder, as it logs it."""
    match = re.search(r"temporary files in (\S+)", log.read_text())
    return Path(match.group(1)) if match else None


@contextlib.contextmanager
def browser_page(url: str, executable: str = CHROMIUM):
    """A Chromium tab on ``url`` with the upload field ready."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1800})
            tab.goto(url)
            tab.wait_for_selector("#upload input[type=file]", state="attached", timeout=60_000)
            yield tab
        finally:
            browser.close()


def image_of(page, selector: str) -> np.ndarray:
    """The pixels (H, W, 3) float of the picture an <img> shows, fetched through the page's own session."""
    source = page.eval_on_selector(selector, "element => element.src")
    return np.asarray(Image.open(io.BytesIO(page.request.get(source).body())).convert("RGB")).astype(float)


def upload(page, path: Path) -> float:
    """Upload ``path`` (clearing a shown file first); seconds until the status line reports the result."""
    if page.query_selector("#upload input[type=file]") is None:
        page.click("#upload button[aria-label='Clear']")
        page.wait_for_selector("#upload input[type=file]", state="attached", timeout=30_000)
    before = page.inner_text("#status")
    started = time.perf_counter()
    page.set_input_files("#upload input[type=file]", str(path))
    page.wait_for_function(
        "previous => { const s = document.querySelector('#status'); return s && s.innerText !== previous "
        "&& /Reconstructed|Error/.test(s.innerText); }",
        arg=before,
        timeout=RESULT_TIMEOUT_MS,
    )
    return time.perf_counter() - started


def set_light_x(page, value: float) -> float:
    """Move the light-x control; seconds until the relit picture changes."""
    source = page.eval_on_selector("#relit img", "element => element.src")
    started = time.perf_counter()
    page.fill("#light_x input[type=number]", str(value))
    page.press("#light_x input[type=number]", "Enter")
    page.wait_for_function(
        "previous => { const i = document.querySelector('#relit img'); return i && i.src !== previous; }",
        arg=source,
        timeout=30_000,
    )
    return time.perf_counter() - started
