"""A viewpoint regressor: a small CNN that reads a car's azimuth and elevation from a 64 px image.

Why it exists: it is the measuring instrument of the 3-D half (which style layers carry the view, how
well the generator covers the views, whether the neural renderer turns the car where asked) and the
simulated annotator of the multi-view benchmark. It is trained from scratch on real renders with their
true cameras (the cars splits store ``azimuth_deg`` and ``elevation_deg``), no downloaded weights.

Why bins: a car seen from the front and from the back has the same outline at 64 px, so a plain sin/cos
regression, whose L2-optimal answer between two modes is their average, answers "the side" for both.
The network therefore has two azimuth heads trained together, (a) ``azimuth_bins`` classes with a
per-bin offset (the prediction is the most probable bin plus its offset) and (b) sin/cos; which one
:meth:`ViewpointRegressor.predict` reads is ``decode`` in the model's record, chosen on held-out renders
(docs/multiview). Elevation is one regressed number.

Frames: degrees, the cars data's convention (ganfactory.datasets.variation): azimuth 0 looks at the
car's front, 90 at its left side, in [0, 360); elevation is the camera's angle above the ground.

A run directory (the format of a trained regressor, built-ins included)::

    DIR/config.json       the run's header (architecture, settings, data) while it trains
    DIR/checkpoint.pt     weights, optimiser and data order (resume; deleted when done)
    DIR/log.jsonl         one line per logged step
    DIR/model.json        header + decode + validation results: its presence means "finished"
    DIR/model.safetensors the weights
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from ganfactory.atomic import atomic_path, write_atomic, write_json
from ganfactory.errors import GanfactoryError

__all__ = [
    "BUILTIN_REGRESSORS",
    "DECODES",
    "DEFAULT_REGRESSOR",
    "FORMAT",
    "FORMAT_VERSION",
    "RegressorConfig",
    "TrainSettings",
    "ViewpointData",
    "ViewpointRegressor",
    "angle_error_deg",
    "evaluate_regressor",
    "load_viewpoint_data",
    "load_viewpoint_regressor",
    "train_viewpoint_regressor",
]

FORMAT = "ganfactory.viewpoint"
FORMAT_VERSION = 1

DECODES = ("bins", "sincos")
"""How :meth:`ViewpointRegressor.predict` reads the azimuth: the bin classifier with its offset, or sin/cos."""

BUILTIN_REGRESSORS = {
    "cars": "A 64 px viewpoint regressor trained here from scratch on 4,000 cars renders (gan-train, all 17 "
            "cars) with their true cameras; its held-out error is in docs/multiview. The default.",
}
"""Name -> description of the regressors shipped inside the package (ganfactory/assets/viewpoint)."""

DEFAULT_REGRESSOR = "cars"


# ------------------------------------------------------------------------------------------ network

@dataclass(frozen=True)
class RegressorConfig:
    """The architecture (stored in config.json / model.json; the weights are rebuilt from it)."""

    resolution: int = 64
    """Input size; other sizes are resized to it by predict."""
    channels: tuple[int, ...] = (32, 64, 128, 256)
    """Width of each stage; every stage halves the resolution (conv 3x3 stride 2, then conv 3x3)."""
    hidden: int = 256
    """Width of the fully connected layer after the last stage."""
    azimuth_bins: int = 24
    """Azimuth classes of the bin head (24: 15 degrees each)."""
    elevation_scale_deg: float = 30.0
    """The elevation head predicts elevation / this (the renders span 0 to 30 degrees)."""

    def to_json(self) -> dict:
        return {**asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_json(cls, data: dict) -> RegressorConfig:
        return cls(**{**data, "channels": tuple(data["channels"])})


class _Stage(nn.Sequential):
    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True), nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


@dataclass
class ViewpointOutput:
    """The raw heads for a batch of N images (training reads these; users call predict)."""

    bin_logits: Tensor
    """[N, K] azimuth class scores."""
    bin_offsets: Tensor
    """[N, K] per bin, the azimuth's offset from the bin centre in bin widths (tanh, so in (-1, 1))."""
    sincos: Tensor
    """[N, 2] unnormalised (sin, cos) of the azimuth."""
    elevation: Tensor
    """[N] elevation / elevation_scale_deg."""


