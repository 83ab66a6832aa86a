"""The supervised baseline: its loss, its fixed view and appearance, and a few-iteration run on generated pairs
that lowers the loss, checkpoints, resumes exactly and is read by ``unsup3d evaluate`` and ``reconstruct``."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from _tiny_runs import TINY_MODEL

from unsup3d.cli import main
from unsup3d.config import ConfigError, ModelConfig, build_config
from unsup3d.data import PairedDepthDataset
from unsup3d.engine.supervised import fix_view_and_appearance
from unsup3d.engine.trainer import Trainer
from unsup3d.inference import Reconstructor
from unsup3d.losses import depth_l1, supervised_terms
from unsup3d.model import PhotoGeometricAutoencoder
from unsup3d.synthetic.dataset import write_dataset

TINY = {**TINY_MODEL, "use_conf": False}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    """16 generated faces with their ground-truth depth: ``pairs/image`` and ``pairs/depth``."""
    root = tmp_path_factory.mktemp("synth")
    write_dataset(root, n_train=0, n_test=16, size=64, seed=5, progress=False)
    return root / "test"


def supervised_config(pairs: Path, **train):
    settings = {"supervised": True, "batch_size": 8, "lr": 1e-3, "num_workers": 0, "threads": 1, **train}
    settings = {"log_every": 1, "validate_every": 1000, "image_log_every": 1000, **settings}
    data = {"train_dir": str(pairs), "val_fraction": 0.0}
    return build_config({"model": TINY, "train": settings, "data": data})


def all_pairs(pairs: Path) -> tuple[torch.Tensor, torch.Tensor]:
    dataset = PairedDepthDataset(pairs, 64)
    items = [dataset[i] for i in range(len(dataset))]
    return torch.stack([x["image"] for x in items]), torch.stack([x["depth"] for x in items])


# ---------------------------------------------------------------------- the loss
def test_depth_l1_matches_a_pixel_loop_and_passes_gradcheck():
    generator = torch.Generator().manual_seed(0)
    depth = 1 + 0.05 * torch.rand(2, 5, 5, generator=generator, dtype=torch.float64)
    target = 1 + 0.05 * torch.rand(2, 5, 5, generator=generator, dtype=torch.float64)
    target[0, :2] = float("nan")
    target[1, :, 0] = float("nan")
    total, count = 0.0, 0
    for b, i, j in np.ndindex(2, 5, 5):
        if np.isfinite(float(target[b, i, j])):
            total, count = total + abs(float(depth[b, i, j] - target[b, i, j])) * 100, count + 1
    assert float(depth_l1(depth, target)) == pytest.approx(total / count, rel=1e-12)
    assert torch.autograd.gradcheck(lambda d: depth_l1(d, target), depth.clone().requires_grad_())
    depth.requires_grad_()
    depth_l1(depth, target).backward()
    assert bool(torch.isfinite(depth.grad).all()) and float(depth.grad[0, :2].abs().max()) == 0.0
    with pytest.raises(ValueError, match=r"\(B, S, S\)"):
        depth_l1(depth[0], target[0])


def test_supervised_terms_name_the_loss():
    terms = supervised_terms(torch.ones(1, 4, 4), torch.full((1, 4, 4), 1.01))
    assert set(terms) == {"total", "depth_l1"} and float(terms["total"]) == pytest.approx(1.0, rel=1e-5)


# ---------------------------------------------------------------------- the model: identity view, no appearance
def test_fixed_view_and_appearance_render_the_predicted_depth_in_view():
    config = ModelConfig(**TINY)
    model = fix_view_and_appearance(PhotoGeometricAutoencoder(config)).eval()
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        pred = model(images, with_flip=False)
    assert float(pred.view.abs().max()) == 0.0
    assert torch.equal(pred.recon.canonical_albedo, torch.full_like(pred.recon.canonical_albedo, 0.5))
    assert torch.equal(pred.light_direction, torch.tensor([[0.0, 0.0, 1.0]]).expand(3, 3))
    assert torch.equal(pred.ambient, torch.full((3,), 0.5)) and torch.equal(pred.diffuse, torch.full((3,), 0.5))
    # The identity view renders the depth grid at its own pixel centres: what evaluate scores is the prediction.
    torch.testing.assert_close(pred.recon.depth, pred.recon.canonical_depth, atol=1e-5, rtol=0)
    assert bool((pred.recon.depth < config.far_depth).all())


def test_the_config_refuses_what_supervised_training_cannot_use():
    with pytest.raises(ConfigError, match="model.use_conf"):
        build_config({"train": {"supervised": True}})
    with pytest.raises(ConfigError, match="data.cache_dir"):
        build_config({"model": {"use_conf": False}, "train": {"supervised": True}, "data": {"cache_dir": "c"}})


def test_image_and_depth_get_the_same_flips(pairs, tmp_path):
    trainer = Trainer(supervised_config(pairs), tmp_path, progress=False)
    images, depth = all_pairs(pairs)
    for iteration in range(4):
        trainer.iteration = iteration
        flipped_images, flipped_depth = trainer.augment(images), trainer.augment(depth)
        flipped = (flipped_images != images).flatten(1).any(1)
        assert torch.equal(flipped, (flipped_depth.nan_to_num(-1) != depth.nan_to_num(-1)).flatten(1).any(1))
        expected = torch.where(flipped[:, None, None], depth.flip(-1), depth)
        torch.testing.assert_close(flipped_depth, expected, equal_nan=True, atol=0, rtol=0)


# ---------------------------------------------------------------------- runs
def test_a_supervised_run_lowers_the_loss_and_trains_only_the_depth_network(pairs, tmp_path):
    trainer = Trainer(supervised_config(pairs, iterations=12, checkpoint_every=6), tmp_path, progress=False)
    images, depth = all_pairs(pairs)
    others = {k: v.clone() for k, v in trainer.model.state_dict().items() if not k.startswith("depth_net.")}

    def loss() -> float:
        with torch.no_grad():
            return float(supervised_terms(trainer.model.predict_depth(images * 2 - 1), depth)["total"])

    before = loss()
    trainer.fit()
    assert loss() < 0.7 * before
    for key, value in trainer.model.state_dict().items():
        if key in others:
            assert torch.equal(value, others[key]), key
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if "train/depth_l1" in r] == list(range(1, 13))
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*.pt")) == [
        "step_00000006.pt",
        "step_00000012.pt",
    ]


def test_a_supervised_run_resumes_exactly(pairs, tmp_path):
    straight = Trainer(supervised_config(pairs, iterations=4, checkpoint_every=2), tmp_path / "a", progress=False)
    straight.fit()
    first = Trainer(supervised_config(pairs, iterations=4, checkpoint_every=2), tmp_path / "b", progress=False)
    first.fit(until=2)
    resumed = Trainer(supervised_config(pairs, iterations=4), tmp_path / "b", resume=True, progress=False)
    assert resumed.iteration == 2
    resumed.fit()
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, atol=0, rtol=0, msg=key)


def test_cli_supervised_train_resume_evaluate_reconstruct(pairs, tmp_path):
    run = tmp_path / "run"
    tiny = [f"model.{k}={v}" for k, v in TINY_MODEL.items()]
    settings = ["--set", *tiny, "train.batch_size=8", "train.num_workers=0", "train.threads=1"]
    settings += ["train.checkpoint_every=2", "data.val_fraction=0"]
    base = ["train", "--supervised", "--data", str(pairs), "--out", str(run), "--no-progress", *settings]
    assert main([*base, "--iterations", "2"]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["supervised"] is True and saved["model"]["use_conf"] is False
    assert main([*base, "--iterations", "4", "--resume"]) == 0
    assert (run / "checkpoints" / "step_00000004.pt").is_file()
    # Resuming without --supervised is another model (it has a confidence network): a clear checkpoint error.
    unsupervised = [a for a in base if a != "--supervised"]
    assert main([*unsupervised, "--iterations", "6", "--resume"]) == 4

    scores = tmp_path / "scores.json"
    assert main(["evaluate", "--checkpoint", str(run), "--data", str(pairs), "--output", str(scores)]) == 0
    result = json.loads(scores.read_text())
    assert len(result["per_image"]["ours"]["side"]) == 16
    # No yaw variation and no confidence maps: those statistics do not apply (4 iterations leave depth noise, which
    # the texture detector may well report).
    assert set(result["collapse"]["statistics"]) == {
        "depth_relief",
        "hollow_fraction",
        "fine_depth_energy",
        "translation_at_limit",
    }

    out = tmp_path / "out"
    image = pairs / "image" / "00000.png"
    assert main(["reconstruct", str(image), "--checkpoint", str(run), "--output", str(out), "--only", "depth"]) == 0
    rec = Reconstructor.from_checkpoint(run, device="cpu")(all_pairs(pairs)[0][:1])
    assert rec.view.abs().max() == 0 and rec.confidence is None
    written = np.load(out / "00000" / "depth.npy")
    np.testing.assert_allclose(written, rec.depth[0].numpy(), atol=1e-6)
