"""Labels for real images by inversion: real items of an AnnotationSet get latents that reproduce them.

Why: a user who already has a few labeled photographs should not have to paint generated images. Each
photograph is inverted into the generator (``ganfactory.gan.invert``); the generator's image of the found
latent becomes the item's image, the labels drawn on the photograph stay, and the item joins the
interpreter's training set. How well the labels fit the reconstruction is limited by how close the
reconstruction is, so every item's PSNR is recorded in ``DIR/inversion.json``.

Resumable: items are inverted in batches and written as each batch finishes; a rerun skips real items
that already have a latent.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ganfactory.annotate.store import AnnotationError, AnnotationSet, open_project
from ganfactory.atomic import write_json
from ganfactory.datasets.labeled import LabeledDataset
from ganfactory.gan.invert import InversionConfig, invert, psnr
from ganfactory.gan.latent import Latent, synthesize_latents
from ganfactory.gan.sampling import to_uint8

__all__ = ["REPORT", "invert_annotations", "invert_labeled_dataset"]

REPORT = "inversion.json"
"""Per-item PSNR (W and W+) and the settings, beside schema.json."""


def _pending_real(G, store: AnnotationSet) -> list[str]:
    items = (store.item(i, G) for i in store.ids)
    return [item.id for item in items if item.origin == "real" and item.latent is None]


def invert_annotations(G, store: AnnotationSet, config: InversionConfig | None = None, D=None, batch: int = 16,
                       progress: bool = True) -> dict:
    """Invert every real item of ``store`` that has no latent yet; returns the report (also in ``REPORT``)."""
    config = config or InversionConfig()
    report_path = store.root / REPORT
    report = json.loads(report_path.read_text()) if report_path.is_file() else {"items": {}}
    report["config"] = config.to_json()
    report["discriminator_features"] = D is not None and config.feature_weight > 0
    todo = _pending_real(G, store)
    res = G.img_resolution
    for item_id in todo:
        shape = store.item(item_id).image.shape
        if shape[:2] != (res, res):
            raise AnnotationError(f"item {item_id!r} is {shape[1]}x{shape[0]}, the generator makes {res}x{res}; "
                                  "resize the images and labels to the generator's resolution first")
    batches = range(0, len(todo), batch)
    bar = tqdm(total=len(batches) * (config.w_steps + config.wplus_steps), disable=not progress, unit="step",
               desc=f"invert {len(todo)} images")

    def step(phase, i, steps, loss):
        bar.update(1)
        bar.set_postfix_str(f"{phase} loss {loss:.4f}")

    for start in batches:
        ids = todo[start:start + batch]
        real = np.stack([store.item(i).image for i in ids])
        targets = torch.from_numpy(real).permute(0, 3, 1, 2).float() / 127.5 - 1
        t0 = time.perf_counter()
        result = invert(G, targets, config, D=D, progress=step)
        latents = [Latent(result.ws[k], "random", {name: v[k:k + 1] for name, v in result.noise.items()})
                   for k in range(len(ids))]
        # one at a time, as AnnotationSet.validate regenerates them (batch layout changes the last float bits)
        images = np.concatenate([to_uint8(synthesize_latents(G, [latent])) for latent in latents])
        final = psnr(images, real)
        for k, item_id in enumerate(ids):
            store.set_latent(item_id, latents[k], images[k])
            report["items"][item_id] = {"psnr_w": round(float(result.psnr_w[k]), 3),
                                        "psnr": round(float(final[k]), 3)}
        report["seconds"] = round(report.get("seconds", 0) + time.perf_counter() - t0, 1)
        _summarise(report)
        write_json(report_path, report)
    bar.close()
    if not todo and not report_path.is_file():
        write_json(report_path, _summarise(report))
    return report


def _summarise(report: dict) -> dict:
    items = report["items"].values()
    if items:
        report["mean_psnr_w"] = round(float(np.mean([r["psnr_w"] for r in items])), 3)
        report["mean_psnr"] = round(float(np.mean([r["psnr"] for r in items])), 3)
    return report


def invert_labeled_dataset(G, dataset_dir: str | Path, project_dir: str | Path, *,
                           config: InversionConfig | None = None, D=None, generator: str | None = None,
                           batch: int = 16, limit: int | None = None, progress: bool = True) -> AnnotationSet:
    """An AnnotationSet at ``project_dir`` whose items are the samples of the LabeledDataset ``dataset_dir``,
    inverted into ``G``: the generator's reconstructions paired with the real labels and keypoints.

    Creates the store on the first call; a rerun resumes (samples already imported are kept, items already
    inverted are skipped). ``generator``: the checkpoint name recorded in the store. ``limit``: only the first
    ``limit`` samples (a subset of a large split).
    """
    dataset = LabeledDataset(dataset_dir)
    store = open_project(project_dir, dataset.schema, generator)
    have = set(store.ids)
    for i in range(len(dataset) if limit is None else min(limit, len(dataset))):
        image, label, meta = dataset[i]
        if meta["id"] not in have:
            store.add(meta["id"], None, image, label, keypoints=meta.get("keypoints"),
                      meta={"source": str(Path(dataset_dir).resolve())})
    invert_annotations(G, store, config, D=D, batch=batch, progress=progress)
    return store
