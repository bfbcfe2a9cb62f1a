"""rosinality/stylegan2-pytorch checkpoints (.pt): converted ones ({g_ema, latent_avg}) and training
ones ({g, d, g_ema, g_optim, d_optim, args, ada_aug_p}).

They are torch.save zips of plain state dicts, read with ``weights_only=True`` (argparse.Namespace is
the one extra global allowed). The name map below is the whole conversion: rosinality's generator
is NVlabs' skip generator with other names, a leading batch axis on conv weights, and noise
strengths of shape [1]. Their convolutions fold the 1/sqrt(fan_in) scale in before demodulation and
never clamp, so images agree with theirs to about 1e-5 rather than bit for bit.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import torch

from ganfactory.errors import CheckpointError
from ganfactory.gan.networks import Generator, GeneratorConfig
from ganfactory.gan.ops import setup_filter

__all__ = ["from_rosinality_state", "read_rosinality", "to_rosinality_state"]


def _layer_map(config: GeneratorConfig) -> list[tuple[str, str, str]]:
    """(our layer, rosinality layer, rosinality noise buffer or '') for every synthesis layer."""
    rows = [("synthesis.b4.conv1", "conv1", "noises.noise_0"), ("synthesis.b4.torgb", "to_rgb1", "")]
    for k, res in enumerate(config.block_resolutions[1:], start=1):
        rows += [(f"synthesis.b{res}.conv0", f"convs.{2 * k - 2}", f"noises.noise_{2 * k - 1}"),
                 (f"synthesis.b{res}.conv1", f"convs.{2 * k - 1}", f"noises.noise_{2 * k}"),
                 (f"synthesis.b{res}.torgb", f"to_rgbs.{k - 1}", "")]
    return rows


def to_rosinality_state(G: Generator) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Our generator as rosinality's ``g_ema`` state dict and ``latent_avg``."""
    cfg = G.config
    if cfg.c_dim or cfg.conv_clamp is not None or cfg.z_dim != cfg.w_dim or not cfg.use_noise \
            or cfg.architecture != "skip":
        raise CheckpointError("rosinality's generator is a skip generator with no class conditioning, no "
                              "clamping, z_dim == w_dim and noise inputs; this generator cannot be expressed in it")
    sd = {k: v.detach().clone() for k, v in G.state_dict().items()}
    out = {}
    for i in range(cfg.mapping_layers):
        out[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]
    out["input.input"] = sd["synthesis.b4.const"][None]
    kernel = 4 * setup_filter(cfg.resample_filter)
    for ours, theirs, noise in _layer_map(cfg):
        out[f"{theirs}.conv.weight"] = sd[f"{ours}.weight"][None]
        out[f"{theirs}.conv.modulation.weight"] = sd[f"{ours}.affine.weight"]
        out[f"{theirs}.conv.modulation.bias"] = sd[f"{ours}.affine.bias"]
        if ours.endswith("torgb"):
            out[f"{theirs}.bias"] = sd[f"{ours}.bias"].reshape(1, -1, 1, 1)
            if theirs != "to_rgb1":
                out[f"{theirs}.upsample.kernel"] = kernel.clone()
        else:
            out[f"{theirs}.noise.weight"] = sd[f"{ours}.noise_strength"].reshape(1)
            out[f"{theirs}.activate.bias"] = sd[f"{ours}.bias"]
            out[noise] = sd[f"{ours}.noise_const"][None, None]
            if ours.endswith("conv0"):
                out[f"{theirs}.conv.blur.kernel"] = kernel.clone()
    return out, sd["mapping.w_avg"]


def _infer_config(sd: dict[str, torch.Tensor]) -> GeneratorConfig:
    n_mlp = len([k for k in sd if re.fullmatch(r"style\.\d+\.weight", k)])
    n_rgbs = len([k for k in sd if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k)])
    if n_mlp == 0 or "input.input" not in sd:
        raise CheckpointError("not a rosinality generator state (no style.* mapping or input.input)")
    style_dim = sd["style.1.weight"].shape[0]
    size = 2 ** (n_rgbs + 2)
    channels = {4: sd["input.input"].shape[1]}
    for k, res in enumerate([2 ** i for i in range(3, n_rgbs + 3)], start=1):
        channels[res] = sd[f"convs.{2 * k - 1}.conv.weight"].shape[1]
    base, cmax = _fit_channel_formula(channels)
    return GeneratorConfig(z_dim=style_dim, w_dim=style_dim, img_resolution=size, mapping_layers=n_mlp,
                           channel_base=base, channel_max=cmax, conv_clamp=None)


