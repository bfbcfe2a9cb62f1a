"""Properties of the networks beyond the fixture: the Generator contract, modes and identities."""

import pytest
import torch

from ganfactory.gan import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, mix_styles
from ganfactory.gan.ops import setup_filter, upfirdn2d, upsample2d

SMALL = dict(z_dim=16, w_dim=16, img_resolution=64, mapping_layers=2, channel_base=256, channel_max=32)


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(**SMALL, conv_clamp=256)).eval()
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)
        g.mapping.w_avg.normal_()
    return g


def test_contract_shapes_and_feature_names(G):
    assert G.num_ws == 2 * 6 - 2 == 10
    ws = G.mapping(torch.randn(2, 16))
    assert ws.shape == (2, 10, 16)
    img, feats = G.synthesis(ws, return_features=True)
    assert img.shape == (2, 3, 64, 64)
    expected = ["b4.conv1", "b4.torgb"] + [f"b{r}.{n}" for r in (8, 16, 32, 64) for n in ("conv0", "conv1", "torgb")]
    assert list(feats) == expected == G.synthesis.layer_names()
    for name, f in feats.items():
        res = int(name.split(".")[0][1:])
        assert f.shape[-2:] == (res, res)
        assert f.shape[1] == (3 if name.endswith("torgb") else min(256 // res, 32))
    assert torch.equal(G.synthesis(ws), img)  # asking for features does not change the image


def test_truncation_identities(G):
    z = torch.randn(3, 16)
    assert torch.allclose(G.mapping(z, truncation_psi=0).expand(3, -1, -1), G.w_avg.expand(3, 10, 16))
    ws, ws5 = G.mapping(z), G.mapping(z, truncation_psi=0.5)
    assert torch.allclose(ws5, G.w_avg + 0.5 * (ws - G.w_avg), atol=1e-6)
    cut = G.mapping(z, truncation_psi=0.5, truncation_cutoff=4)
    assert torch.equal(cut[:, :4], ws5[:, :4]) and torch.equal(cut[:, 4:], ws[:, 4:])


def test_noise_modes(G):
    ws = G.mapping(torch.randn(2, 16))
    const, none = G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="none")
    assert not torch.allclose(const, none)
    noise = G.synthesis.sample_noise(2, torch.Generator().manual_seed(3))
    assert set(noise) == {n for n in G.synthesis.layer_names() if not n.endswith("torgb")}
    a = G.synthesis(ws, noise_mode="random", noise=noise)
    assert torch.equal(a, G.synthesis(ws, noise_mode="random", noise=noise))
    assert not torch.allclose(a, G.synthesis(ws, noise_mode="random"))
    # 'random' with the stored constant maps is 'const'
    stored = {n: getattr(G.synthesis, n.split(".")[0]).get_submodule(n.split(".")[1]).noise_const.expand(2, 1, -1, -1)
              for n in noise}
    assert torch.allclose(G.synthesis(ws, noise_mode="random", noise=stored), const, atol=1e-6)
    with pytest.raises(ValueError, match="only used with noise_mode='random'"):
        G.synthesis(ws, noise_mode="const", noise=noise)
    with pytest.raises(ValueError, match="noise_mode must be one of"):
        G.synthesis(ws, noise_mode="fixed")


def test_fused_and_unfused_modconv_agree(G):
    ws = G.mapping(torch.randn(4, 16))
    fused = G.synthesis(ws, fused_modconv=True)
    unfused = G.synthesis(ws, fused_modconv=False)
    assert torch.allclose(fused, unfused, atol=1e-5)


def test_batch_independence(G):
    # Equal to float rounding only: oneDNN picks grouped-convolution kernels by group count, so a
    # sample computed alone and in a batch of 4 can differ in the last bits (seen: 3e-6 on 4.4).
    ws = G.mapping(torch.randn(4, 16))
    assert torch.allclose(G.synthesis(ws)[1:2], G.synthesis(ws[1:2]), rtol=0, atol=1e-5)


def test_style_mixing(G):
    a, b = G.mapping(torch.randn(2, 16)), G.mapping(torch.randn(2, 16))
    m = mix_styles(a, b, 4)
    assert torch.equal(m[:, :4], a[:, :4]) and torch.equal(m[:, 4:], b[:, 4:])
    assert torch.equal(mix_styles(a, b, 0), b) and torch.equal(mix_styles(a, b, 10), a)
    with pytest.raises(ValueError, match="cutoff"):
        mix_styles(a, b, 11)


def test_class_conditioning():
    G = Generator(GeneratorConfig(**SMALL, c_dim=5)).eval()
    D = Discriminator(DiscriminatorConfig(img_resolution=64, c_dim=5, channel_base=256, channel_max=32,
                                          mapping_layers=2)).eval()
    c = torch.nn.functional.one_hot(torch.tensor([0, 3]), 5).float()
    img = G(torch.randn(2, 16), c)
    assert D(img, c).shape == (2, 1)
    with pytest.raises(ValueError, match="class-conditional"):
        G.mapping(torch.randn(2, 16))
    with pytest.raises(ValueError, match="class-conditional"):
        D(img)


def test_discriminator_gradients_reach_every_parameter():
    D = Discriminator(DiscriminatorConfig(img_resolution=32, channel_base=256, channel_max=32)).train()
    img = torch.randn(4, 3, 32, 32, requires_grad=True)
    logits = D(img)
    torch.nn.functional.softplus(-logits).mean().backward()
    for name, p in D.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert img.grad.abs().sum() > 0


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="power of two"):
        GeneratorConfig(img_resolution=48)
    with pytest.raises(ValueError, match="architecture must be one of"):
        GeneratorConfig(architecture="unet")
    with pytest.raises(ValueError, match="architecture must be one of"):
        DiscriminatorConfig(architecture="Resnet")
    with pytest.raises(ValueError, match=r"channel_max must be int, got '512'"):
        GeneratorConfig.from_dict({"channel_max": "512"})
    with pytest.raises(ValueError, match="must be a JSON object"):
        DiscriminatorConfig.from_dict([])
    with pytest.raises(ValueError, match="ws must have shape"):
        Generator(GeneratorConfig(**SMALL)).synthesis(torch.zeros(1, 9, 16))


def test_upsampling_keeps_constants_and_equals_transposed_conv():
    f = setup_filter([1, 3, 3, 1])
    x = torch.full([1, 2, 8, 8], 3.0)
    assert torch.allclose(upsample2d(x, f)[..., 2:-2, 2:-2], torch.full([1, 2, 12, 12], 3.0))
    x = torch.randn(1, 1, 5, 5, dtype=torch.float64)
    up = upfirdn2d(x, f.double(), up=2, padding=[2, 1, 2, 1], gain=4)
    ref = torch.nn.functional.conv_transpose2d(x, (4 * f).double()[None, None], stride=2, padding=1)
    assert torch.allclose(up, ref[..., :10, :10], atol=1e-12)


@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
def test_every_architecture_trains(architecture):
    """Gradients reach every parameter of each NVlabs architecture (parity: test_nvlabs_formats)."""
    G = Generator(GeneratorConfig(**{**SMALL, "architecture": architecture})).train()
    D = Discriminator(DiscriminatorConfig(img_resolution=SMALL["img_resolution"], channel_base=256, channel_max=16,
                                          architecture=architecture)).train()
    img = G.synthesis(G.mapping(torch.randn(4, G.z_dim)), noise_mode="random")
    torch.nn.functional.softplus(-D(img)).mean().backward()
    for name, p in [*G.named_parameters(), *D.named_parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
