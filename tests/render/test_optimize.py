"""Optimisations that succeed only if the gradients are right (DIB-R foreground + soft silhouette)."""

import math

import torch

from ganfactory.render import (
    Camera,
    Mesh,
    RasterSettings,
    Renderer,
    edge_face_pairs,
    flatten_loss,
    icosphere,
    masked_l1,
    silhouette_iou_loss,
    uniform_laplacian_loss,
)

AZ = torch.tensor([0.0, 1.6, 3.1, 4.7])
EL = torch.tensor([0.3, -0.2, 0.5, 0.0])


def cameras(size, azimuth=AZ, elevation=EL):
    return Camera.orbit(azimuth, elevation, torch.full_like(azimuth, 3.0), 0.7, (size, size))


def iou(a, b):
    return ((a * b).sum() / (a + b - a * b).sum()).item()


def test_deform_sphere_to_target_silhouette():
    torch.manual_seed(0)
    v, f = icosphere(3)
    B, S = 4, 40
    cam = cameras(S)
    target_verts = v * torch.tensor([1.3, 0.6, 0.9])
    target_verts = target_verts + 0.3 * torch.relu(target_verts[:, 1:2]) * torch.tensor([1.0, 0.0, 0.0])
    renderer = Renderer(RasterSettings((S, S)))
    with torch.no_grad():
        target = renderer(Mesh(target_verts[None].expand(B, -1, -1), f), cam).face_idx.ge(0).float()
        start = renderer(Mesh(v[None].expand(B, -1, -1), f), cam).face_idx.ge(0).float()
    offsets = torch.zeros(1, v.shape[0], 3, requires_grad=True)
    opt = torch.optim.Adam([offsets], lr=0.01)
    pairs = edge_face_pairs(f)
    for _ in range(100):
        verts = (v + offsets).expand(B, -1, -1)
        out = renderer(Mesh(verts, f), cam)
        loss = (silhouette_iou_loss(out.soft_mask, target) + 50 * uniform_laplacian_loss(offsets, f)
                + 1e-3 * flatten_loss(verts[:1], pairs, f))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = renderer(Mesh((v + offsets).expand(B, -1, -1), f), cam).face_idx.ge(0).float()
    assert iou(start, target) < 0.75
    assert iou(final, target) > 0.9


def _visible(renderer, mesh, cam, param):
    """Which entries of ``param`` influence the image (gradient of the image sum)."""
    out = renderer(mesh, cam)
    (g,) = torch.autograd.grad(out.image.sum(), param)
    return g.abs().sum(-1 if g.ndim == 3 else 1) > 1.0


def test_recover_vertex_colours():
    torch.manual_seed(1)
    v, f = icosphere(2)
    B, S = 4, 32
    cam = cameras(S)
    verts = v[None].expand(B, -1, -1)
    truth = torch.rand(1, v.shape[0], 3)
    renderer = Renderer(RasterSettings((S, S)))
    with torch.no_grad():
        target = renderer(Mesh(verts, f, vert_colors=truth.expand(B, -1, -1)), cam)
    colors = torch.full((1, v.shape[0], 3), 0.5, requires_grad=True)
    opt = torch.optim.Adam([colors], lr=0.1)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 60)
    for _ in range(60):
        out = renderer(Mesh(verts, f, vert_colors=colors.expand(B, -1, -1)), cam)
        loss = masked_l1(out.image, target.image, target.alpha)
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
    seen = _visible(renderer, Mesh(verts, f, vert_colors=colors.expand(B, -1, -1)), cam, colors)[0]
    assert seen.float().mean() > 0.8
    err = (colors.detach() - truth)[0][seen].abs().mean()
    assert err < 0.01, err


def _sphere_uvs(v, f):
    u = torch.atan2(v[:, 0], v[:, 2]) / (2 * math.pi) + 0.5
    w = torch.asin(v[:, 1].clamp(-1, 1)) / math.pi + 0.5
    uv = torch.stack([u, w], -1)[f]  # [F, 3, 2]
    # Faces across the seam: lift the small u by 1 (the sampler wraps, so u > 1 is fine).
    across = (uv[..., 0].amax(1) - uv[..., 0].amin(1)) > 0.5
    lift = across[:, None] & (uv[..., 0] < 0.5)
    uv[..., 0] = uv[..., 0] + lift.float()
    return uv


def test_recover_texture():
    torch.manual_seed(2)
    v, f = icosphere(3)
    B, S = 4, 48
    cam = cameras(S)
    verts = v[None].expand(B, -1, -1)
    uv = _sphere_uvs(v, f)
    truth = torch.nn.functional.interpolate(torch.rand(1, 3, 4, 8), size=(16, 32), mode="bilinear",
                                            align_corners=False)
    face_texture = torch.zeros(f.shape[0], dtype=torch.long)
    renderer = Renderer(RasterSettings((S, S)))

    def mesh(tex):
        return Mesh(verts, f, face_uvs=uv, textures=(tex.expand(B, -1, -1, -1),), face_texture=face_texture)

    with torch.no_grad():
        target = renderer(mesh(truth), cam)
    tex = torch.full((1, 3, 16, 32), 0.5, requires_grad=True)
    opt = torch.optim.Adam([tex], lr=0.1)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 60)
    for _ in range(60):
        out = renderer(mesh(tex), cam)
        loss = masked_l1(out.image, target.image, target.alpha)
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
    out = renderer(mesh(tex), cam)
    assert masked_l1(out.image, target.image, target.alpha) < 0.01
    seen = _visible(renderer, mesh(tex), cam, tex)[0]
    assert seen.float().mean() > 0.5
    assert (tex.detach() - truth)[0][:, seen].abs().mean() < 0.03


def test_recover_camera_azimuth_offset():
    torch.manual_seed(3)
    v, f = icosphere(3)
    verts = v * torch.tensor([1.2, 0.7, 0.8])
    colors = 0.5 + 0.5 * torch.sin(3 * v)  # varies with azimuth
    B, S = 2, 40
    az = torch.tensor([0.4, 2.0])
    el = torch.tensor([0.3, 0.1])
    renderer = Renderer(RasterSettings((S, S)))
    mesh = Mesh(verts[None].expand(B, -1, -1), f, vert_colors=colors[None].expand(B, -1, -1))
    with torch.no_grad():
        target = renderer(mesh, cameras(S, az, el))
    delta = torch.tensor(0.25, requires_grad=True)  # the annotation is off by -0.25 rad
    opt = torch.optim.Adam([delta], lr=0.01)
    for _ in range(80):
        out = renderer(mesh, cameras(S, az - 0.25 + delta, el))
        loss = masked_l1(out.image, target.image, target.alpha) + silhouette_iou_loss(out.soft_mask,
                                                                                      target.soft_mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert abs(delta.item() - 0.25) < 0.01, delta.item()
