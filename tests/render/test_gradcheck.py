"""torch.autograd.gradcheck (float64, small meshes) on every differentiable path."""

import pytest
import torch
from torch.autograd import gradcheck

from ganfactory.render import DirectionalLights, Mesh, RasterSettings, Renderer, SHLights, look_at
from ganfactory.render.functional import (
    barycentrics,
    blinn_phong,
    interpolate,
    sample_texture,
    select_faces,
    sh9_irradiance,
    soft_silhouette,
)
from ganfactory.render.functional.gather import blend

D = torch.float64


def test_interpolation_through_barycentrics(h):
    fvi, fz = h.random_soup(1, 6, seed=3)
    idx = select_faces(fvi, fz, 12, 12)
    feats = torch.rand(1, 6, 3, 2, dtype=D, requires_grad=True)
    fvi.requires_grad_(True)
    assert gradcheck(lambda v, f: interpolate(f, idx, barycentrics(v, idx)), (fvi, feats))


@pytest.mark.parametrize("impl", ["binned", "dense"])
def test_soft_silhouette(h, impl):
    fvi, fz = h.random_soup(1, 5, seed=4, scale=0.5)
    idx = select_faces(fvi, fz, 14, 14)
    fvi.requires_grad_(True)
    assert gradcheck(lambda v: soft_silhouette(v, idx, sigmainv=300.0, boxlen=0.3, impl=impl), (fvi,))


def test_texture_sampling():
    tex = torch.rand(1, 2, 5, 7, dtype=D, requires_grad=True)
    uv = (torch.rand(1, 9, 2, dtype=D) * 3 - 1).requires_grad_(True)  # outside [0, 1]: wraps
    assert gradcheck(sample_texture, (tex, uv))


def test_lighting():
    n = torch.nn.functional.normalize(torch.randn(1, 3, 4, 3, dtype=D), dim=-1).requires_grad_(True)
    view = torch.nn.functional.normalize(torch.randn(1, 3, 4, 3, dtype=D) + n.detach() * 2, dim=-1)
    albedo = torch.rand(1, 3, 4, 3, dtype=D, requires_grad=True)
    light = torch.nn.functional.normalize(torch.randn(1, 2, 3, dtype=D), dim=-1).requires_grad_(True)
    diffuse = torch.rand(1, 2, 3, dtype=D, requires_grad=True)
    amb = torch.rand(1, 3, dtype=D, requires_grad=True)
    spec = torch.rand(1, 2, 3, dtype=D, requires_grad=True)
    assert gradcheck(lambda a, nn, l, d, am, s: blinn_phong(a, nn, view, l, d, am, s, 8.0),
                     (albedo, n, light, diffuse, amb, spec))
    coeffs = torch.randn(1, 3, 9, dtype=D, requires_grad=True)
    assert gradcheck(sh9_irradiance, (n, coeffs))


def test_full_render_image_and_soft_mask_wrt_vertices_colours_and_camera(h):
    mesh = h.sphere_mesh(1, level=0, dtype=D)
    colors = torch.rand(1, mesh.num_verts, 3, dtype=D, requires_grad=True)
    verts = (mesh.verts * 0.9).requires_grad_(True)
    renderer = Renderer(RasterSettings((10, 10)))
    lights = DirectionalLights(direction=torch.tensor([[[0.0, 0.6, 0.8]]], dtype=D),
                               diffuse=torch.full((1, 1, 3), 0.7, dtype=D),
                               ambient=torch.full((1, 3), 0.3, dtype=D),
                               specular=torch.full((1, 1, 3), 0.2, dtype=D))

    def render(v, c, az):
        cam = h.orbit(1, size=(10, 10), dtype=D)
        R, t = look_at(az, torch.tensor([0.2], dtype=D), torch.tensor([3.0], dtype=D))
        out = renderer(Mesh(v, mesh.faces, vert_colors=c), cam.replace(R=R, t=t), lights)
        return out.image, out.soft_mask

    az = torch.tensor([0.3], dtype=D, requires_grad=True)
    assert gradcheck(render, (verts, colors, az), atol=1e-6)


