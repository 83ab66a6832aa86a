"""The web page of ``unsup3d serve``: one photo to 3D in a browser (Gradio, the ``web`` extra).

A thin shell over :class:`unsup3d.inference.Reconstructor` and its export code: an upload (or a bundled example)
is loaded and checked like any input file, cropped on request, reconstructed, and its outputs are written into a
folder of its own under the server's temporary folder, from which the page shows them. A slider refines the
reconstruction on the photo itself (per-photo refinement, with a progress bar). Light sliders relight the kept
reconstruction at once. Nothing imports this module but the command line.

Every failure a user can cause (a file that is not an image, a corrupt or truncated one, a decompression bomb,
no face found) becomes a message in the page's status line, never a traceback; uploads larger than
:data:`MAX_UPLOAD` are refused by the server before they reach the model, and photos larger than
:data:`MAX_SIDE` pixels are downscaled first. Each request works in its own folder and returns its own state, so
concurrent users never see each other's results; folders older than :data:`KEEP_SECONDS` are deleted, and the
whole temporary folder goes when the server stops.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from unsup3d.data.images import ImageLoadError, load_image
from unsup3d.extras import require
from unsup3d.inference import Reconstruction, Reconstructor
from unsup3d.inference.crop import CROP_KINDS, NoDetectionError
from unsup3d.inference.weights import SHIPPED_MODELS, model_for_crop
from unsup3d.outputs import OutputOptions, write_outputs
from unsup3d.viz import to_uint8

__all__ = ["AUTO", "MAX_SIDE", "MAX_UPLOAD", "ModelShelf", "PageResult", "Workspace", "build_app", "serve"]

log = logging.getLogger(__name__)
MAX_UPLOAD = "20mb"  # Gradio refuses larger uploads before any of our code runs
MAX_SIDE = 2048  # photos are downscaled to at most this many pixels on their longest side
KEEP_SECONDS = 3600  # request folders older than this are deleted
UPLOAD_SECONDS = 900  # Gradio deletes its copies of uploads after this long (checked every minute)
MAX_FOLDERS = 64  # and only the newest this many are kept (a busy server's disk stays bounded)
CONCURRENCY = 2  # requests reconstructed at once (the model and the CPU cores are shared)
MAX_QUEUE = 32  # requests waiting beyond this are told the server is busy
MAX_REFINE_STEPS = 200  # the page's refinement slider goes up to this many steps
DISPLAY_SIZE = 256  # pictures are enlarged to this many pixels for the page
# Small pictures fill their boxes with crisp pixels.
PAGE_CSS = "#turntable img, #relit img {width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated}"
GROUPS = ("maps", "depth", "obj", "glb", "overlays", "turntable")
PICTURES = ("symmetry", "depth", "normal", "albedo", "shading", "asymmetry")


@dataclass
class PageResult:
    """What one upload gives the page: a status line, picture paths by name, the GLB, the turntable GIF, the
    downloads and the reconstruction (kept per session, for relighting)."""

    status: str
    pictures: dict[str, str | None]
    model: str | None = None
    turntable: str | None = None
    downloads: list[str] | None = None
    reconstruction: Reconstruction | None = None


AUTO = "auto"  # the page's model choice that follows the crop (cats for a cat crop, else faces)


class ModelShelf:
    """The models the page offers, each loaded on first use and then shared: the shipped ones by name
    (:data:`~unsup3d.inference.weights.SHIPPED_MODELS`) and, when the server was given one, the user's own
    checkpoint (which ``auto`` then means)."""

    def __init__(self, device=None, checkpoint: str | Path | None = None) -> None:
        self.device = device
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        own = [] if self.checkpoint is None else [self.own_name]
        self.choices: list[str] = [AUTO, *own, *SHIPPED_MODELS]
        self._loaded: dict[str, Reconstructor] = {}
        self._lock = threading.Lock()

    @property
    def own_name(self) -> str:
        return f"checkpoint {self.checkpoint.name}"

    def resolve(self, choice: str, crop: str) -> str:
        """The model a choice names: ``auto`` is the server's checkpoint if any, else the crop's model."""
        if choice == AUTO or choice not in self.choices:
            return self.own_name if self.checkpoint is not None else model_for_crop(crop)
        return choice

    def get(self, name: str) -> Reconstructor:
        """The loaded model ``name`` (a resolved choice)."""
        with self._lock:
            if name not in self._loaded:
                if self.checkpoint is not None and name == self.own_name:
                    self._loaded[name] = Reconstructor.from_checkpoint(self.checkpoint, self.device)
                else:
                    self._loaded[name] = Reconstructor.pretrained(name, self.device)
            return self._loaded[name]


class Workspace:
    """The server's temporary folder: one sub-folder per request; those older than :data:`KEEP_SECONDS`, and all
    but the newest :data:`MAX_FOLDERS`, are deleted as new ones come."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="unsup3d-serve-", dir=root))

    def new_folder(self) -> Path:
        """A fresh folder for one request (after deleting those older than :data:`KEEP_SECONDS`)."""
        cutoff = time.time() - KEEP_SECONDS
        folders = sorted(self.root.glob("request-*"), key=lambda p: p.stat().st_mtime)
        for index, old in enumerate(folders):
            if old.stat().st_mtime < cutoff or index < len(folders) - (MAX_FOLDERS - 1):
                shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(prefix="request-", dir=self.root))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def reconstruct_upload(
    reconstructor: Reconstructor,
    workspace: Workspace,
    path: str | None,
    crop: str = "face",
    model_name: str = "",
    refine_steps: int = 0,
    on_step: Callable[[int, int], None] | None = None,
) -> PageResult:
    """Reconstruct an uploaded file into a new request folder, refined on the photo for ``refine_steps`` steps
    (:meth:`unsup3d.inference.Reconstructor.refine`, reporting each to ``on_step``); every user error becomes
    the status line."""
    empty = dict.fromkeys(PICTURES)
    if not path:
        return PageResult("Upload a photo or pick an example.", empty)
    name = Path(path).name
    try:
        image = _bounded(load_image(path))
        tensor = reconstructor.prepare(image, crop if crop in CROP_KINDS else "none", "skip", name)
    except ImageLoadError as error:
        reason = error.reason.replace(str(path), name)  # never show the server's folders
        return PageResult(f"**Error:** {name} is not a usable image: {reason}.", empty)
    except NoDetectionError as error:
        return PageResult(f"**Error:** {error} — choose crop *none* to use the whole photo.", empty)
    started = time.perf_counter()
    steps = max(0, int(refine_steps or 0))
    rec = reconstructor.refine(tensor[None], steps, on_step=on_step)
    folder = workspace.new_folder()
    write_outputs(rec, 0, folder, OutputOptions(GROUPS))
    pictures = {key: _enlarged(folder / f"{key}.png") for key in PICTURES}
    downloads = [folder / "mesh.glb", _zip_obj(folder), folder / "depth_16bit.png", folder / "depth.npy"]
    model = f", model: {model_name}" if model_name else ""
    refined = f", refined in {steps} steps" if steps else ""
    status = f"Reconstructed {name} in {time.perf_counter() - started:.2f} s (crop: {crop}{model}{refined})."
    _release_memory()
    return PageResult(
        status,
        pictures,
        str(folder / "mesh.glb"),
        str(folder / "turntable.gif"),
        [str(p) for p in downloads],
        rec,
    )


