"""DIB-R's soft silhouette: how uncovered pixels learn where the mesh should grow.

A covered pixel has mask 1 and no gradient. An uncovered pixel looks at the faces whose 2D bounding box,
grown by ``boxlen``, contains it (the first ``knum`` in face order), takes for each the squared distance
``d2`` to the nearest edge segment or corner, and combines them as ``1 - prod(1 - exp(-sigmainv d2))``.
These are kaolin's semantics and defaults; coordinates are scaled by ``multiplier`` first, as kaolin's
kernels do, and kaolin's small constants sit where kaolin puts them (``KAOLIN_EPS`` in the line-distance
denominator, ``PROD_EPS`` in the product rule), so that values and gradients match kaolin's CUDA output
to float64 rounding.

Two implementations: ``"binned"`` builds only the (uncovered pixel, nearby face) pairs from each face's
box and differentiates them with a hand-written backward (``_SoftMask``); ``"dense"`` (the reference)
finds them by testing every face at every pixel, ranks them with a running count instead of a sort, and
lets autograd differentiate the distances. Both have the same values and gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ganfactory.render.conventions import SCREEN_MULTIPLIER, pixel_centers
from ganfactory.render.functional.gather import scatter_add_rows
from ganfactory.render.functional.rasterize import (
    IMPLS,
    box_ranges,
    corner_bounds,
    dense_face_chunks,
    expand_ranges,
)

__all__ = ["soft_silhouette", "point_face_sq_distance", "KAOLIN_EPS", "PROD_EPS"]

KAOLIN_EPS = 1e-7
"""kaolin's EPS in the point-to-line distance denominator (scaled units)."""

PROD_EPS = 1e-10
"""kaolin's EPS in the product rule's ``1 - p_k`` (backward only)."""


def _candidate_sq_distances(v: Tensor, px: Tensor, py: Tensor, multiplier: float) -> Tensor:
    """The six candidates [..., 6] of ``point_face_sq_distance``: three edges, then three corners."""
    dists = []
    for i in range(3):
        x1, y1 = v[..., i, 0], v[..., i, 1]
        x2, y2 = v[..., (i + 1) % 3, 0], v[..., (i + 1) % 3, 1]
        A = y2 - y1
        B = x1 - x2
        C = x2 * y1 - x1 * y2
        up = A * px + B * py + C
        down = A * A + B * B + KAOLIN_EPS
        with torch.no_grad():
            x3 = (B * B * px - A * B * py - A * C) / down
            y3 = (A * A * py - A * B * px - B * C) / down
            outside = (x3 - x1) * (x3 - x2) + (y3 - y1) * (y3 - y2) > 0
        far = torch.full_like(up, 4 * multiplier * multiplier)
        dists.append(torch.where(outside, far, up * up / down))
    for i in range(3):
        dists.append((px - v[..., i, 0]) ** 2 + (py - v[..., i, 1]) ** 2)
    return torch.stack(dists, -1)


def point_face_sq_distance(v: Tensor, px: Tensor, py: Tensor, multiplier: float) -> Tensor:
    """Squared distance [...] from points (px, py) [...] to the edges and corners of triangles v [..., 3, 2].

    Units are the scaled ones of the inputs. An edge counts only when the foot of the perpendicular falls
    inside the segment; otherwise it contributes ``4 multiplier^2`` (kaolin's "bad triangle" value), and
    the corners cover that case. The minimum is differentiable almost everywhere (autograd: this is the
    reference the hand-written backward of the binned path is tested against).
    """
    return _first_min(_candidate_sq_distances(v, px, py, multiplier))


def _first_min(d: Tensor) -> Tensor:
    """Minimum over the last dim whose gradient goes to the first minimum only (kaolin keeps the first)."""
    idx = d.detach().argmin(-1, keepdim=True)
    return d.gather(-1, idx).squeeze(-1)


class _OneMinusProd(torch.autograd.Function):
    """``1 - prod_k (1 - p_k)`` over the pairs of each pixel (a scatter product), with kaolin's gradient.

    d/dp_k = prod_{i != k} (1 - p_i), computed as kaolin's backward does: ``prod / (1 - p_k + PROD_EPS)``.
    It stays finite when some p_k = 1, and it reproduces kaolin's CUDA gradients to float64 rounding.
    """

    @staticmethod
    def forward(ctx, p: Tensor, pix: Tensor, num_pixels: int) -> Tensor:
        q = 1.0 - p
        prod = torch.ones(num_pixels, dtype=p.dtype, device=p.device).scatter_reduce(0, pix, q, "prod")
        ctx.save_for_backward(q, pix, prod)
        return 1.0 - prod

    @staticmethod
    def backward(ctx, grad: Tensor):
        q, pix, prod = ctx.saved_tensors
        return (grad * prod)[pix] / (q + PROD_EPS), None, None