def _fit_channel_formula(channels: dict[int, int]) -> tuple[int, int]:
    """channel_base and channel_max with min(base // res, max) == channels[res] at every resolution.

    rosinality's table (512 up to 32 px, then 256 * multiplier / (res / 64)) is such a formula with
    max 512 and base 16384 * multiplier; edited tables of the same shape fit too."""
    cmax = max(channels.values())
    candidates = [c * r for r, c in channels.items() if c < cmax] or [cmax * max(channels)]
    for base in candidates:
        if all(min(base // r, cmax) == c for r, c in channels.items()):
            return base, cmax
    raise CheckpointError(f"channel counts {channels} do not follow min(base // res, max): not convertible")


def from_rosinality_state(sd: dict[str, torch.Tensor], latent_avg: torch.Tensor | None) -> Generator:
    """Our generator from rosinality's state dict. Without ``latent_avg`` (training checkpoints), w_avg
    is estimated as the mean of 10,000 mapped z drawn with a fixed seed."""
    cfg = _infer_config(sd)
    G = Generator(cfg)
    ours = {}
    for i in range(cfg.mapping_layers):
        ours[f"mapping.fc{i}.weight"] = sd[f"style.{i + 1}.weight"]
        ours[f"mapping.fc{i}.bias"] = sd[f"style.{i + 1}.bias"]
    ours["synthesis.b4.const"] = sd["input.input"][0]
    for name, theirs, noise in _layer_map(cfg):
        ours[f"{name}.weight"] = sd[f"{theirs}.conv.weight"][0]
        ours[f"{name}.affine.weight"] = sd[f"{theirs}.conv.modulation.weight"]
        ours[f"{name}.affine.bias"] = sd[f"{theirs}.conv.modulation.bias"]
        if name.endswith("torgb"):
            ours[f"{name}.bias"] = sd[f"{theirs}.bias"].reshape(-1)
        else:
            ours[f"{name}.noise_strength"] = sd[f"{theirs}.noise.weight"].reshape(())
            ours[f"{name}.bias"] = sd[f"{theirs}.activate.bias"]
            ours[f"{name}.noise_const"] = sd[noise][0, 0]
    missing, unexpected = G.load_state_dict(ours, strict=False)
    missing = [k for k in missing if not k.endswith("resample_filter") and k != "mapping.w_avg"]
    if missing or unexpected:
        raise CheckpointError(f"rosinality state does not map completely (missing {missing[:3]})")
    with torch.no_grad():
        if latent_avg is not None:
            G.mapping.w_avg.copy_(latent_avg.reshape(-1))
        else:
            z = torch.randn([10_000, cfg.z_dim], generator=torch.Generator().manual_seed(0))
            G.mapping.w_avg.copy_(G.mapping(z)[:, 0].mean(dim=0))
    return G.eval()


def read_rosinality(path: str | Path) -> tuple[Generator, dict]:
    """A generator (g_ema) and provenance notes from a rosinality .pt file."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable rosinality checkpoint ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict) or "g_ema" not in data:
        keys = sorted(data)[:6] if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path}: no 'g_ema' in this torch file (found {keys}); not a rosinality checkpoint")
    latent_avg = data.get("latent_avg")
    G = from_rosinality_state(data["g_ema"], latent_avg)
    provenance = {"source": "rosinality", "kind": "training" if "g" in data else "converted",
                  "w_avg": "latent_avg" if latent_avg is not None else "estimated from 10,000 samples (seed 0)"}
    args = data.get("args")
    if isinstance(args, argparse.Namespace):
        provenance["args"] = {k: v for k, v in vars(args).items() if isinstance(v, int | float | str | bool)}
    if not math.isfinite(float(G.w_avg.abs().sum())):
        raise CheckpointError(f"{path}: non-finite weights")
    return G, provenance
