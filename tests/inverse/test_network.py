"""The inverse-graphics network: template, symmetry, cameras, gradients, and a fit that improves IoU."""

import math

import pytest
import torch

from ganfactory.inverse.camera import OrbitCamera, orbit_rotation
from ganfactory.inverse.data import camera_from_meta
from ganfactory.inverse.losses import LossWeights, mesh_terms, reconstruction_terms, weighted_total
from ganfactory.inverse.network import InverseGraphicsNet, NetworkConfig, SphereTemplate, azimuth_bin_targets
from ganfactory.render import Mesh, RasterSettings, Renderer, edge_face_pairs

TINY = NetworkConfig(image_size=32, latent=32, channels=(8, 8, 16, 16), texture_size=16,
                     half_extents=(1.0, 0.6, 0.5), centre=(0.0, 0.0, 0.0), t_init=(0.0, 0.0, -4.0))


def test_template_is_dibr_sphere_with_mirror_and_uvs():
    t = SphereTemplate(3)
    assert t.verts.shape == (642, 3) and t.faces.shape == (1280, 3)
    flip = torch.tensor([1.0, -1.0, 1.0])
    assert torch.allclose(t.verts[t.mirror], t.verts * flip, atol=1e-6)
    assert torch.equal(t.mirror[t.mirror], torch.arange(642))
    u = t.face_uvs[..., 0]
    span = u.max(1).values - u.min(1).values
    away_from_poles = t.verts[t.faces][..., 2].abs().max(1).values < 0.9
    assert float(span[away_from_poles].max()) < 0.1  # seam faces lifted: none spans the texture
    assert float(u.min()) >= 0 and float(u.max()) < 2


def test_symmetric_prediction_is_mirror_symmetric():
    torch.manual_seed(0)
    net = InverseGraphicsNet(TINY)
    with torch.no_grad():
        net.offsets.weight.normal_(0, 0.05)
        net.shift.weight.normal_(0, 0.05)
    pred = net(torch.rand(2, 3, 32, 32))
    flip = torch.tensor([1.0, -1.0, 1.0])
    assert torch.allclose(pred.verts[:, net.template.mirror], pred.verts * flip, atol=1e-5)
    assert torch.allclose(pred.texture, pred.texture.flip(-1))


def test_orbit_camera_matches_the_cars_look_at_and_meta():
    az, el = torch.tensor([0.3, 2.0]), torch.tensor([0.1, 0.4])
    direction = torch.stack([torch.cos(el) * torch.cos(az), torch.cos(el) * torch.sin(az), torch.sin(el)], -1)
    target = torch.tensor([[0.1, -0.2, 0.5], [0.0, 0.3, 0.6]])
    from ganfactory.render.camera import look_at
    from ganfactory.render.conventions import WORLD_FROM_VEHICLE, vehicle_to_world

    # The renderer's look_at in the one world frame, applied to vehicle-frame points through WORLD_FROM_VEHICLE.
    R_world, t = look_at(az, el, torch.full_like(az, 7.0), target=vehicle_to_world(target))
    R = R_world @ torch.tensor(WORLD_FROM_VEHICLE)
    assert torch.allclose(orbit_rotation(az, el), R, atol=1e-6)
    c = target + 7.0 * direction  # the camera centre, vehicle frame
    assert torch.allclose(t, -(R @ c[..., None])[..., 0], atol=1e-5)
    # A cars meta line stores the OpenCV camera; camera_from_meta recovers the same view-space translation.
    from ganfactory.render import Camera

    cam = Camera.from_fov(R[:1], t[:1], math.radians(30), (64, 64))
    K, R_cv, t_cv = cam.to_opencv()
    meta = {"azimuth_deg": math.degrees(0.3), "elevation_deg": math.degrees(0.1),
            "camera": {"K": K[0].tolist(), "R": R_cv[0].tolist(), "t": t_cv[0].tolist()}}
    a, e, tv, fov = camera_from_meta(meta)
    assert a == pytest.approx(0.3) and e == pytest.approx(0.1) and fov == pytest.approx(math.radians(30))
    assert torch.allclose(torch.tensor(tv), t[0], atol=1e-5)
    again = OrbitCamera(torch.tensor([a]), torch.tensor([e]), torch.tensor([tv]), fov).to_camera((64, 64))
    assert torch.allclose(again.R, cam.R, atol=1e-6) and torch.allclose(again.t, cam.t, atol=1e-5)
    # Multi-view meta: a distance to the origin.
    orbit = {"azimuth_deg": 90, "elevation_deg": 10, "distance": 5.0, "fov_deg": 30}
    assert camera_from_meta(orbit)[2] == (0.0, 0.0, -5.0)
    nested = camera_from_meta({"camera": {"azimuth_deg": 90, "elevation_deg": 10, "distance": 5.0, "fov_deg": 20}})
    assert nested[0] == pytest.approx(math.pi / 2) and nested[2] == (0.0, 0.0, -5.0)
    assert nested[3] == pytest.approx(math.radians(20))
    from ganfactory.errors import GanfactoryError

    with pytest.raises(GanfactoryError, match="fov_deg"):
        camera_from_meta({"azimuth_deg": 90, "elevation_deg": 10, "distance": 5.0})


