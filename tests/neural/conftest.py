"""Fixtures of the neural renderer tests: a renderer over the built-in cars64 and cars64-3d with a mapping network
that is untrained but deterministic (its behaviour under test does not depend on training)."""

import pytest
import torch


@pytest.fixture(scope="session")
def untrained_renderer():
    from ganfactory.gan import load_generator
    from ganfactory.gan.latent import seeds_to_z
    from ganfactory.inverse.model import load_model
    from ganfactory.neural import MappingConfig, NeuralMapping, NeuralRenderer

    torch.set_num_threads(1)
    G = load_generator("cars64").eval()
    net, _ = load_model("cars64-3d")
    for p in [*G.parameters(), *net.parameters()]:
        p.requires_grad_(False)
    torch.manual_seed(0)
    config = MappingConfig(bases=8)
    with torch.no_grad():
        bases = G.mapping(seeds_to_z(list(range(8)), G.z_dim), None, truncation_psi=0.7)[:, config.view_layers:]
    mapping = NeuralMapping(config, bases=bases, w_avg=G.w_avg)
    with torch.no_grad():
        mapping.view[-1].weight.mul_(30.0)       # untrained: make the camera visibly move the view layers
    return NeuralRenderer(G, net, mapping.eval())


@pytest.fixture
def serve():
    from ganfactory.web import serving

    return serving
