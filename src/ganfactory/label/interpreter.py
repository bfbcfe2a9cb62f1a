"""The style interpreter: an ensemble of per-pixel classifiers (and keypoint heatmap heads) on generator
features, trained from a few annotated generated images, applied to any number of new ones.

Architecture and recipe are DatasetGAN's (``ganfactory.label.pixel_mlp``; label = per-pixel majority vote of the
ensemble). What differs is memory: training gathers features only at sampled pixels (``ganfactory.label.pixels``,
``ganfactory.label.training``), and prediction runs each first layer at the layers' native resolutions
(:func:`ganfactory.label.features.factorised_first_layer`). No tensor of every pixel's D features is ever built.

This module holds the trained ensemble: prediction, and its files (``interpreter.json`` + ``weights.safetensors``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ganfactory.atomic import atomic_path, write_json
from ganfactory.errors import GanfactoryError
from ganfactory.formats import read_format_header, reading
from ganfactory.gan.latent import Latent, synthesize_latents
from ganfactory.keypoints import refine_peaks
from ganfactory.label.config import InterpreterConfig, hidden_widths
from ganfactory.label.features import (
    FeatureTaps,
    ResolvedTaps,
    compiled_upsample_sum_relu,
    factorised_first_layer_nhwc,
    project_by_size,
)
from ganfactory.label.pixel_mlp import PixelMLP, fold_batchnorm
from ganfactory.label.uncertainty import image_score
from ganfactory.schema import Schema

__all__ = ["FORMAT", "FORMAT_VERSION", "PREDICT_BUDGET", "Interpreter", "Prediction", "load_interpreter", "on_classes"]

FORMAT = "ganfactory.interpreter"
FORMAT_VERSION = 1


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


def on_classes(label: Tensor, x: Tensor, y: Tensor, classes: Sequence[Sequence[int]], radius: int = 1) -> Tensor:
    """[K] bool: keypoint k at (x[k], y[k]) (pixel centres at integers) has a pixel of one of ``classes[k]`` within
    ``radius`` pixels in the [S, S] ``label`` map (class ids); False outside the image.

    Why: the renderer's visibility rule (a visible hub lies on a wheel, a visible lamp on a light), applied to the
    interpreter's own labels, so that a point behind the body is not called visible because a heatmap peaked."""
    size = label.shape[0]
    out = torch.zeros(len(classes), dtype=torch.bool)
    for k, wanted in enumerate(classes):
        if not (torch.isfinite(x[k]) and torch.isfinite(y[k])):
            continue
        col, row = int(round(float(x[k]))), int(round(float(y[k])))
        if not (0 <= col < size and 0 <= row < size):
            continue
        window = label[max(row - radius, 0):row + radius + 1, max(col - radius, 0):col + radius + 1]
        out[k] = bool(torch.isin(window.long(), torch.tensor(list(wanted), dtype=torch.long)).any())
    return out


PREDICT_BUDGET = 1 << 28
"""Bytes of first-layer activations (one image, a chunk of models) that prediction holds at once."""