def relight_picture(rec: Reconstruction | None, lx: float, ly: float) -> np.ndarray | None:
    """The kept reconstruction's canonical image under the light ``(lx, ly, 1)``, enlarged; (H, W, 3) uint8."""
    if rec is None:
        return None
    picture = rec.relight(torch.tensor([lx, ly, 1.0]))[0]  # (3, S, S)
    return np.asarray(Image.fromarray(to_uint8(picture)).resize((DISPLAY_SIZE, DISPLAY_SIZE), Image.Resampling.NEAREST))


def _release_memory() -> None:
    """Hand freed heap memory back to the system (glibc keeps it otherwise, and a busy server's resident size
    would stay at its peak); a no-op where there is no glibc."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _bounded(image: Image.Image) -> Image.Image:
    """Downscale photos larger than :data:`MAX_SIDE` on their longest side (antialiased)."""
    if max(image.size) > MAX_SIDE:
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
    return image


def _enlarged(path: Path) -> str | None:
    """A copy of a picture enlarged to :data:`DISPLAY_SIZE` with nearest neighbours (crisp pixels)."""
    if not path.is_file():
        return None
    target = path.with_name(f"{path.stem}_page.png")
    with Image.open(path) as image:
        image.convert("RGB").resize((DISPLAY_SIZE, DISPLAY_SIZE), Image.Resampling.NEAREST).save(target)
    return str(target)


def _zip_obj(folder: Path) -> Path:
    """``mesh_obj.zip``: the OBJ, its material and its texture, for one download."""
    target = folder / "mesh_obj.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("mesh.obj", "mesh.mtl", "albedo.png"):
            archive.write(folder / name, name)
    return target


def write_examples(folder: Path) -> list[Path]:
    """The bundled examples as files: scikit-image's astronaut (a face) and chelsea (a cat), and two built-in
    synthetic faces (the ``faces-synthetic`` model's own kind of data)."""
    from unsup3d.synthetic.generator import render_batch, sample_generator

    skimage_data = require("skimage.data", "The web page's examples")
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "astronaut.png", folder / "cat.png"]
    Image.fromarray(skimage_data.astronaut()).save(paths[0])
    Image.fromarray(skimage_data.chelsea()).save(paths[1])
    faces = render_batch([sample_generator(11, 1, k) for k in range(2)], 128, depth=False, canonical=False).image
    for k, face in enumerate(faces):
        paths.append(folder / f"synthetic_face_{k}.png")
        Image.fromarray(to_uint8(face)).save(paths[-1])
    return paths