class _SoftMask(torch.autograd.Function):
    """The soft mask of (pixel, face) pairs in one function: distance, ``exp``, product, with kaolin's
    gradient written out.

    Forward: ``d2`` the first minimum of the six candidates, ``p = exp(-sigmainv d2 / m^2)``,
    ``mask = 1 - prod(1 - p)`` per pixel. Backward (``_OneMinusProd``'s rule, then the chain):
    ``dL/dp = g prod / (1 - p + PROD_EPS)``, ``dL/dd2 = -dL/dp p sigmainv / m^2``, and the derivative of
    the chosen candidate only: a corner ``|q - v|^2``, or an edge ``up^2 / down`` with
    ``up = A x + B y + C`` (A = y2 - y1, B = x1 - x2, C = x2 y1 - x1 y2) and ``down = A^2 + B^2 + eps``.
    Saves the pairs' indices and two numbers per pair instead of autograd's graph of ~40 tensors.
    """

    @staticmethod
    def forward(ctx, fv: Tensor, box: Tensor, px: Tensor, py: Tensor, pix: Tensor, num_pixels: int,
                sigmainv: float, multiplier: float) -> Tensor:
        v = fv[box]
        d = _candidate_sq_distances(v, px, py, multiplier)
        which = d.argmin(-1, keepdim=True)
        d2 = d.gather(-1, which).squeeze(-1)
        # A chosen "far" edge (foot outside the segment) is a constant: no gradient.
        far = (which.squeeze(-1) < 3) & (d2 == 4 * multiplier * multiplier)
        which = torch.where(far, -1, which.squeeze(-1))
        p = _prob(d2, sigmainv, multiplier)
        q = 1.0 - p
        prod = torch.ones(num_pixels, dtype=p.dtype, device=p.device).scatter_reduce(0, pix, q, "prod")
        ctx.save_for_backward(fv, box, px, py, pix, which, p, prod)
        ctx.sigmainv, ctx.multiplier = sigmainv, multiplier
        return 1.0 - prod

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        fv, box, px, py, pix, which, p, prod = ctx.saved_tensors
        m = ctx.multiplier
        gp = (grad * prod)[pix] / (1.0 - p + PROD_EPS)
        gd = gp * -(p * ctx.sigmainv / m / m)
        v = fv[box]
        grad_v = torch.zeros_like(v)
        for k in range(3):  # corners: d = (x - vx)^2 + (y - vy)^2
            g = torch.where(which == 3 + k, gd, torch.zeros_like(gd))
            grad_v[:, k, 0] += g * -2 * (px - v[:, k, 0])
            grad_v[:, k, 1] += g * -2 * (py - v[:, k, 1])
        for i in range(3):  # edges i -> i + 1: d = up^2 / down
            j = (i + 1) % 3
            x1, y1, x2, y2 = v[:, i, 0], v[:, i, 1], v[:, j, 0], v[:, j, 1]
            A, B = y2 - y1, x1 - x2
            up = A * px + B * py + (x2 * y1 - x1 * y2)
            down = A * A + B * B + KAOLIN_EPS
            g = torch.where(which == i, gd, torch.zeros_like(gd))
            g_up = g * 2 * up / down
            g_down = -g * (up / down) ** 2
            grad_v[:, i, 0] += g_up * (py - y2) + g_down * 2 * B
            grad_v[:, i, 1] += g_up * (x2 - px) - g_down * 2 * A
            grad_v[:, j, 0] += g_up * (y1 - py) - g_down * 2 * B
            grad_v[:, j, 1] += g_up * (px - x1) + g_down * 2 * A
        return scatter_add_rows(box, grad_v, fv.shape[0]), None, None, None, None, None, None, None


def soft_silhouette(
    face_vertices_image: Tensor,
    face_idx: Tensor,
    sigmainv: float = 7000.0,
    boxlen: float = 0.02,
    knum: int = 30,
    multiplier: float = SCREEN_MULTIPLIER,
    impl: str = "binned",
) -> Tensor:
    """DIB-R soft mask.

    Args:
        face_vertices_image: [B, F, 3, 2] NDC corner positions (gradients flow to these).
        face_idx: [B, H, W] int64 visible face per pixel, -1 for none (from ``select_faces``).
        sigmainv: sharpness; boxlen: NDC margin around each face's box; knum: most faces per pixel.
    Returns:
        soft mask [B, H, W] in [0, 1]; 1 (without gradient) where face_idx >= 0.
    """
    if face_vertices_image.ndim != 4 or face_vertices_image.shape[2:] != (3, 2):
        raise ValueError(f"face_vertices_image must be [B, F, 3, 2], got {tuple(face_vertices_image.shape)}")
    B, F = face_vertices_image.shape[:2]
    if face_idx.ndim != 3 or face_idx.shape[0] != B:
        raise ValueError(f"face_idx must be [{B}, H, W], got {tuple(face_idx.shape)}")
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    H, W = face_idx.shape[1:]
    fv = face_vertices_image * multiplier
    xs, ys = pixel_centers(H, W, fv.dtype, fv.device, multiplier)
    covered = face_idx >= 0
    if impl == "dense":
        soft = _soft_dense(fv, covered, xs, ys, sigmainv, boxlen, knum, multiplier)
    else:
        soft = _soft_binned(fv, covered, xs, ys, sigmainv, boxlen, knum, multiplier)
    return torch.where(covered, torch.ones_like(soft), soft)


