"""The numerical building blocks of StyleGAN2, as plain functions.

Every function here performs the same floating-point operations, in the same order, as the CPU
reference paths of NVlabs stylegan2-ada-pytorch (``torch_utils/ops``, ``training/networks.py``).
That is what makes our networks reproduce NVlabs outputs bit for bit: a mathematically equal
rewrite (dividing instead of multiplying by a reciprocal, conv_transpose instead of zero insertion
plus a convolution) moves results by a few ulps. Change nothing here without re-running
``tests/gan/test_nvlabs_parity.py``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ACTIVATIONS",
    "bias_act",
    "conv2d_resample",
    "downsample2d",
    "minibatch_stddev",
    "modulated_conv2d",
    "normalize_2nd_moment",
    "setup_filter",
    "upfirdn2d",
    "upsample2d",
]

# name -> (function, default alpha, default gain). The gains are numpy float64 as in NVlabs, so
# that products such as ``gain * sqrt(0.5)`` round exactly as theirs do.
ACTIVATIONS = {
    "linear": (lambda x, alpha: x, 0.0, 1),
    "relu": (lambda x, alpha: F.relu(x), 0.0, np.sqrt(2)),
    "lrelu": (lambda x, alpha: F.leaky_relu(x, alpha), 0.2, np.sqrt(2)),
}


def normalize_2nd_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Scale each vector to unit root-mean-square (the mapping network's input normalisation)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def bias_act(x: Tensor, b: Tensor | None = None, act: str = "linear", gain: float | None = None,
             clamp: float | None = None, dim: int = 1) -> Tensor:
    """Add a bias along ``dim``, apply an activation, scale by ``gain`` (default: the activation's),
    then clamp to [-clamp, clamp]."""
    func, alpha, def_gain = ACTIVATIONS[act]
    gain = float(def_gain if gain is None else gain)
    if b is not None:
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = func(x, alpha=float(alpha))
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-float(clamp), float(clamp))
    return x


def setup_filter(f=(1, 3, 3, 1)) -> Tensor:
    """The 2-D FIR filter for resampling: outer product of the taps, normalised to unit DC gain."""
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim == 1:
        f = f.outer(f)
    return f / f.sum()


def _padding4(padding) -> list[int]:
    """[x0, x1, y0, y1] from an int, [x, y] or [x0, x1, y0, y1]."""
    if isinstance(padding, int):
        return [padding] * 4
    if len(padding) == 2:
        px, py = padding
        return [px, px, py, py]
    return list(padding)


def upfirdn2d(x: Tensor, f: Tensor | None, up: int = 1, down: int = 1, padding=0, gain: float = 1) -> Tensor:
    """Upsample by zero insertion, pad (or crop), convolve with the 2-D filter, downsample.

    x: [N, C, H, W]; f: [fh, fw] float32 (symmetric filters only need no flip, but we flip like
    NVlabs so that asymmetric filters behave identically).
    """
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    n, c, h, w = x.shape
    px0, px1, py0, py1 = _padding4(padding)
    if up > 1:
        x = x.reshape([n, c, h, 1, w, 1])
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape([n, c, h * up, w * up])
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    f = f * (gain ** (f.ndim / 2))
    f = f.to(x.dtype).flip([0, 1])
    f = f[None, None].repeat([c, 1, 1, 1])
    x = F.conv2d(x, f, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x: Tensor, f: Tensor, up: int = 2) -> Tensor:
    """Upsample by ``up`` with the FIR filter, keeping the DC gain (the skip generator's image path)."""
    fw = f.shape[-1]
    p = [(fw + up - 1) // 2, (fw - up) // 2, (fw + up - 1) // 2, (fw - up) // 2]
    return upfirdn2d(x, f, up=up, padding=p, gain=up * up)


def downsample2d(x: Tensor, f: Tensor, down: int = 2) -> Tensor:
    """Downsample by ``down`` after low-pass filtering with the FIR filter."""
    fw = f.shape[-1]
    p = [(fw - down + 1) // 2, (fw - down) // 2, (fw - down + 1) // 2, (fw - down) // 2]
    return upfirdn2d(x, f, down=down, padding=p)


def _conv2d(x: Tensor, w: Tensor, stride: int = 1, padding=0, groups: int = 1, transpose: bool = False,
            flip_weight: bool = True) -> Tensor:
    """F.conv2d (correlation) or F.conv_transpose2d; ``flip_weight=False`` makes it a true convolution."""
    if not flip_weight:
        w = w.flip([2, 3])
    op = F.conv_transpose2d if transpose else F.conv2d
    return op(x, w, stride=stride, padding=padding, groups=groups)


def conv2d_resample(x: Tensor, w: Tensor, f: Tensor | None = None, up: int = 1, down: int = 1, padding=0,
                    groups: int = 1, flip_weight: bool = True) -> Tensor:
    """A 2-D convolution with optional 2x up- or downsampling through the FIR filter ``f``.

    Padding is given with respect to the upsampled image and applied once. This follows the
    operation order of NVlabs' ``conv2d_resample`` for up in {1, 2} and down in {1, 2}.
    """
    out_channels, in_channels_per_group, kh, kw = w.shape
    fw = fh = f.shape[-1] if f is not None else 1
    px0, px1, py0, py1 = _padding4(padding)
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2

    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1])
        return _conv2d(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv2d(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up**2)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1])
        return _conv2d(x, w, stride=down, groups=groups, flip_weight=flip_weight)
    if up > 1:
        # Transposed convolution does the upsampling; the FIR filter then smooths.
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_channels // groups, in_channels_per_group, kh, kw)
            w = w.transpose(1, 2)
            w = w.reshape(groups * in_channels_per_group, out_channels // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv2d(x, w, stride=up, padding=[pyt, pxt], groups=groups, transpose=True,
                    flip_weight=not flip_weight)
        x = upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up**2)
        if down > 1:
            x = upfirdn2d(x, f, down=down)
        return x
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv2d(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)
    x = upfirdn2d(x, None, padding=[px0, px1, py0, py1])
    return _conv2d(x, w, groups=groups, flip_weight=flip_weight)


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, noise: Tensor | None = None, up: int = 1,
                     padding: int = 0, resample_filter: Tensor | None = None, demodulate: bool = True,
                     flip_weight: bool = True, fused: bool = True) -> Tensor:
    """StyleGAN2's modulated convolution: scale the weight's input channels by a per-sample style,
    optionally demodulate each output channel to unit norm, convolve, add noise.

    x: [N, I, H, W]; weight: [O, I, k, k]; styles: [N, I]; noise: broadcastable to the output.
    ``fused`` runs one grouped convolution with per-sample weights (NVlabs' choice at inference);
    the unfused path scales activations instead, which trains faster. They agree in math, not bits.
    """
    n = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    _check_shape(x, [n, in_channels, None, None], "x")
    _check_shape(styles, [n, in_channels], "styles")

    w = dcoefs = None
    if demodulate or fused:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
    if demodulate and fused:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)

    if not fused:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, padding=padding,
                            flip_weight=flip_weight)
        if demodulate and noise is not None:
            return torch.addcmul(noise.to(x.dtype), x, dcoefs.to(x.dtype).reshape(n, -1, 1, 1))
        if demodulate:
            return x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        if noise is not None:
            return x + noise.to(x.dtype)
        return x

    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), f=resample_filter, up=up, padding=padding, groups=n,
                        flip_weight=flip_weight)
    x = x.reshape(n, -1, *x.shape[2:])
    if noise is not None:
        x = x.add_(noise)  # in place, as NVlabs: the conv output is not needed for its backward
    return x


def minibatch_stddev(x: Tensor, group_size: int | None, num_channels: int = 1) -> Tensor:
    """Append the standard deviation across groups of samples as extra feature maps (the
    discriminator's defence against mode collapse)."""
    n, c, h, w = x.shape
    g = min(group_size, n) if group_size is not None else n
    f = num_channels
    y = x.reshape(g, -1, f, c // f, h, w)
    y = y - y.mean(dim=0)
    y = y.square().mean(dim=0)
    y = (y + 1e-8).sqrt()
    y = y.mean(dim=[2, 3, 4])
    y = y.reshape(-1, f, 1, 1)
    y = y.repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


def _check_shape(t: Tensor, shape: list, name: str) -> None:
    if t.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, t.shape, strict=True)):
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{name} must have shape {want}, got {list(t.shape)}")