def test_framing_matches_the_cars_renders_rule():
    """A multi-view sample's camera (direction + distance_scale) is the renders' camera of a typical car's box."""
    from types import SimpleNamespace

    from ganfactory.datasets.cars import camera_for
    from ganfactory.inverse.camera import framing_t

    cfg = NetworkConfig()
    h, c = torch.tensor(cfg.half_extents), torch.tensor(cfg.centre)
    box = torch.stack([c + h * torch.tensor([sx, sy, sz]) for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1.0)])
    for az, el, scale in [(0.0, 0.0, 1.0), (35.0, 12.0, 1.0), (200.0, 25.0, 1.07)]:
        var = SimpleNamespace(target_offset=(0.0, 0.0, 0.0), fov_deg=30.0, azimuth_deg=az, elevation_deg=el,
                              distance_scale=scale)
        cam = camera_for(SimpleNamespace(mesh=SimpleNamespace(verts=box[None])), var, 64)
        mine = framing_t(torch.tensor([math.radians(az)]), torch.tensor([math.radians(el)]), math.radians(30),
                         cfg.half_extents, cfg.centre, scale)
        assert torch.allclose(mine, cam.t, atol=1e-4), (az, mine, cam.t)
        meta = {"camera": {"azimuth_deg": az, "elevation_deg": el, "distance_scale": scale, "fov_deg": 30.0}}
        assert torch.allclose(torch.tensor(camera_from_meta(meta)[2]).float(), cam.t[0], atol=1e-4)


def test_azimuth_bins_round_trip():
    az = torch.tensor([0.0, 1.0, 3.5, 6.2, -0.5])
    index, residual = azimuth_bin_targets(az, 24)
    back = (index + residual) * (2 * math.pi / 24)
    assert torch.allclose(back, torch.remainder(az, 2 * math.pi), atol=1e-6)
    assert bool(((residual >= 0) & (residual < 1)).all())


def _target_views(n: int):
    """Renders of a known mesh (a box-like ellipsoid squashed in z) at n azimuths."""
    from ganfactory.render import icosphere

    v, f = icosphere(2)
    v = v * torch.tensor([1.2, 0.5, 0.35])
    az = torch.linspace(0, 2 * math.pi, n + 1)[:n]
    el = torch.full((n,), 0.3)
    t = torch.tensor([0.0, 0.0, -4.0]).expand(n, 3)
    cam = OrbitCamera(az, el, t, math.radians(30))
    mesh = Mesh(v[None].expand(n, -1, -1), f, vert_colors=torch.tensor([0.8, 0.2, 0.2]).expand(n, v.shape[0], 3))
    out = Renderer(RasterSettings((32, 32)))(mesh, cam.to_camera((32, 32)))
    return out.image, (out.face_idx >= 0).float(), cam


def test_gradient_reaches_the_vertices():
    torch.manual_seed(0)
    images, masks, cam = _target_views(2)
    net = InverseGraphicsNet(TINY)
    pred = net(images)
    pred.verts.retain_grad()
    out = Renderer(RasterSettings((32, 32)))(net.mesh(pred), cam.to_camera((32, 32)))
    terms = reconstruction_terms(out.image, out.soft_mask, images, masks)
    (terms["iou"] + terms["color"]).backward()
    assert pred.verts.grad is not None and float(pred.verts.grad.abs().sum()) > 0
    assert float(net.offsets.weight.grad.abs().sum()) > 0
    assert float(net.texture_up[-1].weight.grad.abs().sum()) > 0


def test_fitting_one_known_mesh_improves_iou():
    torch.manual_seed(0)
    images, masks, cam = _target_views(4)
    net = InverseGraphicsNet(TINY)
    renderer = Renderer(RasterSettings((32, 32)))
    faces, pairs = net.faces, edge_face_pairs(net.faces)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)

    def iou() -> float:
        with torch.no_grad():
            net.eval()
            m = renderer(net.mesh(net(images)), cam.to_camera((32, 32))).face_idx >= 0
            net.train()
        g = masks > 0.5
        return float(((m & g).flatten(1).sum(1) / (m | g).flatten(1).sum(1)).mean())

    before = iou()
    for _ in range(40):
        pred = net(images)
        out = renderer(net.mesh(pred), cam.to_camera((32, 32)))
        terms = {**mesh_terms(pred, faces, pairs), **reconstruction_terms(out.image, out.soft_mask, images, masks)}
        loss = weighted_total(terms, LossWeights())
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = iou()
    assert after > before + 0.1 and after > 0.8, (before, after)


def test_sh_light_starts_uniform_and_trains():
    """With --sh-lighting the light head starts as irradiance 1 (the render equals the unlit albedo) and gets
    a gradient from the colour loss."""
    import dataclasses

    torch.manual_seed(0)
    images, masks, cam = _target_views(2)
    net = InverseGraphicsNet(dataclasses.replace(TINY, sh_lighting=True))
    pred = net(images)
    renderer = Renderer(RasterSettings((32, 32)))
    lit = renderer(net.mesh(pred), cam.to_camera((32, 32)), pred.light)
    unlit = renderer(net.mesh(pred), cam.to_camera((32, 32)))
    assert torch.allclose(lit.image, unlit.image, atol=1e-5)
    reconstruction_terms(lit.image, lit.soft_mask, images, masks)["color"].backward()
    assert float(net.light.weight.grad.abs().sum()) > 0
