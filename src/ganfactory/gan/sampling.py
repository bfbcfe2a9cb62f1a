"""Sampling a generator from seeds, reproducibly: latents, style mixing, images, grids, files.

Seeds become z and noise by the one rule of ``ganfactory.gan.latent`` (NVlabs' z; per-seed noise for
noise_mode='random', stored with the latents, so every image regenerates exactly from its .npz).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ganfactory.atomic import atomic_path
from ganfactory.errors import GanfactoryError
from ganfactory.gan.latent import seed_noise, seeds_to_z
from ganfactory.gan.networks import Generator, mix_styles

__all__ = ["Samples", "generate", "image_grid", "load_latents", "parse_seeds", "save_samples", "seed_file_stem",
           "seeds_to_z", "to_uint8"]


def parse_seeds(text: str) -> list[int]:
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11] (ranges inclusive, like NVlabs)."""
    seeds = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if m is None or (m[2] is not None and int(m[2]) < int(m[1])):
            raise GanfactoryError(f"bad seed list {text!r}: use numbers and inclusive ranges, e.g. 0-15 or 1,5,9-12")
        seeds.extend(range(int(m[1]), int(m[2] or m[1]) + 1))
    if any(s >= 2**32 for s in seeds):
        raise GanfactoryError("seeds must be in [0, 2^32)")
    return seeds


def seed_file_stem(seed: int) -> str:
    """The file name stem of a seed's image in folders for people (``generate``, ``interpreter predict``):
    NVlabs' ``seed0042``. Items of a store use ``ganfactory.gan.latent.seed_item_id`` instead."""
    return f"seed{int(seed):04d}"


def to_uint8(images: Tensor) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] -> [N, H, W, C] uint8, rounding as NVlabs does."""
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def image_grid(images: np.ndarray, cols: int | None = None) -> np.ndarray:
    """Tile [N, H, W, C] uint8 images into one near-square grid (unused cells black)."""
    n, h, w, c = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros([rows * h, cols * w, c], dtype=np.uint8)
    for i, img in enumerate(images):
        r, q = divmod(i, cols)
        grid[r * h:(r + 1) * h, q * w:(q + 1) * w] = img
    return grid


@dataclass
class Samples:
    """Images with everything needed to regenerate them."""

    seeds: list[int]
    z: Tensor
    """[N, z_dim]"""
    ws: Tensor
    """[N, num_ws, w_dim] after truncation and mixing: synthesis(ws) regenerates the images."""
    images: Tensor
    """[N, C, H, W] in about [-1, 1]"""
    noise_mode: str
    noise: dict[str, Tensor] | None
    """The noise maps used with noise_mode 'random' ([N, 1, H, W] per layer), else None."""
    settings: dict


@torch.no_grad()
def generate(G: Generator, seeds: list[int], truncation_psi: float = 1.0, noise_mode: str = "const",
             class_idx: int | None = None, mix_seed: int | None = None, mix_cutoff: int | None = None,
             batch_size: int = 8, device: torch.device | str = "cpu") -> Samples:
    """Sample ``G`` at ``seeds``. With ``mix_seed``, layers from ``mix_cutoff`` on come from that seed's w
    (coarse layers keep each seed's pose and shape, the fine ones take the mix seed's appearance)."""
    if not seeds:
        raise GanfactoryError("no seeds given")
    if (mix_seed is None) != (mix_cutoff is None):
        raise GanfactoryError("style mixing needs both --mix-seed and --mix-cutoff")
    if mix_cutoff is not None and not 0 <= mix_cutoff <= G.num_ws:
        raise GanfactoryError(f"--mix-cutoff must be in [0, {G.num_ws}] for this generator")
    c = None
    if G.c_dim > 0:
        if class_idx is None or not 0 <= class_idx < G.c_dim:
            raise GanfactoryError(f"this generator is class-conditional: pass a class index in [0, {G.c_dim})")
        c = torch.zeros([1, G.c_dim], device=device)
        c[0, class_idx] = 1
    elif class_idx is not None:
        raise GanfactoryError("this generator is unconditional: drop the class index")

    G = G.to(device).eval()
    z_all = seeds_to_z(seeds, G.z_dim)
    ws_list, img_list, noise_list = [], [], []
    mix_ws = None
    if mix_seed is not None:
        mix_ws = G.mapping(seeds_to_z([mix_seed], G.z_dim).to(device), c, truncation_psi=truncation_psi)
    for start in range(0, len(seeds), batch_size):
        z = z_all[start:start + batch_size].to(device)
        cb = None if c is None else c.repeat(len(z), 1)
        ws = G.mapping(z, cb, truncation_psi=truncation_psi)
        if mix_ws is not None:
            ws = mix_styles(ws, mix_ws.expand_as(ws), mix_cutoff)
        noise = None
        if noise_mode == "random":
            noise = {k: v.to(device) for k, v in seed_noise(G, seeds[start:start + batch_size]).items()}
            noise_list.append(noise)
        img_list.append(G.synthesis(ws, noise_mode=noise_mode, noise=noise).cpu())
        ws_list.append(ws.cpu())
    all_noise = None
    if noise_list:
        all_noise = {k: torch.cat([n[k].cpu() for n in noise_list]) for k in noise_list[0]}
    settings = dict(truncation_psi=truncation_psi, noise_mode=noise_mode, class_idx=class_idx,
                    mix_seed=mix_seed, mix_cutoff=mix_cutoff)
    return Samples(seeds=list(seeds), z=z_all, ws=torch.cat(ws_list), images=torch.cat(img_list),
                   noise_mode=noise_mode, noise=all_noise, settings=settings)


def save_samples(samples: Samples, out_dir: str | Path, provenance: dict | None = None) -> dict[str, Path]:
    """Write seed{NNNN}.png per image, grid.png and latents.npz (seeds, z, ws, noise, settings)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pixels = to_uint8(samples.images)
    for seed, img in zip(samples.seeds, pixels, strict=True):
        _save_png(img, out / f"{seed_file_stem(seed)}.png")
    _save_png(image_grid(pixels), out / "grid.png")
    arrays = {"seeds": np.asarray(samples.seeds, dtype=np.int64), "z": samples.z.numpy(),
              "ws": samples.ws.numpy(),
              "settings_json": np.asarray(json.dumps({**samples.settings, "provenance": provenance or {}}))}
    for k, v in (samples.noise or {}).items():
        arrays[f"noise.{k}"] = v.numpy()
    latents = out / "latents.npz"
    with atomic_path(latents) as tmp:
        np.savez(tmp, **arrays)
    return {"grid": out / "grid.png", "latents": latents}


def load_latents(path: str | Path) -> tuple[Tensor, str, dict[str, Tensor] | None, dict]:
    """(ws, noise_mode, noise maps or None, settings) from a latents.npz written by ``save_samples``."""
    with np.load(path) as data:
        settings = json.loads(str(data["settings_json"]))
        noise = {k[len("noise."):]: torch.from_numpy(data[k]) for k in data.files if k.startswith("noise.")}
        return torch.from_numpy(data["ws"]), settings["noise_mode"], noise or None, settings


def _save_png(pixels: np.ndarray, path: Path) -> None:
    mode = "L" if pixels.shape[-1] == 1 else "RGB"
    Image.fromarray(pixels.squeeze(-1) if mode == "L" else pixels, mode).save(path)
