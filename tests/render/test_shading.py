"""Textures, interpolation and lighting: identities with known answers."""

import math

import numpy as np
import torch

from ganfactory.render import Camera, DirectionalLights, Mesh, RasterSettings, Renderer, SHLights
from ganfactory.render import kaolin_compat as K
from ganfactory.render.functional import blinn_phong, sample_texture, sh9_basis, sh9_irradiance

D = torch.float64


def test_texel_centres_return_texels_and_uvs_wrap():
    tex = torch.rand(2, 3, 4, 5, dtype=D)
    i = torch.arange(5, dtype=D)
    j = torch.arange(4, dtype=D)
    u = ((i + 0.5) / 5).view(1, 5).expand(4, 5)
    v = (1 - (j + 0.5) / 4).view(4, 1).expand(4, 5)  # v = 0 is the bottom row
    uv = torch.stack([u, v], -1).expand(2, 4, 5, 2)
    out = sample_texture(tex, uv)
    assert torch.allclose(out, tex.permute(0, 2, 3, 1))
    assert torch.allclose(sample_texture(tex, uv + torch.tensor([1.0, -2.0], dtype=D)), out)
    # Halfway between two texels: their mean; across the seam: the mean of the first and last column.
    mid = sample_texture(tex, torch.tensor([[[0.2, 1 - 0.5 / 4]]], dtype=D).expand(2, 1, 2))
    assert torch.allclose(mid[:, 0], (tex[:, :, 0, 0] + tex[:, :, 0, 1]) / 2)
    seam = sample_texture(tex, torch.tensor([[[0.0, 1 - 0.5 / 4]]], dtype=D).expand(2, 1, 2))
    assert torch.allclose(seam[:, 0], (tex[:, :, 0, 0] + tex[:, :, 0, 4]) / 2)


def test_kaolin_texture_mapping_agrees_inside_the_texture():
    tex = torch.rand(1, 3, 6, 7, dtype=D)
    uv = torch.rand(1, 5, 4, 2, dtype=D) * 0.6 + 0.2
    assert torch.allclose(K.texture_mapping(uv, tex, mode="bilinear"), sample_texture(tex, uv))


def test_sh_basis_is_orthonormal_and_irradiance_is_linear():
    # Gauss-Legendre in cos(theta) x uniform phi integrates degree <= 4 polynomials exactly.
    xs, ws = np.polynomial.legendre.leggauss(8)
    phi = torch.arange(16, dtype=D) * 2 * math.pi / 16
    ct = torch.tensor(xs, dtype=D)
    st = torch.sqrt(1 - ct ** 2)
    n = torch.stack([st[:, None] * torch.cos(phi), st[:, None] * torch.sin(phi), ct[:, None].expand(8, 16)], -1)
    weight = torch.tensor(ws, dtype=D)[:, None].expand(8, 16) * (2 * math.pi / 16)
    Y = sh9_basis(n)  # [8, 16, 9]
    gram = torch.einsum("ijk,ijl,ij->kl", Y, Y, weight)
    assert torch.allclose(gram, torch.eye(9, dtype=D), atol=1e-12)
    coeffs = torch.zeros(1, 9, dtype=D)
    coeffs[0, 0] = 1 / 0.28209479177387814
    assert torch.allclose(sh9_irradiance(n[None], coeffs), torch.ones(1, 8, 16, 1, dtype=D))


def test_lambert_and_blinn_specular():
    n = torch.tensor([0.0, 0.0, 1.0], dtype=D).expand(1, 1, 2, 3)
    light = torch.nn.functional.normalize(torch.tensor([[[0.0, 1.0, 1.0]]], dtype=D), dim=-1)
    albedo = torch.tensor([[[[0.5, 0.5, 0.5], [1.0, 0.0, 0.0]]]], dtype=D)
    diffuse = torch.ones(1, 1, 3, dtype=D)
    amb = torch.full((1, 3), 0.1, dtype=D)
    view = torch.nn.functional.normalize(torch.tensor([0.0, -1.0, 1.0], dtype=D), dim=-1).expand(1, 1, 2, 3)
    out = blinn_phong(albedo, n, view, light, diffuse, amb)
    assert torch.allclose(out, albedo * (0.1 + math.cos(math.pi / 4)))
    # Mirror direction: the half vector is the normal, so the highlight is the full specular colour.
    spec = blinn_phong(albedo, n, view, light, diffuse, amb, torch.full((1, 1, 3), 0.3, dtype=D), 16.0)
    assert torch.allclose(spec - out, torch.full_like(out, 0.3))
    # Light from below: no diffuse, no highlight.
    below = blinn_phong(albedo, n, view, -light, diffuse, amb, torch.full((1, 1, 3), 0.3, dtype=D))
    assert torch.allclose(below, albedo * 0.1)