class ViewpointRegressor(nn.Module):
    """Images [N, 3, H, W] in [-1, 1] -> azimuth and elevation in degrees (see the module docstring)."""

    def __init__(self, config: RegressorConfig = RegressorConfig(), decode: str = "bins"):
        super().__init__()
        if decode not in DECODES:
            raise GanfactoryError(f"unknown decode {decode!r}; choose one of {', '.join(DECODES)}")
        self.config, self.decode = config, decode
        self.record: dict = {}
        """model.json of a loaded regressor (training settings, data, validation), empty for a new one."""
        stages, c_in = [], 3
        for c in config.channels:
            stages.append(_Stage(c_in, c))
            c_in = c
        self.trunk = nn.Sequential(*stages)
        side = config.resolution // 2 ** len(config.channels)
        # BatchNorm before the ReLU: without it most of these units died within 20 steps at lr 2e-3
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(c_in * side * side, config.hidden, bias=False),
                                nn.BatchNorm1d(config.hidden), nn.ReLU(inplace=True))
        k = config.azimuth_bins
        self.head = nn.Linear(config.hidden, 2 * k + 3)

    def forward(self, images: Tensor) -> ViewpointOutput:
        """``images`` [N, 3, R, R] in [-1, 1] at the config's resolution R."""
        r = self.config.resolution
        if images.ndim != 4 or images.shape[1:] != (3, r, r):
            raise ValueError(f"images must be [N, 3, {r}, {r}], got {list(images.shape)}")
        h = self.head(self.fc(self.trunk(images)))
        k = self.config.azimuth_bins
        return ViewpointOutput(bin_logits=h[:, :k], bin_offsets=torch.tanh(h[:, k:2 * k]),
                               sincos=h[:, 2 * k:2 * k + 2], elevation=h[:, 2 * k + 2])

    def azimuth_from(self, out: ViewpointOutput, decode: str | None = None) -> Tensor:
        """[N] azimuth in degrees, [0, 360), read by ``decode`` (default: the model's own)."""
        decode = decode or self.decode
        if decode == "sincos":
            return torch.rad2deg(torch.atan2(out.sincos[:, 0], out.sincos[:, 1])) % 360.0
        if decode != "bins":
            raise GanfactoryError(f"unknown decode {decode!r}; choose one of {', '.join(DECODES)}")
        width = 360.0 / self.config.azimuth_bins
        best = out.bin_logits.argmax(dim=1)
        offset = out.bin_offsets.gather(1, best[:, None])[:, 0]
        return ((best.to(offset.dtype) + 0.5 + offset) * width) % 360.0

    @torch.no_grad()
    def predict(self, images: Tensor, batch_size: int = 256) -> dict[str, Tensor]:
        """``images`` [N, 3, H, W] in [-1, 1] (resized to the config's resolution when H, W differ) ->
        ``{"azimuth_deg": [N], "elevation_deg": [N]}`` on the images' device. Leaves the module's mode as it
        was."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise GanfactoryError(f"images must be [N, 3, H, W] in [-1, 1], got {list(images.shape)}")
        was_training = self.training
        self.eval()
        try:
            r = self.config.resolution
            device = next(self.parameters()).device
            az, el = [], []
            for start in range(0, len(images), batch_size):
                x = images[start:start + batch_size].to(device=device, dtype=torch.float32)
                if x.shape[2:] != (r, r):
                    x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False, antialias=True)
                out = self(x)
                az.append(self.azimuth_from(out))
                el.append(out.elevation * self.config.elevation_scale_deg)
            empty = torch.zeros(0, device=device)
            return {"azimuth_deg": (torch.cat(az) if az else empty).to(images.device),
                    "elevation_deg": (torch.cat(el) if el else empty).to(images.device)}
        finally:
            self.train(was_training)


def angle_error_deg(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> np.ndarray:
    """Absolute circular difference of two azimuths in degrees, in [0, 180]."""
    d = np.abs((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) % 360.0)
    return np.minimum(d, 360.0 - d)


# ------------------------------------------------------------------------------------------ data

@dataclass
class ViewpointData:
    """Images with their true cameras, in memory (4,000 images at 64 px are 49 MB)."""

    images: Tensor
    """[N, 3, H, W] uint8."""
    azimuth_deg: Tensor
    """[N] float32 in [0, 360)."""
    elevation_deg: Tensor
    """[N] float32."""
    source: str = ""

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: Tensor) -> ViewpointData:
        return ViewpointData(self.images[index], self.azimuth_deg[index], self.elevation_deg[index], self.source)


def load_viewpoint_data(root: str | Path, limit: int | None = None) -> ViewpointData:
    """A LabeledDataset whose samples carry ``azimuth_deg`` and ``elevation_deg`` (the cars splits)."""
    from ganfactory.datasets.labeled import LabeledDataset

    ds = LabeledDataset(root)
    n = len(ds) if limit is None else min(int(limit), len(ds))
    images, az, el = [], [], []
    for i in tqdm(range(n), desc=f"read {Path(root).name}", unit="img", leave=False):
        meta = ds.meta(i)
        if "azimuth_deg" not in meta or "elevation_deg" not in meta:
            raise GanfactoryError(f"{root}: sample {meta.get('id')!r} has no azimuth_deg/elevation_deg; a viewpoint "
                                  "regressor trains on data with true cameras (the cars splits)")
        images.append(ds.image(i))
        az.append(float(meta["azimuth_deg"]) % 360.0)
        el.append(float(meta["elevation_deg"]))
    if not images:
        raise GanfactoryError(f"{root}: no samples")
    return ViewpointData(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(),
                         torch.tensor(az, dtype=torch.float32), torch.tensor(el, dtype=torch.float32), str(root))


def _to_input(images: Tensor) -> Tensor:
    """uint8 [N, 3, H, W] -> float [-1, 1]."""
    return images.float() / 127.5 - 1.0


# ------------------------------------------------------------------------------------------ training

@dataclass(frozen=True)
class TrainSettings:
    """How a regressor is trained (stored with it)."""

    iterations: int = 6000
    batch_size: int = 64
    learning_rate: float = 1e-3
    """AdamW, cosine decay to 0."""
    weight_decay: float = 1e-4
    sincos_weight: float = 1.0
    """Weight of the sin/cos head's L2 loss beside the bin head's cross-entropy and offset L1."""
    elevation_weight: float = 1.0
    flip: bool = True
    """Mirror images left-right with azimuth -> 360 - azimuth (cars are near left-right symmetric)."""
    shift_px: float = 2.0
    """Random translation up to this many pixels (at 64 px) and scale in [1 - scale, 1 + scale]."""
    scale: float = 0.05
    color: bool = False
    """Random channel order, brightness, contrast and saturation (for generators whose cars come in colours
    the rendered liveries do not have). Off by default: with all augmentations on, the bin head had not
    started to learn after 100 steps, while each alone learned within 30 (a short CPU budget)."""
    blur: float = 0.3
    """Probability of a Gaussian blur (sigma up to 1 px): generated images are softer than renders."""
    val_fraction: float = 0.05
    seed: int = 0
    threads: int = 1
    log_every: int = 100
    checkpoint_every: int = 500

    def to_json(self) -> dict:
        return asdict(self)


def augment(x: Tensor, azimuth: Tensor, settings: TrainSettings, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Augment a batch ``x`` [N, 3, H, W] in [-1, 1] with its azimuths [N] (degrees); all draws from ``gen``."""
    n, _, h, w = x.shape
    u = lambda *shape: torch.rand(*shape, generator=gen)  # noqa: E731
    azimuth = azimuth.clone()
    if settings.flip:
        flip = u(n) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        azimuth = torch.where(flip, (360.0 - azimuth) % 360.0, azimuth)
    if settings.shift_px > 0 or settings.scale > 0:
        s = 1.0 + (u(n) * 2 - 1) * settings.scale
        t = (u(n, 2) * 2 - 1) * (2 * settings.shift_px / w)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = 1 / s, 1 / s, t
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if settings.color:
        perm = torch.argsort(u(n, 3), dim=1)
        x = x.gather(1, perm[:, :, None, None].expand_as(x))
        gray = x.mean(dim=1, keepdim=True)
        sat = 0.5 + u(n, 1, 1, 1) * 1.0
        x = gray + (x - gray) * sat
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        contrast = 0.7 + u(n, 1, 1, 1) * 0.6
        x = (x - mean) * contrast + mean + (u(n, 1, 1, 1) * 2 - 1) * 0.2
    if settings.blur > 0:
        sigma = u(n) * 1.0
        blur = u(n) < settings.blur
        k = torch.arange(-2, 3, dtype=x.dtype)
        kern = torch.exp(-k[None] ** 2 / (2 * sigma[:, None].clamp_min(1e-3) ** 2))
        kern = kern / kern.sum(dim=1, keepdim=True)
        kern = torch.where(blur[:, None], kern, (k == 0).to(x.dtype)[None].expand_as(kern))
        # separable per-sample blur: group the batch into channels
        y = x.reshape(1, n * 3, h, w)
        kx = kern.repeat_interleave(3, dim=0)[:, None, None, :]
        y = F.conv2d(F.pad(y, (2, 2, 0, 0), mode="replicate"), kx, groups=n * 3)
        y = F.conv2d(F.pad(y, (0, 0, 2, 2), mode="replicate"), kx.transpose(2, 3), groups=n * 3)
        x = y.reshape(n, 3, h, w)
    return x.clamp(-1.5, 1.5), azimuth


