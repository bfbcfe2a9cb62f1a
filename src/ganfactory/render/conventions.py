"""The one statement of the renderer's conventions. Code and tests import these names.

Why one module: a convention written in two places drifts. Everything below follows kaolin's DIB-R
(so that ``kaolin_compat`` is a thin layer and the fixtures from kaolin's CUDA kernels hold exactly).

World frame (the one frame of the package; the cars benchmark and the 3-D half use it too)
    Right-handed, y up. ``look_at`` places the camera at
    ``target + distance * (cos(el) sin(az), sin(el), cos(el) cos(az))`` (``orbit_direction``): azimuth 0 and
    elevation 0 put the camera on the +z axis looking toward -z; positive azimuth turns the camera
    counter-clockwise seen from above (from +z toward +x); positive elevation raises it.

Objects in the world
    An object is placed with its front along +z, its left side along +x and its top along +y, so azimuth 0
    looks at its front, 90 at its left side, 180 at its back, and elevation is the angle above its ground
    plane. A vehicle model in the usual vehicle frame (TORCS, ISO 8855: x forward, y left, z up) is placed by
    the rotation ``WORLD_FROM_VEHICLE``: world (x, y, z) = vehicle (y, z, x), a cyclic permutation of the axes
    (``vehicle_to_world``, exact in floating point). Files that describe one model's view (a cars sample's
    OpenCV R, t and light direction) keep the model file's own frame, so they apply to the model as read.

Units
    Angles are degrees on disk and in user-facing fields (``azimuth_deg``, ``elevation_deg``, ``fov_deg``);
    radians inside the renderer (``look_at``, ``orbit_direction``, ``Camera.from_fov``). Convert at the boundary
    with ``math.radians``. Distances are in the model's units (metres for TORCS cars).

View (camera) frame
    x right, y up, the camera looks down -z (OpenGL). A point is in front of the camera when z < 0.
    ``p_view = R @ p_world + t``. OpenCV's camera frame (x right, y down, z forward) is
    ``CV_FROM_VIEW @ p_view`` with ``CV_FROM_VIEW = diag(1, -1, -1)``.

Image / NDC
    ``face_vertices_image`` holds NDC x, y in [-1, 1]: x right, y up; (-1, 1) is the top-left corner of
    the top-left pixel. Pixel (row j, column i) has its centre at
    ``x = (2 i + 1 - W) / W``, ``y = (H - 2 j - 1) / H``. Images are stored rows top to bottom.
    Intrinsics are OpenCV's: integer pixel coordinates (u, v) are pixel centres, so
    ``x_ndc = (2 u + 1) / W - 1`` and ``y_ndc = 1 - (2 v + 1) / H``.

Coverage
    Internally coordinates are scaled by ``SCREEN_MULTIPLIER`` (kaolin's ``multiplier``) and pixel
    centres are computed in the same order as kaolin's kernels, so coverage decisions match kaolin's.
    A pixel is tested against a face only when ``xmin <= x < xmax`` and ``ymin <= y < ymax`` for the
    face's 2D bounding box (half-open, kaolin's rule), then covered when all three barycentrics are >= 0.

Winding and culling
    A face is front-facing when its corners run counter-clockwise in the image (x right, y up); for a
    mesh that means counter-clockwise seen from outside, its normal ``cross(v1 - v0, v2 - v0)`` pointing
    out. The renderer culls by this image-space winding (exact under perspective); ``kaolin_compat``
    culls by the caller's ``face_normals_z >= 0`` as kaolin does. Two-sided faces are never culled.
    Faces with a corner at or behind the camera plane (z_view >= 0) are not drawn (no clipping).

Depth
    Visibility keeps, per pixel, the face with the LARGEST view z (nearest; z < 0 in front), z being
    interpolated with screen-space barycentrics (kaolin's rule); ties go to the lowest face index.
    ``Fragments.depth`` holds the perspective-correct distance along the optical axis, ``-z_view > 0``,
    and ``BACKGROUND_DEPTH`` (0) where no face covers the pixel. ``Fragments.face_idx`` is -1 there.

Barycentrics
    ``Fragments.bary`` holds screen-space barycentrics (DIB-R interpolates with them, and its gradients
    reach vertex positions through them); ``functional.perspective_correct`` converts them.

Textures
    UV: u right, v up, (0, 0) is the bottom-left corner of the texture image; texel centres at
    ``(k + 0.5) / size``; bilinear filtering with wrap-around (``u = -0.1`` is ``u = 0.9``).
"""

from __future__ import annotations

import torch

__all__ = [
    "SCREEN_MULTIPLIER",
    "BARY_EPS",
    "BACKGROUND_DEPTH",
    "BACKGROUND_FACE",
    "CV_FROM_VIEW",
    "WORLD_FROM_VEHICLE",
    "pixel_centers",
    "vehicle_to_world",
]

SCREEN_MULTIPLIER = 1000.0
"""Image coordinates are scaled by this before coverage and distance tests (kaolin's ``multiplier``)."""

BARY_EPS = 1e-8
"""Added (with the sign of the area) to the doubled triangle area before dividing, in scaled units."""

BACKGROUND_DEPTH = 0.0
BACKGROUND_FACE = -1

CV_FROM_VIEW = ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0))
"""Rotation from our view frame (OpenGL) to OpenCV's camera frame; it is its own inverse."""

WORLD_FROM_VEHICLE = ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 0.0, 0.0))
"""Rotation placing a vehicle-frame model (x forward, y left, z up) in the world: ``p_world = M @ p_vehicle``."""

_VEHICLE_AXES = (1, 2, 0)
"""``WORLD_FROM_VEHICLE`` as an axis permutation: world axis i is vehicle axis ``_VEHICLE_AXES[i]``."""


def vehicle_to_world(points: torch.Tensor) -> torch.Tensor:
    """[..., 3] vehicle-frame points or directions -> the world frame (``WORLD_FROM_VEHICLE``, by indexing: exact)."""
    return points[..., list(_VEHICLE_AXES)]


def pixel_centers(
    height: int,
    width: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    multiplier: float = SCREEN_MULTIPLIER,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates scaled by ``multiplier``: x [W] increasing, y [H] decreasing.

    ``x_i = (multiplier / W) * (2 i + 1 - W)`` and ``y_j = (multiplier / H) * (H - 2 j - 1)``, evaluated in
    ``dtype`` in this order (as kaolin's kernels do), so that coverage and soft-mask values agree with
    kaolin's to rounding.
    """
    i = torch.arange(width, dtype=dtype, device=device)
    j = torch.arange(height, dtype=dtype, device=device)
    return (multiplier / width) * (2 * i + 1 - width), (multiplier / height) * (height - 2 * j - 1)