def _prob(d2: Tensor, sigmainv: float, multiplier: float) -> Tensor:
    # Same operation order as kaolin: sigmainv * d2 / multiplier / multiplier.
    return torch.exp(-(sigmainv * d2 / multiplier / multiplier))


def _soft_binned(fv, covered, xs, ys, sigmainv, boxlen, knum, multiplier) -> Tensor:
    B, F = fv.shape[:2]
    H, W = ys.shape[0], xs.shape[0]
    flat = fv.reshape(B * F, 3, 2)
    with torch.no_grad():
        margin = boxlen * multiplier
        lo, hi = corner_bounds(flat)
        i_lo, i_hi, j_lo, j_hi = box_ranges(lo - margin, hi + margin, xs, ys)
        # Only faces whose grown box holds an uncovered pixel matter: count those pixels with an
        # integral image, so that faces inside the silhouette never expand into pairs.
        free = torch.zeros(B, H + 1, W + 1, dtype=torch.long, device=fv.device)
        free[:, 1:, 1:] = (~covered).long().cumsum(1).cumsum(2)
        fb = torch.arange(B, device=fv.device).repeat_interleave(F)
        n_free = free[fb, j_hi, i_hi] - free[fb, j_lo, i_hi] - free[fb, j_hi, i_lo] + free[fb, j_lo, i_lo]
        box, row, col = expand_ranges(i_lo, i_hi, j_lo, j_hi, n_free > 0)
        b = torch.div(box, F, rounding_mode="floor")
        pix = (b * H + row) * W + col
        keep = ~covered.reshape(-1)[pix]
        box, row, col, pix = box[keep], row[keep], col[keep], pix[keep]
        # Pairs come in face order; a stable sort by pixel keeps that order inside each pixel, so the
        # rank within a pixel says which faces are among its first knum.
        pix, order = torch.sort(pix, stable=True)
        box, row, col = box[order], row[order], col[order]
        _, counts = torch.unique_consecutive(pix, return_counts=True)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.arange(pix.shape[0], device=pix.device) - torch.repeat_interleave(starts, counts)
        keep = rank < knum
        box, row, col, pix = box[keep], row[keep], col[keep], pix[keep]
    return _SoftMask.apply(flat, box, xs[col], ys[row], pix, B * H * W, sigmainv, multiplier).reshape(B, H, W)


def _soft_dense(fv, covered, xs, ys, sigmainv, boxlen, knum, multiplier) -> Tensor:
    """Every face at every pixel (the reference): the box test and the first-knum rule are evaluated
    densely (a running count over faces, chunk by chunk); distances are then taken on the chosen pairs."""
    B, F = fv.shape[:2]
    H, W = ys.shape[0], xs.shape[0]
    margin = boxlen * multiplier
    boxes, rows, cols, pixels = [], [], [], []
    with torch.no_grad():
        for b in range(B):
            seen = torch.zeros(H, W, dtype=torch.long, device=fv.device)
            for s, e in dense_face_chunks(F, H * W):
                n = e - s
                px = xs.view(1, 1, W).expand(n, H, W)
                py = ys.view(1, H, 1).expand(n, H, W)
                lo, hi = corner_bounds(fv[b, s:e])
                lo, hi = lo - margin, hi + margin
                in_box = ((px >= lo[:, 0, None, None]) & (px < hi[:, 0, None, None])
                          & (py >= lo[:, 1, None, None]) & (py < hi[:, 1, None, None])) & ~covered[b]
                rank = seen + torch.cumsum(in_box.long(), 0)  # 1-based rank among faces in index order
                seen = rank[-1]
                f, r, c = torch.nonzero(in_box & (rank <= knum), as_tuple=True)
                boxes.append(b * F + s + f)
                rows.append(r)
                cols.append(c)
                pixels.append((b * H + r) * W + c)
    box, row, col, pix = torch.cat(boxes), torch.cat(rows), torch.cat(cols), torch.cat(pixels)
    d2 = point_face_sq_distance(fv.reshape(B * F, 3, 2)[box], xs[col], ys[row], multiplier)
    p = _prob(d2, sigmainv, multiplier)
    return _OneMinusProd.apply(p, pix, B * H * W).reshape(B, H, W)
