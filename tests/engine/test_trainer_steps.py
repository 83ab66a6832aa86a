import copy
import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from unsup3d.checkpoint import list_checkpoints, load_checkpoint
from unsup3d.config import build_config
from unsup3d.engine.schedule import EpochBatchSampler, learning_rate
from unsup3d.engine.trainer import MAX_NONFINITE_STEPS, Trainer, TrainingError
from unsup3d.engine.training import build_training

TINY = {"depth_nf": 8, "albedo_nf": 8, "encoder_nf": 8, "conf_nf": 8, "autoencoder_zdim": 16, "conf_zdim": 16}


@pytest.fixture
def trainer(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray((rng.random((64, 64, 3)) * 255).astype("uint8")).save(tmp_path / f"{i}.png")
    config = build_config(
        {
            "model": TINY,
            "train": {"batch_size": 4, "num_workers": 0},
            "data": {"train_dir": str(tmp_path), "val_fraction": 0.0},
        }
    )
    return Trainer(config, tmp_path / "run", progress=False)


def test_non_finite_loss_skips_the_step(trainer):
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    images = torch.rand(4, 3, 64, 64)
    images[0, 0, 0, 0] = float("nan")
    assert trainer.train_step(images) is None
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert trainer.train_step(torch.rand(4, 3, 64, 64)) is not None


def test_non_finite_gradient_skips_the_step(trainer):
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    weight = next(trainer.model.view_net.parameters())
    handle = weight.register_hook(lambda grad: grad * float("inf"))
    assert trainer.train_step(torch.rand(4, 3, 64, 64)) is None
    handle.remove()
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None for p in trainer.model.parameters())
    assert not trainer.optimizer.state  # Adam's moments were not touched either


def test_persistent_non_finite_loss_stops_the_run_with_its_state_saved(trainer, monkeypatch, caplog):
    trainer.fit(until=2)
    monkeypatch.setattr(trainer.objective, "step_terms", lambda *args: {"total": torch.tensor(float("nan"))})
    with pytest.raises(TrainingError, match=f"non-finite for {MAX_NONFINITE_STEPS} consecutive steps; state saved"):
        trainer.fit(until=10)
    assert trainer.iteration == 2
    assert load_checkpoint(list_checkpoints(trainer.run_dir / "checkpoints")[-1])["iteration"] == 2
    assert caplog.text.count("non-finite loss at iteration 2: step skipped") == MAX_NONFINITE_STEPS


def test_epoch_sampler_resumes_mid_epoch():
    full = EpochBatchSampler(10, 3, seed=1)
    stream = iter(full)
    expected = [next(stream) for _ in range(7)]
    resumed = iter(EpochBatchSampler(10, 3, seed=1, start=4))
    assert [next(resumed) for _ in range(3)] == expected[4:]
    assert all(len(batch) == 3 for batch in expected)
    assert sorted(sum(expected[:3], [])) == sorted(set(sum(expected[:3], [])))  # no repeats within an epoch


def test_train_step_uses_the_scheduled_learning_rate(trainer):
    trainer.config.train.lr_schedule = "cosine"
    trainer.config.train.lr_warmup = 10
    for iteration in (0, 5, 30):
        trainer.iteration = iteration
        terms = trainer.train_step(torch.rand(4, 3, 64, 64))
        expected = learning_rate(trainer.config.train, iteration)
        assert terms["lr"] == pytest.approx(expected)
        assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(expected)
    assert learning_rate(trainer.config.train, 5) < trainer.config.train.lr


def test_depth_prior_iterations_train_only_the_depth_network_towards_the_ellipsoid(trainer):
    trainer.config.train.depth_prior_iterations = 30
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    images = torch.rand(4, 3, 64, 64)
    first = trainer.train_step(images)
    assert set(first) == {"total", "depth_prior", "lr"}
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, before[key]) != key.startswith("depth_net."), key
    for trainer.iteration in range(1, 30):
        last = trainer.train_step(images)
    assert last["depth_prior"] < 0.5 * first["depth_prior"]
    trainer.iteration = 30  # the photometric objective takes over
    after = trainer.train_step(images)
    assert {"photo", "photo_flip"} <= set(after) and "depth_prior" not in after


