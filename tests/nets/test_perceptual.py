"""Tests for the frozen perceptual feature extractors (VGG16 relu3_3 and EfficientNet-Lite0 stride 4)."""

import pytest
import skimage.data
import torch
import torch.nn.functional as F

from unsup3d.nets import (
    EfficientNetLite0,
    EfficientNetLite0Stride4,
    VGG16Relu33,
    build_perceptual,
    efficientnet_lite0_weights_path,
    find_vgg16_weights,
    load_efficientnet_lite0_weights,
    load_vgg16_weights,
)

# torchvision's vgg16 parameter names for features[0:16] (conv1_1 .. relu3_3).
VGG16_KEYS = [
    "features.0.weight", "features.0.bias",
    "features.2.weight", "features.2.bias",
    "features.5.weight", "features.5.bias",
    "features.7.weight", "features.7.bias",
    "features.10.weight", "features.10.bias",
    "features.12.weight", "features.12.bias",
    "features.14.weight", "features.14.bias",
]  # fmt: skip


def random_vgg16_file(path):
    """A torchvision-style vgg16 state dict with random values, including keys the extractor must ignore."""
    state = {k: torch.randn_like(v) for k, v in VGG16Relu33().state_dict().items()}
    state["features.17.weight"] = torch.randn(512, 256, 3, 3)
    state["features.17.bias"] = torch.randn(512)
    state["classifier.0.weight"] = torch.randn(8, 8)
    state["classifier.6.bias"] = torch.randn(1000)
    torch.save(state, path)
    return state


@pytest.fixture(scope="module")
def lite0_full():
    return load_efficientnet_lite0_weights(EfficientNetLite0()).eval()


# --- VGG16 ------------------------------------------------------------------------------------------


def test_vgg16_keys_equal_torchvision():
    net = VGG16Relu33()
    assert list(net.state_dict()) == VGG16_KEYS
    assert len(net.features) == 16


def test_vgg16_weight_file_round_trip(tmp_path):
    path = tmp_path / "vgg16-397923af.pth"
    state = random_vgg16_file(path)
    net = load_vgg16_weights(VGG16Relu33(), path)
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key])


def test_vgg16_loader_rejects_other_files(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.randn(64, 3, 3, 3)}, path)
    with pytest.raises(KeyError, match="features.0.bias"):
        load_vgg16_weights(VGG16Relu33(), path)


@pytest.mark.parametrize("batch", [1, 3])
def test_vgg16_shapes(batch):
    out = VGG16Relu33()(torch.rand(batch, 3, 64, 64) * 2 - 1)
    assert out.shape == (batch, 256, 16, 16)
    assert (out >= 0).all()


def test_vgg16_normalises_input():
    # Mid-grey in [-1, 1] is 0.5 in [0, 1]; after ImageNet normalisation conv1_1 sees (0.5 - mean) / std.
    net = VGG16Relu33()
    net.features[0].weight.data.zero_()
    net.features[0].bias.data.zero_()
    seen = {}
    net.features[0].register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))
    net(torch.zeros(1, 3, 8, 8))
    expected = (0.5 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(seen["x"][0, :, 0, 0], expected)


def test_find_vgg16_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert find_vgg16_weights() is None
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        build_perceptual("vgg16")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "vgg16_bn-6c64b313.pth").touch()  # a different network: not picked up
    assert find_vgg16_weights() is None
    random_vgg16_file(tmp_path / "checkpoints" / "vgg16-397923af.pth")
    assert find_vgg16_weights() == tmp_path / "checkpoints" / "vgg16-397923af.pth"
    net = build_perceptual("vgg16")
    assert isinstance(net, VGG16Relu33) and net.out_channels == 256 and net.stride == 4


def test_build_perceptual_vgg16_explicit_path(tmp_path):
    path = tmp_path / "weights.pth"
    random_vgg16_file(path)
    assert isinstance(build_perceptual("vgg16", path), VGG16Relu33)
    with pytest.raises(FileNotFoundError):
        build_perceptual("vgg16", tmp_path / "missing.pth")


def test_build_perceptual_unknown_name():
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        build_perceptual("resnet50")


# --- EfficientNet-Lite0 -------------------------------------------------------------------------------------


def imagenet_input(image) -> torch.Tensor:
    """uint8 (H, W, 3) photo -> centre square crop -> (1, 3, 224, 224) in [-1, 1]."""
    x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255
    h, w = x.shape[-2:]
    s = min(h, w)
    x = x[..., (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    return x * 2 - 1


def test_packaged_weight_file_exists():
    path = efficientnet_lite0_weights_path()
    assert path.is_file()
    assert len(torch.load(path, map_location="cpu", weights_only=True)) == 296


def test_lite0_classifies_cat(lite0_full):
    with torch.no_grad():
        probs = lite0_full(imagenet_input(skimage.data.chelsea())).softmax(-1)[0]
    assert 281 <= probs.argmax() <= 285  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert probs[281:286].sum() > 0.8


def test_lite0_classifies_espresso(lite0_full):
    with torch.no_grad():
        probs = lite0_full(imagenet_input(skimage.data.coffee())).softmax(-1)[0]
    assert probs.argmax() == 967  # espresso
    assert probs[967] > 0.9


def test_lite0_stride4_is_prefix_of_full_network(lite0_full):
    net = build_perceptual("efficientnet_lite0")
    assert isinstance(net, EfficientNetLite0Stride4) and net.out_channels == 24 and net.stride == 4
    full_keys = list(lite0_full.state_dict())
    assert list(net.state_dict()) == full_keys[: len(net.state_dict())]
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = lite0_full.blocks[:3](lite0_full.stem(x))
    torch.testing.assert_close(net(x), expected)


@pytest.mark.parametrize("batch", [1, 3])
def test_lite0_shapes(batch):
    net = EfficientNetLite0Stride4()
    assert net(torch.rand(batch, 3, 64, 64) * 2 - 1).shape == (batch, 24, 16, 16)


def test_lite0_mapping_rejects_wrong_file(tmp_path):
    path = tmp_path / "bad.pth"
    torch.save(VGG16Relu33().state_dict(), path)
    with pytest.raises(ValueError, match="14 tensors"):
        load_efficientnet_lite0_weights(EfficientNetLite0Stride4(), path)
    shifted = dict(list(EfficientNetLite0().state_dict().items())[1:])  # first tensor missing
    torch.save(shifted, path)
    with pytest.raises(ValueError, match="cannot map"):
        load_efficientnet_lite0_weights(EfficientNetLite0Stride4(), path)


# --- both: frozen, gradients reach the input --------------------------------------------------------


@pytest.mark.parametrize("make", [VGG16Relu33, EfficientNetLite0Stride4])
def test_frozen_but_differentiable(make):
    net = make()
    net.train()  # must not leave eval mode (BatchNorm keeps its running statistics)
    assert not net.training and not any(m.training for m in net.modules())
    assert not any(p.requires_grad for p in net.parameters())
    x = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_()
    net(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.parametrize("make", [VGG16Relu33, EfficientNetLite0Stride4])
def test_float64(make):
    net = make().double()
    out = net(torch.rand(1, 3, 16, 16, dtype=torch.float64) * 2 - 1)
    assert out.dtype == torch.float64 and out.shape[-2:] == (4, 4)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="multiples of 4"):
        VGG16Relu33()(torch.zeros(1, 3, 30, 30))
    with pytest.raises(ValueError):
        EfficientNetLite0Stride4()(torch.zeros(1, 1, 32, 32))