def regressor_loss(model: ViewpointRegressor, out: ViewpointOutput, azimuth: Tensor, elevation: Tensor,
                   settings: TrainSettings) -> tuple[Tensor, dict[str, float]]:
    """Cross-entropy on the azimuth bin + L1 on the true bin's offset + L2 on (sin, cos) + smooth L1 on the
    elevation; returns the total and its parts."""
    k = model.config.azimuth_bins
    position = azimuth / (360.0 / k)                       # in bin widths, [0, k)
    true_bin = position.floor().long().clamp(0, k - 1)
    offset = position - true_bin - 0.5                     # [-0.5, 0.5)
    ce = F.cross_entropy(out.bin_logits, true_bin)
    off = (out.bin_offsets.gather(1, true_bin[:, None])[:, 0] - offset).abs().mean()
    rad = torch.deg2rad(azimuth)
    sincos = ((out.sincos - torch.stack([rad.sin(), rad.cos()], dim=1)) ** 2).sum(dim=1).mean()
    elev = F.smooth_l1_loss(out.elevation, elevation / model.config.elevation_scale_deg, beta=0.1)
    total = ce + off + settings.sincos_weight * sincos + settings.elevation_weight * elev
    return total, {"ce": float(ce.detach()), "offset": float(off.detach()), "sincos": float(sincos.detach()),
                   "elevation": float(elev.detach())}


