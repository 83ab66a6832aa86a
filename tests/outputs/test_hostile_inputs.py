"""Videos and photos that fight back: each gives a result or a clear per-file reason, and the others finish.

Every file is generated here: clips of 32 × 24 pixels and a handful of frames with imageio (and the ffmpeg it
ships, for the containers imageio cannot write), photos around scikit-image's astronaut so that ``--crop face``
finds a face in the good ones.
"""

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny_models import save_checkpoint, tiny_config
from PIL import Image

from unsup3d.data.images import MIN_PHOTO_SIDE, ImageLoadError, frame_count, iter_frames, load_image
from unsup3d.inference import Reconstructor
from unsup3d.model import PhotoGeometricAutoencoder
from unsup3d.outputs import OutputOptions, reconstruct_to_folder
from unsup3d.outputs import video as video_module

imageio = pytest.importorskip("imageio.v2")
imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
skimage_data = pytest.importorskip("skimage.data")
pytest.importorskip("cv2")

JSON_ONLY = OutputOptions(("json",))


@pytest.fixture(scope="module")
def reconstructor(tmp_path_factory):
    torch.manual_seed(0)
    model = PhotoGeometricAutoencoder(tiny_config().model)
    checkpoint = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", model, tiny_config())
    return Reconstructor.from_checkpoint(checkpoint, "cpu")


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(skimage_data.astronaut())


def face(astronaut: Image.Image, size: int = 96, shift: int = 0) -> Image.Image:
    """The astronaut's head and shoulders, ``size`` pixels square: the face detector finds it from 64 pixels."""
    return astronaut.crop((120 + shift, 20, 330 + shift, 230)).resize((size, size), Image.Resampling.BILINEAR)


