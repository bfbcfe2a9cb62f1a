"""Training the StyleGAN-R mapping network (``ganfactory neural-render train``): resumable, on a CPU.

Data is the generator itself. ``samples`` seeds (NVlabs' rule, from ``first_seed``) are drawn at ``truncation_psi``
with const noise; the frozen inverse network reads each image's codes (``ganfactory.neural.codes``); the true ws,
the codes and the image are cached in shards under ``OUT/cache`` (each shard written atomically, skipped when
present: an interrupted build resumes).

Two phases (GANverse3D's schedule, shortened for a CPU):

1. **Warm-up** (``warmup_iterations``), the generator not even run: L2 between the mapping's ws and the sample's
   true ws, plus the entropy of the blend weights (per-dimension property weights and basis weights), which
   pushes each w dimension to be owned by one property and to pick few bases.
2. **Fine-tuning with cycle losses** (``finetune_iterations``): the mapping's ws are drawn by the frozen generator
   and the frozen inverse network re-reads the drawn image; its shape (L2), texture (L1) and background (L1 in
   code space) must match the codes asked for, and its camera the camera asked for (the inverse network's
   azimuth-bin cross-entropy and elevation error). A share ``swap_share`` of each batch asks for combinations no
   sample has (a uniform random azimuth, an elevation of another sample, shape, texture and background from three
   other samples): only the cycle losses judge those. The rest keep the L2 to their true ws. The generator stays
   frozen (gradients flow through it to the mapping only): fine-tuning it too would make the built-in ship a
   second generator, and on a CPU an hour buys a few hundred steps, too few to move a GAN safely.

Resume: ``OUT/checkpoint.pt`` (mapping, Adam state, RNG, counters; written atomically every
``checkpoint_every`` iterations and at the phase switch) is picked up by a rerun with the same settings
(``OUT/train.json``). ``OUT/model`` (weights only, the format of ``ganfactory.neural.model``) is rewritten at every
checkpoint; ``OUT/log.jsonl`` has the losses; ``OUT/done.json`` marks the end.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from ganfactory.atomic import atomic_path, write_json
from ganfactory.errors import GanfactoryError
from ganfactory.gan.latent import seeds_to_z
from ganfactory.inverse.losses import camera_loss
from ganfactory.neural.codes import PropertyCodes, codes_from_prediction, extract_codes
from ganfactory.neural.mapping import MappingConfig, NeuralMapping, entropy
from ganfactory.neural.model import save_mapping

__all__ = ["LossWeights", "TrainConfig", "build_cache", "load_cache", "mapping_losses", "train"]

SHARD = 250
"""Samples per cache shard."""


@dataclass(frozen=True)
class LossWeights:
    latent: float = 1.0
    """L2 to the true ws (warm-up, and the unswapped part of fine-tuning batches)."""
    blend_entropy: float = 0.01
    """Entropy of the per-dimension property weights (one owner per dimension)."""
    basis_entropy: float = 0.0
    """Entropy of the per-dimension basis weights (off by default: on [B, D, K] it costs as much as the rest of a
    warm-up step, and the convex combination keeps the output on the samples' box without it)."""
    shape: float = 50.0
    """Cycle: MSE of the re-predicted vertices (template units)."""
    texture: float = 5.0
    """Cycle: L1 of the re-predicted pooled texture ([0, 1])."""
    background: float = 5.0
    """Cycle: L1 of the re-read background grid ([-1, 1])."""
    camera: float = 1.0
    """Cycle: the inverse network's camera loss (azimuth bin CE + residual + elevation) against the camera asked."""
    elevation: float = 0.0
    """Cycle: an extra L1 (radians) on the re-read elevation (inside ``camera`` it weighs little beside the CE)."""


@dataclass(frozen=True)
class TrainConfig:
    generator: str = "cars64"
    inverse_model: str = "cars64-3d"
    samples: int = 4000
    """Generated samples in the cache (the last ``holdout`` are held out)."""
    holdout: int = 200
    first_seed: int = 30_000_000
    truncation_psi: float = 0.7
    warmup_iterations: int = 2500
    warmup_batch: int = 16
    warmup_lr: float = 1e-3
    finetune_iterations: int = 600
    finetune_batch: int = 8
    finetune_lr: float = 1e-4
    swap_share: float = 0.5
    elevation_range_deg: tuple[float, float] = (0.0, 30.0)
    """Swapped rows ask for an elevation uniform in this range (the cars data's)."""
    losses: LossWeights = field(default_factory=LossWeights)
    mapping: MappingConfig = field(default_factory=MappingConfig)
    seed: int = 0
    device: str = "cpu"
    threads: int = 1
    checkpoint_every: int = 50
    log_every: int = 10

    def __post_init__(self) -> None:
        if self.samples <= self.holdout or self.holdout < 1:
            raise GanfactoryError(f"--samples ({self.samples}) must exceed --holdout ({self.holdout}) >= 1")
        if self.warmup_iterations < 0 or self.finetune_iterations < 0:
            raise GanfactoryError("iterations must be >= 0")
        if not 0 <= self.swap_share <= 1:
            raise GanfactoryError(f"--swap-share must be in [0, 1], got {self.swap_share}")

    def to_json(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @property
    def iterations(self) -> int:
        return self.warmup_iterations + self.finetune_iterations


# ------------------------------------------------------------------------------------------------ the cache

CACHE_KEYS = ("ws", "images", *(f.name for f in dataclasses.fields(PropertyCodes)))


def build_cache(G, net, config: TrainConfig, out: Path, progress: bool = True) -> Path:
    """Write the shards of ``config.samples`` generated samples under ``out/cache`` (resumable)."""
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    m = config.mapping
    shards = range(math.ceil(config.samples / SHARD))
    bar = tqdm(total=config.samples, desc="neural-render cache", unit="sample", disable=not progress)
    for s in shards:
        path = cache / f"shard{s:04d}.safetensors"
        seeds = list(range(config.first_seed + s * SHARD, config.first_seed + min((s + 1) * SHARD, config.samples)))
        if path.is_file():
            bar.update(len(seeds))
            continue
        parts = []
        for i in range(0, len(seeds), 25):
            with torch.no_grad():
                z = seeds_to_z(seeds[i:i + 25], G.z_dim).to(config.device)
                ws = G.mapping(z, None, truncation_psi=config.truncation_psi)
                images = G.synthesis(ws, noise_mode="const")
            codes = extract_codes(net, images, m.texture_size, m.background_grid)
            parts.append({"ws": ws.cpu(), "images": ((images + 1) * 127.5).round().clamp(0, 255).byte().cpu(),
                          **{k: v.cpu() for k, v in codes.tensors().items()}})
            bar.update(len(ws))
        tensors = {k: torch.cat([p[k] for p in parts]).contiguous() for k in CACHE_KEYS}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp))
    bar.close()
    return cache


