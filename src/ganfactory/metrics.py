"""Scores of label maps and keypoints, the one definition every part uses: mIoU from a dataset-level confusion
matrix, and PCK (the downstream networks' evaluation, the interpreter's ``predict`` against annotations, the
benchmarks).

Why a dataset-level confusion matrix: averaging per-image IoUs over-weights small images and parts that
are absent from most images (an image without a mirror would score 0 or be skipped, depending on taste).
Summing one matrix over the whole test set and taking IoU per class from it is what DatasetGAN's
evaluation (and semantic-segmentation benchmarks generally) report; background is a class like any other.

PCK follows BENCHMARK.md: a ground-truth-visible keypoint is correct when the prediction lies within
``alpha`` (0.1) times the object's bounding-box size, the size being the longer side of the box around the
ground-truth foreground (label > 0). Hidden or unavailable ground-truth points are not scored; a missing
prediction for a visible point counts as wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ganfactory.errors import GanfactoryError

__all__ = ["confusion_matrix", "iou_from_confusion", "object_size", "pck", "pck_counts", "pixel_metrics",
           "segmentation_scores"]


def confusion_matrix(predicted: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """[C, C] int64 pixel counts: row = true class, column = predicted class.

    predicted, truth: integer label maps of one shape (any number of images); values outside
    ``0..num_classes-1`` are an error (they would silently vanish from the scores).
    """
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    if predicted.shape != truth.shape:
        raise GanfactoryError(f"predicted labels are {list(predicted.shape)}, the truth is {list(truth.shape)}")
    for name, a in (("predicted", predicted), ("true", truth)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise GanfactoryError(f"{name} label ids must be in 0..{num_classes - 1}, got "
                                  f"{int(a.min())}..{int(a.max())}")
    flat = truth.astype(np.int64).ravel() * num_classes + predicted.astype(np.int64).ravel()
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_from_confusion(cm: np.ndarray) -> np.ndarray:
    """[C] float IoU per class: TP / (TP + FP + FN); NaN for a class absent from both truth and prediction."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)


def segmentation_scores(cm: np.ndarray, class_names: Sequence[str]) -> dict:
    """mIoU (mean over classes with a defined IoU, background included), pixel accuracy and per-class IoU
    (null where undefined) of a confusion matrix, as JSON-ready numbers."""
    cm = np.asarray(cm)
    if cm.shape != (len(class_names), len(class_names)):
        raise GanfactoryError(f"confusion matrix is {list(cm.shape)} for {len(class_names)} classes")
    iou = iou_from_confusion(cm)
    defined = iou[~np.isnan(iou)]
    total = cm.sum()
    return {"miou": float(defined.mean()) if defined.size else float("nan"),
            "pixel_accuracy": float(np.trace(cm) / total) if total else float("nan"),
            "per_class_iou": {n: (None if math.isnan(v) else float(v)) for n, v in zip(class_names, iou, strict=True)},
            "confusion": cm.astype(np.int64).tolist()}


def pixel_metrics(predicted: np.ndarray, truth: np.ndarray, class_ids: Sequence[int]) -> dict:
    """Pixel accuracy, mean IoU and per-class IoU of label maps [N, H, W] of uint8 class *ids* (a schema's, in any
    order) against the truth of the same shape: ``segmentation_scores``' definition (one confusion matrix; mean
    over the classes present in the prediction or the truth, background included, as DatasetGAN reports), keyed
    by class id. ``iou`` holds only the classes with a defined IoU."""
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    if predicted.shape != truth.shape:
        raise GanfactoryError(f"predicted labels are {predicted.shape}, the truth is {truth.shape}")
    ids = [int(c) for c in class_ids]
    index = np.full(256, len(ids), np.int64)          # ids outside the list: one extra, unscored class
    index[ids] = np.arange(len(ids))
    cm = confusion_matrix(index[predicted], index[truth], len(ids) + 1)
    iou = iou_from_confusion(cm)[:len(ids)]
    ious = {c: float(v) for c, v in zip(ids, iou, strict=True) if not math.isnan(v)}
    return {"pixel_accuracy": float((predicted == truth).mean()),
            "mean_iou": float(np.mean(list(ious.values()))) if ious else float("nan"), "iou": ious}


def object_size(label: np.ndarray) -> float:
    """The longer side (pixels) of the bounding box of ``label > 0``, counting pixels inclusively (a single
    pixel has size 1); 0 when there is no foreground."""
    ys, xs = np.nonzero(np.asarray(label) > 0)
    if not len(xs):
        return 0.0
    return float(max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1))


def pck_counts(predicted: np.ndarray, truth: np.ndarray, size: float, alpha: float = 0.1) -> tuple[np.ndarray,
                                                                                                   np.ndarray]:
    """Per keypoint of one image: (correct [K] int, scored [K] int).

    predicted: [K, 2 or 3] ``x, y[, visible]`` (NaN = no prediction; a predicted visibility is ignored: the
    point is scored against every visible truth). truth: [K, 3] ``x, y, visible`` (NaN or visible 0 = not
    scored). ``size``: the object's bounding-box size in pixels.
    """
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1, np.asarray(predicted).shape[-1])
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 3)
    if predicted.shape[0] != truth.shape[0]:
        raise GanfactoryError(f"{predicted.shape[0]} predicted keypoints for {truth.shape[0]} true ones")
    scored = (truth[:, 2] > 0) & np.isfinite(truth[:, 0]) & np.isfinite(truth[:, 1])
    dist = np.hypot(predicted[:, 0] - truth[:, 0], predicted[:, 1] - truth[:, 1])
    correct = scored & np.isfinite(dist) & (dist <= alpha * size)
    return correct.astype(np.int64), scored.astype(np.int64)


def pck(predicted: Sequence[np.ndarray], truth: Sequence[np.ndarray], sizes: Sequence[float],
        alpha: float = 0.1) -> dict:
    """PCK over images: the share of scored (visible) true keypoints predicted within ``alpha * size``.

    Returns {"pck": float (NaN without scored points), "per_keypoint": [K] shares (NaN where never scored),
    "correct": int, "scored": int}.
    """
    if not (len(predicted) == len(truth) == len(sizes)):
        raise GanfactoryError("pck needs as many predictions, truths and sizes")
    correct = scored = None
    for p, t, s in zip(predicted, truth, sizes, strict=True):
        c, n = pck_counts(p, t, s, alpha)
        correct = c if correct is None else correct + c
        scored = n if scored is None else scored + n
    if correct is None:
        return {"pck": float("nan"), "per_keypoint": [], "correct": 0, "scored": 0}
    with np.errstate(invalid="ignore", divide="ignore"):
        per = np.where(scored > 0, correct / np.maximum(scored, 1), np.nan)
    total = int(scored.sum())
    return {"pck": float(correct.sum() / total) if total else float("nan"), "per_keypoint": per.tolist(),
            "correct": int(correct.sum()), "scored": total}