def test_sh_render_wrt_coefficients(h):
    mesh = h.sphere_mesh(1, level=1, dtype=D)
    coeffs = torch.randn(1, 9, dtype=D, requires_grad=True)
    renderer = Renderer(RasterSettings((8, 8)))
    cam = h.orbit(1, size=(8, 8), dtype=D)
    assert gradcheck(lambda c: renderer(mesh, cam, SHLights(c)).image, (coeffs,))


def test_blend_backward_by_gradcheck_and_against_autograd_gather():
    g = torch.Generator().manual_seed(0)
    table = torch.rand(7, 4, dtype=D, generator=g, requires_grad=True)
    idx = torch.randint(0, 7, (9, 3), generator=g)  # repeated rows: the scatter must sum them
    w = torch.rand(9, 3, dtype=D, generator=g, requires_grad=True)
    assert gradcheck(blend, (table, idx, w))
    # Against autograd's gather-multiply-sum on a bigger case, values and both gradients.
    table = torch.rand(500, 6, dtype=D, generator=g, requires_grad=True)
    idx = torch.randint(0, 500, (4000, 4), generator=g)
    w = torch.rand(4000, 4, dtype=D, generator=g, requires_grad=True)
    up = torch.rand(4000, 6, dtype=D, generator=g)
    fast = blend(table, idx, w)
    ref = (w.unsqueeze(-1) * table[idx]).sum(1)
    assert torch.allclose(fast, ref, rtol=0, atol=1e-13)
    grads_fast = torch.autograd.grad((fast * up).sum(), (table, w))
    grads_ref = torch.autograd.grad((ref * up).sum(), (table, w))
    for a, b in zip(grads_fast, grads_ref, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-11)


def test_screen_barycentrics_backward_against_autograd(h):
    fvi, fz = h.random_soup(2, 40, seed=11, scale=0.5)
    idx = select_faces(fvi, fz, 20, 24)
    up = torch.rand(2, 20, 24, 3, dtype=D)
    fvi.requires_grad_(True)
    fast = torch.autograd.grad((barycentrics(fvi, idx) * up).sum(), fvi)[0]
    # Reference: the same weights written with autograd ops.
    from ganfactory.render.conventions import pixel_centers
    from ganfactory.render.functional.rasterize import _edge_weights

    xs, ys = pixel_centers(20, 24, D)
    b, r, c = torch.nonzero(idx >= 0, as_tuple=True)
    w = _edge_weights(fvi[b, idx[b, r, c]] * 1000.0, xs[c], ys[r], 1e-8)
    ref = torch.autograd.grad((w * up[b, r, c]).sum(), fvi)[0]
    assert b.numel() > 50 and torch.allclose(fast, ref, rtol=0, atol=1e-12)


def test_full_render_with_an_rgba_texture_wrt_texture_and_vertices(h):
    mesh = h.sphere_mesh(1, level=0, dtype=D)
    faces = mesh.faces
    uvs = torch.rand(faces.shape[0], 3, 2, dtype=D, generator=torch.Generator().manual_seed(1))
    tex = torch.rand(1, 4, 3, 4, dtype=D, requires_grad=True)
    verts = (mesh.verts * 0.9).requires_grad_(True)
    renderer = Renderer(RasterSettings((8, 8)))
    cam = h.orbit(1, size=(8, 8), dtype=D)

    def render(v, t):
        m = Mesh(v, faces, face_uvs=uvs, textures=(t,), face_texture=torch.zeros(faces.shape[0], dtype=torch.long))
        out = renderer(m, cam)
        return out.image, out.alpha, out.soft_mask

    assert gradcheck(render, (verts, tex), atol=1e-6)
