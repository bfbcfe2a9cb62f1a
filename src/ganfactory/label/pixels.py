"""The interpreter's training data: annotated images, the pixels sampled from them, and those pixels' generator
features.

Why sampled pixels: memory grows with the pixels trained on, not with resolution x features. Features are
gathered only at sampled pixels, one annotated image at a time (:func:`ganfactory.label.features.gather_pixels`),
so no tensor of every pixel's D features is ever built.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from ganfactory.errors import GanfactoryError
from ganfactory.gan.latent import Latent, synthesize_latents
from ganfactory.gan.sampling import to_uint8
from ganfactory.keypoints import keypoints_from_rows, scale_keypoints
from ganfactory.label.config import InterpreterConfig
from ganfactory.label.features import ResolvedTaps, gather_pixels
from ganfactory.schema import Schema

__all__ = ["PixelSet", "TrainingImage", "collect_pixels", "sample_positions"]


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
    id: str | None = None
    """The item's id in its store, named in errors."""


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


def _keypoints_at(keypoints, image_size: int, size: int, visible_only: bool = False) -> Tensor:
    """[K, 2] float32 (x, y) of keypoint rows at the label resolution ``size`` (NaN = unavailable, and with
    ``visible_only`` also = hidden: a hidden point then has target 0 everywhere)."""
    s = size / image_size
    rows = scale_keypoints(keypoints_from_rows(keypoints), s, s)
    xy = rows[:, :2].copy()
    if visible_only:
        xy[~(rows[:, 2] > 0)] = np.nan
    return torch.from_numpy(xy).float()


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
                where = f"item {im.id!r}: its" if im.id is not None else "a"
                raise GanfactoryError(f"{where} label map is {im.label.shape[1]}x{im.label.shape[0]}, the generator's "
                                      f"images are {image_size}x{image_size}; annotate at the image's size")
            label = index_of[_label_at(im.label, size)]
            if (label < 0).any():
                bad = sorted(set(np.unique(im.label).tolist()) - set(class_ids))
                where = f"item {im.id!r}" if im.id is not None else "a label map"
                raise GanfactoryError(f"{where}: label ids {bad} are not classes of the schema (ids {class_ids}); "
                                      "fix the label or add them to schema.json")
            val = sample_positions(label, _holdout(config, size), None, False, gen)
            tr = sample_positions(label, config.pixels_per_image, val, config.class_balanced, gen)
            plan += [("train", tr, label.reshape(-1)[tr]), ("held", val, label.reshape(-1)[val])]
        if want_kp and im.keypoints:
            kps = _keypoints_at(im.keypoints, image_size, size, config.keypoint_visible_only)
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
