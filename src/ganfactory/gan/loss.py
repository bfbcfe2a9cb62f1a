"""The StyleGAN2 objective as small pure functions (NVlabs training/loss.py, in its numerics)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["d_logistic_loss", "g_nonsaturating_loss", "path_lengths", "r1_penalty"]


def g_nonsaturating_loss(fake_logits: Tensor) -> Tensor:
    """-log sigmoid(D(G(z))), per sample: the generator's non-saturating logistic loss."""
    return F.softplus(-fake_logits).flatten()


def d_logistic_loss(real_logits: Tensor | None, fake_logits: Tensor | None) -> Tensor:
    """-log(1 - sigmoid(D(fake))) - log sigmoid(D(real)), per sample (either part may be None)."""
    parts = []
    if fake_logits is not None:
        parts.append(F.softplus(fake_logits).flatten())
    if real_logits is not None:
        parts.append(F.softplus(-real_logits).flatten())
    return sum(parts)


def r1_penalty(real_img: Tensor, real_logits: Tensor) -> Tensor:
    """|d D(x) / d x|^2 per real sample; ``real_img`` must require grad. Keeps the graph for backward."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_img, create_graph=True, only_inputs=True)
    return grad.square().sum(dim=[1, 2, 3])


def path_lengths(img: Tensor, ws: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """|J_w^T y| per sample for random image-space directions y: how fast the image moves with w.
    The path-length regulariser pulls these toward their running mean. ``ws`` must be the synthesis
    input that made ``img``; the graph is kept for the backward pass."""
    noise = torch.randn(img.shape, generator=generator).to(img) / math.sqrt(img.shape[2] * img.shape[3])
    (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True, only_inputs=True)
    return grad.square().sum(dim=2).mean(dim=1).sqrt()
