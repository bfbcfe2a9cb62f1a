"""Label chosen latents with an interpreter into a folder people look at: images, label maps, overlays, scores.

Why beside the factory: it is the factory's labelling on a handful of latents (seeds, a ``generate`` run, the items
of an AnnotationSet), written as files for inspection rather than as a LabeledDataset; ``ganfactory interpreter
predict`` is a thin layer over ``predict_to_folder``.

Layout of ``out``::

    NAME.png            the image (at the label resolution when it differs)
    NAME.label.png      mode L, uint8 class ids
    NAME.overlay.png    the image with the classes tinted by the schema's colours
    overlay_grid.png    every overlay in one grid
    scores.json         per NAME: uncertainty, keypoints [K, 3] (label pixels), pixel accuracy against the truth;
                        "summary" (pixel accuracy, mean IoU, per-class IoU) when truths were given
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ganfactory.atomic import write_json
from ganfactory.errors import GanfactoryError
from ganfactory.gan.latent import Latent
from ganfactory.gan.sampling import image_grid, to_uint8
from ganfactory.metrics import pixel_metrics
from ganfactory.report.html import label_overlay

__all__ = ["OVERLAY_ALPHA", "predict_to_folder"]

OVERLAY_ALPHA = 0.5
BATCH = 8


def predict_to_folder(G, interpreter, latents: Sequence[Latent], names: Sequence[str], out: str | Path,
                      truth: dict[str, np.ndarray | None] | None = None) -> dict:
    """Label ``latents`` (named ``names``) with ``interpreter`` on G's device and write ``out`` (see the module
    docstring); returns scores.json's contents. ``truth``: label maps by name to score against (None entries and
    maps of another size are skipped)."""
    if not latents:
        raise GanfactoryError("nothing to label")
    if len(names) != len(latents):
        raise GanfactoryError(f"{len(names)} names for {len(latents)} latents")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    colors = {c.id: c.color for c in interpreter.schema.classes}
    overlays, scores, compared = [], {}, ([], [])
    for start in range(0, len(latents), BATCH):
        img, pred = interpreter.predict(G, latents[start:start + BATCH])
        pixels = to_uint8(img)
        for j, name in enumerate(names[start:start + BATCH]):
            label = pred.labels[j]
            image = pixels[j]
            if image.shape[:2] != label.shape:
                image = np.asarray(Image.fromarray(image).resize(label.shape[::-1], Image.BILINEAR))
            Image.fromarray(image).save(out / f"{name}.png")
            Image.fromarray(label, "L").save(out / f"{name}.label.png")
            ov = label_overlay(image, label, colors, alpha=OVERLAY_ALPHA)
            Image.fromarray(ov).save(out / f"{name}.overlay.png")
            overlays.append(ov)
            scores[name] = {"uncertainty": float(pred.score[j]),
                            "keypoints": None if pred.keypoints is None else pred.keypoints[j].tolist()}
            known = None if truth is None else truth.get(name)
            if known is not None and known.shape == label.shape:
                scores[name]["pixel_accuracy"] = float((known == label).mean())
                compared[0].append(label)
                compared[1].append(known)
    Image.fromarray(image_grid(np.stack(overlays))).save(out / "overlay_grid.png")
    if compared[0]:
        summary = pixel_metrics(np.stack(compared[0]), np.stack(compared[1]), interpreter.schema.class_ids)
        scores = {"summary": {**summary, "items": len(compared[0])}, **scores}
    write_json(out / "scores.json", scores)
    return scores
