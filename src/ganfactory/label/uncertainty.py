"""Ensemble disagreement: which synthesized samples the interpreter is unsure about.

DatasetGAN scores each pixel by the Jensen-Shannon divergence of the ensemble's softmax outputs (entropy of
the mean probability minus the mean of the entropies; the Sept 2021 fix averages probabilities, not logits),
scores an image by the mean of its top 10% pixels, and drops the most uncertain 10% of samples.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["filter_most_uncertain", "image_score", "js_divergence"]


def _entropy(p: Tensor, dim: int) -> Tensor:
    return -(p * torch.log(p.clamp_min(1e-12))).sum(dim)


def js_divergence(probs: Tensor) -> Tensor:
    """Per-pixel Jensen-Shannon divergence (in nats) across an ensemble.

    probs: [E, ..., C] softmax outputs of E models. Returns [...]: H(mean_e p_e) - mean_e H(p_e), in
    [0, log E]; 0 where all models agree.
    """
    mean = probs.mean(0)
    return _entropy(mean, -1) - _entropy(probs, -1).mean(0)


def image_score(pixel_uncertainty: Tensor, top_fraction: float = 0.1) -> Tensor:
    """Per-image uncertainty: the mean of the top ``top_fraction`` of its pixels.

    pixel_uncertainty: [N, H, W] (or [N, P]). Returns [N]. At least one pixel is always used.
    """
    flat = pixel_uncertainty.reshape(pixel_uncertainty.shape[0], -1)
    k = max(1, math.ceil(flat.shape[1] * top_fraction))
    return flat.topk(k, dim=1).values.mean(1)


def filter_most_uncertain(scores: Tensor, fraction: float) -> Tensor:
    """Indices (ascending) of the samples kept after dropping the ``fraction`` most uncertain.

    scores: [N]. Drops floor(N * fraction) samples; ties are broken by index (the earlier sample is kept), so
    the result is deterministic.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"the filtered fraction must be in [0, 1), got {fraction}")
    n = scores.shape[0]
    drop = math.floor(n * fraction + 1e-9)
    order = sorted(range(n), key=lambda i: (float(scores[i]), i))
    return torch.tensor(sorted(order[:n - drop]), dtype=torch.long)
