"""Training the style interpreter: an ensemble of pixel classifiers (and a keypoint heatmap head) on the sampled
pixels of a few annotated images (DatasetGAN's recipe: Adam 1e-3, an ensemble of 10, early stopping on the
held-out pixels' accuracy)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm import tqdm

from ganfactory.label.config import InterpreterConfig, hidden_widths
from ganfactory.label.interpreter import Interpreter
from ganfactory.label.pixel_mlp import PixelMLP, class_weights, fit_pixel_model
from ganfactory.label.pixels import TrainingImage, collect_pixels
from ganfactory.schema import Schema

__all__ = ["TrainReport", "train_interpreter"]


@dataclass(frozen=True)
class TrainReport:
    """What a training run did."""

    heldout_accuracy: tuple[float, ...]
    """Best held-out pixel accuracy of each ensemble member (mean per-class accuracy with class weighting)."""
    epochs: tuple[int, ...]
    """Epochs each member kept: the early stop's best epoch (also the final fit's length when it ran)."""
    train_pixels: int
    heldout_pixels: int
    seconds: float
    keypoint_heldout_loss: float | None = None
    final_fit: bool = False
    """Whether the kept models were refitted on every annotated pixel (``InterpreterConfig.final_fit``)."""


def train_interpreter(G, images: Sequence[TrainingImage], schema: Schema,
                      config: InterpreterConfig | None = None, progress: bool = True) -> tuple[
                          Interpreter, TrainReport]:
    """Train an ensemble (and keypoint heads when the schema names keypoints) from annotated images.

    Memory: one image's native feature maps plus the gathered rows of the sampled pixels
    (``pixels_per_image * len(images) * D`` floats), never the dense per-pixel table. The models train on G's
    device (the pixels are drawn and the weights initialised on the CPU, one random stream whatever the device).
    """
    config = config or InterpreterConfig()
    t0 = time.perf_counter()
    pixels = collect_pixels(G, images, schema, config, progress)
    device = G.w_avg.device
    taps = pixels.taps
    x, y, xv, yv = (t.to(device) for t in (pixels.x, pixels.y, pixels.x_val, pixels.y_val))
    class_ids = list(schema.class_ids)
    hidden = hidden_widths(config, len(class_ids))
    weight = class_weights(pixels.y, len(class_ids), config.class_weighting)
    models, accs, epochs = [], [], []
    for m in tqdm(range(config.num_models), desc="ensemble", unit="model", disable=not progress):
        model = _fit(taps.dim, len(class_ids), hidden, config, config.seed * 1000 + m + 1, x, y, xv, yv, device,
                     "ce", weight)
        models.append(model)
        accs.append(model.score)
        epochs.append(model.kept_epochs)
    kp_model, kp_loss = None, None
    if pixels.keypoints is not None:
        kx, ky, kxv, kyv = (t.to(device) for t in pixels.keypoints)
        kp_model = _fit(taps.dim, len(schema.keypoints), hidden, config, config.seed * 1000 + 999, kx, ky, kxv, kyv,
                        device, "bce", None)
        kp_loss = -kp_model.score
    interp = Interpreter(taps, schema, models, kp_model, config)
    report = TrainReport(tuple(accs), tuple(epochs), int(x.shape[0]), int(xv.shape[0]), time.perf_counter() - t0,
                         kp_loss, config.final_fit)
    return interp, report


def _fit(dim: int, out: int, hidden, config: InterpreterConfig, seed: int, x, y, xv, yv, device, loss: str,
         weight) -> PixelMLP:
    """One ensemble member: early stopping on the held-out pixels picks the epoch count; with ``final_fit`` the
    member is then trained again from the same initialisation (and the same random stream) on the training and
    held-out pixels together for exactly that many epochs. The returned model carries ``score`` (the early stop's
    best held-out score) and ``kept_epochs``."""
    gen = torch.Generator().manual_seed(seed)
    model = PixelMLP(dim, out, hidden)
    model.reset(gen)
    model.to(device)
    score, _, best_epoch = fit_pixel_model(model, x, y, xv, yv, config, gen, loss=loss, weight=weight)
    if config.final_fit:
        gen = torch.Generator().manual_seed(seed)
        model = PixelMLP(dim, out, hidden)
        model.reset(gen)
        model.to(device)
        fit_pixel_model(model, torch.cat([x, xv]), torch.cat([y, yv]), None, None, config, gen, loss=loss,
                        weight=weight, epochs=max(best_epoch, 1))
    model.score, model.kept_epochs = score, best_epoch
    return model
