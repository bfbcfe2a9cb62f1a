"""One contract, every generator source: our own checkpoint (directory and zip), NVlabs' stylegan2-ada and stylegan3
repository pickles, rosinality's .pt, and a built-in name all load through ``load_generator`` into a Generator that
keeps DESIGN.md's promises (attributes, shapes, feature names, truncation, determinism)."""

from pathlib import Path

import pytest
import torch

from ganfactory.gan import Generator, GeneratorConfig, load_generator, read_any, save_checkpoint
from ganfactory.gan.io.rosinality import to_rosinality_state
from ganfactory.gan.sampling import generate, seeds_to_z

FIXTURES = Path(__file__).parents[1] / "fixtures"


class GeneratorSourceContract:
    """Subclasses provide ``source``: what ``load_generator`` is given."""

    @pytest.fixture(scope="class")
    def source(self, tmp_path_factory):
        raise NotImplementedError

    @pytest.fixture(scope="class")
    def G(self, source):
        torch.set_num_threads(1)
        return load_generator(source)

    def test_attributes(self, G):
        assert G.z_dim > 0 and G.w_dim > 0 and G.num_ws > 0
        assert G.img_resolution >= 4 and G.img_resolution & (G.img_resolution - 1) == 0
        assert tuple(G.w_avg.shape) == (G.w_dim,) and torch.isfinite(G.w_avg).all()
        assert not G.training

    def test_mapping_and_synthesis_shapes_and_feature_names(self, G):
        with torch.no_grad():
            ws = G.mapping(seeds_to_z([0, 1], G.z_dim), None)
            assert tuple(ws.shape) == (2, G.num_ws, G.w_dim)
            img, feats = G.synthesis(ws, noise_mode="const", return_features=True)
        R = G.img_resolution
        assert tuple(img.shape) == (2, 3, R, R) and torch.isfinite(img).all()
        names = list(feats)
        assert names[-1] == f"b{R}.torgb"
        for name, f in feats.items():
            res = int(name.split(".")[0][1:])
            assert name.split(".")[1] in ("conv0", "conv1", "torgb") and tuple(f.shape[-2:]) == (res, res), name
            assert f.shape[0] == 2
        assert [int(n.split(".")[0][1:]) for n in names] == sorted(int(n.split(".")[0][1:]) for n in names)

    def test_truncation_zero_gives_the_average_w(self, G):
        with torch.no_grad():
            ws = G.mapping(seeds_to_z([3], G.z_dim), None, truncation_psi=0.0)
        assert torch.allclose(ws[0], G.w_avg.expand(G.num_ws, -1), atol=1e-6)

    def test_same_seed_same_bytes_also_after_loading_again(self, G, source):
        a = generate(G, [5, 6], noise_mode="const")
        b = generate(load_generator(source), [5, 6], noise_mode="const")
        assert torch.equal(a.images, b.images) and torch.equal(a.ws, b.ws)
        c = generate(G, [7], noise_mode="random")
        assert torch.equal(c.images, generate(G, [7], noise_mode="random").images)


class TestBuiltinName(GeneratorSourceContract):
    @pytest.fixture(scope="class")
    def source(self):
        return "tiny32"


class TestOwnCheckpointDirectory(GeneratorSourceContract):
    @pytest.fixture(scope="class")
    def source(self, tmp_path_factory):
        return save_checkpoint(read_any("tiny32"), tmp_path_factory.mktemp("own") / "ckpt")


class TestOwnCheckpointZip(GeneratorSourceContract):
    @pytest.fixture(scope="class")
    def source(self, tmp_path_factory):
        return save_checkpoint(read_any("tiny32"), tmp_path_factory.mktemp("own") / "ckpt.zip")


class TestNVlabsStylegan2AdaPickle(GeneratorSourceContract):
    @pytest.fixture(scope="class")
    def source(self, nvlabs_pickle):
        return nvlabs_pickle


class TestNVlabsStylegan3RepoPickle(GeneratorSourceContract):
    @pytest.fixture(scope="class")
    def source(self):
        return FIXTURES / "stylegan3-repo" / "tiny_sg3repo_stylegan2.pkl"


class TestRosinalityPt(GeneratorSourceContract):
    @pytest.fixture(scope="class")
    def source(self, tmp_path_factory):
        config = GeneratorConfig(z_dim=32, w_dim=32, img_resolution=32, mapping_layers=3, channel_base=2048,
                                 channel_max=64)                        # rosinality's layout, scaled down
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)
            G = Generator(config).eval()
        state = {k: torch.full_like(v, 0.1) if k.endswith("noise_strength") else v for k, v in G.state_dict().items()}
        state["mapping.w_avg"] = torch.randn(32, generator=torch.Generator().manual_seed(2))
        G.load_state_dict(state)
        sd, latent_avg = to_rosinality_state(G)
        path = tmp_path_factory.mktemp("rosinality") / "g.pt"
        torch.save({"g_ema": sd, "latent_avg": latent_avg}, path)
        return path
