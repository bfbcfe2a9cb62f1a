"""Unit vectors with a hand-written backward.

Why: ``torch.nn.functional.normalize`` is four autograd nodes (norm, clamp, expand, divide) whose
backward runs a dozen small kernels; the renderer normalises normals and view directions at every
covered pixel (and every vertex), so those small kernels added up. This is one node with the same
values and the same gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["normalize"]


class _Normalize(torch.autograd.Function):
    """u = x / max(|x|, eps) over the last dim.

    Backward: with r = max(|x|, eps), du/dx = I / r - x (dr/dx)^T / r^2, and dr/dx = x / |x| where
    |x| >= eps (0 where the clamp holds r at eps), so dL/dx = (g - u (u . g)) / r where |x| >= eps and
    g / r elsewhere.
    """

    @staticmethod
    def forward(ctx, x: Tensor, eps: float) -> Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        r = norm.clamp_min(eps)
        u = x / r
        ctx.save_for_backward(u, r, norm >= eps)
        return u

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        u, r, through = ctx.saved_tensors
        if u.shape[-1] == 3:  # the components written out: three times as fast as sum(-1) over 3
            along = (u[..., :1] * grad[..., :1] + u[..., 1:2] * grad[..., 1:2] + u[..., 2:] * grad[..., 2:]) * through
        else:
            along = (u * grad).sum(-1, keepdim=True) * through
        return (grad - u * along) / r, None


def normalize(x: Tensor, eps: float = 1e-12) -> Tensor:
    """``torch.nn.functional.normalize(x, dim=-1, eps=eps)`` (same values) with a one-node backward."""
    return _Normalize.apply(x, eps)
