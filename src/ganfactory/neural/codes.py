"""The four inputs of the neural renderer, read from one image by the frozen inverse-graphics network.

GANverse3D's StyleGAN-R maps (camera, shape, texture, background) to the generator's latents. Here every input
comes from the same place for a generated sample, an uploaded photo and the cycle losses of training: the image
goes through the inverse network (``ganfactory.inverse``), and

- **camera**: its predicted orbit camera (azimuth, elevation; the view offset ``t`` is kept for the mesh render);
- **shape**: its predicted vertices in template units, ``(verts - centre) / half_extents`` [V, 3] (scale and
  deformation of the sphere, what the silhouette of the mesh depends on);
- **texture**: its UV texture average-pooled to ``texture_size`` (the car's paint, lighting baked in);
- **background**: the image outside the predicted car, as a coarse grid of colours: the mean colour of the
  non-car pixels in each cell (the mask is the predicted mesh rendered with the predicted camera, dilated by a
  pixel), cells the car covers filled smoothly with the mean background colour. The generator carries the
  background in its last style layers (docs/multiview: layer 9 alone carries its colour), so a coarse code is
  what it can follow.

Images are the generator's range, [-1, 1], everywhere in this package.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor

from ganfactory.inverse.camera import OrbitCamera
from ganfactory.inverse.network import InverseGraphicsNet, Prediction
from ganfactory.render import RasterSettings, Renderer

__all__ = ["PROPERTIES", "PropertyCodes", "background_code", "camera_features", "car_mask", "codes_from_prediction",
           "extract_codes"]

PROPERTIES = ("shape", "texture", "background")
"""The content properties a user can take from another sample (the camera is set directly)."""

_FILL = 0.05
"""Weight of the mean background colour mixed into each cell (fills cells the car covers)."""


@dataclass(frozen=True)
class PropertyCodes:
    """A batch of B inputs of the mapping network (all tensors on one device)."""

    azimuth: Tensor
    """[B] radians (the inverse network's convention: 0 looks at the front, pi/2 at the left side)."""
    elevation: Tensor
    """[B] radians."""
    t: Tensor
    """[B, 3] the predicted view-space offset (only the mesh render uses it)."""
    shape: Tensor
    """[B, V, 3] predicted vertices in template units."""
    texture: Tensor
    """[B, 3, T, T] pooled UV texture in [0, 1]."""
    background: Tensor
    """[B, 3, G, G] background colour grid in [-1, 1]."""

    def __len__(self) -> int:
        return self.azimuth.shape[0]

    def index(self, i) -> PropertyCodes:
        return PropertyCodes(**{f.name: getattr(self, f.name)[i] for f in fields(self)})

    def to(self, device) -> PropertyCodes:
        return PropertyCodes(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def detach(self) -> PropertyCodes:
        return PropertyCodes(**{f.name: getattr(self, f.name).detach() for f in fields(self)})

    def replace(self, **changes) -> PropertyCodes:
        return PropertyCodes(**{f.name: changes.get(f.name, getattr(self, f.name)) for f in fields(self)})

    def with_camera(self, azimuth_deg: float | Tensor | None = None,
                    elevation_deg: float | Tensor | None = None) -> PropertyCodes:
        """The same content seen from another camera (None keeps that angle)."""
        az, el = self.azimuth, self.elevation
        if azimuth_deg is not None:
            az = torch.deg2rad(torch.as_tensor(azimuth_deg, dtype=az.dtype, device=az.device)).expand_as(az)
        if elevation_deg is not None:
            el = torch.deg2rad(torch.as_tensor(elevation_deg, dtype=el.dtype, device=el.device)).expand_as(el)
        return self.replace(azimuth=az, elevation=el)

    @staticmethod
    def cat(items: list[PropertyCodes]) -> PropertyCodes:
        return PropertyCodes(**{f.name: torch.cat([getattr(c, f.name) for c in items]) for f in fields(PropertyCodes)})

    def tensors(self) -> dict[str, Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def camera_features(azimuth: Tensor, elevation: Tensor) -> Tensor:
    """[B] radians x 2 -> [B, 4] (sin, cos of both): continuous across 0 / 360 degrees."""
    return torch.stack([azimuth.sin(), azimuth.cos(), elevation.sin(), elevation.cos()], -1)


def car_mask(net: InverseGraphicsNet, prediction: Prediction, dilate: int = 1) -> Tensor:
    """[B, 1, H, W] the predicted mesh's coverage in its predicted camera (no gradient), dilated by ``dilate`` px."""
    size = net.config.image_size
    with torch.no_grad():
        out = Renderer(RasterSettings((size, size)))(net.mesh(prediction), prediction.camera.to_camera((size, size)))
        mask = out.alpha[:, None].clamp(0, 1)
        if dilate:
            mask = F.max_pool2d(mask, 2 * dilate + 1, 1, dilate)
    return mask


def background_code(images: Tensor, mask: Tensor, grid: int) -> Tensor:
    """[B, 3, grid, grid]: per cell the mean of ``images`` [B, 3, H, W] where ``mask`` [B, 1, H, W] is 0, mixed with
    the image's mean background colour (weight ``_FILL``) so that covered cells take that colour. Differentiable in
    ``images``."""
    keep = 1.0 - mask
    cell = images.shape[-1] // grid
    num = F.avg_pool2d(images * keep, cell)
    den = F.avg_pool2d(keep, cell)
    mean = (images * keep).sum((2, 3), keepdim=True) / keep.sum((2, 3), keepdim=True).clamp(min=1.0)
    return (num + _FILL * mean) / (den + _FILL)


def codes_from_prediction(net: InverseGraphicsNet, prediction: Prediction, images: Tensor, texture_size: int,
                          background_grid: int, mask: Tensor | None = None) -> PropertyCodes:
    """The codes of ``images`` [B, 3, H, W] in [-1, 1] given the inverse network's ``prediction`` of them."""
    c = net.config
    half = prediction.verts.new_tensor(c.half_extents)
    centre = prediction.verts.new_tensor(c.centre)
    shape = (prediction.verts - centre) / half
    texture = F.adaptive_avg_pool2d(prediction.texture, texture_size)
    if mask is None:
        mask = car_mask(net, prediction)
    cam: OrbitCamera = prediction.camera
    return PropertyCodes(azimuth=torch.remainder(cam.azimuth, 2 * torch.pi), elevation=cam.elevation, t=cam.t,
                         shape=shape, texture=texture, background=background_code(images, mask, background_grid))


def extract_codes(net: InverseGraphicsNet, images: Tensor, texture_size: int = 16, background_grid: int = 8,
                  grad: bool = False) -> PropertyCodes:
    """Run the inverse network on ``images`` [B, 3, H, W] in [-1, 1] and read the four codes. ``grad``: keep the
    graph to ``images`` (the cycle losses); else no gradient."""
    with torch.set_grad_enabled(grad):
        prediction = net(((images + 1) / 2).clamp(0, 1))
        return codes_from_prediction(net, prediction, images, texture_size, background_grid)
