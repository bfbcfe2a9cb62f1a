"""rosinality/stylegan2-pytorch .pt files through the documented name map."""

import argparse

import pytest
import torch

from ganfactory.errors import CheckpointError
from ganfactory.gan import Generator, GeneratorConfig, load_generator
from ganfactory.gan.io.rosinality import to_rosinality_state


def _rosinality_like_generator(res=64, seed=0):
    """A random generator in rosinality's configuration (512 channels up to 32 px, no clamp)."""
    torch.manual_seed(seed)
    G = Generator(GeneratorConfig(z_dim=32, w_dim=32, img_resolution=res, mapping_layers=3,
                                  channel_base=16384 // 8, channel_max=512 // 8)).eval()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
        G.mapping.w_avg.normal_()
    return G


def test_names_follow_the_documented_map():
    G = _rosinality_like_generator()
    sd, latent_avg = to_rosinality_state(G)
    assert torch.equal(latent_avg, G.w_avg)
    assert torch.equal(sd["style.1.weight"], G.state_dict()["mapping.fc0.weight"])
    assert sd["input.input"].shape == (1, 64, 4, 4)
    assert torch.equal(sd["convs.2.conv.weight"][0], G.state_dict()["synthesis.b16.conv0.weight"])
    assert torch.equal(sd["to_rgbs.3.bias"].flatten(), G.state_dict()["synthesis.b64.torgb.bias"])
    assert torch.equal(sd["noises.noise_8"][0, 0], G.state_dict()["synthesis.b64.conv1.noise_const"])
    assert sd["convs.0.noise.weight"].shape == (1,)
    assert torch.allclose(sd["convs.0.conv.blur.kernel"].sum(), torch.tensor(4.0))
    assert len([k for k in sd if k.startswith("noises.")]) == 2 * 4 + 1


@pytest.mark.parametrize("res", [32, 64])
def test_round_trip_gives_identical_tensors_and_images(tmp_path, res):
    G = _rosinality_like_generator(res)
    sd, latent_avg = to_rosinality_state(G)
    path = tmp_path / "converted.pt"
    torch.save({"g_ema": sd, "latent_avg": latent_avg}, path)
    back = load_generator(path)
    assert back.config == G.config
    for k, v in G.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    ws = G.mapping(torch.randn(3, 32, generator=torch.Generator().manual_seed(5)), truncation_psi=0.7)
    with torch.no_grad():
        assert torch.equal(back.synthesis(ws), G.synthesis(ws))
        assert torch.equal(back.mapping(torch.ones(1, 32), truncation_psi=0.5),
                           G.mapping(torch.ones(1, 32), truncation_psi=0.5))


def test_training_checkpoint_without_latent_avg(tmp_path):
    G = _rosinality_like_generator()
    sd, _ = to_rosinality_state(G)
    path = tmp_path / "030000.pt"
    torch.save({"g": sd, "d": {}, "g_ema": sd, "g_optim": {}, "d_optim": {},
                "args": argparse.Namespace(size=64, n_mlp=3, channel_multiplier=1), "ada_aug_p": 0.1}, path)
    back = load_generator(path)
    expected = G.mapping(torch.randn([10_000, 32], generator=torch.Generator().manual_seed(0)))[:, 0].mean(0)
    assert torch.allclose(back.w_avg, expected)


def test_refuses_other_torch_files(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match="no 'g_ema'"):
        load_generator(path)
    evil, marker = tmp_path / "evil.pt", tmp_path / "pwned"
    torch.save({"g_ema": {}, "x": _Evil(marker)}, evil)
    with pytest.raises(CheckpointError, match="not a readable rosinality checkpoint"):
        load_generator(evil)
    assert not marker.exists()


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))
