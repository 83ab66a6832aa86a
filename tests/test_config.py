import pytest

from unsup3d.config import IMAGE_SIZES, ConfigError, available_presets, build_config, load_preset, parse_overrides
from unsup3d.nets import SUPPORTED_IMAGE_SIZES


def test_defaults_are_the_papers():
    config = build_config()
    assert config.model.lam_flip == 0.5 and config.model.lam_perc == 1.0
    assert config.model.resolved_border_depth == pytest.approx(1.04)
    assert config.train.lr == 1e-4 and config.train.weight_decay == 5e-4 and config.train.batch_size == 64


def test_overrides_apply_in_order_and_parse_yaml_scalars():
    config = build_config({"train": {"lr": 1}}, parse_overrides(["train.lr=2e-4", "model.use_conf=false"]))
    assert config.train.lr == 2e-4 and isinstance(config.train.lr, float)
    assert config.model.use_conf is False


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"train": {"lr_rate": 1}}, "train.lr_rate"),
        ({"modle": {}}, "modle"),
        ({"train": {"batch_size": "big"}}, "train.batch_size"),
        ({"train": {"batch_size": 0}}, "train.batch_size"),
        ({"model": {"perceptual": "resnet"}}, "model.perceptual"),
        ({"model": {"use_conf": 1}}, "model.use_conf"),
        ({"train": 3}, "train"),
    ],
)
def test_bad_keys_types_and_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        build_config(override)


def test_malformed_override_is_rejected():
    with pytest.raises(ConfigError):
        parse_overrides(["train.lr"])


def test_presets_ship_and_build():
    assert {"cpu", "paper"} <= set(available_presets())
    for name in available_presets():
        build_config(load_preset(name))
    with pytest.raises(ConfigError, match="unknown preset"):
        load_preset("nope")


def test_config_accepts_exactly_the_image_sizes_the_networks_support():
    assert IMAGE_SIZES == SUPPORTED_IMAGE_SIZES
    for size in IMAGE_SIZES:
        assert build_config({"model": {"image_size": size}}).model.image_size == size
    with pytest.raises(ConfigError, match="model.image_size"):
        build_config({"model": {"image_size": 96}})


@pytest.mark.parametrize("key", ["checkpoint_every", "log_every", "image_log_every", "validate_every"])
def test_every_interval_must_be_positive(key):
    with pytest.raises(ConfigError, match=f"train.{key}"):
        build_config({"train": {key: 0}})


def test_the_depth_translation_must_stay_inside_the_rendered_depth_margin():
    # The paper's range (0.9-1.1) leaves a margin of 0.1, the original's cat translation; the cpu preset's
    # (0.96-1.04) leaves 0.04, beyond which the surface would be clamped flat.
    assert build_config({"model": {"z_translation_range": 0.1}}).model.z_translation_range == 0.1
    narrow = {"min_depth": 0.96, "max_depth": 1.04}
    assert build_config({"model": {**narrow, "z_translation_range": 0.04}}).model.z_translation_range == 0.04
    with pytest.raises(ConfigError, match=r"model.z_translation_range.*\[0, 0.04\]"):
        build_config({"model": {**narrow, "z_translation_range": 0.1}})
    with pytest.raises(ConfigError, match="model.z_translation_range"):
        build_config({"model": {"z_translation_range": -0.01}})
