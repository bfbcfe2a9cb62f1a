"""The soft silhouette against the rule written out pixel by pixel (including the knum limit)."""

import math

import pytest
import torch

from ganfactory.render import kaolin_compat as K
from ganfactory.render.functional import select_faces, soft_silhouette


def brute_force(fvi, face_idx, sigmainv, boxlen, knum):
    """The rule of tests/fixtures/kaolin-dibr/README.md, one pixel and one face at a time, in NDC."""
    B, F = fvi.shape[:2]
    _, H, W = face_idx.shape
    out = torch.zeros(B, H, W, dtype=torch.float64)
    for b in range(B):
        for j in range(H):
            for i in range(W):
                if face_idx[b, j, i] >= 0:
                    out[b, j, i] = 1.0
                    continue
                x, y = (2 * i + 1 - W) / W, (H - 2 * j - 1) / H
                keep = 1.0
                used = 0
                for f in range(F):
                    v = fvi[b, f].tolist()
                    xs, ys = [p[0] for p in v], [p[1] for p in v]
                    if not (min(xs) - boxlen <= x < max(xs) + boxlen and min(ys) - boxlen <= y < max(ys) + boxlen):
                        continue
                    d2 = min((x - px) ** 2 + (y - py) ** 2 for px, py in v)
                    for k in range(3):
                        (x1, y1), (x2, y2) = v[k], v[(k + 1) % 3]
                        ex, ey = x2 - x1, y2 - y1
                        t = ((x - x1) * ex + (y - y1) * ey) / (ex * ex + ey * ey)
                        if 0 <= t <= 1:
                            d2 = min(d2, (x - x1 - t * ex) ** 2 + (y - y1 - t * ey) ** 2)
                    keep *= 1 - math.exp(-sigmainv * d2)
                    used += 1
                    if used == knum:
                        break
                out[b, j, i] = 1 - keep
    return out


@pytest.mark.parametrize("knum", [2, 30])
def test_soft_mask_follows_the_written_rule(h, knum):
    fvi, fz = h.random_soup(2, 12, seed=7, scale=0.5)
    face_idx = select_faces(fvi, fz, 13, 11)
    ref = brute_force(fvi, face_idx, 200.0, 0.3, knum)
    for impl in ("binned", "dense"):
        got = soft_silhouette(fvi, face_idx, 200.0, 0.3, knum, impl=impl)
        assert (got - ref).abs().max() < 1e-9, impl
    if knum == 2:  # the limit binds somewhere, so this case tests it
        assert (soft_silhouette(fvi, face_idx, 200.0, 0.3, 30) - ref).abs().max() > 1e-3


def test_binned_and_dense_gradients_agree(h):
    fvi, fz = h.random_soup(2, 30, seed=8, scale=0.4)
    face_idx = select_faces(fvi, fz, 24, 20)
    grads = []
    for impl in ("binned", "dense"):
        v = fvi.clone().requires_grad_(True)
        m = soft_silhouette(v, face_idx, 500.0, 0.1, 5, impl=impl)
        (m * torch.linspace(0, 1, 20, dtype=torch.float64)).sum().backward()
        grads.append(v.grad)
    assert torch.allclose(grads[0], grads[1], rtol=0, atol=1e-12) and grads[0].abs().sum() > 0


def test_kaolin_rasterize_interpolates_and_differentiates_like_kaolin(h):
    fvi, fz = h.random_soup(1, 6, seed=9)
    feats = torch.rand(1, 6, 3, 2, dtype=torch.float64, requires_grad=True)
    fvi.requires_grad_(True)
    (image, uv), face_idx = K.rasterize(12, 12, fz, fvi, [feats[..., :1], feats[..., 1:]])
    assert image.shape == (1, 12, 12, 1) and uv.shape == (1, 12, 12, 1)
    assert torch.autograd.gradcheck(lambda v, f: K.rasterize(12, 12, fz, v, f)[0], (fvi, feats))
    assert ((image[0, ..., 0] != 0) <= (face_idx[0] >= 0)).all()
