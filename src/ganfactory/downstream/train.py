"""Training, checkpoints and evaluation of the downstream networks.

A run directory holds::

    OUT/config.json          the TrainConfig, the model spec, the schema, the data it was given (written first)
    OUT/checkpoint.pt        resume state every ``checkpoint_every`` iterations: model, optimiser, iteration, the
                             generator's state (tensors and numbers only; loaded with weights_only=True)
    OUT/log.jsonl            one line per logged iteration: loss, learning rate, validation scores
    OUT/model.safetensors    the final weights
    OUT/model.json           format, spec, schema, resolution, config, training summary (written last: its
                             presence means "finished")

Why iterations, not epochs: the benchmark gives every arm the same budget (iterations x batch) whatever the
size of its training set, 16 images or 10,000. The final network is the last iteration's: choosing a
checkpoint on validation data would need labels that some arms' protocols do not have.

Randomness: initialisation comes from ``seed``, batches and augmentation from one torch.Generator whose state
is checkpointed, so a resumed run continues the uninterrupted run's batch sequence.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from ganfactory.atomic import atomic_path, write_atomic, write_json
from ganfactory.downstream.data import AugmentConfig, SegmentationData, augment_batch, flip_permutation, heatmap_targets
from ganfactory.downstream.models import ModelSpec, create_model, split_outputs
from ganfactory.errors import GanfactoryError
from ganfactory.formats import read_format_header, reading
from ganfactory.metrics import confusion_matrix, object_size, pck, segmentation_scores
from ganfactory.schema import Schema

__all__ = ["FORMAT", "FORMAT_VERSION", "Segmenter", "TrainConfig", "TrainResult", "evaluate", "load_segmenter",
           "train_network"]

FORMAT = "ganfactory.downstream"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class TrainConfig:
    """How to train a downstream network."""

    architecture: str = "unet"
    """unet (CPU, 64 px) or deeplabv3 (ResNet-50)."""
    widths: tuple[int, ...] = (16, 32, 64, 128)
    """UNet channel widths per level."""
    keypoints: bool = True
    """Also learn the schema's keypoints as heatmaps (when it names any)."""
    iterations: int = 2000
    batch_size: int = 16
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    keypoint_weight: float = 0.1
    """Weight of the keypoint loss (a cross-entropy over the H x W positions, about log(H W) = 8 at the start)."""
    keypoint_sigma: float = 1.5
    """Gaussian radius of the heatmap targets, in pixels."""
    augment: AugmentConfig | None = AugmentConfig()
    """None = no augmentation."""
    val_fraction: float = 0.0
    """Held out from the training data for validation when no validation set is given (0 = none)."""
    val_every: int = 500
    log_every: int = 50
    checkpoint_every: int = 250
    threads: int = 1
    """Intra-op threads while training. One by default: on a CPU shared with other work (a GAN training on the same
    two cores) two threads that wait on each other ran 12x slower than one here; and results depend on it (float
    sums), so it is part of the recorded settings."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.batch_size < 1:
            raise GanfactoryError(f"iterations and batch size must be positive, got {self.iterations} and "
                                  f"{self.batch_size}")
        if not 0 <= self.val_fraction < 1:
            raise GanfactoryError(f"the validation fraction must be in [0, 1), got {self.val_fraction}")
        if min(self.val_every, self.log_every, self.checkpoint_every, self.threads) < 1:
            raise GanfactoryError("val_every, log_every, checkpoint_every and threads must be positive")

    def to_json(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        d["augment"] = None if self.augment is None else self.augment.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["widths"] = tuple(d["widths"])
        d["augment"] = None if d.get("augment") is None else AugmentConfig.from_json(d["augment"])
        return cls(**d)


@dataclass(frozen=True)
class TrainResult:
    """A finished run."""

    out: Path
    iterations: int
    seconds: float
    """Wall time of the run that finished (a resumed run counts only its own part)."""
    final_loss: float
    validation: dict | None = None
    history: list = field(default_factory=list)


# ------------------------------------------------------------------------------------------ inference

class Segmenter:
    """A trained network for inference (kept in eval mode; it is never trained through this object)."""

    def __init__(self, model: nn.Module, spec: ModelSpec, schema: Schema, resolution: int, info: dict | None = None):
        self.model = model.eval()
        self.spec = spec
        self.schema = schema
        self.resolution = resolution
        self.info = info or {}

    @torch.no_grad()
    def predict(self, images: np.ndarray | Tensor, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray | None]:
        """Label images [N, H, W, 3] uint8: (labels [N, H, W] uint8 class ids, keypoints [N, K, 3] ``x, y, peak``
        in the input's pixels, ``peak`` the position's softmax probability; or None without keypoint heads).
        Inputs of another size than the network's are resized for it and the outputs brought back (labels by
        nearest neighbour)."""
        return predict_arrays(self.model, self.spec, images, self.resolution, batch_size)

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.schema.classes]


def _to_input(images: Tensor) -> Tensor:
    """[N, H, W, 3] uint8 -> [N, 3, H, W] float in [-1, 1]."""
    return images.permute(0, 3, 1, 2).float() / 127.5 - 1


def predict_arrays(model: nn.Module, spec: ModelSpec, images: np.ndarray | Tensor, resolution: int,
                   batch_size: int = 32) -> tuple[np.ndarray, np.ndarray | None]:
    """See ``Segmenter.predict``; ``model`` must already be in eval mode. Computes on the model's device."""
    from ganfactory.keypoints import refine_peaks

    images = torch.as_tensor(np.asarray(images))
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != torch.uint8:
        raise GanfactoryError(f"images must be [N, H, W, 3] uint8, got {list(images.shape)} {images.dtype}")
    h, w = images.shape[1:3]
    device = next(model.parameters()).device
    labels, kps = [], []
    for start in range(0, images.shape[0], batch_size):
        x = _to_input(images[start:start + batch_size].to(device))
        if (h, w) != (resolution, resolution):
            x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
        logits, heat = split_outputs(model(x), spec.num_classes)
        lab = logits.argmax(1, keepdim=True).float()
        if (h, w) != (resolution, resolution):
            lab = F.interpolate(lab, size=(h, w), mode="nearest")
        labels.append(lab[:, 0].to(torch.uint8).cpu())
        if spec.num_keypoints:
            prob = torch.softmax(heat.flatten(2), -1).reshape(heat.shape)
            px, py, peak = refine_peaks(prob)
            px = (px + 0.5) * (w / resolution) - 0.5
            py = (py + 0.5) * (h / resolution) - 0.5
            kps.append(torch.stack([px, py, peak], -1).cpu())
    return torch.cat(labels).numpy(), (torch.cat(kps).numpy() if kps else None)


