import math

import pytest

from unsup3d.config import ConfigError, TrainConfig, build_config
from unsup3d.engine.schedule import learning_rate


def test_constant_schedule_is_the_base_rate():
    tc = TrainConfig(lr=3e-4, iterations=100)
    assert [learning_rate(tc, i) for i in (0, 50, 99, 500)] == [3e-4] * 4


def test_cosine_decays_from_lr_to_the_final_ratio():
    tc = TrainConfig(lr=1e-3, iterations=1000, lr_schedule="cosine", lr_final_ratio=0.1)
    assert learning_rate(tc, 0) == pytest.approx(1e-3)
    assert learning_rate(tc, 500) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))
    assert learning_rate(tc, 1000) == pytest.approx(1e-4)
    assert learning_rate(tc, 5000) == pytest.approx(1e-4)  # past the end it stays at the floor
    rates = [learning_rate(tc, i) for i in range(1001)]
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))


def test_warmup_longer_than_the_run_is_only_warm_up():
    tc = TrainConfig(lr=1e-3, iterations=10, lr_schedule="cosine", lr_warmup=20)
    assert learning_rate(tc, 9) == pytest.approx(5e-4)
    assert learning_rate(tc, 25) == pytest.approx(1e-3 * 0.05)


def test_warmup_rises_linearly_then_the_cosine_starts_at_lr():
    tc = TrainConfig(lr=2e-4, iterations=300, lr_schedule="cosine", lr_warmup=100, lr_final_ratio=0.0)
    assert learning_rate(tc, 0) == pytest.approx(2e-6)
    assert learning_rate(tc, 49) == pytest.approx(1e-4)
    assert learning_rate(tc, 99) == pytest.approx(2e-4)
    assert learning_rate(tc, 100) == pytest.approx(2e-4)
    assert learning_rate(tc, 200) == pytest.approx(2e-4 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert learning_rate(tc, 300) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("key", "value"),
    [("lr_schedule", "linear"), ("lr_final_ratio", 1.5), ("lr_warmup", -1), ("depth_prior_iterations", -1)],
)
def test_bad_schedule_settings_name_the_key(key, value):
    with pytest.raises(ConfigError, match=f"train.{key}"):
        build_config({"train": {key: value, "iterations": 4000}})