def noise_frames(count: int, width: int = 32, height: int = 24, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def write_clip(path: Path, frames: list[np.ndarray], **params) -> Path:
    with imageio.get_writer(path, fps=10, macro_block_size=1, **params) as writer:
        for frame in frames:
            writer.append_data(frame)
    return path


def ffmpeg(*args: str) -> None:
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *args]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def hostile_inputs(folder: Path, astronaut: Image.Image) -> tuple[list[Path], dict[str, str], dict[str, str]]:
    """Good and hostile inputs, in order; the expected failure reason and warning (regular expressions) by name."""
    folder.mkdir()
    inputs, fails, warns = [], {}, {}

    def add(name: str, fail: str | None = None, warn: str | None = None) -> Path:
        inputs.append(folder / name)
        if fail:
            fails[name] = fail
        if warn:
            warns[name] = warn
        return folder / name

    face(astronaut).save(add("good0.png"))
    face(astronaut, shift=6).save(add("good1.jpg"), quality=95)

    # Photos: a 4K photo, a 1 × 1 photo, no face, CMYK, animated GIF and WebP (every frame), a cut animation.
    big = Image.new("RGB", (3840, 2160), (90, 100, 110))
    big.paste(astronaut.resize((1600, 1600)), (1100, 280))
    big.save(add("big_4k.jpg"), quality=85)
    Image.new("RGB", (1, 1), (9, 9, 9)).save(add("dot.png", fail=rf"too small \(1×1 pixels\).*{MIN_PHOTO_SIDE}"))
    Image.new("RGB", (200, 160), (120, 130, 140)).save(add("blank.png", fail="no face found in blank.png"))
    face(astronaut).convert("CMYK").save(add("cmyk.jpg"), quality=95)
    frames = [face(astronaut, shift=s) for s in (0, 4, 8)]
    frames[0].save(add("wave.gif"), save_all=True, append_images=frames[1:], duration=100, loop=0)
    frames[0].save(add("wave.webp"), save_all=True, append_images=frames[1:], duration=100, loop=0)
    blank = Image.new("RGB", (96, 96), (120, 130, 140))
    frames[0].save(add("mixed.gif", warn=r"^frame 1: no face found"), save_all=True, append_images=[blank, frames[2]])
    cut = folder / "cut.gif"
    frames[0].save(cut, save_all=True, append_images=frames[1:], duration=100, loop=0)
    cut.write_bytes(cut.read_bytes()[:-30])  # the last frame's data cut short
    add("cut.gif", warn=r"stopped after 2 frames: frame 2: .*truncated")

    # Videos: good, then every way a video file can be bad.
    clip = write_clip(folder / "clip.mp4", noise_frames(4))
    add("clip.mp4")
    other = write_clip(folder / "other.mp4", noise_frames(3, 48, 40, seed=1))
    (folder / "list.txt").write_text(f"file '{clip}'\nfile '{other}'\n")
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(folder / "list.txt"), "-c", "copy", str(add("sizes.mkv")))
    data = clip.read_bytes()
    add("truncated.mp4", fail=r"index \('moov atom'\) is missing").write_bytes(data[: len(data) // 2])
    add("noise.mp4", fail="moov atom|corrupt or not a video").write_bytes(np.random.default_rng(0).bytes(3000))
    add("header.mp4", fail="corrupt or not a video").write_bytes(bytes(64) + data[64:])
    add("empty.mp4", fail=r"file is empty \(0 bytes\)").write_bytes(b"")
    source = ["-f", "lavfi", "-i", "color=c=red:s=32x24:d=1"]
    ffmpeg(*source, "-frames:v", "0", "-c:v", "libx264", str(add("no_frames.mp4", fail="no video stream")))
    faststart = write_clip(folder / "faststart.mp4", noise_frames(8, seed=2), output_params=["-movflags", "+faststart"])
    data = faststart.read_bytes()
    add("cut_early.mp4", warn=r"stopped after 2 of about 8 frames: the file ends early").write_bytes(
        data[: len(data) // 2]
    )
    faststart.unlink()
    return inputs, fails, warns


def test_hostile_inputs_in_one_call_each_fail_alone_with_their_reason(tmp_path, reconstructor, astronaut):
    inputs, fails, warns = hostile_inputs(tmp_path / "in", astronaut)
    out = tmp_path / "out"
    result = reconstruct_to_folder(
        reconstructor, inputs, out, JSON_ONLY, crop="face", batch_size=4, progress=False, animated="all"
    )

    frames = [f"wave_f{k:03d}" for k in range(3)] + [f"wave_2_f{k:03d}" for k in range(3)]
    animations = [*frames, "mixed_f000", "mixed_f002", "cut_f000", "cut_f001"]
    expected = ["good0", "good1", "big_4k", "cmyk", *animations, "clip", "sizes", "cut_early"]
    assert result.folders == expected
    for name in expected[:-3]:
        assert (out / name / "view_light.json").is_file(), name
    failed = {path.name: reason for path, reason in result.failed}
    assert list(failed) == list(fails)  # in input order
    for name, pattern in fails.items():
        assert re.search(pattern, failed[name]), (name, failed[name])
        assert "Traceback" not in failed[name] and "\n" not in failed[name] and "ffmpeg version" not in failed[name]
    warned = {path.name: message for path, message in result.warnings}
    assert list(warned) == list(warns)
    for name, pattern in warns.items():
        assert re.search(pattern, warned[name]), (name, warned[name])
    assert not (out / "truncated").exists() and not (out / "empty").exists()  # nothing half-written

    lengths = {name: len(imageio.mimread(out / name / "comparison.mp4")) for name in ("clip", "sizes", "cut_early")}
    assert lengths == {"clip": 4, "sizes": 7, "cut_early": 2}


def test_animated_images_give_their_first_frame_by_default(tmp_path, reconstructor, astronaut):
    frames = [face(astronaut, shift=s) for s in (0, 8)]
    frames[0].save(tmp_path / "wave.gif", save_all=True, append_images=frames[1:], duration=100)
    result = reconstruct_to_folder(reconstructor, [tmp_path / "wave.gif"], tmp_path / "out", JSON_ONLY, progress=False)
    assert result.folders == ["wave"] and not result.failed and not result.warnings
    with pytest.raises(ValueError, match="animated must be one of"):
        reconstruct_to_folder(reconstructor, [tmp_path / "wave.gif"], tmp_path / "out", animated="every")


def test_a_cmyk_jpeg_reads_as_the_right_colours(tmp_path):
    colours = [(200, 30, 40), (30, 180, 60), (40, 60, 200), (240, 240, 240)]
    array = np.repeat(np.array(colours, dtype=np.uint8)[None, :, None], 8, axis=2).reshape(1, 32, 3)
    array = np.repeat(array, 24, axis=0)  # (24, 32, 3): four vertical stripes
    Image.fromarray(array).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert b"Adobe" in (tmp_path / "cmyk.jpg").read_bytes()[:200]  # stored inverted, as Photoshop writes them
    loaded = np.asarray(load_image(tmp_path / "cmyk.jpg"), dtype=int)
    assert loaded.shape == (24, 32, 3)
    assert np.abs(loaded[12, 4::8] - np.array(colours)).max() <= 6


def test_a_4k_photo_stays_8_bit_until_it_is_resized(tmp_path, reconstructor):
    ramp = np.linspace(0, 255, 3840, dtype=np.float32)[None, :, None]
    Image.fromarray(np.broadcast_to(ramp, (2160, 3840, 3)).astype(np.uint8)).save(tmp_path / "big.jpg")
    image = load_image(tmp_path / "big.jpg")
    assert image.mode == "RGB" and image.size == (3840, 2160)
    tensor = reconstructor.prepare(image)
    assert tensor.shape == (3, reconstructor.image_size, reconstructor.image_size) and tensor.dtype == torch.float32


def test_frames_of_a_cut_animation_come_before_the_error(tmp_path, astronaut):
    frames = [face(astronaut, 32, shift=s) for s in (0, 4, 8)]
    frames[0].save(tmp_path / "cut.gif", save_all=True, append_images=frames[1:], duration=100)
    (tmp_path / "cut.gif").write_bytes((tmp_path / "cut.gif").read_bytes()[:-30])
    assert frame_count(tmp_path / "cut.gif") == 3
    read = []
    with pytest.raises(ImageLoadError, match="frame 2: "):
        for frame in iter_frames(tmp_path / "cut.gif"):
            read.append(frame)
    assert len(read) == 2 and all(frame.mode == "RGB" and frame.size == (32, 32) for frame in read)


def test_a_video_whose_frames_fail_mid_way_keeps_the_frames_before(tmp_path, reconstructor, monkeypatch):
    class FailingReader:
        """Three frames, then the error imageio raises when ffmpeg's output stops mid-frame."""

        def __init__(self):
            self.frames = iter(noise_frames(3))

        def get_next_data(self):
            frame = next(self.frames, None)
            if frame is None:
                raise RuntimeError("Could not read frame 4:\nEnd of file reached before full frame could be read.")
            return frame

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(video_module, "_open", lambda imageio, path: (FailingReader(), 10.0, 5))
    (tmp_path / "clip.mp4").write_bytes(b"stand-in")
    result = reconstruct_to_folder(reconstructor, [tmp_path / "clip.mp4"], tmp_path / "out", progress=False)
    assert result.folders == ["clip"] and not result.failed
    [(path, message)] = result.warnings
    assert path.name == "clip.mp4"
    assert message.startswith("stopped after 3 frames: frame 3 cannot be decoded (")
    assert "End of file reached before full frame could be read." in message
    assert len(imageio.mimread(tmp_path / "out" / "clip" / "comparison.mp4")) == 3


def test_a_video_too_small_to_use_is_an_error(tmp_path, reconstructor):
    write_clip(tmp_path / "small.mp4", noise_frames(2, 8, 8))
    result = reconstruct_to_folder(reconstructor, [tmp_path / "small.mp4"], tmp_path / "out", progress=False)
    assert not result.folders
    [(_, reason)] = result.failed
    assert reason.startswith("frame 0: image too small (8×8 pixels)")