# ------------------------------------------------------------------------------------------ evaluation

def evaluate(segmenter: Segmenter, data: SegmentationData, alpha: float = 0.1, batch_size: int = 32,
             keep: int = 0) -> dict:
    """Scores of ``segmenter`` on ``data`` (same schema): mIoU, pixel accuracy and per-class IoU from one
    dataset-level confusion matrix; PCK at ``alpha`` of the object's bounding-box size (visible true points
    only) when the network has keypoint heads and the data has keypoints. ``keep``: also return the first
    ``keep`` predictions (``"predictions": {"labels", "keypoints"}``) for figures."""
    if [c.name for c in data.schema.classes] != segmenter.class_names:
        raise GanfactoryError(f"the network's classes {segmenter.class_names} differ from the data's "
                              f"{[c.name for c in data.schema.classes]}; relabel the data first")
    labels, kps = segmenter.predict(data.images, batch_size)
    cm = confusion_matrix(labels, data.labels.numpy(), len(segmenter.schema.classes))
    out = {**segmentation_scores(cm, segmenter.class_names), "images": len(data)}
    truth = data.keypoints.numpy()
    if kps is not None and truth.shape[1] == kps.shape[1] and truth.shape[1] > 0:
        sizes = [object_size(lab) for lab in data.labels.numpy()]
        out["pck"] = pck(list(kps[..., :2]), list(truth), sizes, alpha)
        out["pck"]["alpha"] = alpha
    if keep:
        out["predictions"] = {"labels": labels[:keep], "keypoints": None if kps is None else kps[:keep]}
    return out


# ------------------------------------------------------------------------------------------ training

def _loss(model: nn.Module, spec: ModelSpec, x: Tensor, y: Tensor, kp: Tensor, config: TrainConfig) -> Tensor:
    logits, heat = split_outputs(model(x), spec.num_classes)
    loss = F.cross_entropy(logits, y)
    if spec.num_keypoints:
        loss = loss + config.keypoint_weight * keypoint_loss(heat, kp, config.keypoint_sigma)
    return loss


