"""Tiny models, checkpoints and images shared by the inference tests."""

import dataclasses

import torch

from unsup3d.config import Config, ModelConfig

SIZE = 64


def tiny_config() -> Config:
    model = ModelConfig(
        depth_nf=16, albedo_nf=16, conf_nf=16, encoder_nf=16, autoencoder_zdim=32, conf_zdim=32, perceptual="none"
    )
    return Config(model=model).validate()


def save_checkpoint(path, model, run_config, iteration=5, **changes):
    """The engine's checkpoint format, written by hand (inference must not depend on the engine)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format_version": 1,
        "iteration": iteration,
        "model_config": dataclasses.asdict(run_config.model),
        "config": run_config.to_dict(),
        "model": model.state_dict(),
        **changes,
    }
    torch.save(state, path)
    return path


def random_images(batch, seed=0):
    return torch.rand(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))