def load_cache(cache: Path, samples: int) -> dict[str, torch.Tensor]:
    """The cached tensors of the first ``samples`` samples, concatenated."""
    parts = [load_file(str(cache / f"shard{s:04d}.safetensors")) for s in range(math.ceil(samples / SHARD))]
    return {k: torch.cat([p[k] for p in parts])[:samples] for k in CACHE_KEYS}


def _codes(data: dict[str, torch.Tensor], index: torch.Tensor, device) -> PropertyCodes:
    return PropertyCodes(**{f.name: data[f.name][index].to(device) for f in dataclasses.fields(PropertyCodes)})


# ------------------------------------------------------------------------------------------------ losses

def mapping_losses(out, weights: LossWeights) -> dict[str, torch.Tensor]:
    """The entropy terms of a mapping output (the basis term only when it is weighted)."""
    terms = {"blend_entropy": entropy(out.blend)}
    if weights.basis_entropy > 0:
        terms["basis_entropy"] = sum(entropy(w) for w in out.basis_weights.values()) / len(out.basis_weights)
    return terms


def cycle_losses(G, net, ws: torch.Tensor, asked: PropertyCodes, mapping_config: MappingConfig
                 ) -> dict[str, torch.Tensor]:
    """Draw ``ws``, re-read the image with the inverse network, compare with what was asked (differentiable in
    ``ws``; the generator and the inverse network are frozen)."""
    images = G.synthesis(ws, noise_mode="const")
    prediction = net(((images + 1) / 2).clamp(0, 1))
    got = codes_from_prediction(net, prediction, images, mapping_config.texture_size,
                                mapping_config.background_grid)
    return {"shape": F.mse_loss(got.shape, asked.shape),
            "texture": F.l1_loss(got.texture, asked.texture),
            "background": F.l1_loss(got.background, asked.background),
            "camera": camera_loss(prediction, asked.azimuth, asked.elevation, prediction.camera.t.detach(),
                                  net.t_scale),
            "elevation": (prediction.camera.elevation - asked.elevation).abs().mean()}


