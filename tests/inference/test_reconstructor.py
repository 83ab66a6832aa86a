import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from _tiny_models import SIZE, random_images, save_checkpoint, tiny_config
from PIL import Image

from unsup3d.checkpoint import CheckpointError
from unsup3d.data.images import ImageLoadError
from unsup3d.inference import Reconstruction, Reconstructor
from unsup3d.model import PhotoGeometricAutoencoder
from unsup3d.outputs import GROUP_FILES, OutputOptions, read_obj, write_outputs
from unsup3d.outputs.write import confidence_strip
from unsup3d.render import BACKGROUND_DEPTH, render_depth

STILL = OutputOptions(tuple(group for group in GROUP_FILES if group != "turntable"))  # the turntable: own test
STILL_FILES = set().union(*(GROUP_FILES[group] for group in STILL.groups))


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return PhotoGeometricAutoencoder(tiny_config().model).eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_model):
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", tiny_model, tiny_config())


@pytest.fixture(scope="module")
def reconstructor(checkpoint):
    return Reconstructor.from_checkpoint(checkpoint, device="cpu")


def test_from_checkpoint_file_loads_weights(reconstructor, tiny_model, checkpoint):
    assert reconstructor.checkpoint_path == checkpoint
    assert reconstructor.iteration == 5
    assert reconstructor.device == torch.device("cpu")
    assert not reconstructor.model.training
    loaded = reconstructor.model.state_dict()
    for key, value in tiny_model.state_dict().items():
        assert torch.equal(loaded[key], value), key


def test_default_device_is_cpu_without_cuda(checkpoint):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    assert Reconstructor.from_checkpoint(checkpoint).device == torch.device("cpu")


def test_run_dir_skips_newer_corrupt_checkpoint(tmp_path, tiny_model):
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints" / "step_00000005.pt", tiny_model, tiny_config(), iteration=5)
    (run / "checkpoints" / "step_00000009.pt").write_bytes(b"not a checkpoint")
    (run / "checkpoints" / "notes.pt").write_bytes(b"ignored: not step_XXXXXXXX.pt")
    rec = Reconstructor.from_checkpoint(run, device="cpu")
    assert rec.checkpoint_path.name == "step_00000005.pt"
    assert rec.iteration == 5


def test_unusable_checkpoints_raise(tmp_path, tiny_model):
    with pytest.raises(CheckpointError, match="no such"):
        Reconstructor.from_checkpoint(tmp_path / "missing.pt")
    corrupt = tmp_path / "run" / "checkpoints" / "step_00000001.pt"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="no loadable checkpoint"):
        Reconstructor.from_checkpoint(tmp_path / "run")
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": tiny_model.state_dict()}, foreign)
    with pytest.raises(CheckpointError, match="not an unsup3d checkpoint"):
        Reconstructor.from_checkpoint(foreign)
    mismatched = tmp_path / "mismatched.pt"
    other = tiny_config()
    other.model.depth_nf = 32
    save_checkpoint(mismatched, PhotoGeometricAutoencoder(tiny_config().model), other)
    with pytest.raises(CheckpointError, match="loadable model"):
        Reconstructor.from_checkpoint(mismatched)


def test_inference_reads_only_the_model_configuration(tmp_path, tiny_model):
    """Training and data keys of another version (renamed, removed, unknown) never stop a checkpoint loading."""
    run_config = tiny_config().to_dict()
    run_config["train"]["a_renamed_training_key"] = 3
    run_config["data"] = {"an_unknown_data_key": "x"}
    path = save_checkpoint(tmp_path / "future.pt", tiny_model, tiny_config(), config=run_config)
    images = random_images(2)
    expected = Reconstructor(tiny_model, "cpu")(images)
    torch.testing.assert_close(Reconstructor.from_checkpoint(path, "cpu")(images).view, expected.view)


def test_checkpoints_from_before_model_config_still_load(tmp_path, tiny_model):
    path = save_checkpoint(tmp_path / "old.pt", tiny_model, tiny_config())
    state = torch.load(path, weights_only=True)
    del state["model_config"]  # the layout before the model configuration was stored on its own
    torch.save(state, path)
    assert Reconstructor.from_checkpoint(path, "cpu").config == tiny_config().model


