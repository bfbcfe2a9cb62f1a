"""Icosphere template, topology helpers, inverse-graphics losses, kaolin_compat's small functions."""

import torch

from ganfactory.render import (
    edge_face_pairs,
    edges,
    flatten_loss,
    icosphere,
    masked_l1,
    silhouette_iou_loss,
    uniform_laplacian_loss,
    vertex_adjacency,
)
from ganfactory.render import kaolin_compat as K
from ganfactory.render.functional import face_normals


def test_icosphere_level3_is_dibr_template():
    v, f = icosphere(3)
    assert v.shape == (642, 3) and f.shape == (1280, 3)
    assert torch.allclose(v.norm(dim=1), torch.ones(642))
    e = edges(f)
    assert v.shape[0] - e.shape[0] + f.shape[0] == 2  # Euler characteristic of a sphere
    assert edge_face_pairs(f).shape[0] == e.shape[0]  # closed: every edge has two faces
    # Outward normals (counter-clockwise seen from outside).
    n = face_normals(v[f][None])[0]
    assert ((n * v[f].mean(1)).sum(-1) > 0).all()
    A = vertex_adjacency(642, f)
    assert torch.allclose(torch.sparse.sum(A, 1).to_dense(), torch.ones(642))
    deg = torch.bincount(e.flatten(), minlength=642)
    assert set(deg.tolist()) == {5, 6} and (deg == 5).sum() == 12


def test_laplacian_and_flatten_vanish_on_their_null_spaces():
    v, f = icosphere(2)
    shift = torch.tensor([0.3, -0.2, 0.5]).expand(1, v.shape[0], 3)
    assert uniform_laplacian_loss(shift, f) < 1e-12
    bumpy = torch.zeros(1, v.shape[0], 3)
    bumpy[0, 7, 0] = 1.0
    # One vertex moved by 1 along x, its 5 neighbours have 6 neighbours: residuals 1 and 1/6.
    deg = (edges(f) == 7).any(1).sum()
    expected = (1.0 + deg * (1.0 / 6) ** 2) / (v.shape[0] * 3)
    assert abs(uniform_laplacian_loss(bumpy, f).item() - expected.item()) < 1e-7
    # Equals the kaolin matrix form mean((L d)^2).
    L = K.uniform_laplacian(v.shape[0], f)
    d = torch.randn(1, v.shape[0], 3)
    assert torch.isclose(uniform_laplacian_loss(d, f), ((L @ d[0]) ** 2).mean(), rtol=1e-5)
    # A flat grid has zero flatten loss; folding it does not.
    g = torch.stack(torch.meshgrid(torch.arange(3.0), torch.arange(3.0), indexing="ij"), -1).reshape(-1, 2)
    grid = torch.cat([g, torch.zeros(9, 1)], 1)
    idx = torch.arange(9).view(3, 3)
    faces = torch.cat([torch.stack([idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:]], -1).reshape(-1, 3),
                       torch.stack([idx[:-1, :-1], idx[1:, 1:], idx[:-1, 1:]], -1).reshape(-1, 3)])
    pairs = edge_face_pairs(faces)
    assert flatten_loss(grid[None], pairs, faces) < 1e-12
    folded = grid.clone()
    folded[4, 2] = 1.0
    assert flatten_loss(folded[None], pairs, faces) > 0.01


def test_kaolin_uniform_laplacian_example_and_mask_iou():
    L = K.uniform_laplacian(3, torch.tensor([[0, 1, 2]]))
    assert torch.allclose(L, torch.tensor([[-1.0, 0.5, 0.5], [0.5, -1.0, 0.5], [0.5, 0.5, -1.0]]))
    a = torch.zeros(2, 4, 4)
    b = torch.zeros(2, 4, 4)
    a[:, :2] = 1
    b[:, 1:3] = 1
    # Intersection 4, union 12: IoU 1/3 in both images.
    assert torch.isclose(K.mask_iou(a, b), torch.tensor(2 / 3))
    assert torch.isclose(silhouette_iou_loss(a, b), torch.tensor(2 / 3))


def test_masked_l1_ignores_outside_pixels():
    img = torch.zeros(1, 3, 4, 4)
    tgt = torch.ones(1, 3, 4, 4)
    mask = torch.zeros(1, 4, 4)
    mask[0, 0, 0] = 1.0
    tgt[0, :, 1:] = 100.0
    assert torch.isclose(masked_l1(img, tgt, mask), torch.tensor(1.0))
