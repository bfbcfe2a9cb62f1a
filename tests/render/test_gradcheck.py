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
