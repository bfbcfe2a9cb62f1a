"""The replaced primitives of the binned fast paths against the originals they stand for."""

import pytest
import torch

from ganfactory.render.conventions import pixel_centers
from ganfactory.render.functional import select_faces
from ganfactory.render.functional.rasterize import corner_bounds, count_below, expand_spans
from ganfactory.render.functional.soft_mask import _soft_pairs


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("H, W", [(1, 1), (2, 3), (13, 11), (64, 64), (256, 200)])
def test_count_below_is_searchsorted(dtype, H, W):
    g = torch.Generator().manual_seed(H * W)
    for multiplier in (1.0, 1000.0):
        xs, ys = pixel_centers(H, W, dtype, None, multiplier)
        for grid in (xs, -ys):
            values = torch.cat([
                (torch.rand(3000, generator=g, dtype=dtype) * 3 - 1.5) * multiplier,
                grid, torch.nextafter(grid, grid + 1), torch.nextafter(grid, grid - 1),  # on and beside entries
                torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1e30, -1e30], dtype=dtype)])
            for inclusive in (False, True):
                want = torch.searchsorted(grid, values, side="right" if inclusive else "left")
                assert torch.equal(count_below(grid, values, inclusive), want), (multiplier, inclusive)


def test_expand_spans_lists_every_span_in_order():
    lo = torch.tensor([3, 0, 5, 2, 7])
    hi = torch.tensor([6, 0, 6, 2, 9])
    span, k = expand_spans(lo, hi)
    want = [(s, v) for s in range(5) for v in range(int(lo[s]), int(hi[s]))]
    assert list(zip(span.tolist(), k.tolist(), strict=True)) == want
    assert expand_spans(lo[:0], hi[:0])[0].numel() == 0


def naive_pairs(fv, covered, xs, ys, margin, knum):
    """Every pixel of every grown box, uncovered ones only, the first knum faces per pixel in face order."""
    B, H, W = covered.shape
    F = fv.shape[0] // B
    lo, hi = corner_bounds(fv)
    lo, hi = lo - margin, hi + margin
    pairs, used = [], {}
    for f in range(fv.shape[0]):
        b = f // F
        for j in range(H):
            for i in range(W):
                if covered[b, j, i] or not (lo[f, 0] <= xs[i] < hi[f, 0] and lo[f, 1] <= ys[j] < hi[f, 1]):
                    continue
                pix = (b * H + j) * W + i
                used[pix] = used.get(pix, 0) + 1
                if used[pix] <= knum:
                    pairs.append((pix, f))
    return sorted(pairs)


@pytest.mark.parametrize("knum", [1, 3, 30])
def test_soft_pairs_are_the_boxes_uncovered_pixels(h, knum):
    """The trimmed spans (and the rank step, which knum = 1 and 3 make bind) lose and add no pair."""
    fvi, fz = h.random_soup(2, 40, seed=11, scale=0.5)
    H, W = 17, 15
    covered = select_faces(fvi, fz, H, W) >= 0
    assert covered.any() and (~covered).any()
    m = 1000.0
    xs, ys = pixel_centers(H, W, fvi.dtype, None, m)
    fv = fvi.reshape(-1, 3, 2) * m
    box, row, col, pix = _soft_pairs(fv, covered, xs, ys, 0.1 * m, knum)
    assert torch.equal(pix, (torch.div(box, 40, rounding_mode="floor") * H + row) * W + col)
    got = sorted(zip(pix.tolist(), box.tolist(), strict=True))
    assert got == naive_pairs(fv, covered, xs, ys, 0.1 * m, knum)
    # Within each pixel the pairs keep face order (the product runs in that order).
    for p in pix.unique():
        faces = box[pix == p]
        assert torch.equal(faces, faces.sort().values)
