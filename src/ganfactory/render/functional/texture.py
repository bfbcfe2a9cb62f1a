"""Bilinear texture sampling with wrap-around (UV conventions in ``ganfactory.render.conventions``)."""

from __future__ import annotations

import torch
from torch import Tensor

from ganfactory.render.functional.gather import blend

__all__ = ["sample_texture", "sample_texture_at"]


def sample_texture(texture: Tensor, uv: Tensor) -> Tensor:
    """Sample ``texture`` [B, C, Ht, Wt] at ``uv`` [B, N..., 2] -> [B, N..., C], bilinear, wrapping.

    Why not ``grid_sample``: it has no wrap mode, and UVs of real assets leave [0, 1]. This gathers the
    four neighbouring texels with indices taken modulo the size; it is differentiable in the texture
    and in the UVs (almost everywhere).
    """
    if texture.ndim != 4 or uv.shape[0] != texture.shape[0] or uv.shape[-1] != 2:
        raise ValueError(f"texture must be [B, C, Ht, Wt] and uv [B, ..., 2], got {tuple(texture.shape)} "
                         f"and {tuple(uv.shape)}")
    B, C = texture.shape[:2]
    lead = uv.shape[1:-1]
    flat = uv.reshape(B, -1, 2)
    batch = torch.arange(B, device=uv.device).repeat_interleave(flat.shape[1])
    return sample_texture_at(texture, flat.reshape(-1, 2), batch).reshape(B, *lead, C)


def sample_texture_at(texture: Tensor, uv: Tensor, batch: Tensor) -> Tensor:
    """``sample_texture`` for a flat list of points: ``uv`` [P, 2] in sample ``batch`` [P] -> [P, C].

    The four texels are blended by ``gather.blend`` (hand-written backward: one scatter into the
    texture's gradient instead of four).
    """
    B, C, Ht, Wt = texture.shape
    # Texel centres at (k + 0.5) / size; v = 0 is the bottom row, image rows run top to bottom.
    x = uv[:, 0] * Wt - 0.5
    y = (1.0 - uv[:, 1]) * Ht - 0.5
    x0f, y0f = torch.floor(x), torch.floor(y)
    fx, fy = x - x0f, y - y0f
    x0 = x0f.long() % Wt
    y0 = y0f.long() % Ht
    x1 = (x0 + 1) % Wt
    y1 = (y0 + 1) % Ht
    base = batch * (Ht * Wt)
    idx = torch.stack([base + y0 * Wt + x0, base + y0 * Wt + x1, base + y1 * Wt + x0, base + y1 * Wt + x1], -1)
    w = torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], -1)
    table = texture.permute(0, 2, 3, 1).reshape(B * Ht * Wt, C)
    return blend(table, idx, w)
