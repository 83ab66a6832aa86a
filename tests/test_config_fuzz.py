"""Property-based: any override strings or nested mappings give a valid Config or a ConfigError, nothing else."""

from hypothesis import given, settings
from hypothesis import strategies as st

from unsup3d.config import Config, ConfigError, build_config, parse_overrides

SETTINGS = settings(max_examples=300, deadline=None)
SECTIONS = ["model", "train", "data", "other"]
KEYS = [
    "depth_nf",
    "min_depth",
    "max_depth",
    "lr",
    "batch_size",
    "lr_schedule",
    "crop",
    "hflip",
    "perceptual",
    "iterations",
    "use_conf",
    "device",
    "val_fraction",
    "unknown",
    "eval_limit",
    "lam_depth_smooth",
    "lam_depth_curvature",
    "lam_view_cycle",
    "view_cycle_degrees",
    "view_cycle_margin",
    "photometric",
    "photometric_start_iteration",
    "supervised",
]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(-5, 300), max_size=5),
)
TEXT_VALUES = st.one_of(
    st.sampled_from(
        ["1", "-3", "1e-4", "0.5", "true", "null", "[1, 2]", "[", "{a: 1}", "cosine", ".nan", "'x", "64", "~", "- a"]
    ),
    st.text(max_size=10),
)


def check(build) -> None:
    try:
        config = build()
    except ConfigError as error:
        assert str(error)
        return
    assert isinstance(config, Config)
    assert config.validate() is config


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(SECTIONS + [""]), st.sampled_from(KEYS), TEXT_VALUES), max_size=5))
def test_override_strings(items):
    strings = [f"{section}.{key}={value}" if section else f"{key}={value}" for section, key, value in items]
    check(lambda: build_config(parse_overrides(strings)))


@SETTINGS
@given(st.dictionaries(st.sampled_from(SECTIONS), st.one_of(SCALARS, st.dictionaries(st.sampled_from(KEYS), SCALARS))))
def test_nested_mappings(mapping):
    check(lambda: build_config(mapping))


@SETTINGS
@given(st.text(max_size=30))
def test_arbitrary_override_text(text):
    check(lambda: build_config(parse_overrides([text])))
