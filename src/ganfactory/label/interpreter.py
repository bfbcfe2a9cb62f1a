"""The style interpreter: an ensemble of per-pixel classifiers (and keypoint heatmap heads) on generator
features, trained from a few annotated generated images, applied to any number of new ones.

Architecture and recipe are DatasetGAN's (Linear(D,128)-ReLU-BN-Linear(128,32)-ReLU-BN-Linear(32,C), widths
256/128 from 32 classes, init N(0, 0.02), Adam 1e-3, an ensemble of 10, label = per-pixel majority vote).
What differs is memory: training gathers features only at sampled pixels, one annotated image at a time
(:func:`ganfactory.label.features.gather_pixels`), and prediction runs each first layer at the layers'
native resolutions (:func:`ganfactory.label.features.factorised_first_layer`). No tensor of every pixel's
D features is ever built. Early stopping watches the accuracy on held-out pixels of the annotated images.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from tqdm import tqdm

from ganfactory.annotate.store import AnnotationSet, Latent, synthesize_latents
from ganfactory.atomic import atomic_path, write_json
from ganfactory.datasets.labeled import Schema
from ganfactory.errors import GanfactoryError
from ganfactory.label.features import (
    FeatureTaps,
    ResolvedTaps,
    compiled_upsample_sum_relu,
    factorised_first_layer_nhwc,
    gather_pixels,
    project_by_size,
)
from ganfactory.label.uncertainty import image_score

__all__ = ["FORMAT", "Interpreter", "InterpreterConfig", "PixelMLP", "PixelSet", "Prediction", "TrainReport",
           "TrainingImage", "collect_pixels", "fit_pixel_model", "load_interpreter", "pixel_metrics", "refine_peaks",
           "sample_positions", "train_interpreter", "training_images"]

FORMAT = "ganfactory.interpreter"
FORMAT_VERSION = 1


# ------------------------------------------------------------------------------------------ settings

@dataclass(frozen=True)
class InterpreterConfig:
    """How to train an interpreter (defaults: DatasetGAN's recipe on sampled pixels)."""

    taps: FeatureTaps = FeatureTaps()
    num_models: int = 10
    """Ensemble size (DatasetGAN: 10)."""
    hidden: tuple[int, int] | None = None
    """Hidden widths; None = (128, 32) below 32 classes, (256, 128) from 32 (DatasetGAN)."""
    batch_size: int = 64
    """Pixels per optimiser step (DatasetGAN: 64)."""
    learning_rate: float = 1e-3
    max_epochs: int = 100
    """Passes over the sampled training pixels."""
    patience: int = 3
    """Stop after this many epochs without a better held-out pixel accuracy (the best epoch is kept)."""
    pixels_per_image: int | None = 8192
    """Training pixels sampled per annotated image; None = every pixel (DatasetGAN; memory grows with it)."""
    holdout_pixels_per_image: int = 1024
    """Pixels per image held out for early stopping (disjoint from the training pixels); at most a fifth of the
    image's pixels, so that small label maps keep most pixels for training."""
    class_balanced: bool = False
    """Sample about equally many pixels of every class present in an image (helps small parts)."""
    keypoint_sigma: float = 2.0
    """Gaussian heatmap radius, in label pixels, of the keypoint heads' targets."""
    keypoint_threshold: float = 0.3
    """A predicted keypoint is visible when its heatmap peak (sigmoid) reaches this."""
    seed: int = 0

    def to_json(self) -> dict:
        d = asdict(self)
        d["taps"] = {"layers": None if self.taps.layers is None else list(self.taps.layers),
                     "label_resolution": self.taps.label_resolution}
        d["hidden"] = None if self.hidden is None else list(self.hidden)
        return d

    @classmethod
    def from_json(cls, d: dict) -> InterpreterConfig:
        d = dict(d)
        taps = d.pop("taps", {}) or {}
        d["taps"] = FeatureTaps(None if taps.get("layers") is None else tuple(taps["layers"]),
                                taps.get("label_resolution"))
        d["hidden"] = None if d.get("hidden") is None else tuple(d["hidden"])
        return cls(**d)


@dataclass(frozen=True, eq=False)
class TrainingImage:
    """One annotated image: its latent, its label map and/or keypoints (at the image's resolution)."""

    latent: Latent
    label: np.ndarray | None
    """[H, W] uint8 class ids, or None (keypoints only)."""
    keypoints: Sequence[Sequence[float | None]] | None = None
    """[K, 3] ``[x, y, visible]`` pixels (centres at integers), or None."""
    image: np.ndarray | None = None
    """[H, W, 3] uint8, the image that was annotated; when given, training checks that the latent regenerates it
    (labels of an image the features do not describe would teach the interpreter nonsense)."""


def training_images(store: AnnotationSet, G) -> list[TrainingImage]:
    """The annotated items of an AnnotationSet, in id order."""
    items = [store.item(i, G) for i in store.annotated_ids()]
    if not items:
        raise GanfactoryError(f"{store.root} has no item with status 'annotated'; annotate some first")
    return [TrainingImage(it.latent, it.label, it.keypoints, it.image) for it in items]


# ------------------------------------------------------------------------------------------ the model

class PixelMLP(nn.Module):
    """DatasetGAN's pixel classifier: x [P, D] -> logits [P, C]. ``head`` is everything after the first layer,
    so that the first layer can run factorised over feature maps (``Interpreter.predict_features``)."""

    def __init__(self, in_features: int, out_features: int, hidden: tuple[int, int]):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden[0])
        self.bn1 = nn.BatchNorm1d(hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.bn2 = nn.BatchNorm1d(hidden[1])
        self.fc3 = nn.Linear(hidden[1], out_features)

    def reset(self, generator: torch.Generator) -> None:
        """DatasetGAN's init: Linear weights N(0, 0.02), biases 0; BatchNorm at identity."""
        for fc in (self.fc1, self.fc2, self.fc3):
            nn.init.normal_(fc.weight, 0.0, 0.02, generator=generator)
            nn.init.zeros_(fc.bias)
        for bn in (self.bn1, self.bn2):
            bn.reset_parameters()
            bn.reset_running_stats()

    def head(self, h: Tensor) -> Tensor:
        """[P, hidden0] first-layer outputs (before the ReLU) -> [P, C] logits."""
        h = self.bn1(torch.relu(h))
        return self.fc3(self.bn2(torch.relu(self.fc2(h))))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.fc1(x))


