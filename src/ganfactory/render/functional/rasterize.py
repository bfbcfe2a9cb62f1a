"""Z-buffer rasterisation: which face covers each pixel, and differentiable barycentrics.

DIB-R splits rasterisation in two: choosing the visible face is a discrete decision made without
gradient; the barycentric weights of the chosen face are a smooth function of its corner positions, and
that is where gradients reach the vertices. So ``select_faces`` runs under ``no_grad`` and
``barycentrics`` recomputes the weights differentiably for the covered pixels only.

Two implementations of ``select_faces`` give identical results:

- ``"dense"``, the reference and the spec: every face against every pixel, memory F x H x W per image.
- ``"binned"``, the fast path: each face is expanded into the pixels of its bounding box only
  (``repeat_interleave`` over per-face pixel counts), the coverage test runs on those (face, pixel)
  pairs, and a scatter ``amax`` on depth followed by a scatter ``amin`` on face index is the z-buffer.
  Cost grows with the pixels the faces' boxes cover, not with faces x pixels.

Conventions (NDC, pixel centres, the half-open bounding-box rule, depth order) are in
``ganfactory.render.conventions``.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ganfactory.render.conventions import BARY_EPS, SCREEN_MULTIPLIER, pixel_centers
from ganfactory.render.functional.gather import Covered, gather_rows

__all__ = ["select_faces", "barycentrics", "barycentrics_at", "count_below", "box_ranges", "expand_ranges",
           "expand_spans", "box_pixel_pairs", "IMPLS"]

IMPLS = ("binned", "dense")


def _check_faces(face_vertices_image: Tensor, face_vertices_z: Tensor) -> tuple[int, int]:
    if face_vertices_image.ndim != 4 or face_vertices_image.shape[2:] != (3, 2):
        raise ValueError(f"face_vertices_image must be [B, F, 3, 2], got {tuple(face_vertices_image.shape)}")
    B, F = face_vertices_image.shape[:2]
    if face_vertices_z.shape != (B, F, 3):
        raise ValueError(f"face_vertices_z must be [{B}, {F}, 3], got {tuple(face_vertices_z.shape)}")
    return B, F


def _edge_weights(v: Tensor, px: Tensor, py: Tensor, eps: float) -> Tensor:
    """Barycentric weights [..., 3] of points (px, py) [...] in triangles v [..., 3, 2] (scaled units).

    ``w_k`` is the signed area opposite corner k over the signed total, with ``eps`` added to the total
    with its sign (kaolin's formula, so that both windings work and degenerate faces stay finite).
    """
    ax, ay = v[..., 0, 0] - px, v[..., 0, 1] - py
    bx, by = v[..., 1, 0] - px, v[..., 1, 1] - py
    cx, cy = v[..., 2, 0] - px, v[..., 2, 1] - py
    w0 = bx * cy - by * cx
    w1 = cx * ay - cy * ax
    w2 = ax * by - ay * bx
    norm = w0 + w1 + w2
    norm = norm + torch.copysign(norm.new_tensor(eps), norm)
    return torch.stack([w0 / norm, w1 / norm, w2 / norm], dim=-1)


def count_below(grid: Tensor, values: Tensor, inclusive: bool = False) -> Tensor:
    """How many entries of ``grid`` [n] (increasing, evenly spaced) are < ``values`` (<= when inclusive).

    The same int64 counts as ``torch.searchsorted(grid, values, side="right" if inclusive else "left")``,
    NaN counting as above everything as there, but by arithmetic: the even spacing gives an estimate
    that rounding can put one entry off, and one comparison with each neighbour corrects it. On the CPU
    this is several times faster than the binary search (pixel centres are evenly spaced).
    """
    n = grid.shape[0]
    if n < 2:
        return torch.searchsorted(grid, values.contiguous(), side="right" if inclusive else "left")
    step = (grid[-1] - grid[0]) / (n - 1)
    estimate = torch.ceil((values - grid[0]) / step).nan_to_num_(nan=n).clamp_(0, n).long()
    # grid with -inf and +inf at the ends: entry k of ``padded`` is grid[k - 1].
    padded = torch.cat([grid.new_full((1,), -torch.inf), grid, grid.new_full((1,), torch.inf)])

    def below(g: Tensor) -> Tensor:
        return g <= values if inclusive else g < values

    k = estimate - (~below(padded.index_select(0, estimate))).long()  # grid[k - 1] not below: one fewer
    k = k + below(padded.index_select(0, k + 1)).long()  # grid[k] below: one more
    return torch.where(torch.isnan(values), n, k.clamp_(0, n))


def box_ranges(lo: Tensor, hi: Tensor, xs: Tensor, ys: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Pixel ranges [i_lo, i_hi) x [j_lo, j_hi) whose centres lie in boxes (half-open on the max side).

    Args:
        lo, hi: [N, 2] box corners (x, y) in the units of ``xs``/``ys``.
        xs: [W] increasing, evenly spaced pixel-centre x; ys: [H] decreasing, evenly spaced pixel-centre y.
    Returns:
        i_lo, i_hi, j_lo, j_hi [N] int64 with i_hi >= i_lo and j_hi >= j_lo.
    """
    # Column i is inside when lo_x <= xs[i] < hi_x: the columns from (count of xs < lo_x) on, up to
    # (count of xs < hi_x).
    i_lo = count_below(xs, lo[:, 0])
    i_hi = count_below(xs, hi[:, 0])
    # Row j is inside when lo_y <= ys[j] < hi_y, i.e. -hi_y < -ys[j] <= -lo_y on the increasing -ys.
    neg_ys = -ys
    j_lo = count_below(neg_ys, -hi[:, 1], inclusive=True)
    j_hi = count_below(neg_ys, -lo[:, 1], inclusive=True)
    return i_lo, torch.maximum(i_hi, i_lo), j_lo, torch.maximum(j_hi, j_lo)


def expand_ranges(
    i_lo: Tensor, i_hi: Tensor, j_lo: Tensor, j_hi: Tensor, valid: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """All (box, row, col) of the pixel ranges, ordered by box then row then column.

    Two ``expand_spans``: boxes into (box, row) spans, spans into pixels. Work and memory are the number
    of pairs, with no Python loop over boxes and no integer division per pair.
    """
    if valid is not None:
        j_hi = torch.where(valid, j_hi, j_lo)
    span_box, row = expand_spans(j_lo, j_hi)
    span, col = expand_spans(i_lo.index_select(0, span_box), i_hi.index_select(0, span_box))
    return span_box.index_select(0, span), row.index_select(0, span), col


def expand_spans(lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
    """All (span, k) with lo[span] <= k < hi[span] for int64 spans [N], ordered by span then k.

    Requires hi >= lo. One ``repeat_interleave`` and one gather: k is the pair's position plus the
    span's offset ``lo - start``.
    """
    counts = hi - lo
    span = torch.repeat_interleave(torch.arange(lo.shape[0], device=lo.device), counts)
    offset = lo - (torch.cumsum(counts, 0) - counts)
    return span, torch.arange(span.shape[0], device=lo.device) + offset.index_select(0, span)


def box_pixel_pairs(
    lo: Tensor, hi: Tensor, xs: Tensor, ys: Tensor, valid: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Expand boxes [N, 2] into the (box, row, col) pixels whose centres lie inside them."""
    return expand_ranges(*box_ranges(lo, hi, xs, ys), valid)


@torch.no_grad()
def select_faces(
    face_vertices_image: Tensor,
    face_vertices_z: Tensor,
    height: int,
    width: int,
    valid_faces: Tensor | None = None,
    impl: str = "binned",
    multiplier: float = SCREEN_MULTIPLIER,
    eps: float = BARY_EPS,
) -> Tensor:
    """The index of the visible face at every pixel (no gradient).

    Args:
        face_vertices_image: [B, F, 3, 2] NDC corner positions.
        face_vertices_z: [B, F, 3] view-space z of the corners (larger is nearer).
        valid_faces: [B, F] bool, faces that may be drawn (culling); None for all.
        impl: "binned" (fast) or "dense" (reference); identical results.
    Returns:
        face_idx [B, H, W] int64, -1 where no face covers the pixel.
    """
    B, F = _check_faces(face_vertices_image, face_vertices_z)
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    fv = face_vertices_image * multiplier
    xs, ys = pixel_centers(height, width, fv.dtype, fv.device, multiplier)
    if valid_faces is None:
        valid_faces = torch.ones(B, F, dtype=torch.bool, device=fv.device)
    if valid_faces.shape != (B, F):
        raise ValueError(f"valid_faces must be [{B}, {F}], got {tuple(valid_faces.shape)}")
    if impl == "dense":
        return _select_dense(fv, face_vertices_z, xs, ys, valid_faces, eps)
    return _select_binned(fv, face_vertices_z, xs, ys, valid_faces, eps)


def corner_bounds(v: Tensor) -> tuple[Tensor, Tensor]:
    """Bounding boxes (lo, hi) [..., 2] of triangles v [..., 3, 2].

    Elementwise minima of the corners rather than ``amin(-2)``: a reduction over the middle axis runs
    about 10x slower on the CPU, and min/max are exact either way.
    """
    lo = torch.minimum(torch.minimum(v[..., 0, :], v[..., 1, :]), v[..., 2, :])
    hi = torch.maximum(torch.maximum(v[..., 0, :], v[..., 1, :]), v[..., 2, :])
    return lo, hi


def row_extents(v: Tensor, y: Tensor, tol: Tensor) -> tuple[Tensor, Tensor]:
    """A conservative x-range [x_lo, x_hi] [S] of triangles ``v`` [S, 3, 2] on the lines ``y`` [S].

    The exact x-range of each triangle's intersection with the band ``|y' - y| <= tol`` [S] (the x-range of
    its edges clipped to the band), so it contains every point of the line that rounding could put inside
    the triangle when ``tol`` exceeds the rounding error. Empty (x_lo = inf, x_hi = -inf) when the band
    misses the triangle; NaN when a corner is not finite.
    """
    px, py = v[:, :, 0], v[:, :, 1]
    end = v.roll(-1, dims=1)
    dx, dy = end[:, :, 0] - px, end[:, :, 1] - py
    y, tol = y[:, None], tol[:, None]
    flat = dy == 0
    safe = torch.where(flat, 1.0, dy)
    t_a = torch.where(flat, 0.0, ((y - tol - py) / safe).clamp(0, 1))
    t_b = torch.where(flat, 1.0, ((y + tol - py) / safe).clamp(0, 1))
    x_a, x_b = px + t_a * dx, px + t_b * dx
    hits = (y + tol >= torch.minimum(py, end[:, :, 1])) & (y - tol <= torch.maximum(py, end[:, :, 1]))
    x_lo = torch.where(hits, torch.minimum(x_a, x_b), torch.inf).amin(1)
    x_hi = torch.where(hits, torch.maximum(x_a, x_b), -torch.inf).amax(1)
    return x_lo, x_hi


def _select_binned(fv: Tensor, fz: Tensor, xs: Tensor, ys: Tensor, valid: Tensor, eps: float) -> Tensor:
    B, F = fv.shape[:2]
    H, W = ys.shape[0], xs.shape[0]
    # Only the faces that may be drawn (culling removes about half) are binned. ``index_select`` rather
    # than ``tensor[index]`` throughout: on the CPU the generic indexing kernel is several times slower.
    drawn = torch.nonzero(valid.reshape(-1)).squeeze(1)
    flat = fv.reshape(B * F, 3, 2).index_select(0, drawn)
    lo, hi = corner_bounds(flat)
    i_lo, i_hi, j_lo, j_hi = box_ranges(lo, hi, xs, ys)
    # Each face's box rows, each narrowed to the columns near the triangle on that row: the box test
    # alone sent about 2.5 candidates per covered pixel to the barycentric test below, which decides.
    # The margin is far above the rounding of that test (a millionth of a pixel and of the coordinates).
    span_face, row = expand_spans(j_lo, j_hi)
    v = flat.index_select(0, span_face)
    pixel = (xs[-1] - xs[0]).abs() / max(W - 1, 1) if W > 1 else v.new_tensor(1.0)
    tol = 1e-3 * pixel + 1e-5 * torch.maximum(lo.abs(), hi.abs()).amax(1).index_select(0, span_face)
    x_lo, x_hi = row_extents(v, ys.index_select(0, row), tol)
    box_lo, box_hi = i_lo.index_select(0, span_face), i_hi.index_select(0, span_face)
    unknown = torch.isnan(x_lo) | torch.isnan(x_hi)
    c_lo = torch.where(unknown, box_lo, torch.maximum(box_lo, count_below(xs, x_lo - tol)))
    c_hi = torch.where(unknown, box_hi, torch.minimum(box_hi, count_below(xs, x_hi + tol, inclusive=True)))
    span, col = expand_spans(c_lo, torch.maximum(c_hi, c_lo))
    box, row = span_face.index_select(0, span), row.index_select(0, span)
    w = _edge_weights(flat.index_select(0, box), xs.index_select(0, col), ys.index_select(0, row), eps)
    inside = torch.nonzero((w >= 0).all(-1)).squeeze(1)
    box = drawn.index_select(0, box.index_select(0, inside))
    row, col, w = row.index_select(0, inside), col.index_select(0, inside), w.index_select(0, inside)
    # ``fz`` is usually a strided view (``fvv[..., 2]``): gathering from a copy is >10x faster.
    z = (w * fz.reshape(B * F, 3).contiguous().index_select(0, box)).sum(-1)
    b = torch.div(box, F, rounding_mode="floor")
    pix = (b * H + row) * W + col
    zmax = torch.full((B * H * W,), -torch.inf, dtype=z.dtype, device=z.device)
    zmax.scatter_reduce_(0, pix, z, "amax")
    win = torch.nonzero(z == zmax.index_select(0, pix)).squeeze(1)
    pix, b, box = pix.index_select(0, win), b.index_select(0, win), box.index_select(0, win)
    face = torch.full((B * H * W,), F, dtype=torch.long, device=z.device)
    face.scatter_reduce_(0, pix, box - b * F, "amin")
    face[face == F] = -1
    return face.reshape(B, H, W)


DENSE_CHUNK = 1 << 22
"""Face-by-pixel elements the dense reference evaluates at once (it walks faces in chunks of this many
pixels' worth, so that its memory stays bounded while its work stays F x H x W)."""


def dense_face_chunks(num_faces: int, num_pixels: int) -> list[tuple[int, int]]:
    """Consecutive face ranges of at most DENSE_CHUNK face-pixel elements each."""
    step = max(1, DENSE_CHUNK // max(1, num_pixels))
    return [(s, min(s + step, num_faces)) for s in range(0, num_faces, step)]


def _select_dense(fv: Tensor, fz: Tensor, xs: Tensor, ys: Tensor, valid: Tensor, eps: float) -> Tensor:
    """Every face against every pixel (one image and one chunk of faces at a time): the spec."""
    B, F = fv.shape[:2]
    H, W = ys.shape[0], xs.shape[0]
    out = []
    for b in range(B):
        best_z = torch.full((H, W), -torch.inf, dtype=fv.dtype, device=fv.device)
        best = torch.full((H, W), -1, dtype=torch.long, device=fv.device)
        for s, e in dense_face_chunks(F, H * W):
            n = e - s
            px = xs.view(1, 1, W).expand(n, H, W)
            py = ys.view(1, H, 1).expand(n, H, W)
            v = fv[b, s:e]
            lo, hi = corner_bounds(v)
            in_box = ((px >= lo[:, 0, None, None]) & (px < hi[:, 0, None, None])
                      & (py >= lo[:, 1, None, None]) & (py < hi[:, 1, None, None]))
            w = _edge_weights(v.view(n, 1, 1, 3, 2), px, py, eps)
            hit = in_box & (w >= 0).all(-1) & valid[b, s:e].view(n, 1, 1)
            z = (w * fz[b, s:e].view(n, 1, 1, 3)).sum(-1)
            z = torch.where(hit, z, torch.full_like(z, -torch.inf))
            zmax = z.amax(0)
            # First face (lowest index) among this chunk's winners; a later chunk must be strictly nearer.
            first = torch.where(hit & (z == zmax), torch.arange(s, e, device=fv.device).view(n, 1, 1), F).amin(0)
            better = (first < F) & (zmax > best_z)
            best = torch.where(better, first, best)
            best_z = torch.where(better, zmax, best_z)
        out.append(best)
    return torch.stack(out)


class _ScreenBarycentrics(torch.autograd.Function):
    """``_edge_weights`` of scaled corners ``v`` [P, 3, 2] at fixed points, with the backward written out.

    With a = v0 - p, b = v1 - p, c = v2 - p the raw weights are w0 = b x c, w1 = c x a, w2 = a x b
    (2-D cross products) and the output is w_k / n with n = w0 + w1 + w2 + eps sign(n), so
    dL/dw_k = (g_k - sum_j g_j out_j) / n, and each raw weight is bilinear in two corners.
    """

    @staticmethod
    def forward(ctx, v: Tensor, px: Tensor, py: Tensor, eps: float) -> Tensor:
        ax, ay = v[:, 0, 0] - px, v[:, 0, 1] - py
        bx, by = v[:, 1, 0] - px, v[:, 1, 1] - py
        cx, cy = v[:, 2, 0] - px, v[:, 2, 1] - py
        norm = (bx * cy - by * cx) + (cx * ay - cy * ax) + (ax * by - ay * bx)
        norm = norm + torch.copysign(norm.new_tensor(eps), norm)
        out = torch.stack([(bx * cy - by * cx) / norm, (cx * ay - cy * ax) / norm, (ax * by - ay * bx) / norm], -1)
        ctx.save_for_backward(v, px, py, norm, out)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        v, px, py, norm, out = ctx.saved_tensors
        ax, ay = v[:, 0, 0] - px, v[:, 0, 1] - py
        bx, by = v[:, 1, 0] - px, v[:, 1, 1] - py
        cx, cy = v[:, 2, 0] - px, v[:, 2, 1] - py
        dot = grad[:, :1] * out[:, :1] + grad[:, 1:2] * out[:, 1:2] + grad[:, 2:] * out[:, 2:]  # faster than sum
        gw = (grad - dot) / norm.unsqueeze(-1)
        g0, g1, g2 = gw.unbind(-1)
        grad_v = torch.stack([
            torch.stack([g2 * by - g1 * cy, g1 * cx - g2 * bx], -1),
            torch.stack([g0 * cy - g2 * ay, g2 * ax - g0 * cx], -1),
            torch.stack([g1 * ay - g0 * by, g0 * bx - g1 * ax], -1)], 1)
        return grad_v, None, None, None


def barycentrics_at(
    face_vertices_image: Tensor,
    pixels: Covered,
    multiplier: float = SCREEN_MULTIPLIER,
    eps: float = BARY_EPS,
) -> Tensor:
    """Screen-space barycentrics [P, 3] of the drawn face at each covered pixel, differentiable."""
    B, H, W = pixels.shape
    F = face_vertices_image.shape[1]
    xs, ys = pixel_centers(H, W, face_vertices_image.dtype, face_vertices_image.device, multiplier)
    local = pixels.pixel - pixels.batch * (H * W)
    row, col = torch.div(local, W, rounding_mode="floor"), local % W
    # Gather the corners, then scale: the gather's backward is then a scatter of the corner gradients.
    v = gather_rows(face_vertices_image.reshape(B * F, 3, 2), pixels.batch * F + pixels.face) * multiplier
    return _ScreenBarycentrics.apply(v, xs.index_select(0, col), ys.index_select(0, row), eps)


def barycentrics(
    face_vertices_image: Tensor,
    face_idx: Tensor,
    multiplier: float = SCREEN_MULTIPLIER,
    eps: float = BARY_EPS,
) -> Tensor:
    """Screen-space barycentrics of the selected face at each covered pixel, differentiable.

    Args:
        face_vertices_image: [B, F, 3, 2] NDC corner positions (gradients flow to these).
        face_idx: [B, H, W] int64 from ``select_faces``.
    Returns:
        bary [B, H, W, 3]; zeros where face_idx is -1.
    """
    pixels = Covered.of(face_idx)
    return pixels.spread(barycentrics_at(face_vertices_image, pixels, multiplier, eps))
