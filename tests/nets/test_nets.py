"""Tests for the encoder, the encoder-decoder and the confidence network (original unsup3d layouts)."""

import pytest
import torch
from torch import nn

from unsup3d.nets import ConfidenceNet, Encoder, EncoderDecoder


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv(cin: int, cout: int, k: int) -> int:
    """Weights of a bias-free conv or transposed conv."""
    return cin * cout * k * k


def gn(c: int) -> int:
    """GroupNorm affine weight + bias."""
    return 2 * c


# --- parameter counts at full width, computed by hand from the layer shapes -------------------------------


def encoder_count(cin: int, cout: int, nf: int) -> int:
    return (
        conv(cin, nf, 4)  # 64 -> 32
        + conv(nf, 2 * nf, 4)  # 32 -> 16
        + conv(2 * nf, 4 * nf, 4)  # 16 -> 8
        + conv(4 * nf, 8 * nf, 4)  # 8 -> 4
        + conv(8 * nf, 8 * nf, 4)  # 4 -> 1
        + conv(8 * nf, cout, 1)
    )


def ed_encoder_count(cin: int, zdim: int, nf: int) -> int:
    return (
        conv(cin, nf, 4) + gn(nf)
        + conv(nf, 2 * nf, 4) + gn(2 * nf)
        + conv(2 * nf, 4 * nf, 4) + gn(4 * nf)
        + conv(4 * nf, 8 * nf, 4)  # no GN
        + conv(8 * nf, zdim, 4)
    )  # fmt: skip


def encoder_decoder_count(cin: int, cout: int, zdim: int, nf: int) -> int:
    decoder = (
        conv(zdim, 8 * nf, 4)  # convT 1 -> 4
        + conv(8 * nf, 8 * nf, 3)
        + conv(8 * nf, 4 * nf, 4) + gn(4 * nf) + conv(4 * nf, 4 * nf, 3) + gn(4 * nf)  # 4 -> 8
        + conv(4 * nf, 2 * nf, 4) + gn(2 * nf) + conv(2 * nf, 2 * nf, 3) + gn(2 * nf)  # 8 -> 16
        + conv(2 * nf, nf, 4) + gn(nf) + conv(nf, nf, 3) + gn(nf)  # 16 -> 32
        + conv(nf, nf, 3) + gn(nf)  # after the x2 upsampling
        + conv(nf, nf, 5) + gn(nf)
        + conv(nf, cout, 5)
    )  # fmt: skip
    return ed_encoder_count(cin, zdim, nf) + decoder


def confidence_count(cin: int, zdim: int, nf: int) -> int:
    trunk = (
        conv(zdim, 8 * nf, 4)  # convT 1 -> 4
        + conv(8 * nf, 4 * nf, 4) + gn(4 * nf)  # 4 -> 8
        + conv(4 * nf, 2 * nf, 4) + gn(2 * nf)  # 8 -> 16
    )  # fmt: skip
    out_net1 = conv(2 * nf, nf, 4) + gn(nf) + conv(nf, nf, 4) + gn(nf) + conv(nf, 2, 5)
    out_net2 = conv(2 * nf, 2, 3)
    return ed_encoder_count(cin, zdim, nf) + trunk + out_net1 + out_net2


def test_hand_counts_match_the_reference_figures():
    # The figures quoted for the original (netD 12.98 M, netL 1.74 M, netC 7.68 M, total 37.1 M).
    assert encoder_decoder_count(3, 1, 256, 64) == 12_979_648
    assert encoder_decoder_count(3, 3, 256, 64) == 12_982_848
    assert encoder_count(3, 4, 32) == 1_739_264
    assert encoder_count(3, 6, 32) == 1_739_776
    assert confidence_count(3, 128, 64) == 7_678_208
    total = (
        encoder_decoder_count(3, 1, 256, 64)
        + encoder_decoder_count(3, 3, 256, 64)
        + encoder_count(3, 4, 32)
        + encoder_count(3, 6, 32)
        + confidence_count(3, 128, 64)
    )
    assert round(total / 1e6, 1) == 37.1


