"""The cameras inverse graphics predicts and trains with: an orbit direction plus a view-space offset.

Frame (the cars benchmark's, ``ganfactory.datasets.variation``): the object frame is x forward, y left,
z up; azimuth 0 looks at the object's front, 90 degrees at its left side; elevation is the angle above the
ground plane. The camera sits in direction ``(cos el cos az, cos el sin az, sin el)`` from what it looks at.

Why (azimuth, elevation, t) and not (azimuth, elevation, distance, target): a look-at camera's rotation is
a function of the direction alone, and its translation in the view frame, ``t = -R eye``, holds the
distance (``-t_z`` for a target at the origin) and the target's offset; every camera the data stores (the
cars' OpenCV K, R, t or a multi-view sample's azimuth, elevation and distance) has an exact ``t``. Turning
the azimuth with ``t`` fixed orbits the object around the vertical axis through the frame's origin, which
is how the 12-view scores walk around an object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as nnf
from torch import Tensor

from ganfactory.render import Camera

__all__ = ["FRAME_FILL", "OrbitCamera", "framing_t", "orbit_rotation", "wrap_degrees"]

FRAME_FILL = 0.9
"""The cars renders' framing (``ganfactory.datasets.cars.FRAME_FILL``): the box spans this share of the image."""


def orbit_rotation(azimuth: Tensor, elevation: Tensor) -> Tensor:
    """[B, 3, 3] world-to-view rotation of cameras in direction (azimuth, elevation) (radians, [B]) looking
    back at the object, with the object frame's +z up in the image (view frame of ``render.conventions``)."""
    back = torch.stack([torch.cos(elevation) * torch.cos(azimuth), torch.cos(elevation) * torch.sin(azimuth),
                        torch.sin(elevation)], -1)
    up = back.new_tensor([0.0, 0.0, 1.0]).expand_as(back)
    right = nnf.normalize(torch.linalg.cross(up, back, dim=-1), dim=-1)
    true_up = torch.linalg.cross(back, right, dim=-1)
    return torch.stack([right, true_up, back], dim=1)


def framing_t(azimuth: Tensor, elevation: Tensor, fov_y: float, half_extents: tuple[float, float, float],
              centre: tuple[float, float, float], distance_scale: float | Tensor = 1.0) -> Tensor:
    """[B, 3] view-space t of cameras that look at a box's centre from (azimuth, elevation) at the distance where
    the box spans ``FRAME_FILL`` of the image (x ``distance_scale``): the cars renders' framing rule
    (``datasets.cars.camera_for``), applied to a typical car's box.

    Why: multi-view samples of a generator have an annotated direction but no distance; the generator learned
    the renders' framing, so the distance a typical car needs at that direction is the best prior (the paper
    fixes one distance; ours also follows how a car's projected size changes with the view)."""
    R = orbit_rotation(azimuth, elevation)
    c = R.new_tensor(centre)
    h = R.new_tensor(half_extents)
    signs = torch.tensor([[sx, sy, sz] for sx in (-1.0, 1.0) for sy in (-1.0, 1.0) for sz in (-1.0, 1.0)],
                         dtype=R.dtype, device=R.device)
    a = torch.einsum("bij,kj->bki", R, signs * h)              # box corners relative to the centre, view axes
    reach = a[..., :2].abs().amax(-1) / (FRAME_FILL * math.tan(fov_y / 2))
    distance = (a[..., 2] + reach).amax(-1) * torch.as_tensor(distance_scale, dtype=R.dtype)
    return -(R @ c) - distance[:, None] * R.new_tensor([0.0, 0.0, 1.0])


def wrap_degrees(angle: Tensor) -> Tensor:
    """Angles in degrees wrapped into [-180, 180)."""
    return torch.remainder(angle + 180.0, 360.0) - 180.0


@dataclass(frozen=True)
class OrbitCamera:
    """A batch of cameras: rotation from (azimuth, elevation), view-space translation t, vertical fov."""

    azimuth: Tensor
    """[B] radians."""
    elevation: Tensor
    """[B] radians."""
    t: Tensor
    """[B, 3] view-space translation (``p_view = R p + t``; ``-t_z`` is about the distance)."""
    fov_y: float
    """Vertical field of view, radians."""

    def to_camera(self, image_size: tuple[int, int]) -> Camera:
        return Camera.from_fov(orbit_rotation(self.azimuth, self.elevation), self.t, self.fov_y, image_size)

    def turned(self, degrees: float) -> OrbitCamera:
        """The same camera orbited by ``degrees`` of azimuth around the object's vertical axis."""
        return OrbitCamera(self.azimuth + math.radians(degrees), self.elevation, self.t, self.fov_y)

    def index(self, i) -> OrbitCamera:
        return OrbitCamera(self.azimuth[i], self.elevation[i], self.t[i], self.fov_y)

    def detach(self) -> OrbitCamera:
        return OrbitCamera(self.azimuth.detach(), self.elevation.detach(), self.t.detach(), self.fov_y)

    @property
    def azimuth_deg(self) -> Tensor:
        return torch.rad2deg(self.azimuth)

    @property
    def elevation_deg(self) -> Tensor:
        return torch.rad2deg(self.elevation)

    def to_json(self, i: int, image_size: tuple[int, int]) -> dict:
        """Sample ``i`` as JSON: the orbit parameters (degrees) and the OpenCV K, R, t it amounts to."""
        one = self.index(slice(i, i + 1))
        K, R, t = one.to_camera(image_size).to_opencv()
        return {
            "frame": "object frame x forward, y left, z up; OpenCV x_cv = R X + t",
            "azimuth_deg": float(wrap_degrees(one.azimuth_deg)[0]) % 360.0,
            "elevation_deg": float(one.elevation_deg[0]),
            "distance": float(-one.t[0, 2]),
            "t_view": [float(v) for v in one.t[0]],
            "fov_deg": math.degrees(self.fov_y),
            "image_size": list(image_size),
            "K": K[0].tolist(), "R": R[0].tolist(), "t": t[0].tolist(),
        }
