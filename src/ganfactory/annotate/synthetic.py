"""Annotations made without a person: labels of a generator's own images from colour clusters or a network.

Why: tests and benchmarks need annotated generated images without a person at the annotator.
- Colour clusters: label maps that are a learnable function of the generator's features, so that held-out
  pixel accuracy means something on any generator, even an untrained one (the image is a nearly linear
  function of the last layers' features).
- A segmentation network trained on real labels (the cars benchmark's simulated annotator): real part
  semantics on a trained generator, with the network's mistakes as the annotator's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ganfactory.annotate.store import AnnotationSet
from ganfactory.gan.latent import Latent, seed_item_id, synthesize_latents
from ganfactory.schema import Schema

__all__ = ["PALETTE", "cluster_centroids", "colour_clusters", "make_cluster_annotations", "make_network_annotations",
           "region_keypoints"]

PALETTE = {"c1": (230, 25, 75), "c2": (60, 180, 75), "c3": (255, 225, 25), "c4": (0, 130, 200), "c5": (245, 130, 48),
           "c6": (145, 30, 180), "c7": (70, 240, 240), "c8": (240, 50, 230)}
"""Overlay colours of the clusters: saturated and distinct, so that overlays read on any image."""


def colour_clusters(images: np.ndarray, k: int, iterations: int = 20, seed: int = 0) -> np.ndarray:
    """k-means centres [k, 3] (float RGB) of the pixels of ``images`` [N, H, W, 3] uint8, deterministic.
    Centres are sorted by brightness, so that cluster ids are stable across runs."""
    pixels = torch.from_numpy(images.reshape(-1, 3).astype(np.float32))
    g = torch.Generator().manual_seed(seed)
    centres = pixels[torch.randperm(pixels.shape[0], generator=g)[:k]].clone()
    for _ in range(iterations):
        assign = torch.cdist(pixels, centres).argmin(1)
        for c in range(k):
            members = pixels[assign == c]
            if len(members):
                centres[c] = members.mean(0)
    return centres[centres.sum(1).argsort()].numpy()


def cluster_centroids(images: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """[N, H, W] uint8 labels: 1 + the index of each pixel's nearest centre (0, the background, stays unused)."""
    pixels = torch.from_numpy(images.reshape(-1, 3).astype(np.float32))
    assign = torch.cdist(pixels, torch.from_numpy(centres)).argmin(1)
    return (assign + 1).to(torch.uint8).reshape(images.shape[:3]).numpy()


def region_keypoints(label: np.ndarray, ids: Sequence[int]) -> list[list]:
    """One keypoint per class id: the centroid of its pixels ``[x, y, 1]``, ``[None, None, 0]`` if absent."""
    out = []
    for c in ids:
        ys, xs = np.nonzero(label == c)
        out.append([float(xs.mean()), float(ys.mean()), 1] if len(xs) else [None, None, 0])
    return out


def make_cluster_annotations(G, root: str | Path, seeds: Sequence[int], num_clusters: int = 4,
                             truncation_psi: float = 1.0, noise_mode: str = "const", keypoints: bool = False,
                             generator_name: str | None = None) -> AnnotationSet:
    """An AnnotationSet of ``seeds``: images from ``G``, labels = colour clusters fitted on all of them (classes
    background + ``c1..cK``), optionally one keypoint per cluster (its centroid)."""
    latents = [Latent.from_seed(G, s, truncation_psi, noise_mode) for s in seeds]
    from ganfactory.gan.sampling import to_uint8

    images = np.concatenate([to_uint8(synthesize_latents(G, latents[i:i + 8])) for i in range(0, len(latents), 8)])
    centres = colour_clusters(images, num_clusters)
    labels = cluster_centroids(images, centres)
    names = ["background"] + [f"c{i}" for i in range(1, num_clusters + 1)]
    kp_names = [f"{n}_centre" for n in names[1:]] if keypoints else []
    store = AnnotationSet.create(root, Schema.from_names(names, PALETTE, kp_names), generator_name)
    for seed, lat, img, lab in zip(seeds, latents, images, labels, strict=True):
        kps = region_keypoints(lab, range(1, num_clusters + 1)) if keypoints else None
        store.add(seed_item_id(seed), lat, img, lab, kps)
    return store


def make_network_annotations(G, root: str | Path, seeds: Sequence[int], segmenter, truncation_psi: float = 1.0,
                             generator_name: str | None = None, meta: dict | None = None, noise_mode: str = "const",
                             truncation_cutoff: int | None = None,
                             keypoint_classes: Sequence[Sequence[int]] | None = None) -> AnnotationSet:
    """An AnnotationSet of ``seeds``: images from ``G`` (latents from the seeds with ``truncation_psi`` on the first
    ``truncation_cutoff`` layers and ``noise_mode``) labelled by ``segmenter`` (a ``ganfactory.downstream``
    Segmenter, with its schema). ``meta`` is stored with every item (say which network annotated it).

    Visibility, as an honest annotator marks it: with ``keypoint_classes`` (per keypoint, the class ids it must lie
    on) a keypoint is visible when the network's own labels within one pixel of it carry one of its classes (the
    renderer's rule: a hub on a wheel, a lamp on a light), so the far side's wheels, which project onto the body,
    are hidden. Without it, visible = anywhere on the object (label not background), which marks nearly every
    point visible."""
    from ganfactory.gan.sampling import to_uint8
    from ganfactory.label.interpreter import on_classes

    store = AnnotationSet.create(root, segmenter.schema, generator_name)
    for seed in seeds:
        latent = Latent.from_seed(G, seed, truncation_psi, noise_mode, truncation_cutoff)
        image = to_uint8(synthesize_latents(G, [latent]))[0]
        labels, kps = segmenter.predict(image[None])
        keypoints = None
        if kps is not None:
            xy = torch.from_numpy(np.asarray(kps[0], np.float64)[:, :2])
            if keypoint_classes is not None:
                seen = on_classes(torch.from_numpy(labels[0]), xy[:, 0], xy[:, 1], keypoint_classes).tolist()
            else:
                h, w = image.shape[:2]
                seen = [labels[0, min(max(round(y), 0), h - 1), min(max(round(x), 0), w - 1)] > 0
                        for x, y in xy.tolist()]
            keypoints = [[float(x), float(y), int(v)] for (x, y), v in zip(xy.tolist(), seen, strict=True)]
        store.add(seed_item_id(seed), latent, image, labels[0], keypoints, meta=meta)
    return store
