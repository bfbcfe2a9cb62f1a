"""Bilinear texture sampling with wrap-around (UV conventions in ``ganfactory.render.conventions``)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["sample_texture"]


def sample_texture(texture: Tensor, uv: Tensor) -> Tensor:
    """Sample ``texture`` [B, C, Ht, Wt] at ``uv`` [B, N..., 2] -> [B, N..., C], bilinear, wrapping.

    Why not ``grid_sample``: it has no wrap mode, and UVs of real assets leave [0, 1]. This gathers the
    four neighbouring texels with indices taken modulo the size; it is differentiable in the texture
    and in the UVs (almost everywhere).
    """
    if texture.ndim != 4 or uv.shape[0] != texture.shape[0] or uv.shape[-1] != 2:
        raise ValueError(f"texture must be [B, C, Ht, Wt] and uv [B, ..., 2], got {tuple(texture.shape)} "
                         f"and {tuple(uv.shape)}")
    B, C, Ht, Wt = texture.shape
    lead = uv.shape[1:-1]
    uv = uv.reshape(B, -1, 2)
    # Texel centres at (k + 0.5) / size; v = 0 is the bottom row, image rows run top to bottom.
    x = uv[..., 0] * Wt - 0.5
    y = (1.0 - uv[..., 1]) * Ht - 0.5
    x0f, y0f = torch.floor(x), torch.floor(y)
    fx, fy = (x - x0f).unsqueeze(-1), (y - y0f).unsqueeze(-1)
    x0 = x0f.long() % Wt
    y0 = y0f.long() % Ht
    x1 = (x0 + 1) % Wt
    y1 = (y0 + 1) % Ht
    flat = texture.reshape(B, C, Ht * Wt).transpose(1, 2)  # [B, Ht*Wt, C]

    def tex(yy: Tensor, xx: Tensor) -> Tensor:
        return torch.gather(flat, 1, (yy * Wt + xx).unsqueeze(-1).expand(-1, -1, C))

    top = tex(y0, x0) * (1 - fx) + tex(y0, x1) * fx
    bottom = tex(y1, x0) * (1 - fx) + tex(y1, x1) * fx
    out = top * (1 - fy) + bottom * fy
    return out.reshape(B, *lead, C)
