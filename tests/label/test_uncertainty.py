"""Jensen-Shannon divergence, per-image scores and filtering against hand-computed values."""

import math

import pytest
import torch

from ganfactory.label.uncertainty import filter_most_uncertain, image_score, js_divergence


def test_js_of_opposite_certain_models_is_log2():
    probs = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])           # [E=2, P=1, C=2]
    assert js_divergence(probs).item() == pytest.approx(math.log(2), abs=1e-6)


def test_js_hand_computed():
    p1, p2 = [0.9, 0.1], [0.5, 0.5]
    m = [0.7, 0.3]

    def h(p):
        return -sum(v * math.log(v) for v in p)

    expected = h(m) - (h(p1) + h(p2)) / 2                        # 0.6109 - (0.3251 + 0.6931) / 2 = 0.1018
    got = js_divergence(torch.tensor([[p1], [p2]])).item()
    assert got == pytest.approx(expected, abs=1e-6)
    assert got == pytest.approx(0.1018, abs=1e-4)


def test_js_is_zero_when_models_agree():
    p = torch.softmax(torch.randn(5, 7), -1)
    assert js_divergence(torch.stack([p, p, p])).abs().max() < 1e-6


def test_image_score_is_mean_of_top_tenth():
    u = torch.arange(20.0).reshape(1, 4, 5)
    assert image_score(u).item() == pytest.approx(18.5)            # top 2 of 20: 18, 19
    assert image_score(u, 0.01).item() == pytest.approx(19.0)      # at least one pixel


def test_filter_drops_the_most_uncertain_fraction():
    kept = filter_most_uncertain(torch.tensor([0.5, 0.1, 0.9, 0.3]), 0.25)
    assert kept.tolist() == [0, 1, 3]
    assert filter_most_uncertain(torch.tensor([0.2, 0.2, 0.2]), 0.34).tolist() == [0, 1]   # ties: later dropped
    assert filter_most_uncertain(torch.tensor([0.2, 0.1]), 0.0).tolist() == [0, 1]
    with pytest.raises(ValueError):
        filter_most_uncertain(torch.tensor([0.2]), 1.0)
