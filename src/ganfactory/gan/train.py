"""Training StyleGAN2: NVlabs' objective, on a CPU or GPUs, resumable exactly.

The objective (NVlabs training/loss.py): non-saturating logistic loss; lazy R1 every ``r1_interval``
discriminator steps; optional path-length regularisation every ``pl_interval`` generator steps; style
mixing; w_avg tracking; G_ema with ramp-up; Adam with lr and betas corrected for lazy regularisation.
DiffAugment on everything the discriminator sees.

Exact resume: all randomness of a run (batches, latents, noise, mixing, augmentation, flips) comes
from one torch.Generator whose state is saved in every snapshot together with G, G_ema, D, both
optimisers and the counters, so that a resumed run follows the same loss trajectory as an
uninterrupted one.

Data parallel: under torchrun every process draws the global batch's randomness from the same
generator and computes on its slice; gradients are averaged with all_reduce. Two processes therefore
compute what one process computes on the whole batch (up to float summation order).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from PIL import Image
from tqdm import tqdm

from ganfactory.atomic import write_json
from ganfactory.errors import GanfactoryError
from ganfactory.gan import augment as aug
from ganfactory.gan.data import load_images
from ganfactory.gan.io.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from ganfactory.gan.loss import d_logistic_loss, g_nonsaturating_loss, path_lengths, r1_penalty
from ganfactory.gan.metrics import FeatureNet, compute_kid
from ganfactory.gan.networks import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, mix_styles
from ganfactory.gan.sampling import image_grid, seeds_to_z, to_uint8

__all__ = ["PRESETS", "TrainConfig", "train"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run. ``None`` means "from the preset"."""

    data: str
    """Image folder, .zip of images, or LabeledDataset directory."""
    out: str
    """Run directory: snapshots, samples, log.txt, stats.jsonl, config.json."""
    preset: str = "cpu64"
    """Defaults for every field left at None (see PRESETS)."""
    kimg: float = 100.0
    """Train until this many thousand real images have been shown."""
    batch: int | None = None
    """Global batch size (split across processes)."""
    z_dim: int | None = None
    w_dim: int | None = None
    mapping_layers: int | None = None
    channel_base: int | None = None
    channel_max: int | None = None
    conv_clamp: float | None = None
    mbstd_group_size: int | None = None
    mbstd_num_channels: int = 1
    glr: float | None = None
    dlr: float | None = None
    r1_gamma: float | None = None
    r1_interval: int = 16
    pl_weight: float | None = None
    pl_interval: int = 4
    style_mixing: float | None = None
    ema_kimg: float | None = None
    ema_rampup: float | None = 0.05
    augment: tuple[str, ...] = aug.POLICIES
    """DiffAugment policy; () for none."""
    mirror: bool = False
    """Also show horizontally flipped images (random per sample)."""
    snapshot_kimg: float = 10.0
    sample_seeds: int = 16
    """Images in each snapshot's sample grid."""
    metric_generated: int = 1000
    """Samples for KID at each snapshot (0 = no metric)."""
    metric_real: int = 5000
    """Real images (evenly spaced through the dataset) for KID's reference features."""
    max_images: int | None = None
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    """Intra-op CPU threads while training (None = PyTorch's default, one per core). On a CPU shared
    with other work, 1 is many times faster (benchmarks/train.py); results change at float rounding."""
    channels_last: bool = True
    """Keep G, D and their images in channels-last memory layout: faster CPU convolutions (benchmarks/train.py:
    it makes our cpu64 step faster than NVlabs' own), the same losses up to float rounding; --no-channels-last
    for the plain layout."""
    init_from: str | None = None
    """Start from a checkpoint's weights (a path or a built-in name such as cars64): its G_ema and D, and its
    training G when it kept one (else G_ema). Optimiser and random state start fresh, so this is not an exact
    resume; the kimg count continues from the checkpoint's. Ignored when resuming a run's own snapshot."""

    def __post_init__(self) -> None:
        """Refuse bad settings before any data is read."""
        if self.preset not in PRESETS:
            raise GanfactoryError(f"unknown preset {self.preset!r}; choose from {', '.join(PRESETS)}")
        bad = sorted(set(self.augment) - set(aug.POLICIES))
        if bad:
            raise GanfactoryError(f"unknown augmentation {bad}; choose from {', '.join(aug.POLICIES)}")
        if self.kimg <= 0 or self.snapshot_kimg <= 0:
            raise GanfactoryError("--kimg and --snapshot-kimg must be positive")
        if self.threads is not None and self.threads < 1:
            raise GanfactoryError(f"--threads must be at least 1, got {self.threads}")

    def resolved(self, resolution: int) -> TrainConfig:
        """This config with every None filled from the preset (and auto rules of NVlabs' train.py)."""
        preset = dict(PRESETS[self.preset])
        batch = self.batch or preset["batch"]
        auto = dict(r1_gamma=0.0002 * resolution**2 / batch, ema_kimg=batch * 10 / 32)
        changes = {}
        for f in dataclasses.fields(self):
            if getattr(self, f.name) is None and f.name not in ("max_images", "conv_clamp"):
                changes[f.name] = preset[f.name] if preset.get(f.name) is not None else auto.get(f.name)
        if self.conv_clamp is None and "conv_clamp" in preset:
            changes["conv_clamp"] = preset["conv_clamp"]
        return dataclasses.replace(self, **changes)

    def generator_config(self, resolution: int) -> GeneratorConfig:
        return GeneratorConfig(z_dim=self.z_dim, w_dim=self.w_dim, img_resolution=resolution,
                               mapping_layers=self.mapping_layers, channel_base=self.channel_base,
                               channel_max=self.channel_max, conv_clamp=self.conv_clamp)

    def discriminator_config(self, resolution: int) -> DiscriminatorConfig:
        return DiscriminatorConfig(img_resolution=resolution, channel_base=self.channel_base,
                                   channel_max=self.channel_max, conv_clamp=self.conv_clamp,
                                   mbstd_group_size=self.mbstd_group_size,
                                   mbstd_num_channels=self.mbstd_num_channels)


