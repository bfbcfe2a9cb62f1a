"""Cameras: look-at geometry, projection against OpenCV's formula, K/R/t round trips, kaolin's projection."""

import math

import torch

from ganfactory.render import Camera, conventions, look_at
from ganfactory.render import kaolin_compat as K

D = torch.float64


def test_look_at_puts_the_target_on_the_optical_axis():
    az = torch.tensor([0.0, 0.7, -2.0], dtype=D)
    el = torch.tensor([0.0, 0.4, -0.3], dtype=D)
    dist = torch.tensor([3.0, 2.0, 5.0], dtype=D)
    target = torch.tensor([[0.0, 0.0, 0.0], [0.5, -1.0, 2.0], [1.0, 1.0, 1.0]], dtype=D)
    R, t = look_at(az, el, dist, target)
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3, dtype=D).expand(3, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(R), torch.ones(3, dtype=D))
    cam = Camera.from_fov(R, t, 0.8, (20, 30))
    p = cam.world_to_view(target[:, None])[:, 0]
    assert torch.allclose(p, torch.stack([0 * dist, 0 * dist, -dist], -1), atol=1e-12)
    # Azimuth 0, elevation 0: the camera sits on +z; world up stays image up.
    assert torch.allclose(cam.position()[0], torch.tensor([0.0, 0.0, 3.0], dtype=D), atol=1e-12)
    up = cam.world_to_view(torch.tensor([[[0.0, 1.0, 0.0]]], dtype=D).expand(3, 1, 3))
    assert (up[:, 0, 1] - cam.world_to_view(target[:, None])[:, 0, 1] > 0).all()
    # Positive azimuth moves the camera toward +x.
    assert cam.position()[1, 0] > target[1, 0]


def test_projection_matches_opencv_formula_and_pixel_centres():
    H, W = 24, 32
    K_cv = torch.tensor([[[40.0, 0.0, 15.2], [0.0, 38.0, 11.7], [0.0, 0.0, 1.0]]], dtype=D)
    R_cv = torch.tensor([[[math.cos(0.3), 0.0, math.sin(0.3)], [0.0, 1.0, 0.0],
                          [-math.sin(0.3), 0.0, math.cos(0.3)]]], dtype=D)
    t_cv = torch.tensor([[0.1, -0.2, 4.0]], dtype=D)
    cam = Camera.from_opencv(K_cv, R_cv, t_cv, (H, W))
    X = torch.randn(1, 50, 3, dtype=D)
    x_cv = X @ R_cv.transpose(1, 2) + t_cv[:, None]
    uv = (x_cv @ K_cv.transpose(1, 2))
    uv = uv[..., :2] / uv[..., 2:]
    ndc = cam.view_to_ndc(cam.world_to_view(X))
    assert torch.allclose(ndc[..., 0], (2 * uv[..., 0] + 1) / W - 1, atol=1e-12)
    assert torch.allclose(ndc[..., 1], 1 - (2 * uv[..., 1] + 1) / H, atol=1e-12)
    # Round trip and the pixel-centre statement: integer (u, v) land on pixel centres.
    K2, R2, t2 = cam.to_opencv()
    assert torch.allclose(K2, K_cv) and torch.allclose(R2, R_cv) and torch.allclose(t2, t_cv)
    xs, ys = conventions.pixel_centers(H, W, D, multiplier=1.0)
    assert torch.isclose(xs[3], torch.tensor((2 * 3 + 1) / W - 1, dtype=D))
    assert torch.isclose(ys[5], torch.tensor(1 - (2 * 5 + 1) / H, dtype=D))


def test_prepare_vertices_matches_our_camera():
    B = 2
    az = torch.tensor([0.3, 2.0], dtype=D)
    R, t = look_at(az, torch.tensor([0.2, -0.1], dtype=D), torch.tensor([3.0, 4.0], dtype=D))
    cam = Camera.from_fov(R, t, 0.9, (16, 16))
    verts = torch.randn(B, 10, 3, dtype=D) * 0.5
    faces = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    # kaolin's legacy camera: P_cam = R (P - T) with T the camera position; proj = [f, f, -1].
    f_ndc = 1.0 / math.tan(0.9 / 2)
    proj = torch.tensor([[f_ndc], [f_ndc], [-1.0]], dtype=D)
    fvc, fvi, n = K.prepare_vertices(verts, faces, proj, R, cam.position())
    assert torch.allclose(fvc, cam.world_to_view(verts)[:, faces], atol=1e-12)
    assert torch.allclose(fvi, cam.view_to_ndc(cam.world_to_view(verts))[:, faces], atol=1e-12)
    assert torch.allclose(n.norm(dim=-1), torch.ones(B, 3, dtype=D))


def test_orbit_is_differentiable_in_azimuth():
    az = torch.tensor([0.5], dtype=D, requires_grad=True)
    cam = Camera.orbit(az, torch.tensor([0.1], dtype=D), torch.tensor([3.0], dtype=D), 0.7, (8, 8))
    cam.view_to_ndc(cam.world_to_view(torch.tensor([[[1.0, 0.0, 0.0]]], dtype=D))).sum().backward()
    assert az.grad is not None and az.grad.abs() > 0
