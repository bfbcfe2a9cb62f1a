"""Perspective pinhole cameras: world -> view -> NDC, look-at, and OpenCV K, R, t.

Frames, NDC and pixel centres are stated in ``ganfactory.render.conventions``. Every field is a batched
tensor, so a camera can be optimised (``look_at`` is differentiable in azimuth, elevation, distance and
target).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ganfactory.render.conventions import CV_FROM_VIEW

__all__ = ["Camera", "look_at", "orbit_direction"]


def orbit_direction(azimuth: Tensor, elevation: Tensor) -> Tensor:
    """[..., 3] unit vectors from a target toward cameras at ``azimuth``, ``elevation`` (radians, the convention of
    ``conventions``: azimuth 0 on +z, counter-clockwise toward +x seen from above; elevation raises)."""
    return torch.stack([torch.cos(elevation) * torch.sin(azimuth), torch.sin(elevation),
                        torch.cos(elevation) * torch.cos(azimuth)], -1)


def look_at(
    azimuth: Tensor,
    elevation: Tensor,
    distance: Tensor,
    target: Tensor | None = None,
    up: tuple[float, float, float] = (0.0, 1.0, 0.0),
) -> tuple[Tensor, Tensor]:
    """World-to-view rotation and translation of cameras looking at ``target``.

    Args:
        azimuth, elevation: [B] radians (see ``conventions``: azimuth 0 is on +z, elevation raises).
        distance: [B] distance from the target.
        target: [B, 3] the point looked at (default origin).
        up: the world direction that appears up in the image.
    Returns:
        R [B, 3, 3], t [B, 3] with ``p_view = R p_world + t``.
    """
    azimuth, elevation, distance = torch.broadcast_tensors(
        torch.as_tensor(azimuth), torch.as_tensor(elevation), torch.as_tensor(distance))
    if azimuth.ndim != 1:
        raise ValueError(f"azimuth, elevation and distance must be [B], got {tuple(azimuth.shape)}")
    if target is None:
        target = azimuth.new_zeros(azimuth.shape[0], 3)
    offset = orbit_direction(azimuth, elevation)
    eye = target + distance[:, None] * offset
    back = offset  # view +z points from the target to the eye (the camera looks down -z)
    up_t = back.new_tensor(up).expand_as(back)
    right = torch.nn.functional.normalize(torch.linalg.cross(up_t, back, dim=-1), dim=-1)
    true_up = torch.linalg.cross(back, right, dim=-1)
    R = torch.stack([right, true_up, back], dim=1)
    t = -(R @ eye[:, :, None])[:, :, 0]
    return R, t


@dataclass(frozen=True)
class Camera:
    """A batch of pinhole cameras.

    Intrinsics are in pixels with OpenCV's pixel-centre convention; extrinsics map world to our view
    frame (x right, y up, looking down -z).
    """

    R: Tensor
    """[B, 3, 3] world-to-view rotation."""
    t: Tensor
    """[B, 3] world-to-view translation: ``p_view = R p_world + t``."""
    focal: Tensor
    """[B, 2] (fx, fy) in pixels."""
    principal: Tensor
    """[B, 2] (cx, cy) in pixels; ((W - 1) / 2, (H - 1) / 2) is the image centre."""
    image_size: tuple[int, int]
    """(H, W) in pixels."""

    def __post_init__(self) -> None:
        B = self.R.shape[0]
        for name, shape in (("R", (B, 3, 3)), ("t", (B, 3)), ("focal", (B, 2)), ("principal", (B, 2))):
            if tuple(getattr(self, name).shape) != shape:
                got = tuple(getattr(self, name).shape)
                raise ValueError(f"Camera.{name} must be {list(shape)}, got {got}")
        if len(self.image_size) != 2:
            raise ValueError(f"image_size must be (H, W), got {self.image_size}")

    # ----------------------------------------------------------------------------------------- builders
    @classmethod
    def from_fov(cls, R: Tensor, t: Tensor, fov_y: float, image_size: tuple[int, int]) -> Camera:
        """Square pixels, centred principal point, vertical field of view ``fov_y`` in radians."""
        H, W = image_size
        f = H / (2.0 * math.tan(fov_y / 2.0))
        B = R.shape[0]
        focal = R.new_tensor([f, f]).expand(B, 2)
        principal = R.new_tensor([(W - 1) / 2.0, (H - 1) / 2.0]).expand(B, 2)
        return cls(R, t, focal, principal, (int(H), int(W)))

    @classmethod
    def orbit(
        cls,
        azimuth: Tensor,
        elevation: Tensor,
        distance: Tensor,
        fov_y: float,
        image_size: tuple[int, int],
        target: Tensor | None = None,
    ) -> Camera:
        """``look_at`` + ``from_fov``: the cameras GANverse3D uses (azimuth bins, elevation, distance)."""
        R, t = look_at(azimuth, elevation, distance, target)
        return cls.from_fov(R, t, fov_y, image_size)

    @classmethod
    def from_opencv(cls, K: Tensor, R: Tensor, t: Tensor, image_size: tuple[int, int]) -> Camera:
        """From OpenCV intrinsics K [B, 3, 3] and extrinsics R [B, 3, 3], t [B, 3] (x_cv = R X + t)."""
        if K.shape[-2:] != (3, 3) or R.shape[-2:] != (3, 3) or t.shape[-1] != 3:
            raise ValueError("from_opencv expects K [B, 3, 3], R [B, 3, 3], t [B, 3]")
        flip = R.new_tensor(CV_FROM_VIEW)
        focal = torch.stack([K[:, 0, 0], K[:, 1, 1]], -1)
        principal = torch.stack([K[:, 0, 2], K[:, 1, 2]], -1)
        return cls(flip @ R, t @ flip, focal, principal, (int(image_size[0]), int(image_size[1])))

    def to_opencv(self) -> tuple[Tensor, Tensor, Tensor]:
        """(K [B, 3, 3], R [B, 3, 3], t [B, 3]) in OpenCV's camera frame (x right, y down, z forward)."""
        flip = self.R.new_tensor(CV_FROM_VIEW)
        K = self.R.new_zeros(self.batch_size, 3, 3)
        K[:, 0, 0], K[:, 1, 1] = self.focal[:, 0], self.focal[:, 1]
        K[:, 0, 2], K[:, 1, 2] = self.principal[:, 0], self.principal[:, 1]
        K[:, 2, 2] = 1.0
        return K, flip @ self.R, self.t @ flip

    # ------------------------------------------------------------------------------------- transforms
    @property
    def batch_size(self) -> int:
        return self.R.shape[0]

    def position(self) -> Tensor:
        """[B, 3] camera centres in world space."""
        return -(self.R.transpose(1, 2) @ self.t[:, :, None])[:, :, 0]

    def world_to_view(self, points: Tensor) -> Tensor:
        """[B, N, 3] world points -> [B, N, 3] view points."""
        return points @ self.R.transpose(1, 2) + self.t[:, None, :]

    def view_to_ndc(self, points: Tensor) -> Tensor:
        """[B, N, 3] view points (z < 0 in front) -> [B, N, 2] NDC x, y (x right, y up)."""
        H, W = self.image_size
        depth = -points[..., 2]
        u = self.focal[:, None, 0] * points[..., 0] / depth + self.principal[:, None, 0]
        v = -self.focal[:, None, 1] * points[..., 1] / depth + self.principal[:, None, 1]
        return torch.stack([(2 * u + 1) / W - 1, 1 - (2 * v + 1) / H], -1)

    def replace(self, **changes) -> Camera:
        return dataclasses.replace(self, **changes)

    def to(self, device: torch.device | str) -> Camera:
        return self.replace(R=self.R.to(device), t=self.t.to(device), focal=self.focal.to(device),
                            principal=self.principal.to(device))
