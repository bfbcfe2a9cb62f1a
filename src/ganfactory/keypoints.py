"""Keypoints: the one representation in memory, its one spelling on disk, and the operations every part shares.

On disk and in JSON (AnnotationSet items, LabeledDataset meta lines, the annotator's API) a keypoint is a row
``[x, y, visible]``: pixels with pixel centres at integers (OpenCV), ``visible`` 0 or 1, and ``[null, null, 0]``
when the point is unavailable. In memory (training data, predictions, metrics) the keypoints of an image are a
float array ``[K, 3]`` of the same columns with NaN x and y for an unavailable point. ``keypoints_from_rows`` and
``keypoints_to_rows`` are the only conversions between the two.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["keypoints_from_rows", "keypoints_to_rows", "refine_peaks", "scale_keypoints"]


def keypoints_from_rows(rows: Sequence[Sequence[float | None]] | None, dtype=np.float64) -> np.ndarray:
    """JSON rows ``[x, y, visible]`` (None = unavailable) -> [K, 3] array with NaN positions (K = 0 for None)."""
    return np.array([[np.nan if p[0] is None else p[0], np.nan if p[1] is None else p[1], p[2]]
                     for p in rows or ()], dtype).reshape(-1, 3)


def keypoints_to_rows(points: np.ndarray, decimals: int | None = None) -> list[list]:
    """[K, 3] array (NaN = unavailable) -> JSON rows ``[x, y, visible]``, ``[None, None, 0]`` where unavailable;
    positions rounded to ``decimals`` when given."""
    rows = []
    for x, y, v in np.asarray(points).reshape(-1, 3).tolist():
        if np.isnan(x) or np.isnan(y):
            rows.append([None, None, 0])
        elif decimals is None:
            rows.append([float(x), float(y), int(v)])
        else:
            rows.append([round(float(x), decimals), round(float(y), decimals), int(v)])
    return rows


def scale_keypoints(points: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Positions of [K, >=2] keypoints in an image resized by (sx, sy), scaled about pixel edges (a pixel centre x
    lands on ``(x + 0.5) * sx - 0.5``); NaN stays NaN, the array's dtype is kept, other columns are copied."""
    out = np.array(points, copy=True)
    if out.size:
        out[:, 0] = (out[:, 0] + 0.5) * sx - 0.5
        out[:, 1] = (out[:, 1] + 0.5) * sy - 0.5
    return out


def refine_peaks(heatmaps: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Argmax of each heatmap with sub-pixel refinement: a parabola through the peak and its two neighbours,
    per axis (offset clamped to +-0.5). heatmaps [N, K, H, W] -> (x [N, K], y [N, K], peak value [N, K])."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    peak, idx = flat.max(-1)
    py, px = idx // w, idx % w

    def offset(line: Tensor, i: Tensor, length: int) -> Tensor:
        left = line.gather(-1, (i - 1).clamp_min(0)[..., None])[..., 0]
        right = line.gather(-1, (i + 1).clamp_max(length - 1)[..., None])[..., 0]
        centre = line.gather(-1, i[..., None])[..., 0]
        denom = left - 2 * centre + right
        off = torch.where(denom < 0, 0.5 * (left - right) / denom.clamp_max(-1e-12), torch.zeros_like(denom))
        inside = (i > 0) & (i < length - 1)
        return torch.where(inside, off.clamp(-0.5, 0.5), torch.zeros_like(off))

    hm = heatmaps
    rows = hm.gather(2, py[..., None, None].expand(n, k, 1, w))[:, :, 0]        # [N, K, W]
    cols = hm.gather(3, px[..., None, None].expand(n, k, h, 1))[..., 0]         # [N, K, H]
    x = px.float() + offset(rows, px, w)
    y = py.float() + offset(cols, py, h)
    return x, y, peak