PRESETS: dict[str, dict] = {
    # Small fp32 networks that train on a 2-core CPU (NVlabs' 'cifar' recipe: shallow mapping, no path
    # length, no mixing). Speed against NVlabs' own training step: benchmarks/train.py.
    "cpu32": dict(batch=8, z_dim=64, w_dim=64, mapping_layers=2, channel_base=1024, channel_max=64,
                  glr=0.0025, dlr=0.0025, r1_gamma=0.01, pl_weight=0.0, style_mixing=0.0, ema_kimg=None,
                  mbstd_group_size=4, conv_clamp=None),
    "cpu64": dict(batch=16, z_dim=128, w_dim=128, mapping_layers=2, channel_base=4096, channel_max=128,
                  glr=0.0025, dlr=0.0025, r1_gamma=None, pl_weight=0.0, style_mixing=0.0, ema_kimg=None,
                  mbstd_group_size=4, conv_clamp=None),
    # NVlabs paper configurations for GPUs (stylegan2-ada-pytorch train.py cfg_specs).
    "paper256": dict(batch=64, z_dim=512, w_dim=512, mapping_layers=8, channel_base=16384, channel_max=512,
                     glr=0.0025, dlr=0.0025, r1_gamma=1.0, pl_weight=2.0, style_mixing=0.9, ema_kimg=20,
                     mbstd_group_size=8, conv_clamp=256),
    "paper512": dict(batch=64, z_dim=512, w_dim=512, mapping_layers=8, channel_base=32768, channel_max=512,
                     glr=0.0025, dlr=0.0025, r1_gamma=0.5, pl_weight=2.0, style_mixing=0.9, ema_kimg=20,
                     mbstd_group_size=8, conv_clamp=256),
    "paper1024": dict(batch=32, z_dim=512, w_dim=512, mapping_layers=8, channel_base=32768, channel_max=512,
                      glr=0.002, dlr=0.002, r1_gamma=2.0, pl_weight=2.0, style_mixing=0.9, ema_kimg=10,
                      mbstd_group_size=4, conv_clamp=256),
}


