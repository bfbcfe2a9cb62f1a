"""The interpreter's class weights, final fit on every annotated pixel, and honest keypoint visibility."""

import math

import numpy as np
import pytest
import torch

from ganfactory.label import InterpreterConfig
from ganfactory.label.interpreter import on_classes
from ganfactory.label.pixel_mlp import PixelMLP, class_weights, fit_pixel_model
from ganfactory.label.pixels import _keypoints_at


def test_class_weights_follow_inverse_frequency_and_keep_the_mean_at_one():
    y = torch.tensor([0] * 90 + [1] * 9 + [2] * 1 + [3] * 0)
    assert class_weights(y, 4, "none") is None
    for mode, power in (("inverse", 1.0), ("sqrt", 0.5)):
        w = class_weights(y, 4, mode)
        assert w[3] == 0                                            # absent class
        assert math.isclose(float(w[y].mean()), 1.0, rel_tol=1e-5)  # the loss scale is unchanged on these pixels
        assert math.isclose(float(w[2] / w[0]), 90.0 ** power, rel_tol=1e-4)
        assert math.isclose(float(w[1] / w[0]), 10.0 ** power, rel_tol=1e-4)
    with pytest.raises(ValueError, match="class weighting"):
        class_weights(y, 4, "log")


def _data(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(600, 6, generator=g)
    y = (x[:, 0] > 1.2).long() + (x[:, 1] > 1.5).long() * 2      # rare classes 1 and 2 (and 3)
    return x, y.clamp(max=2)


def test_weights_raise_the_rare_classes_recall():
    x, y = _data(0)
    xv, yv = _data(1)
    recall = {}
    for mode in ("none", "inverse"):
        cfg = InterpreterConfig(max_epochs=6, patience=6, batch_size=64, learning_rate=3e-3)
        model = PixelMLP(6, 3, (16, 8))
        g = torch.Generator().manual_seed(0)
        model.reset(g)
        fit_pixel_model(model, x, y, xv, yv, cfg, g, weight=class_weights(y, 3, mode))
        pred = model(xv).argmax(1)
        recall[mode] = float(torch.stack([(pred[yv == c] == c).float().mean() for c in (1, 2)]).mean())
    assert recall["inverse"] > recall["none"] + 0.05, recall


def test_final_fit_runs_exactly_the_chosen_epochs_and_is_deterministic():
    x, y = _data(0)
    cfg = InterpreterConfig(batch_size=50)
    calls = []
    models = []
    for _ in range(2):
        model = PixelMLP(6, 3, (8, 4))
        g = torch.Generator().manual_seed(5)
        model.reset(g)
        score, ran, best = fit_pixel_model(model, x, y, None, None, cfg, g, epochs=3,
                                           on_epoch=lambda e, s: calls.append(e))
        models.append(model)
    assert math.isnan(score) and ran == best == 3 and calls == []        # no held-out scoring in a final fit
    for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_hidden_keypoints_get_no_target_with_visible_only():
    rows = [[10.0, 12.0, 1], [20.0, 5.0, 0], [None, None, 0]]
    both = _keypoints_at(rows, 32, 32)
    only = _keypoints_at(rows, 32, 32, visible_only=True)
    assert torch.equal(both[0], only[0]) and torch.isfinite(both[1]).all()
    assert torch.isnan(only[1]).all() and torch.isnan(only[2]).all()


def test_on_classes_is_the_renderers_rule_on_predicted_labels():
    label = torch.zeros(8, 8, dtype=torch.uint8)
    label[2, 2] = 4                  # a wheel pixel
    label[6, 6] = 1                  # body
    x = torch.tensor([3.0, 6.0, float("nan"), 40.0])
    y = torch.tensor([3.0, 6.0, 1.0, 1.0])
    got = on_classes(label, x, y, [(4,), (4,), (4,), (4,)])
    assert got.tolist() == [True, False, False, False]        # within one pixel; on body; unavailable; outside
    assert on_classes(label, x[:2], y[:2], [(4,), (1, 4)]).tolist() == [True, True]


def test_old_interpreters_read_with_their_old_rules():
    cfg = InterpreterConfig.from_json({"seed": 3, "keypoint_threshold": 0.3})
    assert (cfg.final_fit, cfg.class_weighting, cfg.keypoint_visible_only) == (False, "none", False)
    new = InterpreterConfig(keypoint_classes=((1, 2), (3,)))
    assert InterpreterConfig.from_json(new.to_json()) == new
    assert np.isclose(InterpreterConfig().keypoint_threshold, 0.5)
