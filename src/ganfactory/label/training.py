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
from ganfactory.label.pixel_mlp import PixelMLP, fit_pixel_model
from ganfactory.label.pixels import TrainingImage, collect_pixels
from ganfactory.schema import Schema

__all__ = ["TrainReport", "train_interpreter"]


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
    models, accs, epochs = [], [], []
    for m in tqdm(range(config.num_models), desc="ensemble", unit="model", disable=not progress):
        mgen = torch.Generator().manual_seed(config.seed * 1000 + m + 1)
        model = PixelMLP(taps.dim, len(class_ids), hidden)
        model.reset(mgen)
        model.to(device)
        acc, ep = fit_pixel_model(model, x, y, xv, yv, config, mgen)
        models.append(model)
        accs.append(acc)
        epochs.append(ep)
    kp_model, kp_loss = None, None
    if pixels.keypoints is not None:
        kx, ky, kxv, kyv = (t.to(device) for t in pixels.keypoints)
        kgen = torch.Generator().manual_seed(config.seed * 1000 + 999)
        kp_model = PixelMLP(taps.dim, len(schema.keypoints), hidden)
        kp_model.reset(kgen)
        kp_model.to(device)
        score, _ = fit_pixel_model(kp_model, kx, ky, kxv, kyv, config, kgen, loss="bce")
        kp_loss = -score
    interp = Interpreter(taps, schema, models, kp_model, config)
    report = TrainReport(tuple(accs), tuple(epochs), int(x.shape[0]), int(xv.shape[0]), time.perf_counter() - t0,
                         kp_loss)
    return interp, report
