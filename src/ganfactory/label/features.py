"""Feature taps of a generator for per-pixel labelling, and the factorised first layer.

DatasetGAN reads every synthesis layer's output, resizes each map bilinearly (align_corners=False) to the
label resolution and concatenates them: one D-dimensional vector per pixel (D = 4992..6080 for real
generators). Holding that tensor for many images is the original's memory wall.

Two facts remove it (see ../shared/notes/datasetgan.md):

* Bilinear resizing is linear and acts per channel, so the classifier's first Linear layer can run on each
  map at its native resolution and the results be resized and summed:
  ``W . concat_l(up(f_l)) = sum_l up(W_l . f_l)`` (:func:`factorised_first_layer`; :func:`naive_first_layer`
  is the reference it is tested against).
* Training only needs the sampled pixels: :func:`gather_pixels` reads each layer at the four bilinear source
  positions of those pixels, which equals indexing the resized-and-concatenated tensor.

Resizing semantics (PyTorch ``F.interpolate(mode="bilinear", align_corners=False)`` with an output size):
output pixel ``i`` of ``n_out`` reads source coordinate ``s = (i + 0.5) * n_in / n_out - 0.5``, clamped at 0,
between ``floor(s)`` and ``min(floor(s) + 1, n_in - 1)``. Maps larger than the label are sampled the same
way (no antialiasing), as DatasetGAN does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ganfactory.errors import GanfactoryError

__all__ = ["FeatureTaps", "ResolvedTaps", "axis_weights", "concat_resized", "conv_layers", "factorised_first_layer",
           "gather_pixels", "naive_first_layer", "resize"]


def conv_layers(G) -> list[str]:
    """Every conv layer of ``G``'s synthesis network, in forward order (DatasetGAN's default taps)."""
    return [n for n in G.synthesis.layer_names() if not n.endswith(".torgb")]


@dataclass(frozen=True)
class FeatureTaps:
    """Which layers to read and at which resolution to label."""

    layers: tuple[str, ...] | None = None
    """Layer names of ``G.synthesis.layer_names()``; None = every conv layer's output (DatasetGAN)."""
    label_resolution: int | None = None
    """Side of the (square) label map; None = the generator's image resolution."""

    def resolve(self, G) -> ResolvedTaps:
        """Check the taps against ``G`` and fill in the defaults."""
        names = G.synthesis.layer_names()
        layers = tuple(conv_layers(G)) if self.layers is None else tuple(self.layers)
        unknown = [n for n in layers if n not in names]
        if unknown or not layers:
            raise GanfactoryError(f"unknown feature layers {unknown or '(none given)'}; this generator has "
                                  f"{', '.join(names)}")
        res = self.label_resolution or G.img_resolution
        if res < 1:
            raise GanfactoryError(f"label resolution must be positive, got {res}")
        channels, sizes = [], []
        for n in layers:
            block_res = int(n.split(".")[0][1:])
            sizes.append(block_res)
            kind = n.split(".")[1]
            channels.append(G.img_channels if kind == "torgb" else G.config.channels(block_res))
        return ResolvedTaps(layers, tuple(channels), tuple(sizes), int(res))


@dataclass(frozen=True)
class ResolvedTaps:
    """Taps checked against one generator: what every per-pixel vector is made of."""

    layers: tuple[str, ...]
    channels: tuple[int, ...]
    """Channels of each layer, in ``layers`` order."""
    sizes: tuple[int, ...]
    """Native side of each layer's map."""
    label_resolution: int

    @property
    def dim(self) -> int:
        """D, the length of one pixel's feature vector (sum of the layers' channels)."""
        return sum(self.channels)

    def to_json(self) -> dict:
        return {"layers": list(self.layers), "channels": list(self.channels), "sizes": list(self.sizes),
                "label_resolution": self.label_resolution}

    @classmethod
    def from_json(cls, d: dict) -> ResolvedTaps:
        return cls(tuple(d["layers"]), tuple(d["channels"]), tuple(d["sizes"]), int(d["label_resolution"]))


