"""3-D scores of a reconstruction against the true mesh (BENCHMARK.md, test3d).

- ``input_iou``: hard-silhouette IoU of the prediction rendered with the *predicted* camera against the true
  mask (label != 0) of the input image.
- ``multiview_iou``: mean over 12 azimuths (0, 30, ..., 330 degrees added to the camera's azimuth, same
  elevation and view offset) of the IoU between the prediction seen from its predicted camera turned by that
  angle and the true mesh seen from the true camera turned by the same angle: the shape, seen all around,
  relative to where each thinks the camera is.
- ``chamfer_l1`` and ``fscore``: on ``POINTS`` area-weighted surface samples of each mesh in its own camera
  frame (prediction: predicted camera; truth: true camera), each set then centred on its bounding-box centre and
  scaled so that the box's longest side is 1 (single-image depth and size are ambiguous; the rotation is not
  forgiven). Chamfer-L1 = mean of the Euclidean nearest-neighbour distances, averaged over both directions
  (DIB-R's convention); F-score at tau = 0.05 (5% of the object's size) = 2PR / (P + R) with P the share of
  predicted points within tau of the truth and R the converse. The truth's samples are exterior only: faces
  seen in renders from ``EXTERIOR_VIEWS`` directions around the car (the interior and the driver behind the
  glass are never the front face, because the rasterizer keeps glass as the nearest surface).
- ``azimuth_error``: |predicted - true azimuth| wrapped into [0, 180] degrees.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ganfactory.inverse.camera import OrbitCamera
from ganfactory.render import Mesh, RasterSettings, Renderer
from ganfactory.render.rasterizer import rasterize_mesh

__all__ = ["POINTS", "TURNS", "chamfer_fscore", "exterior_faces", "hard_iou", "normalise_points",
           "render_views", "sample_surface", "silhouettes"]

TURNS = tuple(range(0, 360, 30))
"""Azimuth offsets (degrees) of the 12-view IoU."""
POINTS = 2500
"""Surface samples per mesh for Chamfer and F-score (DIB-R's check_chamfer)."""
EXTERIOR_VIEWS = [(az, el) for el in (-15, 15, 45) for az in range(0, 360, 30)] + [(0, 89)]
"""Directions (azimuth, elevation in degrees) whose visible faces count as the exterior."""


def hard_iou(a: Tensor, b: Tensor) -> Tensor:
    """[B] IoU of boolean masks [B, H, W] (1 when both are empty)."""
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def silhouettes(mesh: Mesh, camera: OrbitCamera, size: int) -> Tensor:
    """[B, H, W] bool coverage of ``mesh`` (batch B, or 1 broadcast to the cameras) seen by ``camera``."""
    B = camera.azimuth.shape[0]
    bare = Mesh(mesh.verts.expand(B, -1, -1), mesh.faces, face_two_sided=mesh.face_two_sided)
    frags = rasterize_mesh(bare, camera.to_camera((size, size)), (size, size))
    return frags.face_idx >= 0


def exterior_faces(mesh: Mesh, size: int = 160) -> Tensor:
    """[F] bool: faces that are the front surface of some pixel in views from ``EXTERIOR_VIEWS``."""
    verts = mesh.verts[0]
    lo, hi = verts.min(0).values, verts.max(0).values
    centre = (lo + hi) / 2
    radius = float((hi - lo).norm()) / 2
    distance = radius / math.tan(math.radians(15)) * 1.05
    seen = torch.zeros(mesh.num_faces, dtype=torch.bool)
    az = torch.tensor([math.radians(a) for a, _ in EXTERIOR_VIEWS])
    el = torch.tensor([math.radians(e) for _, e in EXTERIOR_VIEWS])
    for start in range(0, len(az), 8):
        a, e = az[start:start + 8], el[start:start + 8]
        B = a.shape[0]
        # Look at the box centre: t = -R centre + (0, 0, -distance).
        cam0 = OrbitCamera(a, e, torch.zeros(B, 3), math.radians(30))
        R = cam0.to_camera((size, size)).R
        t = -(R @ centre[:, None])[..., 0] + torch.tensor([0.0, 0.0, -distance])
        cam = OrbitCamera(a, e, t, math.radians(30))
        frags = rasterize_mesh(mesh.replace(verts=mesh.verts.expand(B, -1, -1)), cam.to_camera((size, size)),
                               (size, size))
        idx = frags.face_idx[frags.face_idx >= 0]
        seen[idx.unique()] = True
    return seen


def sample_surface(verts: Tensor, faces: Tensor, n: int, generator: torch.Generator) -> Tensor:
    """[n, 3] points uniform on the surface of the triangles ``faces`` of ``verts`` [V, 3]."""
    tri = verts[faces]
    area = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1).norm(dim=-1)
    pick = torch.multinomial(area, n, replacement=True, generator=generator)
    u, v = torch.rand(n, generator=generator), torch.rand(n, generator=generator)
    flip = u + v > 1
    u, v = torch.where(flip, 1 - u, u), torch.where(flip, 1 - v, v)
    t = tri[pick]
    return t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])


def normalise_points(points: Tensor) -> Tensor:
    """Centred on the bounding-box centre, scaled so that the box's longest side is 1."""
    lo, hi = points.min(0).values, points.max(0).values
    return (points - (lo + hi) / 2) / (hi - lo).max().clamp(min=1e-12)


def chamfer_fscore(pred: Tensor, true: Tensor, tau: float = 0.05) -> tuple[float, float]:
    """(Chamfer-L1, F-score at ``tau``) of two normalised point sets [N, 3], [M, 3]."""
    d = torch.cdist(pred[None], true[None], compute_mode="donot_use_mm_for_euclid_dist")[0]
    to_true, to_pred = d.min(1).values, d.min(0).values
    chamfer = 0.5 * (float(to_true.mean()) + float(to_pred.mean()))
    precision, recall = float((to_true < tau).float().mean()), float((to_pred < tau).float().mean())
    f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return chamfer, f


def render_views(mesh: Mesh, camera: OrbitCamera, size: int, turns: tuple[int, ...], background: float = 1.0) -> Tensor:
    """[len(turns), 3, H, W] shaded images of a batch-of-one ``mesh`` seen from ``camera`` (batch of one) turned."""
    cams = [camera.turned(d) for d in turns]
    cam = OrbitCamera(torch.cat([c.azimuth for c in cams]), torch.cat([c.elevation for c in cams]),
                      torch.cat([c.t for c in cams]), camera.fov_y)
    B = len(turns)
    many = mesh.replace(verts=mesh.verts.expand(B, -1, -1),
                        textures=tuple(t.expand(B, -1, -1, -1) for t in mesh.textures))
    out = Renderer(RasterSettings((size, size), supersample=2))(many, cam.to_camera((size, size)),
                                                                background=torch.full((3,), background))
    return out.image.clamp(0, 1)

