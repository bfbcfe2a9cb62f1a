"""KID on seeded random ResNet-18 features: unbiased, deterministic, and it ranks quality correctly."""

import pytest
import torch

from ganfactory.gan.metrics import FeatureNet, kid


def squares(n: int, seed: int) -> torch.Tensor:
    """n 64x64 images of one coloured square on black: a small "real" distribution."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((n, 3, 64, 64), -1.0)
    for i in range(n):
        colour = torch.rand(3, generator=g) * 2 - 1
        y0, x0 = torch.randint(0, 40, (2,), generator=g).tolist()
        s = int(torch.randint(10, 24, (), generator=g))
        x[i, :, y0:y0 + s, x0:x0 + s] = colour[:, None, None]
    return x


@pytest.fixture(scope="module")
def net():
    return FeatureNet()


def test_ranks_real_below_perturbed_below_noise(net):
    real_a, real_b = net.features(squares(300, 1)), squares(300, 2)
    g = torch.Generator().manual_seed(3)
    perturbed = (real_b + 0.1 * torch.randn(real_b.shape, generator=g)).clamp(-1, 1)
    noise = torch.rand(real_b.shape, generator=g) * 2 - 1
    scores = [kid(real_a, net.features(x), num_subsets=20) for x in (real_b, perturbed, noise)]
    assert abs(scores[0]) < 2e-4  # two samples of the same distribution
    assert scores[0] * 5 < scores[1] < scores[2] / 50


def test_feature_net_is_fixed_by_its_seed(net):
    x = squares(4, 5)
    torch.manual_seed(123)  # the global generator does not matter
    assert torch.equal(FeatureNet().features(x), net.features(x))
    assert not torch.equal(FeatureNet(seed=1).features(x), net.features(x))
    assert net.features(x).shape == (4, net.dim)


def test_kid_is_unbiased_in_expectation():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 8, generator=g, dtype=torch.float64), torch.randn(400, 8, generator=g, dtype=torch.float64)
    assert abs(kid(a, b, num_subsets=50, max_subset_size=100)) < 0.02
    assert kid(a, b + 1.0, num_subsets=10, max_subset_size=100) > 0.5