class ProcessGroup:
    """Process-group facts under torchrun (WORLD_SIZE, RANK), and the two collective operations data-parallel
    training needs; the GAN trainer and the inverse-graphics trainer (``inverse.train``) share it."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def average_grads(self, module: torch.nn.Module) -> None:
        if self.world == 1:
            return
        params = [p for p in module.parameters() if p.grad is not None]
        flat = torch.cat([p.grad.flatten() for p in params])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p in params:
            n = p.grad.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        if self.world == 1:
            return x
        x = x.clone()
        dist.all_reduce(x)
        return x / self.world


class Trainer:
    """One training run. ``run()`` trains to ``config.kimg``; ``step()`` does one iteration."""

    def __init__(self, config: TrainConfig, images: torch.Tensor, resume: str | Path | None = None,
                 progress: bool = True):
        self.images = images
        self.resolution = images.shape[-1]
        self.cfg = config.resolved(self.resolution)
        self.device = torch.device(self.cfg.device)
        self.dist = ProcessGroup(self.device)
        if self.cfg.batch % self.dist.world:
            raise GanfactoryError(f"batch {self.cfg.batch} does not split over {self.dist.world} processes")
        if (self.cfg.batch // self.dist.world) % (self.cfg.mbstd_group_size or 1) and self.cfg.mbstd_num_channels:
            raise GanfactoryError(f"per-process batch {self.cfg.batch // self.dist.world} is not a multiple of "
                                  f"mbstd_group_size {self.cfg.mbstd_group_size}")
        self.out = Path(self.cfg.out)
        self.progress = progress and self.dist.rank == 0
        torch.manual_seed(self.cfg.seed)  # initial weights only; training randomness uses self.rng
        self.G = Generator(self.cfg.generator_config(self.resolution)).to(self.device).train()
        self.D = Discriminator(self.cfg.discriminator_config(self.resolution)).to(self.device).train()
        self.G_ema = Generator(self.G.config).to(self.device).eval()
        self.G_ema.load_state_dict(self.G.state_dict())
        self.G_ema.requires_grad_(False)
        if self.cfg.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self.opt_G = self._adam(self.G, self.cfg.glr, self.cfg.pl_interval if self.cfg.pl_weight else None)
        self.opt_D = self._adam(self.D, self.cfg.dlr, self.cfg.r1_interval if self.cfg.r1_gamma else None)
        self.rng = torch.Generator().manual_seed(self.cfg.seed)
        self.nimg = 0
        self.step_index = 0
        self.pl_mean = torch.zeros([], device=self.device)
        self.skipped_steps = 0
        self.interrupted = False
        self._feature_net = FeatureNet() if self.cfg.metric_generated else None
        self._real_features = None
        if resume is not None:
            self._load_snapshot(Path(resume))
        elif self.cfg.init_from is not None:
            self._init_from(self.cfg.init_from)

    @staticmethod
    def _adam(module, lr, interval):
        ratio = interval / (interval + 1) if interval else 1.0
        return torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=(0.0, 0.99**ratio), eps=1e-8)

    # -- one iteration ------------------------------------------------------------------------------

    def _slice(self, t: torch.Tensor) -> torch.Tensor:
        per = t.shape[0] // self.dist.world
        return t[self.dist.rank * per:(self.dist.rank + 1) * per]

    def _draw(self, n: int) -> dict:
        """All randomness of one generator pass on a global batch of n, from self.rng."""
        cfg = self.cfg
        z = torch.randn([n, cfg.z_dim], generator=self.rng)
        draw = {"z": z, "noise": self.G.synthesis.sample_noise(n, self.rng)}
        if cfg.style_mixing > 0:
            cutoff = int(torch.randint(1, self.G.num_ws, (), generator=self.rng))
            mix = float(torch.rand((), generator=self.rng)) < cfg.style_mixing
            draw["mix"] = (torch.randn([n, cfg.z_dim], generator=self.rng), cutoff if mix else self.G.num_ws)
        draw["aug"] = aug.sample_params(n, self.resolution, cfg.augment, self.rng) if cfg.augment else {}
        return draw

    def _local(self, draw: dict) -> dict:
        out = {"z": self._slice(draw["z"]).to(self.device),
               "noise": {k: self._slice(v).to(self.device) for k, v in draw["noise"].items()},
               "aug": {k: self._slice(v) for k, v in draw["aug"].items()}}
        if "mix" in draw:
            out["mix"] = (self._slice(draw["mix"][0]).to(self.device), draw["mix"][1])
        return out

    def _run_G(self, d: dict, update_w_avg: bool) -> tuple[torch.Tensor, torch.Tensor]:
        ws = self.G.mapping(d["z"], update_w_avg=update_w_avg and self.dist.world == 1)
        if "mix" in d and d["mix"][1] < ws.shape[1]:
            z2, cutoff = d["mix"]
            ws = mix_styles(ws, self.G.mapping(z2), cutoff)
        return self.G.synthesis(ws, noise_mode="random", noise=d["noise"]), ws

    def _run_D(self, img: torch.Tensor, aug_params: dict) -> torch.Tensor:
        return self.D(aug.apply(img, aug_params) if aug_params else img)

    def _reals(self) -> tuple[torch.Tensor, dict]:
        idx = torch.randint(0, len(self.images), (self.cfg.batch,), generator=self.rng)
        flip = torch.rand(self.cfg.batch, generator=self.rng) < 0.5 if self.cfg.mirror else None
        params = aug.sample_params(self.cfg.batch, self.resolution, self.cfg.augment, self.rng) \
            if self.cfg.augment else {}
        idx = self._slice(idx)
        img = self.images[idx].to(self.device).to(torch.float32) / 127.5 - 1
        if self.cfg.channels_last:
            img = img.contiguous(memory_format=torch.channels_last)
        if flip is not None:
            f = self._slice(flip).to(self.device)
            img = torch.where(f.reshape(-1, 1, 1, 1), img.flip(3), img)
        return img, {k: self._slice(v) for k, v in params.items()}

    def _apply(self, module, opt, loss) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        self.dist.average_grads(module)
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if all(torch.isfinite(g).all() for g in grads):
            opt.step()
        else:
            self.skipped_steps += 1

    def _w_avg_update(self, ws: torch.Tensor) -> None:
        """Track the mean of W across all processes (mapping's own update is per process)."""
        if self.dist.world > 1:
            with torch.no_grad():
                m = self.dist.mean(ws[:, 0].mean(dim=0))
                self.G.mapping.w_avg.copy_(m.lerp(self.G.mapping.w_avg, self.G.config.w_avg_beta))

    def step(self) -> dict:
        """One iteration: G main, [G path length], D main, [D R1], then G_ema. Returns the losses."""
        cfg = self.cfg
        stats = {}
        real, real_aug = self._reals()
        # Generator: fool the discriminator.
        self.G.requires_grad_(True)
        self.D.requires_grad_(False)
        d = self._local(self._draw(cfg.batch))
        img, ws = self._run_G(d, update_w_avg=True)
        self._w_avg_update(ws)
        loss_G = g_nonsaturating_loss(self._run_D(img, d["aug"])).mean()
        self._apply(self.G, self.opt_G, loss_G)
        stats["loss_G"] = float(self.dist.mean(loss_G.detach()))
        if cfg.pl_weight > 0 and self.step_index % cfg.pl_interval == 0:
            d = self._local(self._draw(max(cfg.batch // 2, self.dist.world)))
            img, ws = self._run_G(d, update_w_avg=False)
            lengths = path_lengths(img, ws, self.rng)
            mean = self.dist.mean(lengths.mean().detach())
            self.pl_mean = self.pl_mean.lerp(mean, 0.01)
            penalty = (lengths - self.pl_mean).square()
            loss_pl = (img[:, 0, 0, 0] * 0 + penalty * cfg.pl_weight * cfg.pl_interval).mean()
            self._apply(self.G, self.opt_G, loss_pl)
            stats["pl_penalty"] = float(self.dist.mean(penalty.mean().detach()))
        # Discriminator: tell real from generated.
        self.G.requires_grad_(False)
        self.D.requires_grad_(True)
        d = self._local(self._draw(cfg.batch))
        with torch.no_grad():
            img, ws = self._run_G(d, update_w_avg=True)
        self._w_avg_update(ws)
        fake_logits = self._run_D(img, d["aug"])
        real_logits = self._run_D(real, real_aug)
        loss_D = d_logistic_loss(real_logits, fake_logits).mean()
        self._apply(self.D, self.opt_D, loss_D)
        stats["loss_D"] = float(self.dist.mean(loss_D.detach()))
        stats["D_real"] = float(self.dist.mean(real_logits.detach().mean()))
        stats["D_fake"] = float(self.dist.mean(fake_logits.detach().mean()))
        if cfg.r1_gamma > 0 and self.step_index % cfg.r1_interval == 0:
            real_req = real.detach().requires_grad_(True)
            logits = self._run_D(real_req, real_aug)
            penalty = r1_penalty(real_req, logits)
            loss_r1 = (logits.flatten() * 0 + penalty * (cfg.r1_gamma / 2) * cfg.r1_interval).mean()
            self._apply(self.D, self.opt_D, loss_r1)
            stats["r1_penalty"] = float(self.dist.mean(penalty.mean().detach()))
        # Exponential moving average of the generator.
        self.nimg += cfg.batch
        self.step_index += 1
        self._update_ema()
        return stats

    @torch.no_grad()
    def _update_ema(self) -> None:
        ema_nimg = self.cfg.ema_kimg * 1000
        if self.cfg.ema_rampup is not None:
            ema_nimg = min(ema_nimg, self.nimg * self.cfg.ema_rampup)
        beta = 0.5 ** (self.cfg.batch / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
            b_ema.copy_(b)

    # -- snapshots -----------------------------------------------------------------------------------

    def snapshot_name(self) -> str:
        return f"snapshot-{self.nimg / 1000:010.3f}kimg"

    def save_snapshot(self) -> Path:
        path = self.out / "snapshots" / self.snapshot_name()
        tensors = {"G_train": self.G.state_dict(), "rng": {"state": self.rng.get_state()},
                   "counters": {"nimg": torch.tensor(self.nimg), "step": torch.tensor(self.step_index),
                                "pl_mean": self.pl_mean.detach().cpu().reshape(1),
                                "skipped": torch.tensor(self.skipped_steps)}}
        groups = {}
        for name, opt in (("opt_G", self.opt_G), ("opt_D", self.opt_D)):
            sd = opt.state_dict()
            tensors[name] = {f"{i}.{k}": torch.as_tensor(v).reshape(-1) if k == "step" else v
                             for i, st in sd["state"].items() for k, v in st.items()}
            groups[name] = sd["param_groups"]
        extra = {"train_config": dataclasses.asdict(self.cfg), "kimg": self.nimg / 1000,
                 "optimizer_param_groups": groups, "resolution": self.resolution}
        save_checkpoint(Checkpoint(generator=self.G_ema, discriminator=self.D, tensors=tensors, extra=extra,
                                   provenance={"source": "ganfactory train-gan"}), path)
        write_json(self.out / "latest.json", {"snapshot": str(path.relative_to(self.out)), "kimg": self.nimg / 1000},
                   indent=None)
        return path

    def _load_snapshot(self, path: Path) -> None:
        if path.is_dir() and (path / "latest.json").is_file():
            path = path / json.loads((path / "latest.json").read_text())["snapshot"]
        ck = load_checkpoint(path, device=self.device)
        if ck.generator.config != self.G.config or ck.discriminator is None \
                or ck.discriminator.config != self.D.config:
            raise GanfactoryError(f"{path}: the snapshot's networks differ from this run's configuration")
        for k in ("G_train", "rng", "counters", "opt_G", "opt_D"):
            if k not in ck.tensors:
                raise GanfactoryError(f"{path}: not a training snapshot (no {k}); use it with --ckpt elsewhere")
        self.G_ema.load_state_dict(ck.generator.state_dict())
        self.D.load_state_dict(ck.discriminator.state_dict())
        self.G.load_state_dict(ck.tensors["G_train"])
        self.rng.set_state(ck.tensors["rng"]["state"])
        c = ck.tensors["counters"]
        self.nimg, self.step_index = int(c["nimg"]), int(c["step"])
        self.pl_mean = c["pl_mean"].reshape(()).to(self.device)
        self.skipped_steps = int(c["skipped"])
        for name, opt in (("opt_G", self.opt_G), ("opt_D", self.opt_D)):
            flat = ck.tensors[name]
            state: dict = {}
            for key, v in flat.items():
                i, k = key.split(".", 1)
                state.setdefault(int(i), {})[k] = v.reshape(()) if k == "step" else v.to(self.device)
            opt.load_state_dict({"state": state, "param_groups": ck.extra["optimizer_param_groups"][name]})

    def _init_from(self, source: str) -> None:
        """Weights from ``source`` (any checkpoint read_any reads); counters continue from its kimg."""
        from ganfactory.gan.io.load import read_any

        ck = read_any(source, device=self.device)
        if ck.discriminator is None:
            raise GanfactoryError(f"--init-from {source}: the checkpoint has no discriminator to train on")
        for have, want, what in ((ck.generator.config, self.G.config, "generator"),
                                 (ck.discriminator.config, self.D.config, "discriminator")):
            if have != want:
                diff = [f"{f.name} {getattr(have, f.name)!r} (run: {getattr(want, f.name)!r})"
                        for f in dataclasses.fields(have) if getattr(have, f.name) != getattr(want, f.name)]
                raise GanfactoryError(f"--init-from {source}: its {what} differs from this run's: {'; '.join(diff)}")
        self.G_ema.load_state_dict(ck.generator.state_dict())
        self.D.load_state_dict(ck.discriminator.state_dict())
        self.G.load_state_dict(ck.tensors.get("G_train") or ck.generator.state_dict())
        self.nimg = int(round(float(ck.extra.get("kimg", 0.0)) * 1000))

    @torch.no_grad()
    def save_samples(self) -> Path:
        z = seeds_to_z(list(range(self.cfg.sample_seeds)), self.G_ema.z_dim).to(self.device)
        img = self.G_ema.synthesis(self.G_ema.mapping(z), noise_mode="const")
        path = self.out / "samples" / f"fakes-{self.nimg / 1000:010.3f}kimg.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image_grid(to_uint8(img.cpu()))).save(path)
        return path

    def evaluate(self, snapshot: Path) -> str:
        """KID of G_ema against the real reference features; keeps best.json pointing at the lowest."""
        cfg = self.cfg
        if not cfg.metric_generated:
            return ""
        if self._real_features is None:
            idx = torch.linspace(0, len(self.images) - 1, min(cfg.metric_real, len(self.images))).long()
            self._real_features = self._feature_net.features(self.images[idx])
        value = compute_kid(self.G_ema, self._real_features, cfg.metric_generated, net=self._feature_net,
                            device=self.device)
        row = {"kimg": self.nimg / 1000, "kid": value, "snapshot": str(snapshot.relative_to(self.out))}
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        best_path = self.out / "best.json"
        best = json.loads(best_path.read_text()) if best_path.is_file() else None
        if best is None or value < best["kid"]:
            write_json(best_path, row, indent=None)
        return f"  KID {value * 1e3:.2f}e-3"

    # -- the loop ------------------------------------------------------------------------------------

    def run(self) -> dict:
        """Train to ``config.kimg`` with ``config.threads`` intra-op threads (the caller's setting is restored)."""
        threads = torch.get_num_threads()
        if self.cfg.threads is not None:
            torch.set_num_threads(self.cfg.threads)
        try:
            return self._run()
        finally:
            torch.set_num_threads(threads)

    def _run(self) -> dict:
        cfg = self.cfg
        main = self.dist.rank == 0
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2) + "\n")
            reals = self.images[:cfg.sample_seeds].float() / 127.5 - 1
            Image.fromarray(image_grid(to_uint8(reals))).save(self.out / "reals.png")
        previous = signal.signal(signal.SIGINT, self._on_sigint) if main else None
        total = int(cfg.kimg * 1000)
        next_snapshot = (self.nimg // int(cfg.snapshot_kimg * 1000) + 1) * int(cfg.snapshot_kimg * 1000)
        bar = tqdm(total=total, initial=self.nimg, unit="img", disable=not self.progress, desc="train-gan")
        log = open(self.out / "log.txt", "a") if main else None
        stats_file = open(self.out / "stats.jsonl", "a") if main else None
        t_start, nimg_start, last = time.time(), self.nimg, {}
        next_tick = t_start + 60  # a progress line in log.txt every minute, for runs in the background
        try:
            while self.nimg < total and not self.interrupted:
                t0 = time.time()
                last = self.step()
                bar.update(cfg.batch)
                if main:
                    row = {"kimg": self.nimg / 1000, "step": self.step_index, **last,
                           "sec_per_kimg": (time.time() - t0) / cfg.batch * 1000}
                    stats_file.write(json.dumps(row) + "\n")
                    bar.set_postfix(G=f"{last['loss_G']:.3f}", D=f"{last['loss_D']:.3f}")
                    if time.time() >= next_tick:
                        next_tick = time.time() + 60
                        rate = (time.time() - t_start) / max(self.nimg - nimg_start, 1) * 1000
                        log.write(time.strftime("%Y-%m-%d %H:%M:%S ") + f"kimg {self.nimg / 1000:.3f}  "
                                  f"s/kimg {rate:.1f}  loss_G {last['loss_G']:.4f}  loss_D {last['loss_D']:.4f}\n")
                        log.flush()
                        stats_file.flush()
                if self.nimg >= next_snapshot or self.nimg >= total or self.interrupted:
                    next_snapshot += int(cfg.snapshot_kimg * 1000)
                    if main:
                        elapsed = time.time() - t_start
                        rate = elapsed / max(self.nimg - nimg_start, 1) * 1000
                        snap = self.save_snapshot()
                        grid = self.save_samples()
                        metric = self.evaluate(snap)
                        msg = (f"kimg {self.nimg / 1000:.2f}  s/kimg {rate:.1f}  loss_G {last['loss_G']:.4f}  "
                               f"loss_D {last['loss_D']:.4f}{metric}  snapshot {snap.name}  samples {grid.name}")
                        log.write(time.strftime("%Y-%m-%d %H:%M:%S ") + msg + "\n")
                        log.flush()
                        stats_file.flush()
                        if self.progress:
                            tqdm.write(msg)
        finally:
            bar.close()
            if main:
                log.close()
                stats_file.close()
                signal.signal(signal.SIGINT, previous)
        return {"kimg": self.nimg / 1000, "interrupted": self.interrupted, "last": last,
                "skipped_steps": self.skipped_steps}

    def _on_sigint(self, signum, frame) -> None:
        if self.interrupted:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.interrupted = True
        tqdm.write("interrupt: finishing this step and writing a snapshot (Ctrl-C again to abort)")


def train(config: TrainConfig, resume: str | Path | None = None, progress: bool = True) -> dict:
    """Train a StyleGAN2 on ``config.data``; snapshots go to ``config.out``/snapshots.

    ``resume``: a snapshot, or a run directory (its latest.json). The run continues exactly.
    """
    images = load_images(config.data, max_images=config.max_images, progress=progress)
    trainer = Trainer(config, images, resume=resume, progress=progress)
    result = trainer.run()
    if dist.is_initialized():
        dist.barrier()
    return result