def _plane(depth_tilt: float):
    """A textured square, tilted about the x axis, filling most of the view."""
    verts = torch.tensor([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [1.0, 1.0, 0.0], [-1.0, 1.0, 0.0]], dtype=D)
    c, s = math.cos(depth_tilt), math.sin(depth_tilt)
    rot = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]], dtype=D)
    verts = verts @ rot.T
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    uvs = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=D)[faces]
    return verts, faces, uvs, rot


def test_perspective_correct_uvs_match_ray_casting():
    verts, faces, uvs, rot = _plane(1.0)
    H = W = 32
    cam = Camera.orbit(torch.tensor([0.0], dtype=D), torch.tensor([0.0], dtype=D), torch.tensor([2.5], dtype=D),
                       1.2, (H, W))
    # A texture that encodes its own coordinates: channel 0 = u, channel 1 = v (bilinear is exact on it
    # away from the border texels).
    n = 64
    u = ((torch.arange(n, dtype=D) + 0.5) / n).view(1, n).expand(n, n)
    v = (1 - (torch.arange(n, dtype=D) + 0.5) / n).view(n, 1).expand(n, n)
    tex = torch.stack([u, v], 0)[None]
    mesh = Mesh(verts[None], faces, face_uvs=uvs, textures=(tex,), face_texture=torch.zeros(2, dtype=torch.long))
    out = Renderer(RasterSettings((H, W)))(mesh, cam)
    # Ray casting truth: intersect each pixel's ray with the plane, express the hit in the plane's frame.
    xs = (2 * torch.arange(W, dtype=D) + 1) / W - 1
    ys = 1 - (2 * torch.arange(H, dtype=D) + 1) / H
    f_ndc = 2 * cam.focal[0, 0] / W
    d_view = torch.stack([xs.view(1, W).expand(H, W) / f_ndc, ys.view(H, 1).expand(H, W) / f_ndc,
                          -torch.ones(H, W, dtype=D)], -1)
    d_world = d_view @ cam.R[0]  # R^T d
    origin = cam.position()[0]
    normal = rot[:, 2]
    tt = -(origin @ normal) / (d_world @ normal)
    hit = origin + tt[..., None] * d_world
    local = hit @ rot  # plane coordinates in [-1, 1]
    truth_uv = (local[..., :2] + 1) / 2
    inside = (truth_uv > 1.5 / n).all(-1) & (truth_uv < 1 - 1.5 / n).all(-1) & (out.face_idx[0] >= 0)
    got = out.image[0, :2].permute(1, 2, 0)
    assert inside.sum() > 200
    assert (got[inside] - truth_uv[inside]).abs().max() < 1e-9
    # Screen-space (DIB-R) interpolation would be visibly off on this tilted plane.
    affine = Renderer(RasterSettings((H, W), perspective_correct=False))(mesh, cam).image[0, :2].permute(1, 2, 0)
    assert (affine[inside] - truth_uv[inside]).abs().max() > 0.02


def test_sh_lit_render_of_constant_light_equals_albedo():
    v = torch.tensor([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [0.0, 1.0, 0.0]])
    mesh = Mesh(v[None], torch.tensor([[0, 1, 2]]), vert_colors=torch.rand(1, 3, 3))
    cam = Camera.orbit(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([3.0]), 0.9, (16, 16))
    renderer = Renderer(RasterSettings((16, 16)))
    plain = renderer(mesh, cam).image
    coeffs = torch.zeros(1, 9)
    coeffs[0, 0] = 1 / 0.28209479177387814
    assert torch.allclose(renderer(mesh, cam, SHLights(coeffs)).image, plain, atol=1e-6)
    lights = DirectionalLights(direction=torch.tensor([[[0.0, 0.0, 1.0]]]), diffuse=torch.ones(1, 1, 3) * 0.5,
                               ambient=torch.full((1, 3), 0.5))
    assert torch.allclose(renderer(mesh, cam, lights).image, plain, atol=1e-6)