def _hidden(config: InterpreterConfig, num_classes: int) -> tuple[int, int]:
    return config.hidden or ((128, 32) if num_classes < 32 else (256, 128))


# ------------------------------------------------------------------------------------------ pixels

def sample_positions(label: Tensor, count: int | None, exclude: Tensor | None, class_balanced: bool,
                     generator: torch.Generator) -> Tensor:
    """Flat pixel indices [P] of a [H, W] label map: ``count`` of them (None = all), none of ``exclude``.

    With ``class_balanced`` every class present gets an equal share (a class with fewer pixels gives all
    of them; the rest is spread over the others). Deterministic for a given generator state.
    """
    flat = label.reshape(-1)
    allowed = torch.ones(flat.numel(), dtype=torch.bool)
    if exclude is not None:
        allowed[exclude] = False
    pool = allowed.nonzero().squeeze(1)
    if count is None or count >= pool.numel():
        return pool
    if not class_balanced:
        return pool[torch.randperm(pool.numel(), generator=generator)[:count]].sort().values
    classes = flat[pool].unique()
    groups = [pool[flat[pool] == c] for c in classes.tolist()]
    groups.sort(key=len)
    chosen, left = [], count
    for k, g in enumerate(groups):
        share = left // (len(groups) - k)
        take = g[torch.randperm(g.numel(), generator=generator)[:share]]
        chosen.append(take)
        left -= take.numel()
    return torch.cat(chosen).sort().values


def _gaussian_targets(y: Tensor, x: Tensor, keypoints: Tensor, sigma: float) -> Tensor:
    """[P, K] heatmap targets exp(-d^2 / 2 sigma^2) at pixels (y, x) [P] for keypoints [K, 2] (x, y; NaN =
    unavailable, target 0)."""
    dx = x[:, None].float() - keypoints[None, :, 0]
    dy = y[:, None].float() - keypoints[None, :, 1]
    t = torch.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma))
    return torch.nan_to_num(t, nan=0.0)