def test_bf16_autocast_keeps_the_geometry_in_float32(trainer):
    images = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = trainer.objective.image_terms(trainer.model(images), images)["total"]
        with torch.autocast("cpu", torch.bfloat16):
            pred = trainer.model(images)
            mixed = trainer.objective.image_terms(pred, images)["total"]
    for half in (pred.recon, pred.recon_flipped):
        for name in ("canonical_depth", "canonical_normal", "depth", "image"):
            assert getattr(half, name).dtype == torch.float32, name
    assert pred.view.dtype == pred.confidence.dtype == torch.float32
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, reference, rtol=0.05, atol=0.02)  # bfloat16 networks: ~3 digits
    trainer.config.train.amp = "bf16"
    terms = trainer.train_step(images)
    assert terms is not None and np.isfinite(terms["total"])


def test_deterministic_option_turns_on_deterministic_algorithms(tmp_path):
    for i in range(4):
        Image.new("RGB", (64, 64), (i * 40, 90, 20)).save(tmp_path / f"{i}.png")
    config = build_config(
        {
            "model": TINY,
            "train": {"batch_size": 4, "num_workers": 0, "deterministic": True},
            "data": {"train_dir": str(tmp_path), "val_fraction": 0.0},
        }
    )
    try:
        Trainer(config, tmp_path / "run", progress=False)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_compile_option_matches_eager_and_keeps_checkpoint_keys(tmp_path):
    for i in range(4):
        pixels = np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
    settings = {"batch_size": 4, "num_workers": 0, "iterations": 2, "threads": 1}
    configs = [
        build_config({"model": TINY, "train": {**settings, "compile": flag}, "data": {"train_dir": str(tmp_path)}})
        for flag in (False, True)
    ]
    eager, compiled = (Trainer(c, tmp_path / f"run{i}", progress=False) for i, c in enumerate(configs))
    assert set(compiled.model.state_dict()) == set(eager.model.state_dict())
    images = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    # same initial weights
    losses = [t.objective.image_terms(t.model(images), images)["total"] for t in (eager, compiled)]
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-6)
    losses[1].backward()
    compiled.fit()
    assert compiled.iteration == 2
    saved = load_checkpoint(list_checkpoints(tmp_path / "run1" / "checkpoints")[-1])["model"]
    assert set(saved) == set(eager.model.state_dict())


def test_flips_are_random_and_a_function_of_seed_and_iteration(trainer):
    images = torch.zeros(16, 3, 64, 64)
    images[..., :8] = 1.0  # a white band on the left: flipped images have it on the right

    def flipped(iteration: int) -> list[bool]:
        trainer.iteration = iteration
        return (trainer.augment(images)[:, 0, 0, -1] > 0.5).tolist()

    first = flipped(5)
    assert any(first) and not all(first)
    assert flipped(5) == first  # a resumed run repeats its flips
    assert flipped(6) != first
    trainer.config.data.hflip = False
    assert not any(flipped(5))


def test_checkpoints_store_the_model_configuration_on_its_own(trainer):
    trainer.fit(until=1)
    state = load_checkpoint(list_checkpoints(trainer.run_dir / "checkpoints")[-1])
    assert state["model_config"] == dataclasses.asdict(trainer.config.model)
    assert state["config"] == trainer.config.to_dict()  # the whole run, for resuming


def test_adam_is_fused_and_resumes_unfused_states_to_the_same_step(trainer):
    assert trainer.optimizer.param_groups[0]["fused"] is True
    images = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    trainer.iteration = 300  # the objective, not the depth prior
    model = trainer.model
    unfused = torch.optim.Adam(model.parameters(), lr=trainer.config.train.lr)  # the optimiser of older checkpoints

    def step(optimizer):
        optimizer.zero_grad()
        trainer.training.loss_terms(images, 300)["total"].backward()
        optimizer.step()

    step(unfused)
    saved_model = {k: v.clone() for k, v in model.state_dict().items()}
    saved = copy.deepcopy(unfused.state_dict())
    trainer.optimizer.load_state_dict(saved)
    assert trainer.optimizer.param_groups[0]["fused"] is True
    torch.manual_seed(0)
    step(unfused)
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(saved_model)
    torch.manual_seed(0)
    step(trainer.optimizer)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, reference[key], rtol=1e-5, atol=1e-7, msg=key)


def test_channels_last_option_computes_the_same_loss(tmp_path):
    images = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    losses = []
    for flag in (False, True):
        config = build_config({"model": TINY, "train": {"channels_last": flag}, "data": {"train_dir": str(tmp_path)}})
        torch.manual_seed(0)
        training = build_training(config)
        losses.append(training.loss_terms(images, 10**4)["total"])
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-6)