def resize(f: Tensor, size: int) -> Tensor:
    """[N, C, h, w] -> [N, C, size, size], bilinear, align_corners=False (DatasetGAN's upsampling)."""
    if f.shape[-1] == size and f.shape[-2] == size:
        return f
    return F.interpolate(f, size=(size, size), mode="bilinear", align_corners=False)


def concat_resized(features: dict[str, Tensor], layers: tuple[str, ...], size: int) -> Tensor:
    """The naive per-pixel features: every layer resized to ``size`` and concatenated, [N, D, size, size].

    The reference for tests and the benchmark only: at 512 px this is ~5 GiB per image for a real generator.
    """
    return torch.cat([resize(features[n], size) for n in layers], dim=1)


def axis_weights(n_out: int, n_in: int, index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Bilinear (align_corners=False) source taps of output positions ``index`` [P] along one axis.

    Returns (i0 [P] long, i1 [P] long, w1 [P] float32): the value is ``(1 - w1) * f[i0] + w1 * f[i1]``.
    """
    if n_in == n_out:
        return index, index, torch.zeros(index.shape, dtype=torch.float32)
    scale = torch.tensor(n_in / n_out, dtype=torch.float32)
    src = ((index.to(torch.float32) + 0.5) * scale - 0.5).clamp_min(0)
    i0 = src.floor().long().clamp_max(n_in - 1)
    i1 = (i0 + 1).clamp_max(n_in - 1)
    return i0, i1, src - i0.to(torch.float32)


def gather_pixels(features: dict[str, Tensor], layers: tuple[str, ...], size: int, image: Tensor, y: Tensor,
                  x: Tensor) -> Tensor:
    """Per-pixel feature vectors at label-resolution positions, without resizing whole maps.

    features: per layer [N, C_l, h_l, w_l]; image, y, x: [P] long (which image, row, column at ``size``).
    Returns [P, D], equal to ``concat_resized(features, layers, size)[image, :, y, x]`` to float rounding.
    """
    out = []
    for n in layers:
        f = features[n]
        _, c, h, w = f.shape
        y0, y1, wy = axis_weights(size, h, y)
        x0, x1, wx = axis_weights(size, w, x)
        flat = f.permute(0, 2, 3, 1).reshape(-1, c)          # [N*h*w, C]: rows are pixels
        base = image * (h * w)

        def at(yy: Tensor, xx: Tensor, flat=flat, base=base, w=w) -> Tensor:
            return flat.index_select(0, base + yy * w + xx)

        wy, wx = wy[:, None], wx[:, None]
        top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
        bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
        out.append(top * (1 - wy) + bottom * wy)
    return torch.cat(out, dim=1)


def naive_first_layer(features: dict[str, Tensor], layers: tuple[str, ...], size: int, weight: Tensor,
                      bias: Tensor | None = None) -> Tensor:
    """Reference: resize all, concatenate, apply the Linear layer. weight [H, D] -> [N, H, size, size]."""
    x = concat_resized(features, layers, size)
    out = torch.einsum("hd,ndyx->nhyx", weight, x)
    return out if bias is None else out + bias[None, :, None, None]


def _sum_by_size(features: dict[str, Tensor], layers: tuple[str, ...], weight: Tensor,
                 project: Callable[[Tensor, Tensor], Tensor]) -> dict[tuple[int, int], Tensor]:
    """``project(f_l, W_l)`` for every layer, summed over the layers of one native size (h, w), in first-seen
    order. weight: [H, D], its columns in ``layers`` order (layer l owns the columns of its C_l channels)."""
    by_size: dict[tuple[int, int], Tensor] = {}
    start = 0
    for n in layers:
        f = features[n]
        c = f.shape[1]
        projected = project(f, weight[:, start:start + c])
        start += c
        key = (f.shape[-2], f.shape[-1])
        by_size[key] = projected if key not in by_size else by_size[key].add_(projected)
    if start != weight.shape[1]:
        raise ValueError(f"weight has {weight.shape[1]} input features, the layers give {start}")
    return by_size


def _project_nchw(f: Tensor, w: Tensor) -> Tensor:
    return torch.einsum("hc,ncyx->nhyx", w, f)


def _project_nhwc(f: Tensor, w: Tensor) -> Tensor:
    return torch.matmul(f.permute(0, 2, 3, 1), w.t())                 # [N, h, w, H]


def factorised_first_layer(features: dict[str, Tensor], layers: tuple[str, ...], size: int, weight: Tensor,
                           bias: Tensor | None = None) -> Tensor:
    """The classifier's first Linear layer as ``sum_l resize(W_l . f_l)``: the same [N, H, size, size] as
    :func:`naive_first_layer`, without ever holding the D-channel full-resolution tensor. Projections of
    layers with the same native size are summed before their one resize.

    weight: [H, D], its columns in ``layers`` order (layer l owns columns of its C_l channels).
    """
    out = None
    for projected in _sum_by_size(features, layers, weight, _project_nchw).values():
        up = resize(projected, size)                 # layers of one resolution share one resize (it is linear)
        out = up if out is None else out.add_(up)
    return out if bias is None else out + bias[None, :, None, None]


def factorised_first_layer_nhwc(features: dict[str, Tensor], layers: tuple[str, ...], size: int, weight: Tensor,
                                bias: Tensor | None = None) -> Tensor:
    """:func:`factorised_first_layer` laid out channels-last: [N, size, size, H] (contiguous).

    The fast path for prediction: projections are plain matrix products on [pixels, C] rows, the resize runs on
    channels-last memory (vectorised over channels), and the result feeds the classifier's remaining layers as
    pixel rows without a transpose. Same values as the reference to float rounding (tested).
    """
    out = None
    for (h, w), projected in _sum_by_size(features, layers, weight, _project_nhwc).items():
        if (h, w) != (size, size):
            projected = F.interpolate(projected.permute(0, 3, 1, 2), size=(size, size), mode="bilinear",
                                      align_corners=False).permute(0, 2, 3, 1)
        out = projected.contiguous() if out is None else out.add_(projected)
    return out if bias is None else out.add_(bias)


def project_by_size(features: dict[str, Tensor], layers: tuple[str, ...], weight: Tensor) -> list[Tensor]:
    """The per-layer projections ``W_l . f_l`` summed over layers of the same native size: one [N, h, w, H]
    (channels-last) tensor per size, in first-seen order. weight: [H, D] in ``layers`` column order."""
    return list(_sum_by_size(features, layers, weight, _project_nhwc).values())


def upsample_sum_relu(size: int, bias: Tensor, *parts: Tensor) -> Tensor:
    """relu(sum_p resize(p, size) + bias) for channels-last parts [N, h_p, w_p, H]: the rest of the factorised
    first layer and its activation, written functionally so that ``torch.compile`` fuses it into one pass that
    writes the [N, size, size, H] output once (:func:`compiled_upsample_sum_relu`)."""
    out = None
    for p in parts:
        if p.shape[1] != size or p.shape[2] != size:
            p = F.interpolate(p.permute(0, 3, 1, 2), size=(size, size), mode="bilinear",
                              align_corners=False).permute(0, 2, 3, 1)
        out = p if out is None else out + p
    return torch.relu(out + bias)


_COMPILED: dict[str, object] = {}


def compiled_upsample_sum_relu():
    """:func:`upsample_sum_relu` compiled by ``torch.compile`` (built on first use, kept for the process; shapes
    are specialised, so the first call per shape compiles, about half a minute on a CPU). Why: eagerly, every
    resize writes a full-resolution tensor; fused, the output is written once (about 15x faster at 256 px)."""
    if "fn" not in _COMPILED:
        _COMPILED["fn"] = torch.compile(upsample_sum_relu, dynamic=False)
    return _COMPILED["fn"]