def _label_at(label: np.ndarray, size: int) -> Tensor:
    if label.shape != (size, size):
        label = np.asarray(Image.fromarray(label, "L").resize((size, size), Image.NEAREST))
    return torch.from_numpy(np.array(label, dtype=np.int64))


def _keypoints_at(keypoints, image_size: int, size: int) -> Tensor:
    s = size / image_size
    rows = [[math.nan, math.nan] if p[0] is None else [(p[0] + 0.5) * s - 0.5, (p[1] + 0.5) * s - 0.5]
            for p in keypoints]
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 2)


# ------------------------------------------------------------------------------------------ training

@dataclass(frozen=True)
class TrainReport:
    """What a training run did."""

    heldout_accuracy: tuple[float, ...]
    """Best held-out pixel accuracy of each ensemble member."""
    epochs: tuple[int, ...]
    train_pixels: int
    heldout_pixels: int
    seconds: float
    keypoint_heldout_loss: float | None = None


def fit_pixel_model(model: PixelMLP, x: Tensor, y: Tensor, x_val: Tensor, y_val: Tensor, config: InterpreterConfig,
                    generator: torch.Generator, loss: str = "ce",
                    on_epoch: Callable[[int, float], None] | None = None) -> tuple[float, int]:
    """Train ``model`` on pixel rows x [P, D] with targets y ([P] class indices for loss 'ce', [P, K] heatmap
    values for 'bce'); early stopping on (x_val, y_val). Returns (best held-out score, epochs run); the model
    ends in eval mode with its best weights. Score: accuracy for 'ce', minus the loss for 'bce'.
    """
    opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    crit = nn.CrossEntropyLoss() if loss == "ce" else nn.BCEWithLogitsLoss()
    best, best_state, stale, epoch = -math.inf, None, 0, 0
    bs = config.batch_size
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        order = torch.randperm(x.shape[0], generator=generator)
        for start in range(0, x.shape[0] - (1 if x.shape[0] % bs == 1 else 0), bs):
            idx = order[start:start + bs]
            opt.zero_grad(set_to_none=True)
            crit(model(x[idx]), y[idx]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            out = torch.cat([model(x_val[i:i + 65536]) for i in range(0, x_val.shape[0], 65536)])
            score = (out.argmax(1) == y_val).float().mean().item() if loss == "ce" else -crit(out, y_val).item()
        if on_epoch is not None:
            on_epoch(epoch, score)
        if score > best + 1e-6:
            best, stale = score, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= config.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return best, epoch


@dataclass(frozen=True, eq=False)
class PixelSet:
    """Gathered training data: per-pixel feature rows and targets (what the pixel models train on)."""

    taps: ResolvedTaps
    x: Tensor
    """[P, D] training pixels' features."""
    y: Tensor
    """[P] class indices (positions in the schema's class list)."""
    x_val: Tensor
    """[Q, D] held-out pixels (early stopping)."""
    y_val: Tensor
    keypoints: tuple[Tensor, Tensor, Tensor, Tensor] | None
    """(x [P', D], heatmap targets [P', K], x_val, targets_val) for the keypoint heads, or None."""


def collect_pixels(G, images: Sequence[TrainingImage], schema: Schema, config: InterpreterConfig,
                   progress: bool = False) -> PixelSet:
    """Sample pixels of every annotated image and gather their features.

    Two passes so that memory is the gathered rows and one image's native maps, nothing more: first every
    image's positions are drawn (from the labels alone), then the row tables are allocated once and each image
    is synthesized and gathered into its slice. Held-out pixels are disjoint from the training pixels of the
    same image.
    """
    taps = config.taps.resolve(G)
    size = taps.label_resolution
    image_size = G.img_resolution
    class_ids = list(schema.class_ids)
    index_of = torch.full((256,), -1, dtype=torch.long)
    index_of[class_ids] = torch.arange(len(class_ids))
    want_kp = len(schema.keypoints) > 0 and any(im.keypoints for im in images)
    if not any(im.label is not None for im in images):
        raise GanfactoryError("no annotated image has a label map; the interpreter needs labels to train")
    gen = torch.Generator().manual_seed(config.seed)
    blank = torch.zeros(size, size, dtype=torch.long)
    plans = []                       # per image: [(table, positions, targets)]
    for im in images:
        plan = []
        if im.label is not None:
            if im.label.shape != (image_size, image_size):
                raise GanfactoryError(f"a label map is {im.label.shape[1]}x{im.label.shape[0]}, the generator's "
                                      f"images are {image_size}x{image_size}; annotate at the image's size")
            label = index_of[_label_at(im.label, size)]
            if (label < 0).any():
                raise GanfactoryError("a label map holds ids that are not classes of the schema")
            val = sample_positions(label, _holdout(config, size), None, False, gen)
            tr = sample_positions(label, config.pixels_per_image, val, config.class_balanced, gen)
            plan += [("train", tr, label.reshape(-1)[tr]), ("held", val, label.reshape(-1)[val])]
        if want_kp and im.keypoints:
            kps = _keypoints_at(im.keypoints, image_size, size)
            near = _near_keypoints(kps, size, 3 * config.keypoint_sigma)
            val = sample_positions(blank, _holdout(config, size), None, False, gen)
            rand = sample_positions(blank, config.pixels_per_image, val, False, gen)
            tr = torch.unique(torch.cat([rand, near[~torch.isin(near, val)]]))
            for name, where in (("kp_train", tr), ("kp_held", val)):
                plan.append((name, where, _gaussian_targets(where // size, where % size, kps, config.keypoint_sigma)))
        plans.append(plan)
    counts = {name: sum(len(w) for plan in plans for n, w, _ in plan if n == name)
              for name in ("train", "held", "kp_train", "kp_held")}
    if counts["train"] == 0 or counts["held"] == 0:
        raise GanfactoryError("no training or held-out pixels were sampled; raise pixels_per_image / "
                              "holdout_pixels_per_image")
    tables = {name: torch.empty(n, taps.dim) for name, n in counts.items()}
    filled = dict.fromkeys(counts, 0)
    targets: dict[str, list] = {name: [] for name in counts}
    for im, plan in tqdm(list(zip(images, plans, strict=True)), desc="features", unit="img", disable=not progress):
        if not plan:
            continue
        img, feats = synthesize_latents(G, [im.latent], return_features=True)
        if im.image is not None:
            from ganfactory.gan.sampling import to_uint8

            regenerated = to_uint8(img)[0]
            diff = (int(np.abs(regenerated.astype(int) - im.image.astype(int)).max())
                    if regenerated.shape == im.image.shape else 255)
            if diff > 1:
                raise GanfactoryError(f"an annotated image does not regenerate from its latent (differs by {diff} "
                                      "levels): use the store's generator, and store 'random' noise with the latent")
        for name, where, target in plan:
            zero = torch.zeros(where.numel(), dtype=torch.long)
            start = filled[name]
            tables[name][start:start + len(where)] = gather_pixels(feats, taps.layers, size, zero, where // size,
                                                                   where % size)
            filled[name] += len(where)
            targets[name].append(target)
        del feats
    ys = {name: torch.cat(t) if t else torch.empty(0) for name, t in targets.items()}
    kp = (tables["kp_train"], ys["kp_train"], tables["kp_held"], ys["kp_held"]) if want_kp else None
    return PixelSet(taps, tables["train"], ys["train"], tables["held"], ys["held"], kp)


def train_interpreter(G, images: Sequence[TrainingImage], schema: Schema,
                      config: InterpreterConfig = InterpreterConfig(), progress: bool = True) -> tuple[
                          Interpreter, TrainReport]:
    """Train an ensemble (and keypoint heads when the schema names keypoints) from annotated images.

    Memory: one image's native feature maps plus the gathered rows of the sampled pixels
    (``pixels_per_image * len(images) * D`` floats), never the dense per-pixel table.
    """
    t0 = time.perf_counter()
    pixels = collect_pixels(G, images, schema, config, progress)
    taps, x, y, xv, yv = pixels.taps, pixels.x, pixels.y, pixels.x_val, pixels.y_val
    class_ids = list(schema.class_ids)
    hidden = _hidden(config, len(class_ids))
    models, accs, epochs = [], [], []
    for m in tqdm(range(config.num_models), desc="ensemble", unit="model", disable=not progress):
        mgen = torch.Generator().manual_seed(config.seed * 1000 + m + 1)
        model = PixelMLP(taps.dim, len(class_ids), hidden)
        model.reset(mgen)
        acc, ep = fit_pixel_model(model, x, y, xv, yv, config, mgen)
        models.append(model)
        accs.append(acc)
        epochs.append(ep)
    kp_model, kp_loss = None, None
    if pixels.keypoints is not None:
        kx, ky, kxv, kyv = pixels.keypoints
        kgen = torch.Generator().manual_seed(config.seed * 1000 + 999)
        kp_model = PixelMLP(taps.dim, len(schema.keypoints), hidden)
        kp_model.reset(kgen)
        score, _ = fit_pixel_model(kp_model, kx, ky, kxv, kyv, config, kgen, loss="bce")
        kp_loss = -score
    interp = Interpreter(taps, schema, models, kp_model, config)
    report = TrainReport(tuple(accs), tuple(epochs), int(x.shape[0]), int(xv.shape[0]), time.perf_counter() - t0,
                         kp_loss)
    return interp, report


def _holdout(config: InterpreterConfig, size: int) -> int:
    return max(1, min(config.holdout_pixels_per_image, size * size // 5))


def _near_keypoints(kps: Tensor, size: int, radius: float) -> Tensor:
    """Flat indices of label pixels within ``radius`` of any available keypoint (positives for the heads)."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    mask = torch.zeros(size, size, dtype=torch.bool)
    for kx, ky in kps.tolist():
        if not math.isnan(kx):
            mask |= (xx - kx) ** 2 + (yy - ky) ** 2 <= radius * radius
    return mask.reshape(-1).nonzero().squeeze(1)


# ------------------------------------------------------------------------------------------ prediction

@dataclass(frozen=True, eq=False)
class Prediction:
    """The interpreter's output for N images at the label resolution S."""

    labels: np.ndarray
    """[N, S, S] uint8 class ids (majority vote of the ensemble; ties go to the lower class)."""
    pixel_uncertainty: Tensor
    """[N, S, S] Jensen-Shannon divergence across the ensemble (0 for a single model)."""
    score: Tensor
    """[N] per-image uncertainty: mean of the top 10% pixels."""
    keypoints: np.ndarray | None
    """[N, K, 3] ``(x, y, visible)`` in label pixels (centres at integers), or None without keypoint heads."""


def pixel_metrics(predicted: np.ndarray, truth: np.ndarray, class_ids: Sequence[int]) -> dict:
    """Pixel accuracy and mean IoU (over classes present in the prediction or the truth, background included, as
    DatasetGAN reports) of label maps [N, H, W] uint8 against the truth of the same shape."""
    if predicted.shape != truth.shape:
        raise GanfactoryError(f"predicted labels are {predicted.shape}, the truth is {truth.shape}")
    ious = {}
    for c in class_ids:
        p, t = predicted == c, truth == c
        union = np.logical_or(p, t).sum()
        if union:
            ious[int(c)] = float(np.logical_and(p, t).sum() / union)
    return {"pixel_accuracy": float((predicted == truth).mean()),
            "mean_iou": float(np.mean(list(ious.values()))) if ious else float("nan"), "iou": ious}


def refine_peaks(heatmaps: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Argmax of each heatmap with sub-pixel refinement: a parabola through the peak and its two neighbours,
    per axis (offset clamped to +-0.5). heatmaps [N, K, H, W] -> (x [N, K], y [N, K], peak value [N, K])."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    peak, idx = flat.max(-1)
    py, px = idx // w, idx % w

    def offset(line: Tensor, i: Tensor, length: int) -> Tensor:
        left = line.gather(-1, (i - 1).clamp_min(0)[..., None])[..., 0]
        right = line.gather(-1, (i + 1).clamp_max(length - 1)[..., None])[..., 0]
        centre = line.gather(-1, i[..., None])[..., 0]
        denom = left - 2 * centre + right
        off = torch.where(denom < 0, 0.5 * (left - right) / denom.clamp_max(-1e-12), torch.zeros_like(denom))
        inside = (i > 0) & (i < length - 1)
        return torch.where(inside, off.clamp(-0.5, 0.5), torch.zeros_like(off))

    hm = heatmaps
    rows = hm.gather(2, py[..., None, None].expand(n, k, 1, w))[:, :, 0]        # [N, K, W]
    cols = hm.gather(3, px[..., None, None].expand(n, k, h, 1))[..., 0]         # [N, K, H]
    x = px.float() + offset(rows, px, w)
    y = py.float() + offset(cols, py, h)
    return x, y, peak


PREDICT_BUDGET = 1 << 28
"""Bytes of first-layer activations (one image, a chunk of models) that prediction holds at once."""


def _folded(model: PixelMLP) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(W2, b2, W3, b3) of an eval-mode PixelMLP with each BatchNorm folded into the Linear layer after it:
    fc(bn(a)) = (W * s) a + (W t + b), s = gamma / sqrt(var + eps), t = beta - mean * s."""
    def fold(bn: nn.BatchNorm1d, fc: nn.Linear) -> tuple[Tensor, Tensor]:
        s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        t = bn.bias - bn.running_mean * s
        return fc.weight * s, fc.bias + fc.weight @ t

    w2, b2 = fold(model.bn1, model.fc2)
    w3, b3 = fold(model.bn2, model.fc3)
    return w2, b2, w3, b3


class Interpreter:
    """A trained ensemble over a generator's feature taps (see the module docstring)."""

    def __init__(self, taps: ResolvedTaps, schema: Schema, classifiers: list[PixelMLP],
                 keypoint_head: PixelMLP | None = None, config: InterpreterConfig = InterpreterConfig(),
                 compile: bool = False):
        """``compile``: run the resize-and-sum of the first layer through ``torch.compile`` (one fused pass;
        equal to the eager path to float rounding; the first call per shape compiles)."""
        self.compile = compile
        self.taps = taps
        self.schema = schema
        self.classifiers = classifiers
        self.keypoint_head = keypoint_head
        self.config = config
        for m in self.modules():
            m.eval()
        self._ids = torch.tensor(list(schema.class_ids), dtype=torch.uint8)

    def modules(self) -> list[PixelMLP]:
        return self.classifiers + ([self.keypoint_head] if self.keypoint_head is not None else [])

    @torch.no_grad()
    def predict_features(self, features: dict[str, Tensor]) -> Prediction:
        """Label images from their feature maps (per layer [N, C_l, h_l, w_l]).

        Per image, the first layers of a chunk of models run together, factorised and channels-last
        (:func:`ganfactory.label.features.factorised_first_layer_nhwc`); BatchNorm is folded into the next
        Linear layer. Memory: one image's [S, S, models_per_chunk * hidden0] at a time (``PREDICT_BUDGET``).
        """
        size = self.taps.label_resolution
        n = next(iter(features.values())).shape[0]
        c = len(self.schema.classes)
        e = len(self.classifiers)
        labels, js_maps, kp_rows = [], [], []
        hidden0 = self.classifiers[0].fc1.out_features
        per_chunk = max(1, PREDICT_BUDGET // (size * size * hidden0 * 4))
        for i in range(n):
            one = {k: features[k][i:i + 1] for k in self.taps.layers}
            votes = torch.zeros(size * size, c)
            mean_p = torch.zeros(size * size, c)
            mean_h = torch.zeros(size * size)
            for start in range(0, e, per_chunk):
                chunk = self.classifiers[start:start + per_chunk]
                for logits in self._heads(chunk, one):
                    p = torch.softmax(logits, -1)
                    votes.scatter_add_(1, p.argmax(1, keepdim=True), torch.ones(p.shape[0], 1))
                    mean_p += p
                    mean_h -= (p * torch.log(p.clamp_min(1e-12))).sum(1)
            mean_p /= e
            js = (-(mean_p * torch.log(mean_p.clamp_min(1e-12))).sum(1) - mean_h / e).clamp_min(0)
            js_maps.append(js.reshape(size, size))
            labels.append(self._ids[votes.argmax(1)].reshape(size, size))
            if self.keypoint_head is not None:
                heat = torch.sigmoid(self._heads([self.keypoint_head], one)[0])
                x, y, peak = refine_peaks(heat.reshape(1, size, size, -1).permute(0, 3, 1, 2))
                kp_rows.append(torch.stack([x, y, (peak >= self.config.keypoint_threshold).float()], -1)[0])
        js = torch.stack(js_maps)
        keypoints = torch.stack(kp_rows).numpy() if kp_rows else None
        return Prediction(torch.stack(labels).numpy(), js, image_score(js), keypoints)

    def _heads(self, models: list[PixelMLP], features: dict[str, Tensor]) -> list[Tensor]:
        """Logits [S*S, C_m] of each model for one image."""
        weight = torch.cat([m.fc1.weight for m in models])
        bias = torch.cat([m.fc1.bias for m in models])
        size = self.taps.label_resolution
        if self.compile:
            parts = project_by_size(features, self.taps.layers, weight)
            h = compiled_upsample_sum_relu()(size, bias, *parts).reshape(-1, weight.shape[0])
        else:
            h = factorised_first_layer_nhwc(features, self.taps.layers, size, weight, bias)
            h = h.reshape(-1, weight.shape[0]).relu_()
        out, start = [], 0
        for m in models:
            width = m.fc1.out_features
            w2, b2, w3, b3 = _folded(m)
            a = torch.addmm(b2, h[:, start:start + width], w2.t()).relu_()
            out.append(torch.addmm(b3, a, w3.t()))
            start += width
        return out

    def predict(self, G, latents: Sequence[Latent]) -> tuple[Tensor, Prediction]:
        """Synthesize ``latents`` (one noise mode) and label them: (images [N, 3, H, W], Prediction)."""
        img, feats = synthesize_latents(G, list(latents), return_features=True)
        return img, self.predict_features({k: feats[k] for k in self.taps.layers})

    # ---------------------------------------------------------------------------- files

    def save(self, path: str | Path, provenance: dict | None = None) -> Path:
        """Write ``interpreter.json`` and ``weights.safetensors`` into directory ``path`` (atomically per file)."""
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {}
        for i, m in enumerate(self.classifiers):
            tensors.update({f"classifier.{i}.{k}": v.contiguous() for k, v in m.state_dict().items()})
        if self.keypoint_head is not None:
            tensors.update({f"keypoints.{k}": v.contiguous() for k, v in self.keypoint_head.state_dict().items()})
        with atomic_path(path / "weights.safetensors") as tmp:
            save_file(tensors, str(tmp))
        header = {"format": FORMAT, "format_version": FORMAT_VERSION, "taps": self.taps.to_json(),
                  "schema": self.schema.to_json(), "config": self.config.to_json(),
                  "num_models": len(self.classifiers), "hidden": list(_hidden(self.config, len(self.schema.classes))),
                  "keypoint_head": self.keypoint_head is not None, "provenance": provenance or {}}
        write_json(path / "interpreter.json", header)
        return path


def load_interpreter(path: str | Path, compile: bool = False) -> Interpreter:
    """Read an interpreter directory written by ``Interpreter.save`` (``compile``: see ``Interpreter``)."""
    from safetensors.torch import load_file

    path = Path(path)
    meta = path / "interpreter.json"
    if not meta.is_file():
        raise GanfactoryError(f"{path}: no interpreter.json; pass a directory written by 'ganfactory interpreter "
                              "train'")
    header = json.loads(meta.read_text())
    if header.get("format") != FORMAT or header.get("format_version", 99) > FORMAT_VERSION:
        raise GanfactoryError(f"{meta}: not a ganfactory interpreter this version reads (format "
                              f"{header.get('format')!r} v{header.get('format_version')})")
    taps = ResolvedTaps.from_json(header["taps"])
    schema = Schema.from_json(header["schema"])
    config = InterpreterConfig.from_json(header["config"])
    hidden = tuple(header["hidden"])
    weights = load_file(str(path / "weights.safetensors"))
    models = []
    for i in range(header["num_models"]):
        m = PixelMLP(taps.dim, len(schema.classes), hidden)
        m.load_state_dict({k[len(f"classifier.{i}."):]: v for k, v in weights.items()
                           if k.startswith(f"classifier.{i}.")})
        models.append(m)
    kp = None
    if header["keypoint_head"]:
        kp = PixelMLP(taps.dim, len(schema.keypoints), hidden)
        kp.load_state_dict({k[len("keypoints."):]: v for k, v in weights.items() if k.startswith("keypoints.")})
    return Interpreter(taps, schema, models, kp, config, compile=compile)
