"""Lighting models as plain functions of per-pixel normals, view directions and albedo.

All vectors are in world space and unit length; channels are last ([..., C]).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganfactory.render.functional.vectors import normalize

__all__ = ["blinn_phong", "sh9_basis", "sh9_irradiance"]


def blinn_phong(
    albedo: Tensor,
    normals: Tensor,
    view_dirs: Tensor,
    light_dirs: Tensor,
    diffuse: Tensor,
    ambient: Tensor,
    specular: Tensor | None = None,
    shininess: float = 32.0,
) -> Tensor:
    """Ambient + Lambert + Blinn specular.

    Args:
        albedo: [B, H, W, C]; normals, view_dirs: [B, H, W, 3] (view_dirs from surface to camera).
        light_dirs: [B, L, 3] from surface toward the lights; diffuse, specular: [B, L, C]; ambient [B, C].
    Returns:
        [B, H, W, C] = albedo * (ambient + sum_l diffuse_l max(0, n.l)) + sum_l specular_l max(0, n.h)^s.
    """
    B, C = albedo.shape[0], albedo.shape[-1]
    n = normals.reshape(B, -1, 1, 3)
    ndotl = _dot(n, light_dirs[:, None]).clamp(min=0)  # [B, P, L]
    # Sums over lights and vector components written out: the renderer calls this on P one-pixel
    # images (one per covered pixel), where einsum's and matmul's batches of tiny products cost several
    # times these elementwise operations.
    light = ambient[:, None, :] + _over_lights(ndotl, diffuse)  # [B, P, C]
    out = albedo.reshape(B, -1, C) * light
    if specular is not None:
        h = normalize(view_dirs.reshape(B, -1, 1, 3) + light_dirs[:, None])
        ndoth = _dot(n, h).clamp(min=0)
        # Only where the light reaches the surface.
        spec = torch.where(ndotl > 0, ndoth.clamp(min=1e-12) ** shininess, torch.zeros_like(ndoth))
        out = out + _over_lights(spec, specular)
    return out.reshape(albedo.shape)


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Dot products over the last dim of broadcast ``a`` and ``b`` (two autograd nodes, no selects)."""
    return (a * b).sum(-1)


def _over_lights(weight: Tensor, colour: Tensor) -> Tensor:
    """sum_l weight[b, p, l] colour[b, l, :] -> [B, P, C]."""
    out = weight[..., 0, None] * colour[:, None, 0]
    for k in range(1, weight.shape[-1]):
        out = out + weight[..., k, None] * colour[:, None, k]
    return out


def sh9_basis(normals: Tensor) -> Tensor:
    """[..., 3] unit normals -> [..., 9] real SH basis (bands 0-2), order (0,0), (1,-1), (1,0), (1,1),
    (2,-2), (2,-1), (2,0), (2,1), (2,2) with y = sin-type: Y(1,-1) ~ y, Y(1,0) ~ z, Y(1,1) ~ x."""
    x, y, z = normals.unbind(-1)
    return torch.stack([
        torch.full_like(x, 0.28209479177387814),
        0.4886025119029199 * y,
        0.4886025119029199 * z,
        0.4886025119029199 * x,
        1.0925484305920792 * x * y,
        1.0925484305920792 * y * z,
        0.31539156525252005 * (3 * z * z - 1),
        1.0925484305920792 * x * z,
        0.5462742152960396 * (x * x - y * y),
    ], -1)


def sh9_irradiance(normals: Tensor, coeffs: Tensor) -> Tensor:
    """Light reaching surfaces with ``normals`` [B, H, W, 3] from SH ``coeffs`` [B, 9] or [B, C, 9].

    Returns [B, H, W, 1] or [B, H, W, C]: sum_k coeffs_k Y_k(n).
    """
    basis = sh9_basis(normals)  # [B, H, W, 9]
    if coeffs.ndim == 2:
        coeffs = coeffs[:, None, :]
    if coeffs.ndim != 3 or coeffs.shape[-1] != 9:
        raise ValueError(f"SH coeffs must be [B, 9] or [B, C, 9], got {tuple(coeffs.shape)}")
    return torch.einsum("bhwk,bck->bhwc", basis, coeffs)
