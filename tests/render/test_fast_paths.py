"""The replaced primitives of the binned fast paths against the originals they stand for."""

import pytest
import torch
from torch.autograd import gradcheck

from ganfactory.render import icosphere
from ganfactory.render.conventions import pixel_centers
from ganfactory.render.functional import blinn_phong, face_normals, select_faces, vertex_normals
from ganfactory.render.functional.gather import Covered, gather_rows, scatter_add_rows
from ganfactory.render.functional.interpolate import perspective_weights
from ganfactory.render.functional.rasterize import corner_bounds, count_below, expand_spans
from ganfactory.render.functional.soft_mask import _soft_pairs
from ganfactory.render.functional.vectors import normalize


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


def test_gather_rows_backward_by_gradcheck():
    table = torch.rand(7, 3, 2, dtype=torch.float64, requires_grad=True)
    idx = torch.tensor([0, 3, 3, 6, 1, 0])
    assert torch.equal(gather_rows(table, idx), table[idx])
    assert gradcheck(lambda t: gather_rows(t, idx), (table,))


@pytest.mark.parametrize("seed", range(5))
def test_normalize_equals_torch_and_passes_gradcheck(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(500, 3, generator=g)
    x[0], x[1], x[2] = 0.0, 1e-13, torch.tensor([3e-12, 0.0, 0.0])  # zero, below eps, just above it
    assert torch.equal(normalize(x), torch.nn.functional.normalize(x, dim=-1, eps=1e-12))
    y = torch.randn(40, 2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert gradcheck(normalize, (y,))
    z = x.double().requires_grad_(True)
    w = torch.randn(z.shape, generator=g, dtype=torch.float64)
    (normalize(z) * w).sum().backward()
    want = torch.autograd.grad((torch.nn.functional.normalize(z, dim=-1, eps=1e-12) * w).sum(), z)[0]
    scale = want.abs().amax(-1, keepdim=True)  # per row: the rows below eps have gradients near 1e12
    assert ((z.grad - want).abs() <= 1e-12 * scale).all()


def test_vertex_normals_equal_the_autograd_formula_and_pass_gradcheck():
    v, f = icosphere(1)
    g = torch.Generator().manual_seed(3)
    verts = (v[None].repeat(2, 1, 1) + 0.1 * torch.randn(2, v.shape[0], 3, generator=g)).double()

    def reference(x):  # the former code: face normals by autograd, one row scatter, F.normalize
        B, V = x.shape[:2]
        n = face_normals(x[:, f], unit=False)
        rows = (f.T.reshape(1, -1) + V * torch.arange(B)[:, None]).reshape(-1)
        out = x.new_zeros(B * V, 3).index_put_((rows,), n.repeat(1, 3, 1).reshape(-1, 3), accumulate=True)
        return torch.nn.functional.normalize(out.view(B, V, 3), dim=-1, eps=1e-12)

    assert torch.equal(vertex_normals(verts.float(), f), reference(verts.float()))
    x = verts.clone().requires_grad_(True)
    w = torch.randn(verts.shape, generator=g, dtype=torch.float64)
    (vertex_normals(x, f) * w).sum().backward()
    want = torch.autograd.grad((reference(x) * w).sum(), x)[0]
    assert torch.allclose(x.grad, want, rtol=1e-10, atol=1e-12)
    v0, f0 = icosphere(0)
    x0 = (v0[None] + 0.1 * torch.randn(1, v0.shape[0], 3, generator=g)).double().requires_grad_(True)
    assert gradcheck(lambda t: vertex_normals(t, f0), (x0,))


def test_blinn_phong_matches_the_einsum_formula():
    """The elementwise sums over lights and components against the former einsum/matmul version."""
    g = torch.Generator().manual_seed(5)
    B, P, L = 3, 50, 2
    albedo = torch.rand(B, P, 1, 3, generator=g, dtype=torch.float64)
    n = torch.nn.functional.normalize(torch.randn(B, P, 1, 3, generator=g, dtype=torch.float64), dim=-1)
    view = torch.nn.functional.normalize(torch.randn(B, P, 1, 3, generator=g, dtype=torch.float64), dim=-1)
    light = torch.nn.functional.normalize(torch.randn(B, L, 3, generator=g, dtype=torch.float64), dim=-1)
    diffuse, specular = torch.rand(B, L, 3, generator=g, dtype=torch.float64), torch.rand(B, L, 3, generator=g,
                                                                                           dtype=torch.float64)
    ambient = torch.rand(B, 3, generator=g, dtype=torch.float64)
    nn = n.reshape(B, -1, 3)
    ndotl = torch.einsum("bpk,blk->bpl", nn, light).clamp(min=0)
    h = torch.nn.functional.normalize(view.reshape(B, -1, 1, 3) + light[:, None], dim=-1)
    ndoth = (nn[:, :, None, :] * h).sum(-1).clamp(min=0)
    spec = torch.where(ndotl > 0, ndoth.clamp(min=1e-12) ** 8.0, torch.zeros_like(ndoth))
    want = (albedo.reshape(B, -1, 3) * (ambient[:, None] + ndotl @ diffuse) + spec @ specular).reshape(albedo.shape)
    got = blinn_phong(albedo, n, view, light, diffuse, ambient, specular, 8.0)
    assert torch.allclose(got, want, rtol=1e-12, atol=1e-14)
    assert torch.allclose(blinn_phong(albedo, n, view, light, diffuse, ambient),
                          (albedo.reshape(B, -1, 3) * (ambient[:, None] + ndotl @ diffuse)).reshape(albedo.shape),
                          rtol=1e-12, atol=1e-14)


def adversarial_soup(B, F, H, W, seed, dtype):
    """Triangles that stress the narrowed rows of the binned selection: corners on pixel centres (edges
    through centres, axis-aligned edges), slivers, zero-area faces, huge faces and tiny ones."""
    g = torch.Generator().manual_seed(seed)
    xs, ys = pixel_centers(H, W, dtype, None, 1.0)
    on_centres = torch.stack([xs[torch.randint(0, W, (B, F, 3), generator=g)],
                              ys[torch.randint(0, H, (B, F, 3), generator=g)]], -1)
    k = F // 4
    fvi = on_centres.clone()
    fvi[:, k:2 * k] = torch.rand(B, k, 1, 2, generator=g, dtype=dtype) * 2 - 1 + torch.tensor(
        [[0.0, 0.0], [1.5, 1e-3], [-1.5, -1e-3]], dtype=dtype)  # slivers across the image
    fvi[:, 2 * k:3 * k, 2] = fvi[:, 2 * k:3 * k, 1]  # two corners coincide: zero area
    fvi[:, 3 * k:] = (torch.rand(B, F - 3 * k, 3, 2, generator=g, dtype=dtype) - 0.5) * torch.tensor(
        [1e-3, 40.0], dtype=dtype).repeat_interleave(torch.tensor([(F - 3 * k) // 2, F - 3 * k - (F - 3 * k) // 2]))[
        None, :, None, None]
    fz = -1.0 - 2.0 * torch.rand(B, F, 3, generator=g, dtype=dtype)
    return fvi, fz


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_narrowed_binned_selection_equals_dense_on_adversarial_faces(h, dtype, seed):
    for H, W in [(16, 16), (13, 29)]:
        fvi, fz = adversarial_soup(2, 64, H, W, seed, dtype)
        dense = select_faces(fvi, fz, H, W, impl="dense")
        assert torch.equal(select_faces(fvi, fz, H, W, impl="binned"), dense)
        assert (dense >= 0).any()
    fvi, fz = h.random_soup(2, 300, seed, dtype=dtype, scale=0.3)
    assert torch.equal(select_faces(fvi, fz, 64, 48, impl="binned"), select_faces(fvi, fz, 64, 48, impl="dense"))


@pytest.mark.parametrize("shape", [(1,), (2,), (3,), (6,), (3, 2)])
def test_scatter_add_rows_sums_repeated_rows_for_every_width(shape):
    """Both kernels of add_rows_ (flat scatter_add_ up to 3 numbers a row, index_put_ above)."""
    g = torch.Generator().manual_seed(len(shape) * 10 + shape[0])
    index = torch.randint(0, 7, (200,), generator=g)
    values = torch.randn(200, *shape, generator=g, dtype=torch.float64)
    want = torch.zeros(7, *shape, dtype=torch.float64)
    for i, v in zip(index.tolist(), values, strict=True):
        want[i] += v
    assert torch.allclose(scatter_add_rows(index, values, 7), want, rtol=1e-12, atol=1e-12)
    assert scatter_add_rows(index[:0], values[:0], 7).abs().sum() == 0


def test_perspective_weights_equal_the_formula_and_pass_gradcheck():
    g = torch.Generator().manual_seed(9)
    w = torch.rand(300, 3, generator=g)
    depth = 0.5 + 3 * torch.rand(300, 3, generator=g)
    q = w / depth
    assert torch.equal(perspective_weights(w, depth), q / q.sum(-1, keepdim=True))
    w64 = w[:20].double().requires_grad_(True)
    d64 = depth[:20].double().requires_grad_(True)
    assert gradcheck(perspective_weights, (w64, d64))


def test_spread_fills_background_and_backpropagates_to_the_covered_values():
    face_idx = torch.tensor([[[-1, 0], [2, -1]], [[1, 1], [-1, 0]]])
    px = Covered.of(face_idx)
    values = torch.arange(px.num_pixels * 2, dtype=torch.float64).view(-1, 2).requires_grad_(True)
    out = px.spread(values, fill=-5.0)
    assert torch.equal(out[face_idx < 0], torch.full((3, 2), -5.0, dtype=torch.float64))
    assert torch.equal(out[face_idx >= 0], values.detach())
    weights = torch.randn(out.shape, dtype=torch.float64)
    (out * weights).sum().backward()
    assert torch.equal(values.grad, weights[face_idx >= 0])