def _total(terms: dict[str, torch.Tensor], weights: LossWeights) -> torch.Tensor:
    return sum(getattr(weights, k) * v for k, v in terms.items())


# ------------------------------------------------------------------------------------------------ training

def _swap(codes: PropertyCodes, rows: int, data: dict, train_n: int, config: TrainConfig,
          gen: torch.Generator, device) -> PropertyCodes:
    """The first ``rows`` of ``codes`` re-asked: a random camera and shape, texture, background of other samples."""
    if rows == 0:
        return codes
    pick = [torch.randint(train_n, (rows,), generator=gen) for _ in range(3)]
    lo, hi = (math.radians(a) for a in config.elevation_range_deg)
    az = torch.rand(rows, generator=gen) * 2 * math.pi
    el = lo + (hi - lo) * torch.rand(rows, generator=gen)

    def part(name, values):
        return torch.cat([values.to(device), getattr(codes, name)[rows:]])
    return codes.replace(azimuth=part("azimuth", az), elevation=part("elevation", el),
                         shape=part("shape", data["shape"][pick[0]]),
                         texture=part("texture", data["texture"][pick[1]]),
                         background=part("background", data["background"][pick[2]]))


def _validate(mapping: NeuralMapping, data: dict, index: torch.Tensor, device) -> dict:
    with torch.no_grad():
        out = mapping(_codes(data, index, device))
        err = (out.ws - data["ws"][index].to(device)) ** 2
    view = mapping.config.view_layers
    return {"val_latent": float(err.mean()), "val_latent_view": float(err[:, :view].mean()),
            "val_latent_content": float(err[:, view:].mean())}