def keypoint_loss(heat: Tensor, keypoints: Tensor, sigma: float) -> Tensor:
    """Cross-entropy over positions: per visible keypoint, the heatmap [H, W] is a softmax over pixels and the
    target the Gaussian around the point, normalised to sum 1. Why not per-pixel BCE or MSE: nearly every pixel is
    a negative, and those losses teach a network to predict zero everywhere before it learns where the points are;
    a softmax over positions always asks "where", and hidden points simply do not contribute."""
    n, k, h, w = heat.shape
    target, visible = heatmap_targets(keypoints, h, w, sigma)
    if not visible.any():
        return heat.sum() * 0.0
    target = target.reshape(n, k, -1)[visible]
    logp = torch.log_softmax(heat.reshape(n, k, -1)[visible], -1)
    return -(target / target.sum(-1, keepdim=True) * logp).sum(-1).mean()


def _validate(model: nn.Module, spec: ModelSpec, data: SegmentationData, resolution: int) -> dict:
    model.eval()
    try:
        seg = Segmenter(model, spec, data.schema, resolution)
        scores = evaluate(seg, data)
    finally:
        model.train()
    out = {"miou": scores["miou"], "pixel_accuracy": scores["pixel_accuracy"]}
    if "pck" in scores:
        out["pck"] = scores["pck"]["pck"]
    return out


def train_network(data: SegmentationData, out: str | Path, config: TrainConfig = TrainConfig(),
                  val: SegmentationData | None = None, provenance: dict | None = None,
                  progress: bool = True, device: torch.device | str = "cpu") -> TrainResult:
    """Train a network on ``data`` into run directory ``out`` (see the module docstring); resumes a killed run
    with the same settings, and returns at once when ``out`` already holds the finished model. Runs with
    ``config.threads`` intra-op threads and restores the caller's setting. The network computes on ``device``;
    batches are drawn and augmented on the CPU (one random stream whatever the device), so a run resumes on
    another device."""
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _train(data, Path(out), config, val, provenance, progress, torch.device(device))
    finally:
        torch.set_num_threads(threads)


def _train(data: SegmentationData, out: Path, config: TrainConfig, val: SegmentationData | None,
           provenance: dict | None, progress: bool, device: torch.device) -> TrainResult:
    resolution = int(data.images.shape[1])
    spec = ModelSpec(config.architecture, len(data.schema.classes),
                     data.keypoints.shape[1] if config.keypoints else 0, config.widths)
    if max(c.id for c in data.schema.classes) != len(data.schema.classes) - 1:
        raise GanfactoryError("class ids must be 0..C-1 for a network's outputs; relabel the data first")
    if val is None and config.val_fraction > 0 and len(data) > 1:
        g = torch.Generator().manual_seed(config.seed + 7)
        order = torch.randperm(len(data), generator=g)
        n_val = max(1, round(len(data) * config.val_fraction))
        val, data = data.subset(order[:n_val].sort().values), data.subset(order[n_val:].sort().values)
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "spec": spec.to_json(),
              "schema": data.schema.to_json(), "resolution": resolution, "config": config.to_json(),
              "train_samples": len(data), "val_samples": 0 if val is None else len(val),
              "provenance": provenance or {}}
    out.mkdir(parents=True, exist_ok=True)
    if (out / "model.json").is_file():
        done = json.loads((out / "model.json").read_text())
        if {k: done.get(k) for k in header} != header:
            raise GanfactoryError(f"{out} holds a network trained with other settings or data; pass another --out")
        return TrainResult(out, done["iterations"], 0.0, done["final_loss"], done.get("validation"))
    if (out / "config.json").is_file():
        if json.loads((out / "config.json").read_text()) != header:
            raise GanfactoryError(f"{out} holds a run with other settings or data; pass another --out or delete it")
    else:
        write_json(out / "config.json", header)

    with torch.random.fork_rng(devices=[]):     # seeded initial weights, the caller's random state left alone
        torch.manual_seed(config.seed)
        model = create_model(spec)
    model = model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed + 1)
    order, pos = torch.randperm(len(data), generator=gen), 0
    start = 0
    if (out / "checkpoint.pt").is_file():
        state = torch.load(out / "checkpoint.pt", weights_only=True, map_location="cpu")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        order, pos = state["order"], int(state["position"])
        start = int(state["iteration"])
        if (out / "log.jsonl").is_file():           # drop rows a killed run logged after its last checkpoint
            rows = [r for r in (out / "log.jsonl").read_text().splitlines() if r]
            kept = "".join(r + "\n" for r in rows if json.loads(r)["iteration"] <= start)
            write_atomic(out / "log.jsonl", kept.encode())
    flip_perm = flip_permutation(data.schema.keypoints) if spec.num_keypoints else []
    model.train()
    t0 = time.perf_counter()
    history, losses, validation = [], [], None
    bar = tqdm(range(start, config.iterations), initial=start, total=config.iterations, desc="train", unit="it",
               disable=not progress)
    log = open(out / "log.jsonl", "a")
    try:
        for it in bar:
            if pos + config.batch_size > len(order):     # epochs over a permutation; short data is cycled
                order, pos = torch.cat([order[pos:], torch.randperm(len(data), generator=gen)]), 0
                while len(order) < config.batch_size:
                    order = torch.cat([order, torch.randperm(len(data), generator=gen)])
            idx, pos = order[pos:pos + config.batch_size], pos + config.batch_size
            x, y, kp = augment_batch(_to_input(data.images[idx]), data.labels[idx].long(), data.keypoints[idx],
                                     config.augment, gen, flip_perm)
            x, y, kp = x.to(device), y.to(device), kp.to(device)
            for group in opt.param_groups:
                group["lr"] = _learning_rate(config, it)
            loss = _loss(model, spec, x, y, kp, config)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            done = it + 1
            if done % config.log_every == 0 or done == config.iterations:
                row = {"iteration": done, "loss": float(np.mean(losses)), "lr": _learning_rate(config, it),
                       "seconds": round(time.perf_counter() - t0, 2)}
                if val is not None and (done % config.val_every == 0 or done == config.iterations):
                    validation = _validate(model, spec, val, resolution)
                    row["val"] = validation
                history.append(row)
                log.write(json.dumps(row) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{row['loss']:.3f}", **({"val_miou": f"{validation['miou']:.3f}"}
                                                              if "val" in row else {}))
                losses = []
            if done % config.checkpoint_every == 0 and done < config.iterations:
                buffer = _state_bytes(model, opt, gen, done, order, pos)
                write_atomic(out / "checkpoint.pt", buffer)
    finally:
        log.close()
        bar.close()
    from safetensors.torch import save_file

    with atomic_path(out / "model.safetensors") as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    final_loss = history[-1]["loss"] if history else float("nan")
    seconds = time.perf_counter() - t0
    record = {**header, "iterations": config.iterations, "final_loss": final_loss, "validation": validation,
              "seconds": round(seconds, 2)}
    write_json(out / "model.json", record)
    (out / "checkpoint.pt").unlink(missing_ok=True)
    return TrainResult(out, config.iterations, seconds, final_loss, validation, history)