@pytest.mark.parametrize("nf", [64, 16])
def test_parameter_counts(nf):
    zdim = 4 * nf
    assert n_params(EncoderDecoder(3, 1, zdim, nf)) == encoder_decoder_count(3, 1, zdim, nf)
    assert n_params(EncoderDecoder(3, 3, zdim, nf, nn.Tanh)) == encoder_decoder_count(3, 3, zdim, nf)
    assert n_params(Encoder(3, 4, nf // 2)) == encoder_count(3, 4, nf // 2)
    assert n_params(Encoder(3, 6, nf // 2)) == encoder_count(3, 6, nf // 2)
    assert n_params(ConfidenceNet(3, zdim // 2, nf)) == confidence_count(3, zdim // 2, nf)


# --- original state-dict keys ------------------------------------------------------------------------------


def weight_keys(prefix: str, indices) -> set[str]:
    return {f"{prefix}.{i}.weight" for i in indices}


def gn_keys(prefix: str, indices) -> set[str]:
    return {f"{prefix}.{i}.{p}" for i in indices for p in ("weight", "bias")}


def test_encoder_keys_match_original():
    keys = set(Encoder(3, 4, 32).state_dict())
    assert keys == weight_keys("network", (0, 2, 4, 6, 8, 10))


@pytest.mark.parametrize("activation", [None, nn.Tanh])
def test_encoder_decoder_keys_match_original(activation):
    net = EncoderDecoder(3, 3, 256, 64, activation)
    convs = (0, 3, 6, 9, 11, 13, 15, 17, 20, 23, 26, 29, 32, 36, 39, 42)
    norms = (1, 4, 7, 18, 21, 24, 27, 30, 33, 37, 40)
    assert set(net.state_dict()) == weight_keys("network", convs) | gn_keys("network", norms)
    assert all(isinstance(net.network[i], nn.GroupNorm) for i in norms)
    assert isinstance(net.network[17], nn.ConvTranspose2d)
    assert net.network[17].weight.shape == (512, 256, 4, 4)  # convT layout (in, out, k, k)
    assert net.network[1].num_groups == 16 and net.network[18].num_groups == 64
    assert isinstance(net.network[35], nn.Upsample) and net.network[35].mode == "nearest"
    if activation is None:
        assert len(net.network) == 43
    else:
        assert len(net.network) == 44 and isinstance(net.network[43], nn.Tanh)
    assert all(m.bias is None for m in net.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d))


def test_confidence_keys_match_original():
    keys = set(ConfidenceNet(3, 128, 64).state_dict())
    expected = (
        weight_keys("network", (0, 3, 6, 9, 11, 13, 15, 18))
        | gn_keys("network", (1, 4, 7, 16, 19))
        | weight_keys("out_net1", (0, 3, 6))
        | gn_keys("out_net1", (1, 4))
        | weight_keys("out_net2", (0,))
    )
    assert keys == expected


def test_original_style_state_dict_loads():
    # A state dict written with the original's names loads strictly into a fresh network.
    src = EncoderDecoder(3, 1, 256, 64)
    state = {k: torch.randn_like(v) for k, v in src.state_dict().items()}
    dst = EncoderDecoder(3, 1, 256, 64)
    dst.load_state_dict(state, strict=True)
    assert torch.equal(dst.network[42].weight, state["network.42.weight"])


# --- forward shapes and ranges ----------------------------------------------------------------------------

SMALL = 16  # width used for the fast shape tests


@pytest.mark.parametrize("batch", [1, 3])
def test_encoder_shapes(batch):
    x = torch.rand(batch, 3, 64, 64) * 2 - 1
    out = Encoder(3, 6, SMALL)(x)
    assert out.shape == (batch, 6)
    assert out.abs().max() < 1


@pytest.mark.parametrize("batch", [1, 3])
def test_encoder_decoder_shapes(batch):
    x = torch.rand(batch, 3, 64, 64) * 2 - 1
    assert EncoderDecoder(3, 1, 64, SMALL)(x).shape == (batch, 1, 64, 64)
    albedo = EncoderDecoder(3, 3, 64, SMALL, nn.Tanh)(x)
    assert albedo.shape == (batch, 3, 64, 64) and albedo.abs().max() < 1


@pytest.mark.parametrize("batch", [1, 3])
def test_confidence_shapes_and_positive(batch):
    x = torch.rand(batch, 3, 64, 64) * 2 - 1
    photometric, perceptual = ConfidenceNet(3, 32, SMALL)(x)
    assert photometric.shape == (batch, 2, 64, 64)
    assert perceptual.shape == (batch, 2, 16, 16)
    assert (photometric > 0).all() and (perceptual > 0).all()


def test_full_width_forward():
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert EncoderDecoder(3, 1, 256, 64)(x).shape == (2, 1, 64, 64)
    assert Encoder(3, 4, 32)(x).shape == (2, 4)
    maps = ConfidenceNet(3, 128, 64)(x)
    assert maps.photometric.shape == (2, 2, 64, 64) and maps.perceptual.shape == (2, 2, 16, 16)


def test_float64_and_gradients():
    x = (torch.rand(2, 3, 64, 64, dtype=torch.float64) * 2 - 1).requires_grad_()
    net = EncoderDecoder(3, 1, 32, 8).double()
    net(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.parameters())


# --- argument checks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [128, 256])
def test_larger_image_sizes_keep_the_output_layout(size):
    x = torch.rand(2, 3, size, size) * 2 - 1
    assert Encoder(3, 4, 8, image_size=size)(x).shape == (2, 4)
    assert EncoderDecoder(3, 1, 32, 8, image_size=size)(x).shape == (2, 1, size, size)
    maps = ConfidenceNet(3, 32, 8, image_size=size)(x)
    assert maps.photometric.shape == (2, 2, size, size) and maps.perceptual.shape == (2, 2, size // 4, size // 4)
    stages = {128: 5, 256: 6}[size]  # one more stride-2 stage per doubling
    convs = [m for m in Encoder(3, 4, 8, image_size=size).network if isinstance(m, torch.nn.Conv2d)]
    assert sum(m.stride == (2, 2) for m in convs) == stages


@pytest.mark.parametrize("size", [32, 96, 512])
def test_unsupported_image_size_raises(size):
    for make in (
        lambda: Encoder(3, 4, 8, image_size=size),
        lambda: EncoderDecoder(3, 1, 32, 8, image_size=size),
        lambda: ConfidenceNet(3, 32, 8, image_size=size),
    ):
        with pytest.raises(ValueError, match="image_size"):
            make()


def test_wrong_input_shape_raises():
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\)"):
        Encoder(3, 4, 8)(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError):
        EncoderDecoder(3, 1, 32, 8)(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError):
        ConfidenceNet(3, 32, 8)(torch.zeros(3, 64, 64))


def test_group_norm_needs_width_multiple_of_four():
    with pytest.raises(ValueError, match="divisible by 4"):
        EncoderDecoder(3, 1, 32, 6)


def test_group_norm_runs_in_float32_under_autocast_and_is_plain_group_norm_outside():
    norm = EncoderDecoder(3, 1, 16, 8).network[1]
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    plain = nn.GroupNorm(norm.num_groups, norm.num_channels)
    plain.load_state_dict(norm.state_dict())
    x = torch.randn(2, 8, 16, 16)
    assert torch.equal(norm(x), plain(x))
    assert torch.equal(norm.double()(x.double()), plain.double()(x.double()))  # float64 stays float64
    norm.float(), plain.float()
    low = x.bfloat16()
    with torch.autocast("cpu", torch.bfloat16):
        out = norm(low)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, plain(low.float()), rtol=1e-6, atol=1e-6)  # exactly float32 group norm
