"""DiffAugment (Zhao et al., NeurIPS 2020): differentiable colour, translation and cutout augmentation
applied to every image the discriminator sees, real or generated, so that a small dataset does not let
the discriminator memorise it.

Random parameters are drawn separately from their application (``sample_params`` then ``apply``): a
data-parallel run draws them once for the global batch from the shared generator and each process
applies its slice, which keeps two processes equal to one.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["POLICIES", "apply", "sample_params", "slice_params"]

POLICIES = ("color", "translation", "cutout")


def sample_params(n: int, resolution: int, policy: tuple[str, ...], generator: torch.Generator) -> dict[str, Tensor]:
    """Per-sample random parameters for ``n`` images (all on the CPU, from ``generator``)."""
    unknown = set(policy) - set(POLICIES)
    if unknown:
        raise ValueError(f"unknown augmentation {sorted(unknown)}; choose from {POLICIES}")
    p: dict[str, Tensor] = {}
    if "color" in policy:
        p["brightness"] = torch.rand(n, generator=generator) - 0.5
        p["saturation"] = torch.rand(n, generator=generator) * 2
        p["contrast"] = torch.rand(n, generator=generator) + 0.5
    if "translation" in policy:
        shift = int(resolution * 0.125 + 0.5)
        p["shift"] = torch.randint(-shift, shift + 1, (n, 2), generator=generator)
    if "cutout" in policy:
        size = int(resolution * 0.5 + 0.5)
        p["cutout"] = torch.randint(0, resolution + (1 - size % 2), (n, 2), generator=generator)
    return p


def slice_params(params: dict[str, Tensor], start: int, stop: int) -> dict[str, Tensor]:
    return {k: v[start:stop] for k, v in params.items()}


def apply(x: Tensor, params: dict[str, Tensor]) -> Tensor:
    """Augment images x [N, C, H, W] with parameters from ``sample_params``; differentiable in x."""
    n, _, h, w = x.shape
    view = (n, 1, 1, 1)
    if "brightness" in params:
        x = x + params["brightness"].to(x).reshape(view)
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * params["saturation"].to(x).reshape(view) + mean
        mean = x.mean(dim=[1, 2, 3], keepdim=True)
        x = (x - mean) * params["contrast"].to(x).reshape(view) + mean
    if "shift" in params:
        x = _translate(x, params["shift"].to(x.device))
    if "cutout" in params:
        size = int(h * 0.5 + 0.5)
        centre = params["cutout"].to(x.device)
        ys = torch.arange(h, device=x.device).reshape(1, h, 1)
        xs = torch.arange(w, device=x.device).reshape(1, 1, w)
        y0 = (centre[:, 0] - size // 2).reshape(n, 1, 1)
        x0 = (centre[:, 1] - size // 2).reshape(n, 1, 1)
        inside = (ys >= y0) & (ys < y0 + size) & (xs >= x0) & (xs < x0 + size)
        x = x * (~inside).unsqueeze(1).to(x.dtype)
    return x


def _translate(x: Tensor, shift: Tensor) -> Tensor:
    """Shift each image by integer (dy, dx), filling with zeros."""
    n, c, h, w = x.shape
    ys = torch.arange(h, device=x.device).reshape(1, h, 1) - shift[:, 0].reshape(n, 1, 1)
    xs = torch.arange(w, device=x.device).reshape(1, 1, w) - shift[:, 1].reshape(n, 1, 1)
    valid = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    index = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).reshape(n, 1, h * w).expand(n, c, h * w)
    out = x.reshape(n, c, h * w).gather(2, index).reshape(n, c, h, w)
    return out * valid.unsqueeze(1).to(x.dtype)
