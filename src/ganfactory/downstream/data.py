"""Training data for the downstream networks: a LabeledDataset in memory, resized and relabelled, and its
augmentation.

Why in memory: at 64 px a sample is 16 KB, so even 10,000 synthetic samples fit in 160 MB, and a CPU spends
its time on the network rather than on PNG decoding every epoch.

Conventions: keypoints are ``ganfactory.keypoints``' arrays: ``[x, y, visible]`` in pixels with pixel centres at
integers; NaN marks an unavailable point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from ganfactory.datasets.labeled import LabeledDataset
from ganfactory.errors import GanfactoryError
from ganfactory.keypoints import keypoints_from_rows, scale_keypoints
from ganfactory.schema import Schema, remap_table

__all__ = ["AugmentConfig", "SegmentationData", "augment_batch", "class_merge", "flip_permutation", "heatmap_targets",
           "load_data", "relabelled", "remap_table", "resize_sample", "table_between"]


@dataclass(frozen=True, eq=False)
class SegmentationData:
    """Samples ready for a network, all at one resolution."""

    images: Tensor
    """[N, H, W, 3] uint8."""
    labels: Tensor
    """[N, H, W] uint8 class ids of ``schema``."""
    keypoints: Tensor
    """[N, K, 3] float32 ``x, y, visible`` (NaN position = unavailable); K = 0 without keypoints."""
    schema: Schema
    ids: tuple[str, ...]

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: Sequence[int] | Tensor) -> SegmentationData:
        index = torch.as_tensor(index, dtype=torch.long)
        return SegmentationData(self.images[index], self.labels[index], self.keypoints[index], self.schema,
                                tuple(self.ids[i] for i in index.tolist()))


def resize_sample(image: np.ndarray, label: np.ndarray, keypoints: np.ndarray, size: int) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """One sample at ``size`` x ``size``: image bilinear (area-like when shrinking, PIL), labels nearest, keypoint
    positions scaled about pixel edges (centre x at scale s lands on (x + 0.5) * s - 0.5)."""
    h, w = label.shape
    if (h, w) == (size, size):
        return image, label, keypoints
    image = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
    label = np.asarray(Image.fromarray(label, "L").resize((size, size), Image.NEAREST))
    return image, label, scale_keypoints(keypoints, size / w, size / h)


def load_data(dataset: LabeledDataset, resolution: int | None = None, indices: Sequence[int] | None = None,
              label_table: np.ndarray | None = None, schema: Schema | None = None,
              num_keypoints: int | None = None) -> SegmentationData:
    """Read samples of ``dataset`` (``indices``, default all) into memory.

    ``resolution``: resize every sample to it (default: the first sample's size; samples must then agree).
    ``label_table`` [256] relabels the stored ids into ``schema`` (default: the dataset's schema, no table).
    ``num_keypoints``: 0 drops keypoints; None keeps the dataset's.
    """
    indices = list(range(len(dataset))) if indices is None else list(indices)
    if not indices:
        raise GanfactoryError(f"{dataset.root}: no samples to load")
    schema = schema or dataset.schema
    k = len(dataset.schema.keypoints) if num_keypoints is None else num_keypoints
    images, labels, kps, ids = [], [], [], []
    for i in indices:
        image, label, meta = dataset[i]
        if label_table is not None:
            label = label_table[label]
        points = keypoints_from_rows(meta.get("keypoints", [])[:k], np.float32)
        if points.shape[0] != k:
            raise GanfactoryError(f"{dataset.root}: sample {meta['id']!r} has {points.shape[0]} keypoints, "
                                  f"{k} are needed")
        size = resolution or (labels[0].shape[0] if labels else label.shape[0])
        if resolution is None and label.shape != (size, size):
            raise GanfactoryError(f"{dataset.root}: sample {meta['id']!r} is {label.shape[1]}x{label.shape[0]}, not "
                                  f"{size}x{size}; pass a resolution to resize the samples")
        image, label, points = resize_sample(image, label, points, size)
        images.append(image)
        labels.append(label)
        kps.append(points)
        ids.append(meta["id"])
    return SegmentationData(torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(labels)),
                            torch.from_numpy(np.stack(kps)), schema, tuple(ids))


def flip_permutation(keypoint_names: Sequence[str]) -> list[int]:
    """Keypoint order after a horizontal flip: each ``*left*`` name swaps with its ``*right*`` twin (and vice
    versa); names without a twin stay. E.g. hub_front_left <-> hub_front_right."""
    names = list(keypoint_names)
    perm = []
    for n in names:
        twin = n.replace("left", "\0").replace("right", "left").replace("\0", "right")
        perm.append(names.index(twin) if twin in names else names.index(n))
    return perm


@dataclass(frozen=True)
class AugmentConfig:
    """Standard geometric and photometric augmentation, drawn per sample from the training generator."""

    flip: bool = True
    """Horizontal flip with probability 1/2 (left/right keypoints swap)."""
    scale: tuple[float, float] = (0.85, 1.15)
    """Zoom factor range (> 1 zooms in)."""
    translate: float = 0.08
    """Shift range as a fraction of the image side."""
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2

    def to_json(self) -> dict:
        return {"flip": self.flip, "scale": list(self.scale), "translate": self.translate,
                "brightness": self.brightness, "contrast": self.contrast, "saturation": self.saturation}

    @classmethod
    def from_json(cls, d: dict) -> AugmentConfig:
        d = dict(d)
        d["scale"] = tuple(d["scale"])
        return cls(**d)


def augment_batch(images: Tensor, labels: Tensor, keypoints: Tensor, config: AugmentConfig | None,
                  generator: torch.Generator, flip_perm: Sequence[int] = ()) -> tuple[Tensor, Tensor, Tensor]:
    """Augment a batch: images [N, 3, H, W] float in [-1, 1], labels [N, H, W] int64, keypoints [N, K, 3].

    One affine map per sample (flip, zoom, shift) resamples the image bilinearly and the labels by nearest
    neighbour, both with reflection at the borders (so labels keep matching the reflected image); keypoints
    move with the map and become invisible when they leave the image. Colour jitter touches the image only.
    ``config`` None returns the batch unchanged.
    """
    if config is None:
        return images, labels, keypoints
    n, _, h, w = images.shape
    u = torch.rand(n, 6, generator=generator)
    flip = (u[:, 0] < 0.5) if config.flip else torch.zeros(n, dtype=torch.bool)
    zoom = config.scale[0] + (config.scale[1] - config.scale[0]) * u[:, 1]
    shift = (u[:, 2:4] * 2 - 1) * config.translate * 2          # normalised coordinates span 2
    sx = torch.where(flip, -1.0, 1.0) / zoom
    sy = 1.0 / zoom
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = sx, sy, shift
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    labels = F.grid_sample(labels[:, None].float(), grid, mode="nearest", padding_mode="reflection",
                           align_corners=False)[:, 0].round().long()
    if keypoints.shape[1]:
        kp = keypoints.clone()
        # pixel centre x -> normalised (2x + 1) / w - 1; the grid maps output u to input sx * u + tx
        nx = ((2 * kp[..., 0] + 1) / w - 1 - shift[:, None, 0]) / sx[:, None]
        ny = ((2 * kp[..., 1] + 1) / h - 1 - shift[:, None, 1]) / sy[:, None]
        kp[..., 0] = ((nx + 1) * w - 1) / 2
        kp[..., 1] = ((ny + 1) * h - 1) / 2
        inside = (nx.abs() <= 1) & (ny.abs() <= 1)
        kp[..., 2] = kp[..., 2] * inside
        if flip.any() and len(flip_perm):
            kp[flip] = kp[flip][:, list(flip_perm)]
        keypoints = kp
    b = 1 + config.brightness * (u[:, 4] * 2 - 1)
    c = 1 + config.contrast * (u[:, 5] * 2 - 1)
    s = 1 + config.saturation * (torch.rand(n, generator=generator) * 2 - 1)
    x = (images + 1) / 2 * b[:, None, None, None]
    grey = x.mean(1, keepdim=True)
    x = grey + (x - grey) * s[:, None, None, None]
    mean = x.mean((1, 2, 3), keepdim=True)
    x = mean + (x - mean) * c[:, None, None, None]
    return (x.clamp(0, 1) * 2 - 1), labels, keypoints


def heatmap_targets(keypoints: Tensor, height: int, width: int, sigma: float) -> tuple[Tensor, Tensor]:
    """Gaussian targets [N, K, H, W] (peak 1 at each visible point, 0 elsewhere and for hidden points) and
    the mask [N, K] of visible points."""
    visible = (keypoints[..., 2] > 0) & torch.isfinite(keypoints[..., 0]) & torch.isfinite(keypoints[..., 1])
    x = torch.nan_to_num(keypoints[..., 0])[..., None, None]
    y = torch.nan_to_num(keypoints[..., 1])[..., None, None]
    yy = torch.arange(height, dtype=torch.float32)[:, None]
    xx = torch.arange(width, dtype=torch.float32)[None, :]
    g = torch.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma * sigma))
    return g * visible[..., None, None], visible


def class_merge(name: str) -> tuple[Schema, dict[str, str]]:
    """A named merge of classes (``ganfactory.datasets.CLASS_MERGES``): (target schema without keypoints, source
    name -> target name)."""
    from ganfactory.datasets.parts import CLASS_MERGES

    if name not in CLASS_MERGES:
        raise GanfactoryError(f"unknown class merge {name!r}; choose one of {', '.join(CLASS_MERGES)}")
    merge = CLASS_MERGES[name]
    return merge.schema(), dict(merge.mapping)


def relabelled(source: Schema, merge: str | None) -> tuple[Schema, np.ndarray | None]:
    """(schema, label table or None) that turn data of ``source`` into the classes of ``merge`` (None: as is);
    the keypoints stay those of ``source``."""
    if merge is None:
        return source, None
    target, mapping = class_merge(merge)
    target = Schema(target.classes, source.keypoints)
    return target, remap_table(source, target, mapping)


def table_between(source: Schema, target: Schema) -> np.ndarray | None:
    """Label table from ``source`` ids to ``target`` ids by class name; classes of ``source`` that ``target``
    lacks are merged as a known class merge (``CLASS_MERGES``) into ``target``'s classes does. None when the ids
    already agree."""
    if [(c.id, c.name) for c in source.classes] == [(c.id, c.name) for c in target.classes]:
        return None
    target_names = {c.name for c in target.classes}
    mapping: dict[str, str] = {}
    if not {c.name for c in source.classes} <= target_names:
        from ganfactory.datasets.parts import CLASS_MERGES

        for merge in CLASS_MERGES:
            merged, m = class_merge(merge)
            if {c.name for c in merged.classes} == target_names:
                mapping = m
    return remap_table(source, target, mapping)
