"""Feature taps: bilinear semantics, pixel gathering, and the factorisation identity (naive == factorised)."""

import pytest
import torch
import torch.nn.functional as F

from ganfactory.gan import Generator, GeneratorConfig, load_generator
from ganfactory.gan.latent import Latent, synthesize_latents
from ganfactory.label.features import (
    FeatureTaps,
    axis_weights,
    concat_resized,
    conv_layers,
    factorised_first_layer,
    factorised_first_layer_nhwc,
    gather_pixels,
    naive_first_layer,
    resize,
)


def random_features(sizes, channels, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {f"l{i}": torch.randn(n, c, s, s, generator=g) for i, (s, c) in enumerate(zip(sizes, channels, strict=True))}


def test_resize_is_bilinear_align_corners_false():
    f = torch.tensor([0.0, 1.0]).reshape(1, 1, 1, 2).expand(1, 1, 2, 2)
    # source coordinate of output i is (i + 0.5) / 2 - 0.5, clamped at 0: 0, 0.25, 0.75, 1 (edge)
    assert torch.allclose(resize(f, 4)[0, 0, 0], torch.tensor([0.0, 0.25, 0.75, 1.0]))


@pytest.mark.parametrize(("n_in", "n_out"), [(4, 32), (8, 24), (32, 32), (64, 24), (5, 7)])
def test_axis_weights_reproduce_interpolate(n_in, n_out):
    ramp = torch.randn(n_in, generator=torch.Generator().manual_seed(n_in))
    i0, i1, w1 = axis_weights(n_out, n_in, torch.arange(n_out))
    ours = ramp[i0] * (1 - w1) + ramp[i1] * w1
    ref = F.interpolate(ramp.reshape(1, 1, 1, n_in), size=(1, n_out), mode="bilinear", align_corners=False)
    assert torch.allclose(ours, ref.reshape(-1), atol=1e-6)


SIZES, CHANNELS = (4, 8, 8, 16, 32, 64), (7, 5, 6, 4, 3, 2)


@pytest.mark.parametrize("label_size", [32, 24, 64])
def test_gather_equals_indexing_the_concatenated_tensor(label_size):
    feats = random_features(SIZES, CHANNELS)
    layers = tuple(feats)
    dense = concat_resized(feats, layers, label_size)
    g = torch.Generator().manual_seed(1)
    image = torch.randint(0, 2, (500,), generator=g)
    y = torch.randint(0, label_size, (500,), generator=g)
    x = torch.randint(0, label_size, (500,), generator=g)
    got = gather_pixels(feats, layers, label_size, image, y, x)
    assert got.shape == (500, sum(CHANNELS))
    assert torch.allclose(got, dense[image, :, y, x], atol=1e-5)


@pytest.mark.parametrize("label_size", [32, 24, 64])
def test_factorised_equals_naive_on_random_features(label_size):
    feats = random_features(SIZES, CHANNELS)
    layers = tuple(feats)
    g = torch.Generator().manual_seed(2)
    weight = torch.randn(16, sum(CHANNELS), generator=g) * 0.3
    bias = torch.randn(16, generator=g)
    naive = naive_first_layer(feats, layers, label_size, weight, bias)
    fact = factorised_first_layer(feats, layers, label_size, weight, bias)
    assert fact.shape == (2, 16, label_size, label_size)
    assert (fact - naive).abs().max() < 1e-5
    nhwc = factorised_first_layer_nhwc(feats, layers, label_size, weight, bias)
    assert nhwc.shape == (2, label_size, label_size, 16) and nhwc.is_contiguous()
    assert (nhwc.permute(0, 3, 1, 2) - naive).abs().max() < 1e-5
    # and a wrong column split must not pass silently
    with pytest.raises(ValueError):
        factorised_first_layer(feats, layers, label_size, weight[:, :-1], bias)


@pytest.mark.parametrize("which", ["tiny32", "random64"])
def test_factorised_equals_naive_on_a_real_generator(which):
    torch.set_num_threads(1)
    if which == "tiny32":
        G = load_generator("tiny32")
    else:
        torch.manual_seed(0)
        G = Generator(GeneratorConfig(z_dim=32, w_dim=32, img_resolution=64, channel_base=512, channel_max=32,
                                      mapping_layers=2)).eval()
    taps = FeatureTaps(tuple(G.synthesis.layer_names())).resolve(G)
    lat = [Latent.from_seed(G, s, 0.8, "random") for s in (3, 4)]
    _, feats = synthesize_latents(G, lat, return_features=True)
    assert [feats[n].shape[1] for n in taps.layers] == list(taps.channels)
    g = torch.Generator().manual_seed(3)
    weight = torch.randn(32, taps.dim, generator=g) * 0.02            # the classifier's init scale
    bias = torch.randn(32, generator=g) * 0.02
    naive = naive_first_layer(feats, taps.layers, taps.label_resolution, weight, bias)
    fact = factorised_first_layer(feats, taps.layers, taps.label_resolution, weight, bias)
    assert naive.abs().max() > 0.1                                      # not a vacuous comparison
    assert (fact - naive).abs().max() < 1e-5
    nhwc = factorised_first_layer_nhwc(feats, taps.layers, taps.label_resolution, weight, bias)
    assert (nhwc.permute(0, 3, 1, 2) - naive).abs().max() < 1e-5


def test_default_taps_are_the_conv_layers():
    G = load_generator("tiny32")
    taps = FeatureTaps().resolve(G)
    assert taps.layers == tuple(conv_layers(G))
    assert all(".conv" in n for n in taps.layers) and "b4.conv1" in taps.layers and "b32.conv1" in taps.layers
    assert taps.label_resolution == 32
    with pytest.raises(Exception, match="unknown feature layers"):
        FeatureTaps(("b64.conv0",)).resolve(G)


def test_upsample_sum_relu_is_the_factorised_first_layer():
    """The function that torch.compile fuses (SynthConfig.compile) computes relu(factorised first layer)."""
    from ganfactory.label.features import project_by_size, upsample_sum_relu

    feats = random_features(SIZES, CHANNELS)
    layers = tuple(feats)
    g = torch.Generator().manual_seed(5)
    weight, bias = torch.randn(8, sum(CHANNELS), generator=g), torch.randn(8, generator=g)
    parts = project_by_size(feats, layers, weight)
    assert len(parts) == 5                                            # the two 8 px layers share one resize
    got = upsample_sum_relu(24, bias, *parts)                          # [N, 24, 24, H]
    assert (got.permute(0, 3, 1, 2) - naive_first_layer(feats, layers, 24, weight, bias).relu()).abs().max() < 1e-5
