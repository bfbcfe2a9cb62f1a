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
    expand_spans,
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


def _edges_and_corners(v: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Each face's three edges as start (x1, y1) and end (x2, y2) corners, [N, 3] each: edge i runs
    from corner i to corner i + 1 (mod 3), so the starts are also the corners."""
    x1, y1 = v[:, :, 0], v[:, :, 1]
    end = v.roll(-1, dims=1)
    return x1, y1, end[:, :, 0], end[:, :, 1]


class _SoftMask(torch.autograd.Function):
    """The soft mask of (pixel, face) pairs in one function: distance, ``exp``, product, with kaolin's
    gradient written out.

    Forward: ``d2`` the first minimum of the six candidates, ``p = exp(-sigmainv d2 / m^2)``,
    ``mask = 1 - prod(1 - p)`` per pixel. Backward (``_OneMinusProd``'s rule, then the chain):
    ``dL/dp = g prod / (1 - p + PROD_EPS)``, ``dL/dd2 = -dL/dp p sigmainv / m^2``, and the derivative of
    the chosen candidate only: a corner ``|q - v|^2``, or an edge ``up^2 / down`` with
    ``up = A x + B y + C`` (A = y2 - y1, B = x1 - x2, C = x2 y1 - x1 y2) and ``down = A^2 + B^2 + eps``.
    Saves the pairs' corners and indices and two numbers per pair instead of autograd's graph of ~40 tensors.

    The candidates are those of ``_candidate_sq_distances`` (the reference, same operations in the same
    order, so the same values), evaluated for the three edges at once on [N, 3] tensors; the backward
    gathers the one or two corners of the chosen candidate instead of masking all six.
    """

    @staticmethod
    def forward(ctx, fv: Tensor, box: Tensor, px: Tensor, py: Tensor, pix: Tensor, num_pixels: int,
                sigmainv: float, multiplier: float) -> Tensor:
        v = fv.index_select(0, box)
        x1, y1, x2, y2 = _edges_and_corners(v)
        px3, py3 = px[:, None], py[:, None]
        A = y2 - y1
        B = x1 - x2
        C = x2 * y1 - x1 * y2
        up = A * px3 + B * py3 + C
        down = A * A + B * B + KAOLIN_EPS
        x3 = (B * B * px3 - A * B * py3 - A * C) / down
        y3 = (A * A * py3 - A * B * px3 - B * C) / down
        outside = (x3 - x1) * (x3 - x2) + (y3 - y1) * (y3 - y2) > 0
        far = 4 * multiplier * multiplier
        edges = torch.where(outside, far, up * up / down)
        corners = (px3 - x1) ** 2 + (py3 - y1) ** 2
        d = torch.cat([edges, corners], 1)
        d2, which = d.min(1)
        # A chosen "far" edge (foot outside the segment) is a constant: no gradient.
        which = torch.where((which < 3) & (d2 == far), -1, which)
        p = _prob(d2, sigmainv, multiplier)
        q = 1.0 - p
        prod = torch.ones(num_pixels, dtype=p.dtype, device=p.device).scatter_reduce(0, pix, q, "prod")
        ctx.save_for_backward(v, box, px, py, pix, which, p, prod)
        ctx.sigmainv, ctx.multiplier, ctx.num_faces = sigmainv, multiplier, fv.shape[0]
        return 1.0 - prod

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        v, box, px, py, pix, which, p, prod = ctx.saved_tensors
        m = ctx.multiplier
        gp = (grad * prod).index_select(0, pix) / (1.0 - p + PROD_EPS)
        gd = gp * -(p * ctx.sigmainv / m / m)
        is_corner, is_edge = which >= 3, (which >= 0) & (which < 3)
        # The chosen candidate's first corner: corner k (which = 3 + k) or the start of edge i (which = i).
        k = torch.where(is_corner, which - 3, which).clamp(min=0)
        k2 = torch.remainder(k + 1, 3)
        p1 = v.gather(1, k[:, None, None].expand(-1, 1, 2)).squeeze(1)
        p2 = v.gather(1, k2[:, None, None].expand(-1, 1, 2)).squeeze(1)
        x1, y1, x2, y2 = p1[:, 0], p1[:, 1], p2[:, 0], p2[:, 1]
        # Edge i -> i + 1: d = up^2 / down.
        A, B = y2 - y1, x1 - x2
        up = A * px + B * py + (x2 * y1 - x1 * y2)
        down = A * A + B * B + KAOLIN_EPS
        g_edge = torch.where(is_edge, gd, torch.zeros_like(gd))
        g_up = g_edge * 2 * up / down
        g_down = -g_edge * (up / down) ** 2
        # Corner k: d = (x - vx)^2 + (y - vy)^2.
        g_corner = torch.where(is_corner, gd, torch.zeros_like(gd))
        grad_first = torch.stack([g_up * (py - y2) + g_down * 2 * B + g_corner * -2 * (px - x1),
                                  g_up * (x2 - px) - g_down * 2 * A + g_corner * -2 * (py - y1)], -1)
        grad_second = torch.stack([g_up * (y1 - py) - g_down * 2 * B, g_up * (px - x1) + g_down * 2 * A], -1)
        grad_v = torch.zeros_like(v)
        grad_v.scatter_add_(1, k[:, None, None].expand(-1, 1, 2), grad_first[:, None])
        grad_v.scatter_add_(1, k2[:, None, None].expand(-1, 1, 2), grad_second[:, None])
        return scatter_add_rows(box, grad_v, ctx.num_faces), None, None, None, None, None, None, None


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
        box, row, col, pix = _soft_pairs(flat, covered, xs, ys, boxlen * multiplier, knum)
    px, py = xs.index_select(0, col), ys.index_select(0, row)
    return _SoftMask.apply(flat, box, px, py, pix, B * H * W, sigmainv, multiplier).reshape(B, H, W)


def _soft_pairs(flat: Tensor, covered: Tensor, xs: Tensor, ys: Tensor, margin: float, knum: int):
    """The (face, uncovered pixel) pairs of the soft mask: face ``box`` [N] (into ``flat`` [B * F, 3, 2]),
    ``row``, ``col`` and flat ``pix`` [N], in face order within each pixel, the first ``knum`` per pixel.

    Why in three steps: most faces lie inside the silhouette and most pixels of a boundary face's box
    are covered, so expanding every box into pixels and then dropping the covered ones built about three
    pairs per pair kept. Instead (1) an integral image of the uncovered pixels drops the faces whose
    grown box holds none; (2) the rest expand into (face, row) spans, and each span is trimmed to run
    from its first to its last uncovered pixel (spans with none vanish); (3) the spans expand into
    pixels, and the covered pixels still inside a span (a concave silhouette) are dropped.
    """
    BF = flat.shape[0]
    B, H, W = covered.shape
    F = BF // B
    device = flat.device
    lo, hi = corner_bounds(flat)
    i_lo, i_hi, j_lo, j_hi = box_ranges(lo - margin, hi + margin, xs, ys)
    free = ~covered
    integral = torch.zeros(B, H + 1, W + 1, dtype=torch.long, device=device)
    integral[:, 1:, 1:] = free.long().cumsum(1).cumsum(2)
    table = integral.view(-1)
    at = torch.arange(B, device=device).repeat_interleave(F) * ((H + 1) * (W + 1))
    top, bottom = at + j_lo * (W + 1), at + j_hi * (W + 1)
    n_free = (table.index_select(0, bottom + i_hi) - table.index_select(0, top + i_hi)
              - table.index_select(0, bottom + i_lo) + table.index_select(0, top + i_lo))
    faces = torch.nonzero(n_free > 0).squeeze(1)
    # (face, row) spans; ``first[b, j, i]``: the first uncovered column >= i in row j (W if none);
    # ``end[b, j, i]``: one past the last uncovered column < i (0 if none).
    span_face, span_row = expand_spans(j_lo.index_select(0, faces), j_hi.index_select(0, faces))
    span_face = faces.index_select(0, span_face)
    columns = torch.arange(W + 1, device=device)
    free_at = torch.cat([free, free.new_zeros(B, H, 1)], 2)
    first = torch.where(free_at, columns, W).flip(2).cummin(2).values.flip(2)
    end = torch.cat([columns.new_zeros(B, H, 1), torch.where(free, columns[1:], 0).cummax(2).values], 2)
    row_base = (torch.div(span_face, F, rounding_mode="floor") * H + span_row) * (W + 1)
    c_lo = first.view(-1).index_select(0, row_base + i_lo.index_select(0, span_face))
    c_hi = torch.maximum(end.view(-1).index_select(0, row_base + i_hi.index_select(0, span_face)), c_lo)
    span, col = expand_spans(c_lo, c_hi)
    box, row = span_face.index_select(0, span), span_row.index_select(0, span)
    pix = torch.div(row_base, W + 1, rounding_mode="floor").index_select(0, span) * W + col
    keep = torch.nonzero(free.view(-1).index_select(0, pix)).squeeze(1)
    if keep.shape[0] < pix.shape[0]:
        box, row, col, pix = (t.index_select(0, keep) for t in (box, row, col, pix))
    # Pairs come in face order; when some pixel has more than knum, a stable sort by pixel keeps that
    # order inside each pixel, so the rank within a pixel says which faces are among its first knum.
    if pix.numel() and int(torch.bincount(pix, minlength=B * H * W).max()) > knum:
        pix, order = torch.sort(pix, stable=True)
        box, row, col = box[order], row[order], col[order]
        _, counts = torch.unique_consecutive(pix, return_counts=True)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.arange(pix.shape[0], device=device) - torch.repeat_interleave(starts, counts)
        keep = rank < knum
        box, row, col, pix = box[keep], row[keep], col[keep], pix[keep]
    return box, row, col, pix


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