def test_an_invalid_model_configuration_names_the_key(tmp_path, tiny_model):
    model_config = {**dataclasses.asdict(tiny_config().model), "depth_nf": 3}
    path = save_checkpoint(tmp_path / "bad.pt", tiny_model, tiny_config(), model_config=model_config)
    with pytest.raises(CheckpointError, match="model.depth_nf"):
        Reconstructor.from_checkpoint(path, "cpu")


@pytest.mark.parametrize("batch", [1, 3])
def test_shapes_and_ranges(reconstructor, batch):
    rec = reconstructor(random_images(batch))
    s = SIZE
    expected = {
        "image": (batch, 3, s, s),
        "depth": (batch, s, s),
        "canonical_depth": (batch, s, s),
        "canonical_normal": (batch, s, s, 3),
        "canonical_albedo": (batch, 3, s, s),
        "canonical_shading": (batch, 1, s, s),
        "canonical_image": (batch, 3, s, s),
        "recon_image": (batch, 3, s, s),
        "confidence": (batch, 2, s, s),
        "view": (batch, 6),
        "ambient": (batch,),
        "diffuse": (batch,),
        "light_direction": (batch, 3),
    }
    for name, shape in expected.items():
        value = getattr(rec, name)
        assert value.shape == shape, name
        assert value.device.type == "cpu" and value.dtype == torch.float32, name
    assert rec.confidence_perceptual is None  # no perceptual loss: its confidence head is not used
    assert len(rec) == batch
    for name in ("image", "canonical_albedo", "canonical_image", "recon_image"):
        value = getattr(rec, name)
        assert value.min() >= 0 and value.max() <= 1, name
    cfg = reconstructor.config
    assert rec.canonical_depth.min() >= cfg.min_depth and rec.canonical_depth.max() <= cfg.max_depth
    assert torch.allclose(rec.canonical_normal.norm(dim=-1), torch.ones(1), atol=1e-5)
    assert torch.allclose(rec.light_direction.norm(dim=-1), torch.ones(1), atol=1e-5)
    assert (rec.confidence > 0).all()
    assert (rec.view[:, :3].abs() <= math.radians(cfg.rotation_range) + 1e-6).all()
    one = rec.select(batch - 1)
    assert len(one) == 1 and torch.equal(one.depth[0].nan_to_num(-1), rec.depth[-1].nan_to_num(-1))


def test_rejects_bad_images(reconstructor):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reconstructor(random_images(1) * 255)
    with pytest.raises(ValueError):
        reconstructor(torch.rand(1, 3, 32, 32))


def test_depth_is_nan_exactly_on_background(tiny_model):
    """A strong yaw exposes background; NaN must be exactly where the renderer hits no surface."""
    model = PhotoGeometricAutoencoder(tiny_config().model)
    model.load_state_dict(tiny_model.state_dict())
    view = torch.tensor([[0.1, math.radians(50.0), 0.05, 0.03, -0.02, 0.0], [0.0, -0.6, 0.0, -0.05, 0.0, 0.0]])
    model.predict_view = lambda x: view[: x.shape[0]].to(x)  # instance patch: a known, strong view
    rec = Reconstructor(model, "cpu")(random_images(2, seed=3))
    rendered = render_depth(rec.canonical_depth, view, rec.fov)
    background = rendered >= BACKGROUND_DEPTH
    assert background.any() and (~background).any()
    assert torch.equal(torch.isnan(rec.depth), background)
    assert torch.allclose(rec.depth[~background], rendered[~background], atol=1e-6)


