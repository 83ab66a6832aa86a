import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny_models import save_checkpoint, tiny_config
from PIL import Image

from unsup3d.cli import main
from unsup3d.inference import Reconstructor
from unsup3d.model import PhotoGeometricAutoencoder
from unsup3d.outputs import OutputOptions, reconstruct_to_folder, write_report

QUICK = OutputOptions(("maps", "depth", "obj", "overlays", "relight", "views", "json"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = PhotoGeometricAutoencoder(tiny_config().model)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", model, tiny_config())


def photos(folder: Path, count: int = 2) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        array = np.random.default_rng(k).integers(0, 256, (90, 120, 3), dtype=np.uint8)
        paths.append(folder / f"photo{k}.jpg")
        Image.fromarray(array).save(paths[-1])
    return paths


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        self.links += [value for name, value in attrs if name in ("src", "href")]


def test_folder_reconstruction_reports_bad_files_and_the_report_links_resolve(tmp_path, checkpoint):
    good = photos(tmp_path / "in")
    bad = tmp_path / "in" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    reconstructor = Reconstructor.from_checkpoint(checkpoint, "cpu")
    result = reconstruct_to_folder(reconstructor, [tmp_path / "in"], tmp_path / "out", QUICK, progress=False)
    assert result.folders == ["photo0", "photo1"] and [p for p, _ in result.failed] == [bad]
    for path in good:
        assert (tmp_path / "out" / path.stem / "symmetry.png").is_file()
    report = write_report(tmp_path / "out", result.folders, [(str(p), r) for p, r in result.failed])
    parser = Links()
    parser.feed(report.read_text())
    assert len(parser.links) >= 2 * 12
    for link in parser.links:
        assert not re.match(r"^[a-z]+://", link) and not link.startswith("/")  # relative, offline
        assert (report.parent / link).is_file(), link
    assert "broken.png" in report.read_text()


def test_cli_exit_code_is_non_zero_only_when_nothing_succeeded(tmp_path, checkpoint, capsys):
    good = photos(tmp_path / "in", 1)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"garbage")
    common = ["--checkpoint", str(checkpoint), "--only", "maps", "json", "--no-progress", "--report"]
    assert main(["reconstruct", str(good[0]), str(bad), "--output", str(tmp_path / "a"), *common]) == 0
    err = capsys.readouterr().err
    assert "bad.jpg" in err and "1 input(s) failed, 1 succeeded" in err
    assert (tmp_path / "a" / "index.html").is_file() and (tmp_path / "a" / "photo0" / "view_light.json").is_file()
    assert not (tmp_path / "a" / "photo0" / "mesh.obj").exists()  # --only
    assert main(["reconstruct", str(bad), "--output", str(tmp_path / "b"), *common]) == 3


def test_no_face_is_reported_per_file_or_processed_whole(tmp_path, checkpoint, capsys):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 160), (120, 130, 140)).save(blank)
    common = ["--checkpoint", str(checkpoint), "--only", "json", "--no-progress", "--crop", "face"]
    assert main(["reconstruct", str(blank), "--output", str(tmp_path / "a"), *common]) == 3
    assert "no face found in blank.png" in capsys.readouterr().err
    assert main(["reconstruct", str(blank), "--output", str(tmp_path / "b"), *common, "--crop-fallback", "none"]) == 0
    assert (tmp_path / "b" / "blank" / "view_light.json").is_file()


def test_bad_numbers_and_groups_are_configuration_errors(tmp_path, checkpoint):
    photo = photos(tmp_path / "in", 1)[0]
    for flags in (["--batch-size", "0"], ["--mesh-size", "-3"], ["--workers", "0"]):
        assert (
            main(["reconstruct", str(photo), "--checkpoint", str(checkpoint), "--output", str(tmp_path), *flags]) == 2
        )


def test_a_video_gives_a_comparison_clip_and_per_frame_outputs(tmp_path, checkpoint):
    import imageio.v2 as imageio

    clip = tmp_path / "clip.mp4"
    rng = np.random.default_rng(0)
    with imageio.get_writer(clip, fps=10, macro_block_size=1) as writer:
        for _ in range(5):
            writer.append_data(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(clip.read_bytes()[:200])  # a truncated file
    reconstructor = Reconstructor.from_checkpoint(checkpoint, "cpu")
    options = OutputOptions(("json",))
    result = reconstruct_to_folder(
        reconstructor, [clip, broken], tmp_path / "out", options, batch_size=2, progress=False, video_frames=True
    )
    assert result.folders == ["clip"] and [p.name for p, _ in result.failed] == ["broken.mp4"]
    frames = imageio.mimread(tmp_path / "out" / "clip" / "comparison.mp4")
    assert len(frames) == 5 and frames[0].shape == (256, 3 * 256, 3)
    written = sorted(p.name for p in (tmp_path / "out" / "clip" / "frames").iterdir())
    assert written == [f"{k:06d}" for k in range(5)]
    assert (tmp_path / "out" / "clip" / "frames" / "000004" / "view_light.json").is_file()