def _save_checkpoint(path: Path, mapping, opt, gen, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save({"mapping": mapping.state_dict(), "opt": opt.state_dict(), "rng": gen.get_state(),
                    "state": state}, tmp)


def train(config: TrainConfig, out: str | Path, progress: bool = True) -> Path:
    """Train (or resume) into ``out``; returns the weights-only model directory ``out/model``."""
    from ganfactory.gan import load_generator
    from ganfactory.inverse.model import load_model

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = out / "train.json"
    mine = config.to_json()
    if settings.is_file():
        old = json.loads(settings.read_text())
        ignore = ("finetune_iterations", "warmup_iterations", "device", "threads")
        if {k: v for k, v in old.items() if k not in ignore} != {k: v for k, v in mine.items() if k not in ignore}:
            raise GanfactoryError(f"{out} holds a run with other settings (train.json); use a new --out")
    write_json(settings, mine)
    torch.set_num_threads(config.threads)
    device = torch.device(config.device)
    G = load_generator(config.generator, device=device).eval()
    net, _ = load_model(config.inverse_model, device)
    for p in [*G.parameters(), *net.parameters()]:
        p.requires_grad_(False)
    mc = dataclasses.replace(config.mapping, num_ws=G.num_ws, w_dim=G.w_dim, verts=net.template.num_verts)
    if mc != config.mapping:
        raise GanfactoryError(f"the mapping config does not fit {config.generator} / {config.inverse_model}: "
                              f"num_ws {G.num_ws}, w_dim {G.w_dim}, verts {net.template.num_verts}")
    data = load_cache(build_cache(G, net, config, out, progress), config.samples)
    train_n = config.samples - config.holdout
    val_index = torch.arange(train_n, config.samples)

    torch.manual_seed(config.seed)                      # the mapping's initial weights
    gen = torch.Generator().manual_seed(config.seed)    # everything drawn during training
    base_index = torch.randperm(train_n, generator=gen)[:mc.bases]
    mapping = NeuralMapping(mc, bases=data["ws"][base_index, mc.view_layers:], w_avg=G.w_avg.cpu()).to(device)
    opt = torch.optim.Adam(mapping.parameters(), lr=config.warmup_lr)
    state = {"iteration": 0, "seconds": 0.0}
    ckpt = out / "checkpoint.pt"
    if ckpt.is_file():
        saved = torch.load(ckpt, map_location=device, weights_only=True)
        mapping.load_state_dict(saved["mapping"])
        opt.load_state_dict(saved["opt"])
        gen.set_state(saved["rng"])
        state = saved["state"]
    facts = {"truncation_psi": config.truncation_psi, "samples": config.samples, "first_seed": config.first_seed}

    def save_model(scores: dict) -> None:
        save_mapping(mapping, out / "model", config.generator, config.inverse_model,
                     {**facts, "iterations": state["iteration"], "warmup_iterations": config.warmup_iterations,
                      "train_seconds": round(state["seconds"], 1), **scores})

    w = config.losses
    bar = tqdm(total=config.iterations, initial=state["iteration"], desc="neural-render train", unit="it",
               disable=not progress)
    t_start = time.time() - state["seconds"]
    log = open(out / "log.jsonl", "a")
    try:
        while state["iteration"] < config.iterations:
            it = state["iteration"]
            warm = it < config.warmup_iterations
            lr = config.warmup_lr if warm else config.finetune_lr
            for group in opt.param_groups:
                group["lr"] = lr
            batch = config.warmup_batch if warm else config.finetune_batch
            index = torch.randint(train_n, (batch,), generator=gen)
            codes = _codes(data, index, device)
            true_ws = data["ws"][index].to(device)
            rows = 0 if warm else round(batch * config.swap_share)
            asked = _swap(codes, rows, data, train_n, config, gen, device)
            mapped = mapping(asked)
            terms = mapping_losses(mapped, w)
            if rows < batch:
                terms["latent"] = F.mse_loss(mapped.ws[rows:], true_ws[rows:])
            if not warm:
                terms.update(cycle_losses(G, net, mapped.ws, asked, mc))
            total = _total(terms, w)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            state["iteration"] = it + 1
            bar.update(1)
            done = state["iteration"] == config.iterations
            switch = state["iteration"] == config.warmup_iterations
            if state["iteration"] % config.log_every == 0 or done or switch:
                row = {"iteration": state["iteration"], "phase": "warmup" if warm else "finetune",
                       "total": total.item(), **{k: v.item() for k, v in terms.items()},
                       "seconds": round(time.time() - t_start, 1)}
                log.write(json.dumps(row) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{row['total']:.3f}", phase=row["phase"])
            if state["iteration"] % config.checkpoint_every == 0 or done or switch:
                state["seconds"] = time.time() - t_start
                scores = _validate(mapping, data, val_index, device)
                with open(out / "val.jsonl", "a") as f:
                    f.write(json.dumps({"iteration": state["iteration"], **scores}) + "\n")
                _save_checkpoint(ckpt, mapping, opt, gen, state)
                save_model(scores)
    finally:
        log.close()
        bar.close()
    if not (out / "model" / "config.json").is_file():
        save_model(_validate(mapping, data, val_index, device))
    write_json(out / "done.json", {"iterations": state["iteration"], "seconds": round(state["seconds"], 1)})
    return out / "model"
