"""Per-view-code camera refinement: the annotated cameras of GAN multi-view data, optimised jointly.

GANverse3D annotates each view code with one of 12 azimuth bins and an elevation guess, then optimises
those cameras together with the network ("camera-ready": the refined cameras reach the 2-D IoU of
keypoint-based ones). Every sample of a view code shares one camera, so the correction is per view code:
an azimuth and an elevation offset (radians) and a view-space translation offset, all starting at 0, learned
through the rendering losses (colour and silhouette) like the network's weights. A 30-degree bin cannot
express a camera 10 degrees off its centre; the offsets can, and a wrong bin is pulled toward the view the
images show (``tests/inverse/test_refine.py``).

The camera head is supervised by the refined camera, detached: the head follows the refinement, the
refinement follows the images, and the supervision cannot drag the refinement toward the head's guess.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ganfactory.inverse.camera import OrbitCamera

__all__ = ["ViewCodeCameras"]


class ViewCodeCameras(nn.Module):
    """Learned offsets [view_codes, 5] = (azimuth, elevation, t_x, t_y, t_z) added to the annotated cameras."""

    def __init__(self, view_codes: int, max_elevation_offset_deg: float = 30.0) -> None:
        super().__init__()
        if view_codes < 1:
            raise ValueError(f"view_codes must be at least 1, got {view_codes}")
        self.offsets = nn.Parameter(torch.zeros(view_codes, 5))
        self.max_elevation = math.radians(max_elevation_offset_deg)

    def forward(self, camera: OrbitCamera, view_code: Tensor) -> OrbitCamera:
        """``camera`` (the annotated cameras of a batch) with their view codes' offsets; samples with view code
        -1 (none) keep their camera."""
        known = (view_code >= 0).to(camera.t.dtype)
        d = self.offsets[view_code.clamp(min=0)] * known[:, None]
        elevation = camera.elevation + self.max_elevation * torch.tanh(d[:, 1] / self.max_elevation)
        return OrbitCamera(camera.azimuth + d[:, 0], elevation, camera.t + d[:, 2:], camera.fov_y)

    def to_json(self) -> list[dict]:
        """Each view code's learned offsets in degrees and metres (what the refinement moved)."""
        d = self.offsets.detach().cpu()
        el = self.max_elevation * torch.tanh(d[:, 1] / self.max_elevation)
        return [{"view_code": v, "azimuth_offset_deg": round(math.degrees(float(d[v, 0])), 3),
                 "elevation_offset_deg": round(math.degrees(float(el[v])), 3),
                 "t_offset": [round(float(x), 4) for x in d[v, 2:]]} for v in range(d.shape[0])]
