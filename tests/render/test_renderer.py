"""The composed renderer: labels, alpha, supersampling, normals, depth, backgrounds, device/shape checks."""

import math

import pytest
import torch

from ganfactory.render import Camera, Mesh, RasterSettings, Renderer, icosphere


def front_camera(size=32, fov=0.8):
    return Camera.orbit(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([3.0]), fov, (size, size))


def quad(z=0.0, half=1.0):
    v = torch.tensor([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]])
    return v, torch.tensor([[0, 1, 2], [0, 2, 3]])


def test_labels_from_part_ids():
    v, f = quad()
    mesh = Mesh(v[None], f, face_parts=torch.tensor([3, 5]), part_names=("a", "b", "c", "d", "e", "f"))
    out = Renderer(RasterSettings((16, 16)))(mesh, front_camera(16))
    cov = out.face_idx >= 0
    assert set(out.labels[cov].unique().tolist()) == {3, 5}
    assert (out.labels[~cov] == -1).all()
    assert torch.equal(out.labels[cov], torch.tensor([3, 5])[out.face_idx[cov]])


def test_translucent_face_composites_over_the_opaque_surface_behind():
    v1, f1 = quad(z=0.5, half=0.5)  # glass in front
    v2, f2 = quad(z=0.0, half=1.0)  # opaque wall behind
    verts = torch.cat([v1, v2])[None]
    faces = torch.cat([f1, f2 + 4])
    face_colors = torch.tensor([[1.0, 0.0, 0.0]] * 2 + [[0.0, 0.0, 1.0]] * 2)
    alpha = torch.tensor([0.25, 0.25, 1.0, 1.0])
    mesh = Mesh(verts, faces, face_colors=face_colors, face_alpha=alpha)
    bg = torch.tensor([0.0, 1.0, 0.0])
    out = Renderer(RasterSettings((24, 24)))(mesh, front_camera(24), background=bg)
    centre = out.image[0, :, 12, 12]
    assert torch.allclose(centre, torch.tensor([0.25, 0.0, 0.75]))
    assert torch.isclose(out.alpha[0, 12, 12], torch.tensor(1.0))
    corner = out.image[0, :, 0, 0]  # nothing there
    assert torch.allclose(corner, bg) and out.alpha[0, 0, 0] == 0


def test_supersampling_gives_fractional_coverage_close_to_area():
    v, f = icosphere(4)
    mesh = Mesh(v[None] * 0.6, f)
    fov = 0.8
    hard = Renderer(RasterSettings((32, 32)))(mesh, front_camera(32, fov))
    soft = Renderer(RasterSettings((32, 32), supersample=4))(mesh, front_camera(32, fov))
    # Projected disc of a sphere of radius r at distance d: NDC radius tan(asin(r/d)) / tan(fov/2).
    r_ndc = math.tan(math.asin(0.6 / 3.0)) / math.tan(fov / 2)
    area = math.pi * r_ndc ** 2 / 4 * 32 * 32  # in pixels
    frac = ((soft.alpha > 0) & (soft.alpha < 1)).sum()
    assert frac > 20  # edge pixels are fractional
    assert abs(soft.alpha.sum().item() - area) < abs(hard.alpha.sum().item() - area) + 1.0
    assert abs(soft.alpha.sum().item() - area) / area < 0.01


def test_normals_and_depth_maps():
    v, f = icosphere(4)
    mesh = Mesh(v[None], f)
    cam = front_camera(32)
    out = Renderer(RasterSettings((32, 32)))(mesh, cam)
    cov = out.face_idx[0] >= 0
    n = out.normals[0].permute(1, 2, 0)
    assert torch.allclose(n[cov].norm(dim=-1), torch.ones(int(cov.sum())), atol=1e-5)
    assert (n[~cov] == 0).all()
    # The centre pixel sees the pole facing the camera: normal +z, depth 3 - 1 = 2.
    assert n[15:17, 15:17, 2].min() > 0.99
    assert torch.allclose(out.depth[0, 15:17, 15:17], torch.full((2, 2), 2.0), atol=2e-3)
    assert (out.depth[0][~cov] == 0).all()


def test_background_image_and_shape_errors():
    v, f = quad(half=0.3)
    mesh = Mesh(v[None], f, vert_colors=torch.ones(1, 4, 3))
    bg = torch.rand(1, 3, 16, 16)
    out = Renderer(RasterSettings((16, 16)))(mesh, front_camera(16), background=bg)
    cov = (out.face_idx[0] >= 0)
    assert torch.allclose(out.image[0][:, ~cov], bg[0][:, ~cov])
    assert torch.allclose(out.image[0][:, cov], torch.ones(3, int(cov.sum())))
    with pytest.raises(ValueError, match="background"):
        Renderer(RasterSettings((16, 16)))(mesh, front_camera(16), background=torch.ones(2))
    with pytest.raises(ValueError, match="impl"):
        RasterSettings((16, 16), impl="fast")
    with pytest.raises(ValueError, match="batch"):
        Renderer(RasterSettings((16, 16)))(Mesh(v[None].repeat(2, 1, 1), f), front_camera(16))


def test_a_mesh_that_covers_no_pixel_renders_background_with_zero_gradients():
    v, f = quad(half=0.5)
    verts = (v + torch.tensor([50.0, 0.0, 0.0]))[None].requires_grad_(True)  # far outside the view
    tex = torch.rand(1, 4, 2, 2, requires_grad=True)
    mesh = Mesh(verts, f, vert_colors=torch.rand(1, 4, 3), face_uvs=torch.rand(2, 3, 2), textures=(tex,),
                face_texture=torch.tensor([0, 0]))
    out = Renderer(RasterSettings((8, 8)))(mesh, front_camera(8), background=torch.tensor([0.0, 0.0, 1.0]))
    assert (out.face_idx == -1).all() and (out.alpha == 0).all()
    assert torch.equal(out.image[0], torch.tensor([0.0, 0.0, 1.0])[:, None, None].expand(3, 8, 8))
    (out.image.sum() + out.soft_mask.sum()).backward()
    for p in (tex, verts):  # no gradient reaches them, or a zero one
        assert p.grad is None or not p.grad.any()
