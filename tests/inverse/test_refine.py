"""Per-view-code camera refinement: offsets start at zero, leave unannotated samples alone, and pull a view code
annotated into the wrong azimuth bin back to the camera its images were drawn from (through the renderer)."""

import math

import torch

from ganfactory.inverse.camera import OrbitCamera, framing_t
from ganfactory.inverse.network import NetworkConfig, SphereTemplate
from ganfactory.inverse.refine import ViewCodeCameras
from ganfactory.render import Mesh, RasterSettings, Renderer, silhouette_iou_loss

SIZE = 48
FOV = math.radians(30)


def _car_like(batch: int) -> Mesh:
    """An ellipsoid of a typical car's extents with a cabin towards the back (no front/back symmetry)."""
    t = SphereTemplate(2)
    v = t.verts
    bump = 0.5 * torch.relu(v[:, 2]) * torch.sigmoid(-4 * v[:, 0])
    cfg = NetworkConfig()
    verts = torch.tensor(cfg.centre) + torch.tensor(cfg.half_extents) * (v + torch.stack(
        [torch.zeros_like(bump), torch.zeros_like(bump), bump], 1))
    tex = torch.full((batch, 3, 4, 4), 0.5)
    return Mesh(verts=verts[None].expand(batch, -1, -1).contiguous(), faces=t.faces, face_uvs=t.face_uvs,
                textures=(tex,), face_texture=torch.zeros(t.faces.shape[0], dtype=torch.long))


def _cameras(az_deg: list[float], el_deg: list[float]) -> OrbitCamera:
    az, el = torch.deg2rad(torch.tensor(az_deg)), torch.deg2rad(torch.tensor(el_deg))
    cfg = NetworkConfig()
    return OrbitCamera(az, el, framing_t(az, el, FOV, cfg.half_extents, cfg.centre), FOV)


def test_offsets_start_at_zero_and_skip_unannotated():
    ref = ViewCodeCameras(3)
    cam = _cameras([10.0, 20.0, 30.0], [5.0, 5.0, 5.0])
    with torch.no_grad():
        ref.offsets.fill_(0.1)
    out = ref(cam, torch.tensor([0, -1, 2]))
    assert torch.allclose(out.azimuth - cam.azimuth, torch.tensor([0.1, 0.0, 0.1]))
    assert torch.allclose(out.t - cam.t, torch.tensor([[0.1] * 3, [0.0] * 3, [0.1] * 3]))
    assert torch.allclose(ViewCodeCameras(3)(cam, torch.tensor([0, 1, 2])).elevation, cam.elevation)
    assert ref.to_json()[1]["azimuth_offset_deg"] == round(math.degrees(0.1), 3)


def test_a_wrong_bin_is_corrected_through_the_renderer():
    meshes = _car_like(2)
    renderer = Renderer(RasterSettings((SIZE, SIZE)))
    truth = _cameras([55.0, 130.0], [15.0, 15.0])       # what the images show
    annotated = _cameras([90.0, 120.0], [10.0, 10.0])   # code 0: the wrong bin (3, not 2); code 1: the right one
    codes = torch.tensor([0, 1])
    with torch.no_grad():
        target = (renderer(meshes, truth.to_camera((SIZE, SIZE))).face_idx >= 0).float()
    ref = ViewCodeCameras(2)
    opt = torch.optim.Adam(ref.parameters(), lr=0.02)
    for _ in range(80):
        cam = ref(annotated, codes)
        loss = silhouette_iou_loss(renderer(meshes, cam.to_camera((SIZE, SIZE))).soft_mask, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = ref(annotated, codes)
    err = (torch.rad2deg(final.azimuth - truth.azimuth)).abs()
    start = (torch.rad2deg(annotated.azimuth - truth.azimuth)).abs()
    assert err[0] < 5.0 < start[0], err                   # 35 degrees off -> within 5
    assert err[1] < 5.0, err
    with torch.no_grad():
        iou = silhouette_iou_loss(renderer(meshes, final.to_camera((SIZE, SIZE))).soft_mask, target)
    assert iou < 0.1