def _example_inputs(path: Path) -> list[str]:
    """``[photo, crop, model]`` of an example: chelsea's face fills the photo (the cat cascade finds no face in it,
    see :mod:`unsup3d.inference.crop`), so it goes whole to the cat model; the synthetic faces go to the model
    trained on them; the astronaut is cropped to her face for the faces model."""
    if "cat" in path.name:
        return [str(path), "none", "cats"]
    if "synthetic" in path.name:
        return [str(path), "face", "faces-synthetic"]
    return [str(path), "face", AUTO]


def build_app(models: ModelShelf, workspace: Workspace):
    """The Gradio page (a ``gr.Blocks``) over the ``models`` it offers, writing into ``workspace``."""
    gr = require("gradio", "The web page (unsup3d serve)")
    examples = write_examples(workspace.root / "examples")
    with gr.Blocks(
        title="unsup3d: one photo to 3D", delete_cache=(60, UPLOAD_SECONDS), analytics_enabled=False
    ) as page:
        gr.Markdown(
            "# unsup3d: one photo to 3D\nUpload a photo of a face or a cat (or pick an example). *auto* uses the "
            "model trained on real cat photos for a cat crop and the one trained on real face photos otherwise."
        )
        with gr.Row():
            upload = gr.File(label="Photo", type="filepath", elem_id="upload")
            crop = gr.Radio(list(CROP_KINDS), value="face", label="Crop", elem_id="crop")
            choice = gr.Radio(models.choices, value=AUTO, label="Model", elem_id="model")
            refine = gr.Slider(
                0, MAX_REFINE_STEPS, value=0, step=10, label="Refine on this photo (steps; 0: off)", elem_id="refine"
            )
        gr.Examples([_example_inputs(p) for p in examples], [upload, crop, choice])
        status = gr.Markdown("Upload a photo or pick an example.", elem_id="status")
        with gr.Row():
            pictures = {key: gr.Image(label=key, type="filepath", elem_id=key, height=DISPLAY_SIZE) for key in PICTURES}
        with gr.Row():
            model = gr.Model3D(label="3D (drag to turn)", elem_id="model3d", height=360)
            turntable = gr.Image(label="turntable", type="filepath", elem_id="turntable", height=DISPLAY_SIZE)
        with gr.Row():
            lx = gr.Slider(-1.5, 1.5, value=0.0, step=0.1, label="light x", elem_id="light_x")
            ly = gr.Slider(-1.5, 1.5, value=-0.5, step=0.1, label="light y", elem_id="light_y")
            relit = gr.Image(label="relit", type="numpy", elem_id="relit", height=DISPLAY_SIZE)
        downloads = gr.File(label="downloads", file_count="multiple", elem_id="downloads")
        state = gr.State(None)

        def run(path, kind, chosen, steps, x, y, progress=gr.Progress()):  # noqa: B008 (Gradio's progress hook)
            name = models.resolve(chosen, kind)

            def on_step(done: int, total: int) -> None:
                progress(done / total, desc=f"refining: step {done} of {total}")

            result = reconstruct_upload(models.get(name), workspace, path, kind, name, steps, on_step)
            picture_values = [result.pictures[key] for key in PICTURES]
            relit_value = relight_picture(result.reconstruction, x, y)
            return [
                result.status,
                *picture_values,
                result.model,
                result.turntable,
                relit_value,
                result.downloads,
                result.reconstruction,
            ]

        outputs = [status, *pictures.values(), model, turntable, relit, downloads, state]
        inputs = [upload, crop, choice, refine, lx, ly]
        upload.change(run, inputs, outputs, api_name="reconstruct")
        for control in (crop, choice):
            control.change(run, inputs, outputs, api_name=False)
        refine.release(run, inputs, outputs, api_name=False)
        for slider, name in ((lx, "relight"), (ly, False)):
            slider.change(relight_picture, [state, lx, ly], relit, show_progress="hidden", api_name=name)
    return page


def serve(
    checkpoint: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    device=None,
    concurrency: int = CONCURRENCY,
    max_queue: int = MAX_QUEUE,
) -> None:
    """Start the page on ``host:port`` (loopback unless told otherwise) until interrupted; ``concurrency``
    requests run at once and up to ``max_queue`` wait, beyond which Gradio answers that the server is busy."""
    require("gradio", "The web page (unsup3d serve)")
    models = ModelShelf(device, checkpoint)
    models.get(models.resolve(AUTO, "face"))  # a bad checkpoint fails here, before the page starts
    workspace = Workspace()
    log.info("temporary files in %s", workspace.root)
    # Gradio's uploads live here too, and the request folders' files, already inside it, are served without copies.
    os.environ["GRADIO_TEMP_DIR"] = str(workspace.root)
    try:
        page = build_app(models, workspace)
        page.queue(default_concurrency_limit=concurrency, max_size=max_queue)
        page.launch(
            server_name=host,
            server_port=port,
            max_file_size=MAX_UPLOAD,
            allowed_paths=[str(workspace.root)],
            show_error=False,
            quiet=True,
            css=PAGE_CSS,
        )
    finally:
        workspace.close()