def test_write_outputs_writes_every_file(reconstructor, tmp_path):
    rec = reconstructor(random_images(2, seed=1))
    out = tmp_path / "out"
    written = write_outputs(rec, 1, out, STILL)
    names = {p.name for p in written}
    assert STILL_FILES | {"confidence.png", "asymmetry.png"} == names
    for name in names:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name

    depth, canon = np.load(out / "depth.npy"), np.load(out / "canonical_depth.npy")
    assert depth.dtype == np.float32 and depth.shape == (SIZE, SIZE)
    assert canon.dtype == np.float32 and canon.shape == (SIZE, SIZE)
    np.testing.assert_array_equal(np.isnan(depth), torch.isnan(rec.depth[1]).numpy())
    np.testing.assert_allclose(canon, rec.canonical_depth[1].numpy())

    for name in ("input", "reconstruction", "canonical_image", "albedo", "normal"):
        with Image.open(out / f"{name}.png") as image:
            assert image.mode == "RGB" and image.size == (SIZE, SIZE), name
    for name in ("shading", "depth", "canonical_depth"):
        with Image.open(out / f"{name}.png") as image:
            assert image.mode == "L" and image.size == (SIZE, SIZE), name
    with Image.open(out / "confidence.png") as image:
        assert image.size == (2 * SIZE, SIZE)  # photometric σ, σ′ only: this model has no perceptual loss
    with Image.open(out / "albedo.png") as image:
        expected = (rec.canonical_albedo[1].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
        np.testing.assert_array_equal(np.asarray(image), expected)

    meta = json.loads((out / "view_light.json").read_text())
    assert set(meta["rotation_degrees"]) == set("xyz") and set(meta["translation"]) == set("xyz")
    assert set(meta["light"]) == {"ambient", "diffuse", "direction"} and len(meta["light"]["direction"]) == 3
    assert meta["rotation_degrees"]["y"] == pytest.approx(math.degrees(float(rec.view[1, 1])), abs=1e-4)
    assert meta["light"]["ambient"] == pytest.approx(float(rec.ambient[1]), abs=1e-6)

    vertices, faces = read_obj(out / "mesh.obj")
    assert vertices.shape == (SIZE * SIZE, 3) and faces.shape == (2 * (SIZE - 1) ** 2, 3)
    assert "map_Kd albedo.png" in (out / "mesh.mtl").read_text()
    assert "mtllib mesh.mtl" in (out / "mesh.obj").read_text()


def test_write_outputs_without_confidence(tmp_path):
    config = tiny_config()
    config.model.use_conf = False
    torch.manual_seed(1)
    rec = Reconstructor(PhotoGeometricAutoencoder(config.model), "cpu")(random_images(1))
    assert rec.confidence is None and rec.confidence_perceptual is None
    names = {p.name for p in write_outputs(rec, 0, tmp_path, STILL)}
    assert names == STILL_FILES
    with pytest.raises(IndexError):
        write_outputs(rec, 1, tmp_path)


def test_reconstruct_paths_reports_unreadable_files(reconstructor, tmp_path):
    paths = []
    for k, size in enumerate([(80, 80), (50, 70), (64, 64)]):
        array = np.random.default_rng(k).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        path = tmp_path / f"img{k}.png"
        Image.fromarray(array).save(path)
        paths.append(path)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 definitely not a jpeg")
    missing = tmp_path / "missing.png"
    order = [paths[0], broken, paths[1], missing, paths[2]]

    results = list(reconstructor.reconstruct_paths(order, batch_size=2))
    assert [path for path, _ in results] == order
    assert isinstance(results[1][1], ImageLoadError) and isinstance(results[3][1], ImageLoadError)
    good = [result for _, result in results if isinstance(result, Reconstruction)]
    assert len(good) == 3 and all(len(r) == 1 for r in good)

    direct = reconstructor(reconstructor.load_images(paths))
    assert direct.image.shape == (3, 3, SIZE, SIZE)
    for k, result in enumerate(good):
        torch.testing.assert_close(result.image[0], direct.image[k])
        torch.testing.assert_close(result.canonical_depth[0], direct.canonical_depth[k], atol=1e-5, rtol=0)
    with pytest.raises(ImageLoadError):
        reconstructor.load_images([broken])


def test_confidence_strip_with_and_without_perceptual_maps():
    photometric = torch.zeros(2, 8, 8)  # σ = 0: fully confident, 1 / (1 + σ) = 1
    perceptual = torch.ones(1, 2, 2, 2)  # σ = 1: 0.5
    strip = confidence_strip(photometric, perceptual)
    assert strip.shape == (8, 32)
    torch.testing.assert_close(strip[:, :16], torch.ones(8, 16))
    torch.testing.assert_close(strip[:, 16:], torch.full((8, 16), 0.5))
    assert confidence_strip(photometric, None).shape == (8, 16)