def _learning_rate(config: TrainConfig, iteration: int) -> float:
    """Cosine decay from ``learning_rate`` to 0 over the run (a function of the iteration alone, so a resumed
    run needs no scheduler state)."""
    return config.learning_rate * 0.5 * (1 + math.cos(math.pi * iteration / config.iterations))


def _state_bytes(model: nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator, iteration: int, order: Tensor,
                 position: int) -> bytes:
    """Everything a resumed run needs to continue the same trajectory: weights, optimiser moments, the batch
    generator, and where the run is in its current permutation of the data."""
    import io

    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                "iteration": iteration, "order": order, "position": position}, buffer)
    return buffer.getvalue()


def load_segmenter(path: str | Path, device: torch.device | str = "cpu") -> Segmenter:
    """A finished run directory (``model.json`` + ``model.safetensors``) as a Segmenter on ``device``."""

    path = Path(path)
    if not (path / "model.json").is_file() and _is_training_run(path):
        raise GanfactoryError(f"{path}: no model.json, so not a trained downstream network (training has not "
                              "finished: run it again to resume)")
    record = read_format_header(path / "model.json", FORMAT, FORMAT_VERSION, GanfactoryError,
                                "so not a trained downstream network")
    broken = f"{path} (a broken downstream network: train it again)"
    with reading(broken, GanfactoryError, also=(RuntimeError, IndexError)):
        return _build_segmenter(path, record, device)


def _is_training_run(path: Path) -> bool:
    """Whether ``path`` holds the config.json of a downstream training run (not, say, a GAN checkpoint's)."""
    try:
        header = json.loads((path / "config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(header, dict) and header.get("format") == FORMAT


def _build_segmenter(path: Path, record: dict, device) -> Segmenter:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    spec = ModelSpec.from_json(record["spec"])
    model = create_model(spec)              # every weight and buffer comes from the file (strict load)
    with reading(path / "model.safetensors", GanfactoryError, also=(SafetensorError,)):
        weights = load_file(str(path / "model.safetensors"))
    model.load_state_dict(weights)
    model = model.to(device)
    resolution = record["resolution"]
    if isinstance(resolution, bool) or not isinstance(resolution, int) or not 1 <= resolution <= 1 << 14:
        raise GanfactoryError(f"{path / 'model.json'}: resolution must be a positive pixel count, got "
                              f"{json.dumps(resolution)[:40]}")
    return Segmenter(model, spec, Schema.from_json(record["schema"]), resolution, record)
