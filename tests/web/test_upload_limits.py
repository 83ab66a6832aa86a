"""Upload limits that hold, tested over HTTP against a running server: the size cap is enforced before anything
is decoded, and odd file names cannot write outside the server's temporary folder."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from PIL import Image

from unsup3d import app
from unsup3d.testing import workspace_of


def post_file(url: str, name: str, data: bytes) -> tuple[int, str]:
    """POST one file to Gradio's upload route as a browser would; (status, body)."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url + "gradio_api/upload", data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 100, 50)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploads_over_the_size_cap_are_refused(server):
    url = server[0]
    cap = 20 * 1024 * 1024  # app.MAX_UPLOAD, in Gradio's units (MB of 2**20 bytes)
    assert app.MAX_UPLOAD == "20mb"
    status, body = post_file(url, "big.png", png_bytes() + b"\0" * (cap + 1000))
    assert status in (400, 413) and "size" in body.lower(), (status, body[:200])
    status, _ = post_file(url, "small.png", png_bytes())
    assert status == 200


@pytest.mark.parametrize("name", ["../../../../escape.png", "..\\..\\escape.png", "/etc/escape.png", "a\x00b.png"])
def test_odd_file_names_stay_inside_the_servers_folder(server, name):
    url, log, _ = server
    root = workspace_of(log)
    status, body = post_file(url, name, png_bytes())
    assert status in (200, 400), (status, body[:200])
    if status == 400:
        return  # refused outright: nothing written
    for stored in json.loads(body):
        path = Path(stored).resolve()
        assert root.resolve() in path.parents, (name, stored)
    assert not list(root.parent.parent.glob("escape.png")) and not Path("/etc/escape.png").exists()