class Interpreter:
    """A trained ensemble over a generator's feature taps (see the module docstring)."""

    def __init__(self, taps: ResolvedTaps, schema: Schema, classifiers: list[PixelMLP],
                 keypoint_head: PixelMLP | None = None, config: InterpreterConfig | None = None,
                 compile: bool = False):
        """``compile``: run the resize-and-sum of the first layer through ``torch.compile`` (one fused pass;
        equal to the eager path to float rounding; the first call per shape compiles)."""
        self.compile = compile
        self.taps = taps
        self.schema = schema
        self.classifiers = classifiers
        self.keypoint_head = keypoint_head
        self.config = config or InterpreterConfig()
        for m in self.modules():
            m.eval()
        self._ids = torch.tensor(list(schema.class_ids), dtype=torch.uint8)

    def check_generator(self, G) -> None:
        """Refuse, with one line, a generator whose feature layers are not the ones this interpreter was trained on
        (another generator: its layers, channels or sizes differ)."""
        try:
            here = FeatureTaps(self.taps.layers, self.taps.label_resolution).resolve(G)
        except GanfactoryError:
            here = None
        if here is None or (here.channels, here.sizes) != (self.taps.channels, self.taps.sizes):
            raise GanfactoryError(
                f"the interpreter was trained on another generator (it reads {len(self.taps.layers)} layers up to "
                f"{max(self.taps.sizes)} px with {self.taps.dim} channels; this {G.img_resolution} px generator "
                "does not have them): pass the generator it was trained on, or train one for this generator")

    def to(self, device: torch.device | str) -> Interpreter:
        """Move the ensemble to ``device`` (in place; returns self). Prediction computes where the features are."""
        for m in self.modules():
            m.to(device)
        return self

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
        device = next(iter(features.values())).device
        c = len(self.schema.classes)
        e = len(self.classifiers)
        labels, js_maps, kp_rows = [], [], []
        hidden0 = self.classifiers[0].fc1.out_features
        per_chunk = max(1, PREDICT_BUDGET // (size * size * hidden0 * 4))
        for i in range(n):
            one = {k: features[k][i:i + 1] for k in self.taps.layers}
            votes = torch.zeros(size * size, c, device=device)
            mean_p = torch.zeros(size * size, c, device=device)
            mean_h = torch.zeros(size * size, device=device)
            for start in range(0, e, per_chunk):
                chunk = self.classifiers[start:start + per_chunk]
                for logits in self._heads(chunk, one):
                    p = torch.softmax(logits, -1)
                    votes.scatter_add_(1, p.argmax(1, keepdim=True), torch.ones(p.shape[0], 1, device=device))
                    mean_p += p
                    mean_h -= (p * torch.log(p.clamp_min(1e-12))).sum(1)
            mean_p /= e
            js = (-(mean_p * torch.log(mean_p.clamp_min(1e-12))).sum(1) - mean_h / e).clamp_min(0)
            js_maps.append(js.reshape(size, size).cpu())
            labels.append(self._ids[votes.argmax(1).cpu()].reshape(size, size))
            if self.keypoint_head is not None:
                heat = torch.sigmoid(self._heads([self.keypoint_head], one)[0])
                x, y, peak = refine_peaks(heat.reshape(1, size, size, -1).permute(0, 3, 1, 2))
                visible = (peak >= self.config.keypoint_threshold)[0].cpu()
                if self.config.keypoint_classes is not None:
                    visible &= on_classes(labels[-1], x[0].cpu(), y[0].cpu(), self.config.keypoint_classes)
                kp_rows.append(torch.stack([x[0].cpu(), y[0].cpu(), visible.float()], -1))
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
            w2, b2, w3, b3 = fold_batchnorm(m)
            a = torch.addmm(b2, h[:, start:start + width], w2.t()).relu_()
            out.append(torch.addmm(b3, a, w3.t()))
            start += width
        return out

    def predict(self, G, latents: Sequence[Latent]) -> tuple[Tensor, Prediction]:
        """Synthesize ``latents`` (one noise mode) and label them: (images [N, 3, H, W], Prediction)."""
        self.check_generator(G)
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
            tensors.update({f"classifier.{i}.{k}": v.detach().cpu().contiguous() for k, v in m.state_dict().items()})
        if self.keypoint_head is not None:
            tensors.update({f"keypoints.{k}": v.detach().cpu().contiguous()
                            for k, v in self.keypoint_head.state_dict().items()})
        with atomic_path(path / "weights.safetensors") as tmp:
            save_file(tensors, str(tmp))
        header = {"format": FORMAT, "format_version": FORMAT_VERSION, "taps": self.taps.to_json(),
                  "schema": self.schema.to_json(), "config": self.config.to_json(),
                  "num_models": len(self.classifiers),
                  "hidden": list(hidden_widths(self.config, len(self.schema.classes))),
                  "keypoint_head": self.keypoint_head is not None, "provenance": provenance or {}}
        write_json(path / "interpreter.json", header)
        return path


def load_interpreter(path: str | Path, compile: bool = False, device: torch.device | str = "cpu") -> Interpreter:
    """Read an interpreter directory written by ``Interpreter.save`` onto ``device`` (``compile``: see
    ``Interpreter``)."""
    path = Path(path)
    header = read_format_header(path / "interpreter.json", FORMAT, FORMAT_VERSION, GanfactoryError,
                                "pass a directory written by 'ganfactory interpreter train'")
    broken = f"{path} (a broken interpreter: train it again)"
    with reading(broken, GanfactoryError, also=(RuntimeError, IndexError)):
        return _build(path, header, compile, device)


def _build(path: Path, header: dict, compile: bool, device) -> Interpreter:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    taps = ResolvedTaps.from_json(header["taps"])
    schema = Schema.from_json(header["schema"])
    config = InterpreterConfig.from_json(header["config"])
    hidden = tuple(header["hidden"])
    with reading(path / "weights.safetensors", GanfactoryError, also=(SafetensorError,)):
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
    return Interpreter(taps, schema, models, kp, config, compile=compile).to(device)
