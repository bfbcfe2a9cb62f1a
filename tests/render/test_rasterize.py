"""Face selection and barycentrics: binned equals the dense reference; hand-built truths; conventions."""

import pytest
import torch

from ganfactory.render import conventions
from ganfactory.render.functional import barycentrics, interpolate, select_faces
from ganfactory.render.rasterizer import rasterize_mesh


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("H", "W"), [(17, 23), (32, 32)])
def test_binned_equals_dense(h, seed, H, W):
    fvi, fz = h.random_soup(3, 40, seed)
    valid = torch.rand(3, 40, generator=torch.Generator().manual_seed(seed)) > 0.2
    dense = select_faces(fvi, fz, H, W, valid, impl="dense")
    binned = select_faces(fvi, fz, H, W, valid, impl="binned")
    assert torch.equal(dense, binned)
    assert (binned >= 0).any() and (binned == -1).any()


def test_binned_equals_dense_on_sphere_values_and_gradients(h):
    mesh = h.sphere_mesh(2, level=3, dtype=torch.float64)
    cam = h.orbit(2, size=(40, 36), dtype=torch.float64)
    colors = torch.rand(2, mesh.num_verts, 3, dtype=torch.float64)
    outs = []
    for impl in ("binned", "dense"):
        verts = mesh.verts.clone().requires_grad_(True)
        frags = rasterize_mesh(mesh.replace(verts=verts), cam, (40, 36), impl=impl)
        img = interpolate(colors[:, mesh.faces], frags.face_idx, frags.bary)
        (img * torch.linspace(0, 1, 3, dtype=torch.float64)).sum().backward()
        outs.append((frags.face_idx, img.detach(), frags.depth.detach(), verts.grad))
    (fa, ia, da, ga), (fb, ib, db, gb) = outs
    assert torch.equal(fa, fb)
    assert torch.equal(ia, ib) and torch.equal(da, db)
    assert torch.allclose(ga, gb, rtol=0, atol=1e-12) and ga.abs().sum() > 0


def test_hand_built_grid():
    # A right triangle over the left-bottom half of a 4x4 image (NDC corners), CCW.
    fvi = torch.tensor([[[[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]]])
    fz = torch.full((1, 1, 3), -1.0)
    # Pixel centres at +-0.25, +-0.75; covered where x + y <= 0 (on the diagonal a weight is 0, kept).
    expected = torch.tensor([[0, -1, -1, -1], [0, 0, -1, -1], [0, 0, 0, -1], [0, 0, 0, 0]])
    for impl in ("binned", "dense"):
        assert torch.equal(select_faces(fvi, fz, 4, 4, impl=impl)[0], expected)


def test_pixel_centres_and_half_open_box():
    x, y = conventions.pixel_centers(2, 4, torch.float64, multiplier=1.0)
    assert torch.allclose(x, torch.tensor([-0.75, -0.25, 0.25, 0.75], dtype=torch.float64))
    assert torch.allclose(y, torch.tensor([0.5, -0.5], dtype=torch.float64))
    # A triangle whose right edge passes exactly through the centres at x = 0.25: excluded (x < xmax).
    fvi = torch.tensor([[[[-1.0, -1.0], [0.25, -1.0], [0.25, 1.0]]]], dtype=torch.float64)
    idx = select_faces(fvi, torch.full((1, 1, 3), -1.0, dtype=torch.float64), 2, 4)
    assert (idx[0, :, 2] == -1).all()
    assert idx[0, 1, 1] == 0


def test_nearest_wins_and_ties_go_to_lowest_index():
    tri = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [0.0, 1.0]])
    fvi = tri.expand(1, 3, 3, 2).clone()
    fz = torch.tensor([[[-3.0] * 3, [-2.0] * 3, [-2.0] * 3]])
    for impl in ("binned", "dense"):
        idx = select_faces(fvi, fz, 8, 8, impl=impl)
        assert set(idx.unique().tolist()) == {-1, 1}


def test_backface_culling_and_two_sided(h):
    mesh = h.sphere_mesh(1, level=2)
    cam = h.orbit(1)
    visible = rasterize_mesh(mesh, cam, (32, 32)).face_idx.unique()
    flipped = mesh.replace(faces=mesh.faces.flip(1))  # inside out: now the far half faces the camera
    seen_flipped = rasterize_mesh(flipped, cam, (32, 32)).face_idx.unique()
    assert len(set(visible.tolist()) & set(seen_flipped.tolist())) == 1  # only -1 in common
    two = flipped.replace(face_two_sided=torch.ones(mesh.num_faces, dtype=torch.bool))
    # Two-sided faces are never culled: the nearest surface wins again, as without culling.
    a = rasterize_mesh(two, cam, (32, 32)).face_idx
    b = rasterize_mesh(mesh, cam, (32, 32), cull_backfaces=False).face_idx
    assert torch.equal(a, b) and torch.equal(a, rasterize_mesh(mesh, cam, (32, 32)).face_idx)


def test_barycentrics_reproduce_pixel_centres_and_depth_is_perspective_correct(h):
    mesh = h.sphere_mesh(2, level=2, dtype=torch.float64)
    cam = h.orbit(2, size=(24, 24), dtype=torch.float64)
    frags = rasterize_mesh(mesh, cam, (24, 24))
    cov = frags.face_idx >= 0
    # Interpolating the NDC corners with the barycentrics gives the pixel centres.
    xy = interpolate(frags.face_vertices_image, frags.face_idx, frags.bary)
    x, y = conventions.pixel_centers(24, 24, torch.float64, multiplier=1.0)
    X = x.view(1, 1, 24).expand(2, 24, 24)
    Y = y.view(1, 24, 1).expand(2, 24, 24)
    assert torch.allclose(xy[..., 0][cov], X[cov], atol=1e-9)
    assert torch.allclose(xy[..., 1][cov], Y[cov], atol=1e-9)
    # The 3-D point at `depth` along the pixel's ray lies on the face's plane.
    fvv = frags.face_vertices_view
    b = torch.arange(2).view(2, 1, 1)
    corners = fvv[b, frags.face_idx.clamp(min=0)]  # [B, H, W, 3, 3]
    n = torch.linalg.cross(corners[..., 1, :] - corners[..., 0, :], corners[..., 2, :] - corners[..., 0, :])
    H, W = 24, 24
    f = cam.focal[0, 0]
    u = (X + 1) * W / 2 - 0.5  # back from NDC to pixels, then to a ray
    v = (1 - Y) * H / 2 - 0.5
    cx, cy = cam.principal[0]
    ray = torch.stack([(u - cx) / f, -(v - cy) / f, -torch.ones_like(u)], -1)
    p = ray * frags.depth.unsqueeze(-1)
    dist = ((p - corners[..., 0, :]) * torch.nn.functional.normalize(n, dim=-1)).sum(-1)
    assert dist[cov].abs().max() < 1e-9
    assert (frags.depth[~cov] == conventions.BACKGROUND_DEPTH).all()


def test_barycentrics_zero_on_background_and_sum_to_one(h):
    fvi, fz = h.random_soup(2, 10, seed=5)
    idx = select_faces(fvi, fz, 20, 20)
    bary = barycentrics(fvi, idx)
    cov = idx >= 0
    assert torch.allclose(bary.sum(-1)[cov], torch.ones_like(bary.sum(-1)[cov]))
    assert (bary[~cov] == 0).all() and (bary[cov] >= -1e-12).all()
