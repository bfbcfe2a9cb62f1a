"""GAN inversion: find the latent (and noise) whose image matches a given real image.

Why: labels of a few real images become annotations of the generator's own images once each real
image is mapped to a latent that reproduces it (the HandsOff route into DatasetGAN). The style
interpreter then reads the generator's features of that latent and learns from the real label.

Two phases, as in NVlabs' projector, with losses that need no downloaded network:

1. **W**: one w per image, from the mean latent ``w_avg``, with a decaying jitter of w early on (to
   escape the start) and the generator's stored ('const') noise maps. The image stays on the
   generator's manifold, so the labels it carries are the generator's.
2. **W+ with noise**: per-layer codes ``ws`` from the W solution, plus per-image noise maps that start
   at the const maps (so phase 2 begins at exactly the phase-1 image). A pull toward the W solution
   keeps ws near the manifold; NVlabs' noise regulariser keeps the noise maps from absorbing the image.

Loss = multi-scale pixel MSE (full resolution down to 8 px, average pooling) + a feature distance on
the discriminator's block activations (channel-normalised, as LPIPS normalises its features) when a
discriminator is given. Adam with NVlabs' learning-rate schedule (cosine ramp-down over the last 25%,
linear ramp-up over the first 5%).

Images in a batch are independent: every loss is a per-image sum and Adam's update is elementwise, so
inverting a batch equals inverting its images one at a time (up to float rounding).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ganfactory.gan.sampling import to_uint8

__all__ = ["InversionConfig", "InversionResult", "discriminator_features", "invert", "psnr", "w_statistics"]


@dataclass(frozen=True)
class InversionConfig:
    w_steps: int = 300
    wplus_steps: int = 300
    lr_w: float = 0.1
    """Peak Adam learning rate of phase 1 (NVlabs' 0.1; w is in raw W units)."""
    lr_wplus: float = 0.01
    """Peak learning rate of phase 2 (ws and noise)."""
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    initial_noise_factor: float = 0.05
    """Phase-1 jitter of w, as a fraction of W's spread, decaying to 0 at ``noise_ramp_length``."""
    noise_ramp_length: float = 0.75
    noise_reg_weight: float = 1e5
    """NVlabs' regulariser of the noise maps' spatial autocorrelation (phase 2)."""
    pull_weight: float = 1.0
    """Phase-2 penalty on mean((ws - w_solution)^2) / var(W)."""
    feature_weight: float = 0.1
    """Weight of the discriminator-feature distance (0, or no discriminator, leaves it out)."""
    min_scale: int = 8
    """Coarsest resolution of the multi-scale pixel loss."""
    w_avg_samples: int = 10000
    seed: int = 0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class InversionResult:
    w: Tensor
    """[N, w_dim] the phase-1 solution."""
    ws: Tensor
    """[N, num_ws, w_dim] the phase-2 (W+) solution."""
    noise: dict[str, Tensor]
    """Per noisy layer [N, 1, H, W]: the phase-2 noise maps, used with noise_mode 'random'."""
    images_w: np.ndarray
    """[N, H, W, 3] uint8 images of the W solution (const noise)."""
    images: np.ndarray
    """[N, H, W, 3] uint8 images of the W+ solution."""
    psnr_w: np.ndarray
    """[N] dB against the targets."""
    psnr: np.ndarray
    """[N] dB against the targets."""


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Peak signal-to-noise ratio in dB of uint8 images [N, H, W, C] (inf where identical)."""
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(255.0**2 / mse)


@torch.no_grad()
def w_statistics(G, samples: int = 10000, seed: int = 0) -> tuple[Tensor, float]:
    """Mean of W over ``samples`` random z and the root-mean-square distance from it (NVlabs' w_std)."""
    z = torch.randn([samples, G.z_dim], generator=torch.Generator().manual_seed(seed)).to(G.w_avg.device)
    w = torch.cat([G.mapping(chunk, None)[:, 0] for chunk in z.split(2048)])
    mean = w.mean(0)
    return mean, float(((w - mean) ** 2).sum() / samples) ** 0.5


def discriminator_features(D, img: Tensor) -> list[Tensor]:
    """The output of every resolution block of the discriminator (the epilogue excluded)."""
    return D.block_outputs(img)[0]


def _normalise(f: Tensor) -> Tensor:
    return f / (f.square().sum(dim=1, keepdim=True) + 1e-10).sqrt()


def _image_loss(img: Tensor, target: Tensor, target_feats: list[Tensor] | None, D, config: InversionConfig) -> Tensor:
    """Per-image loss [N]: multi-scale pixel MSE plus the discriminator-feature distance."""
    loss = torch.zeros(len(img), device=img.device)
    a, b = img, target
    while True:
        loss = loss + (a - b).square().mean(dim=(1, 2, 3))
        if a.shape[-1] // 2 < config.min_scale:
            break
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    if target_feats is not None:
        for f, t in zip(discriminator_features(D, img), target_feats, strict=True):
            loss = loss + config.feature_weight * (_normalise(f) - t).square().sum(dim=1).mean(dim=(1, 2))
    return loss


def _noise_regularisation(noise: dict[str, Tensor]) -> Tensor:
    """NVlabs' penalty [N] on the autocorrelation of each noise map at every scale down to 8 px."""
    reg = 0
    for v in noise.values():
        while True:
            reg = reg + (v * torch.roll(v, 1, dims=3)).mean(dim=(1, 2, 3)).square()
            reg = reg + (v * torch.roll(v, 1, dims=2)).mean(dim=(1, 2, 3)).square()
            if v.shape[-1] <= 8:
                break
            v = F.avg_pool2d(v, 2)
    return reg


def _learning_rate(peak: float, t: float, config: InversionConfig) -> float:
    ramp = min(1.0, (1.0 - t) / config.lr_rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return peak * ramp * min(1.0, t / config.lr_rampup)


def invert(G, targets: Tensor, config: InversionConfig | None = None, D=None,
           progress: Callable[[str, int, int, float], None] | None = None) -> InversionResult:
    """Invert ``targets`` [N, 3, H, W] (float, in [-1, 1], at the generator's resolution) into ``G``.

    ``D``: the generator's discriminator, for the feature loss (optional). ``progress(phase, step, steps,
    mean_loss)`` is called after every step.
    """
    config = config or InversionConfig()
    device = G.w_avg.device
    res = G.img_resolution
    if targets.ndim != 4 or targets.shape[1] != 3 or targets.shape[2:] != (res, res):
        raise ValueError(f"targets must be [N, 3, {res}, {res}], got {list(targets.shape)}")
    targets = targets.to(device, torch.float32)
    n = len(targets)
    G.requires_grad_(False)
    if D is not None:
        D.requires_grad_(False)
        with torch.no_grad():
            target_feats = [_normalise(f) for f in discriminator_features(D, targets)]
    else:
        target_feats = None
    w_mean, w_std = w_statistics(G, config.w_avg_samples, config.seed)
    rng = torch.Generator(device=device).manual_seed(config.seed)
    const_noise = {k: G.synthesis.get_submodule(k).noise_const for k in G.synthesis.noise_shapes()}

    # Phase 1: W, const noise.
    w = w_mean.detach().clone().expand(n, -1).contiguous().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=config.lr_w, betas=(0.9, 0.999))
    for step in range(config.w_steps):
        t = step / config.w_steps
        for group in opt.param_groups:
            group["lr"] = _learning_rate(config.lr_w, t, config)
        jitter = w_std * config.initial_noise_factor * max(0.0, 1.0 - t / config.noise_ramp_length) ** 2
        w_in = w + torch.randn(w.shape, generator=rng, device=device) * jitter
        img = G.synthesis(w_in.unsqueeze(1).expand(-1, G.num_ws, -1), noise_mode="const")
        loss = _image_loss(img, targets, target_feats, D, config)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        if progress:
            progress("W", step + 1, config.w_steps, float(loss.detach().mean()))
    w = w.detach()
    w_solution = w.unsqueeze(1).expand(-1, G.num_ws, -1).contiguous()
    with torch.no_grad():
        images_w = to_uint8(G.synthesis(w_solution, noise_mode="const"))

    # Phase 2: W+ and noise, pulled toward the W solution.
    ws = w_solution.clone().requires_grad_(True)
    noise = {k: v.detach().expand(n, 1, -1, -1).clone().requires_grad_(True) for k, v in const_noise.items()}
    opt = torch.optim.Adam([ws, *noise.values()], lr=config.lr_wplus, betas=(0.9, 0.999))
    for step in range(config.wplus_steps):
        t = step / config.wplus_steps
        for group in opt.param_groups:
            group["lr"] = _learning_rate(config.lr_wplus, t, config)
        img = G.synthesis(ws, noise_mode="random", noise=noise)
        loss = _image_loss(img, targets, target_feats, D, config)
        loss = loss + config.pull_weight * (ws - w_solution).square().mean(dim=(1, 2)) / w_std**2
        loss = loss + config.noise_reg_weight * _noise_regularisation(noise)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        with torch.no_grad():  # NVlabs: keep every noise map zero-mean, unit-variance
            for v in noise.values():
                v -= v.mean(dim=(1, 2, 3), keepdim=True)
                v *= v.square().mean(dim=(1, 2, 3), keepdim=True).rsqrt()
        if progress:
            progress("W+", step + 1, config.wplus_steps, float(loss.detach().mean()))
    ws = ws.detach()
    noise = {k: v.detach() for k, v in noise.items()}
    with torch.no_grad():
        images = to_uint8(G.synthesis(ws, noise_mode="random", noise=noise))
    real = to_uint8(targets)
    return InversionResult(w=w.cpu(), ws=ws.cpu(), noise={k: v.cpu() for k, v in noise.items()},
                           images_w=images_w, images=images, psnr_w=psnr(images_w, real), psnr=psnr(images, real))
