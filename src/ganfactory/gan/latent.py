"""A latent that regenerates one image exactly, and the one rule that turns a seed into z and noise.

Why here and not beside the stores that keep latents: the annotator, the interpreter, the factory and the
inversion all synthesise from latents, and every one of them must make the same image from the same latent;
the rule belongs to the generator's package so that nothing above ``gan`` writes it again.

The seed rule follows NVlabs' generate.py: ``z = np.random.RandomState(seed).randn(z_dim)``, so seed 42 gives the
same image here as there. Noise for noise mode 'random' is drawn per seed from
``torch.Generator().manual_seed(seed)`` (``seed_noise``) and stored with explicit latents; a latent of kind seed
stores only the seed, since its per-image noise is a function of it (DatasetGAN's fresh noise per image, without
a megabyte of noise per stored latent).

Truncation may be limited to the first ``truncation_cutoff`` style layers (DatasetGAN: psi 0.7 on the coarse
half, ``coarse_cutoff``); the cutoff is part of a seed latent, so it regenerates the same image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ganfactory.errors import GanfactoryError
from ganfactory.gan.networks import NOISE_MODES

__all__ = ["NOISE_MODES", "Latent", "LatentError", "coarse_cutoff", "seed_noise", "seeds_to_z", "synthesize_latents"]


class LatentError(GanfactoryError, ValueError):
    """A latent that cannot regenerate its image (missing noise, wrong shape, mixed noise modes)."""


def seeds_to_z(seeds: list[int], z_dim: int) -> Tensor:
    """[N, z_dim] float32 latents, one per seed, NVlabs' convention."""
    return torch.from_numpy(np.stack([np.random.RandomState(s).randn(z_dim) for s in seeds])).float()


def seed_item_id(seed: int) -> str:
    """The id of the item or sample made from generator seed ``seed`` in every store (AnnotationSet items, the
    factory's LabeledDataset samples): ``seed`` and at least six digits. (Image files in folders for people follow
    NVlabs' ``seed0042.png`` instead: ``ganfactory.gan.sampling.seed_file_stem``.)"""
    return f"seed{int(seed):06d}"


def coarse_cutoff(G) -> int:
    """The number of "coarse" style layers DatasetGAN truncates: the first half of ``G.num_ws`` (rounded down).

    Why half: DatasetGAN's car generator (StyleGAN1, 512 px, 16 style layers) truncates the first 8 with psi 0.7
    (train_interpreter.py: ``Truncation(max_layer=8, threshold=0.7)``; cat and bedroom at 256 px: 7 of 14), the
    layers that set pose and shape, and leaves the fine layers (colour, texture) untruncated. At 64 px (10 style
    layers) half is 5: the 4 px and 8 px blocks and the first layer of 16 px."""
    return int(G.num_ws) // 2


def seed_noise(G, seeds: list[int]) -> dict[str, Tensor]:
    """The noise maps of noise mode 'random' for ``seeds``: per noisy layer [N, 1, H, W] on the CPU, each seed's
    maps drawn from ``torch.Generator().manual_seed(seed)`` (so a seed's noise does not depend on its batch)."""
    per_seed = [G.synthesis.sample_noise(1, torch.Generator().manual_seed(int(s))) for s in seeds]
    return {k: torch.cat([d[k] for d in per_seed]) for k in per_seed[0]}


@dataclass(frozen=True, eq=False)
class Latent:
    """Everything that regenerates one image exactly: either a seed (with truncation and noise mode) or
    explicit codes ``ws`` (with the noise maps when the noise mode is 'random')."""

    ws: Tensor
    """[num_ws, w_dim] float32, after truncation."""
    noise_mode: str = "const"
    noise: dict[str, Tensor] | None = None
    """Noise mode 'random' only: per noisy layer [1, 1, H, W]."""
    seed: int | None = None
    """Set when ``ws`` (and the noise) came from this seed: then only the seed is stored."""
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    """Seed latents: truncation applied to the first this many style layers only (None = all)."""

    def __post_init__(self) -> None:
        if self.noise_mode not in NOISE_MODES:
            raise LatentError(f"noise mode must be const, random or none, got {self.noise_mode!r}")
        if self.noise_mode == "random" and self.noise is None:
            raise LatentError("noise mode 'random' needs its noise maps stored (from G.synthesis.sample_noise), "
                              "or the image cannot be regenerated")
        if self.ws.ndim != 2:
            raise LatentError(f"ws must be [num_ws, w_dim], got {list(self.ws.shape)}")

    @classmethod
    def from_seed(cls, G, seed: int, truncation_psi: float = 1.0, noise_mode: str = "const",
                  truncation_cutoff: int | None = None) -> Latent:
        """The latent of ``seed`` as ``ganfactory.gan.sampling.generate`` draws it (``seeds_to_z``; noise from
        ``seed_noise`` for mode 'random'; truncation on the first ``truncation_cutoff`` layers, None = all).
        ``ws`` is kept on the CPU."""
        with torch.no_grad():
            ws = G.mapping(seeds_to_z([seed], G.z_dim).to(G.w_avg.device), None, truncation_psi=truncation_psi,
                           truncation_cutoff=truncation_cutoff)[0]
        noise = seed_noise(G, [seed]) if noise_mode == "random" else None
        cutoff = None if truncation_cutoff is None else int(truncation_cutoff)
        return cls(ws.cpu(), noise_mode, noise, int(seed), float(truncation_psi), cutoff)

    def to_json(self) -> dict:
        if self.seed is not None:
            spec = {"kind": "seed", "seed": self.seed, "truncation_psi": self.truncation_psi,
                    "noise_mode": self.noise_mode}
            if self.truncation_cutoff is not None:
                spec["truncation_cutoff"] = self.truncation_cutoff
            return spec
        return {"kind": "ws", "noise_mode": self.noise_mode}

    def arrays(self) -> dict[str, np.ndarray]:
        """What a store's latent.npz holds for kind 'ws'."""
        out = {"ws": self.ws.detach().cpu().float().numpy()}
        for k, v in (self.noise or {}).items():
            out[f"noise.{k}"] = v.detach().cpu().float().numpy()
        return out


def synthesize_latents(G, latents: list[Latent], return_features: bool = False):
    """Run ``G.synthesis`` on latents that share one noise mode, on G's device: images [N, 3, H, W] (and the
    features).

    Why one function: the annotated image, its features for training and the factory's samples must all
    come from the same call so that they agree exactly.
    """
    modes = {lat.noise_mode for lat in latents}
    if len(modes) != 1:
        raise LatentError(f"latents of one batch must share a noise mode, got {sorted(modes)}")
    mode = modes.pop()
    device = G.w_avg.device
    ws = torch.stack([lat.ws for lat in latents]).to(device)
    noise = None
    if mode == "random":
        noise = {k: torch.cat([lat.noise[k] for lat in latents]).to(device) for k in latents[0].noise}
    with torch.no_grad():
        return G.synthesis(ws, noise_mode=mode, noise=noise, return_features=return_features)