@torch.no_grad()
def evaluate_regressor(model: ViewpointRegressor, data: ViewpointData, decode: str | None = None,
                       batch_size: int = 256) -> dict:
    """Azimuth and elevation errors of ``model`` on ``data`` (degrees): median, mean, share within 10/15/30,
    share of front/rear flips (error over 150), elevation median and mean absolute error."""
    original = model.decode
    model.decode = decode or original
    try:
        pred = model.predict(_to_input(data.images), batch_size=batch_size)
    finally:
        model.decode = original
    err = angle_error_deg(pred["azimuth_deg"].cpu().numpy(), data.azimuth_deg.numpy())
    el_err = np.abs(pred["elevation_deg"].cpu().numpy() - data.elevation_deg.numpy())
    return {"decode": decode or original, "n": len(data), "azimuth_median_deg": float(np.median(err)),
            "azimuth_mean_deg": float(err.mean()), "within_10": float((err <= 10).mean()),
            "within_15": float((err <= 15).mean()), "within_30": float((err <= 30).mean()),
            "flip_share": float((err > 150).mean()), "elevation_median_deg": float(np.median(el_err)),
            "elevation_mean_deg": float(el_err.mean())}


def train_viewpoint_regressor(data: ViewpointData, out: str | Path, config: RegressorConfig = RegressorConfig(),
                              settings: TrainSettings = TrainSettings(), provenance: dict | None = None,
                              device: torch.device | str = "cpu", progress: bool = True) -> ViewpointRegressor:
    """Train into run directory ``out``; resumes a killed run with the same settings and returns at once when
    ``out`` holds the finished model. The decode (bins or sin/cos) is chosen by the validation split's median
    azimuth error. Runs with ``settings.threads`` intra-op threads and restores the caller's setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return _train(data, Path(out), config, settings, provenance or {}, torch.device(device), progress)
    finally:
        torch.set_num_threads(threads)


def _train(data: ViewpointData, out: Path, config: RegressorConfig, settings: TrainSettings, provenance: dict,
           device: torch.device, progress: bool) -> ViewpointRegressor:
    if data.images.shape[2:] != (config.resolution, config.resolution):
        raise GanfactoryError(f"the data is {data.images.shape[3]}x{data.images.shape[2]} px; this regressor takes "
                              f"{config.resolution} px (set resolution)")
    g = torch.Generator().manual_seed(settings.seed + 7)
    order = torch.randperm(len(data), generator=g)
    n_val = max(1, round(len(data) * settings.val_fraction)) if settings.val_fraction > 0 else 0
    val, train = data.subset(order[:n_val].sort().values), data.subset(order[n_val:].sort().values)
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": config.to_json(),
              "settings": settings.to_json(), "data": data.source, "train_samples": len(train),
              "val_samples": len(val), "provenance": provenance}
    out.mkdir(parents=True, exist_ok=True)
    if (out / "model.json").is_file():
        done = json.loads((out / "model.json").read_text())
        if {k: done.get(k) for k in header} != header:
            raise GanfactoryError(f"{out} holds a regressor trained with other settings or data; pass another --out")
        return load_viewpoint_regressor(out, device)
    if (out / "config.json").is_file():
        if json.loads((out / "config.json").read_text()) != header:
            raise GanfactoryError(f"{out} holds a run with other settings or data; pass another --out or delete it")
    else:
        write_json(out / "config.json", header)

    torch.manual_seed(settings.seed)
    model = ViewpointRegressor(config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    gen = torch.Generator().manual_seed(settings.seed + 1)
    perm, pos, start = torch.randperm(len(train), generator=gen), 0, 0
    if (out / "checkpoint.pt").is_file():
        state = torch.load(out / "checkpoint.pt", weights_only=True, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        perm, pos, start = state["order"], int(state["position"]), int(state["iteration"])
        if (out / "log.jsonl").is_file():
            rows = [r for r in (out / "log.jsonl").read_text().splitlines() if r]
            write_atomic(out / "log.jsonl", "".join(r + "\n" for r in rows if json.loads(r)["iteration"] <= start))
    model.train()
    t0 = time.perf_counter()
    parts: list[dict[str, float]] = []
    bar = tqdm(range(start, settings.iterations), initial=start, total=settings.iterations, desc="viewpoint",
               unit="it", disable=not progress)
    with open(out / "log.jsonl", "a") as log:
        for it in bar:
            if pos + settings.batch_size > len(perm):
                perm, pos = torch.cat([perm[pos:], torch.randperm(len(train), generator=gen)]), 0
            idx, pos = perm[pos:pos + settings.batch_size], pos + settings.batch_size
            x, az = augment(_to_input(train.images[idx]), train.azimuth_deg[idx], settings, gen)
            lr = settings.learning_rate * 0.5 * (1 + math.cos(math.pi * it / settings.iterations))
            for group in opt.param_groups:
                group["lr"] = lr
            loss, part = regressor_loss(model, model(x.to(device)), az.to(device), train.elevation_deg[idx].to(device),
                                        settings)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            parts.append({"loss": float(loss.detach()), **part})
            done = it + 1
            if done % settings.log_every == 0 or done == settings.iterations:
                row = {"iteration": done, **{k: float(np.mean([p[k] for p in parts])) for k in parts[0]},
                       "lr": lr, "seconds": round(time.perf_counter() - t0, 2)}
                if len(val) and (done % (settings.log_every * 10) == 0 or done == settings.iterations):
                    row["val"] = {d: evaluate_regressor(model, val, d)["azimuth_median_deg"] for d in DECODES}
                    model.train()
                log.write(json.dumps(row) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{row['loss']:.3f}", **({"val_bins": f"{row['val']['bins']:.1f}"}
                                                              if "val" in row else {}))
                parts = []
            if done % settings.checkpoint_every == 0 and done < settings.iterations:
                buffer = io.BytesIO()
                torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                            "iteration": done, "order": perm, "position": pos}, buffer)
                write_atomic(out / "checkpoint.pt", buffer.getvalue())
    bar.close()
    model.eval()
    validation = {d: evaluate_regressor(model, val, d) for d in DECODES} if len(val) else {}
    decode = min(DECODES, key=lambda d: validation[d]["azimuth_median_deg"]) if validation else "bins"
    model.decode = decode
    from safetensors.torch import save_file

    with atomic_path(out / "model.safetensors") as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    write_json(out / "model.json", {**header, "decode": decode, "validation": validation,
                                    "seconds": round(time.perf_counter() - t0, 2)})
    (out / "checkpoint.pt").unlink(missing_ok=True)
    return model


# ------------------------------------------------------------------------------------------ loading

def builtin_regressor_path(name: str) -> Path:
    if name not in BUILTIN_REGRESSORS:
        raise GanfactoryError(f"no built-in viewpoint regressor {name!r}; built-in: {', '.join(BUILTIN_REGRESSORS)}")
    return Path(str(resources.files("ganfactory") / "assets" / "viewpoint" / name))


def load_viewpoint_regressor(name_or_path: str | Path = DEFAULT_REGRESSOR,
                             device: torch.device | str = "cpu") -> ViewpointRegressor:
    """A built-in regressor by name (``BUILTIN_REGRESSORS``) or a finished run directory, in eval mode on
    ``device``. Reads JSON and safetensors only."""
    from safetensors.torch import load_file

    name = str(name_or_path)
    path = builtin_regressor_path(name) if name in BUILTIN_REGRESSORS else Path(name_or_path).expanduser()
    meta = path / "model.json"
    if not meta.is_file():
        if (path / "config.json").is_file():
            raise GanfactoryError(f"{path}: training has not finished (no model.json); run it again to resume")
        hint = f" (built-in: {', '.join(BUILTIN_REGRESSORS)})" if "/" not in name else ""
        raise GanfactoryError(f"{path}: not a viewpoint regressor (no model.json){hint}")
    record = json.loads(meta.read_text())
    if record.get("format") != FORMAT or int(record.get("format_version", 99)) > FORMAT_VERSION:
        raise GanfactoryError(f"{meta}: not a ganfactory viewpoint regressor this version reads")
    model = ViewpointRegressor(RegressorConfig.from_json(record["config"]), record.get("decode", "bins"))
    try:
        model.load_state_dict(load_file(str(path / "model.safetensors")))
    except (RuntimeError, OSError) as e:
        raise GanfactoryError(f"{path}: weights do not match the recorded architecture ({str(e)[:200]})") from None
    model.record = record
    return model.to(device).eval()

