"""Typed settings and hand-offs between the renderer's stages.

``Fragments`` passes from the rasterizer to the shader; ``RenderOutput`` is what a render returns.
Fill values and frames are those of ``ganfactory.render.conventions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import Tensor

if TYPE_CHECKING:
    from ganfactory.render.functional.gather import Covered

__all__ = ["RasterSettings", "SoftMaskSettings", "Fragments", "RenderOutput", "DirectionalLights", "SHLights"]


@dataclass(frozen=True)
class RasterSettings:
    """How to rasterize."""

    image_size: tuple[int, int]
    """(H, W) of the output images."""
    cull_backfaces: bool = True
    """Drop faces whose view-space normal points away (two-sided faces are always kept)."""
    supersample: int = 1
    """Rasterize and shade at this many samples per pixel side, then average (anti-aliasing)."""
    impl: str = "binned"
    """"binned" (fast) or "dense" (the reference; memory F x H x W)."""
    perspective_correct: bool = True
    """Interpolate attributes and UVs perspective-correctly in the shader (DIB-R itself does not)."""

    def __post_init__(self) -> None:
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ValueError(f"image_size must be (H, W) with positive sizes, got {self.image_size}")
        if self.supersample < 1:
            raise ValueError(f"supersample must be >= 1, got {self.supersample}")
        if self.impl not in ("binned", "dense"):
            raise ValueError(f"impl must be 'binned' or 'dense', got {self.impl!r}")


@dataclass(frozen=True)
class SoftMaskSettings:
    """DIB-R soft silhouette parameters; kaolin's defaults."""

    sigmainv: float = 7000.0
    """Sharpness of the falloff exp(-sigmainv d^2), d in NDC units."""
    boxlen: float = 0.02
    """NDC margin added around each face's bounding box; faces farther away do not contribute."""
    knum: int = 30
    """At most this many faces (the first in face order) contribute to a pixel."""


@dataclass(frozen=True)
class Fragments:
    """Per-pixel result of rasterisation; H, W are the rasterized (supersampled) size."""

    face_idx: Tensor
    """[B, H, W] int64 visible face, -1 where no face covers the pixel (no gradient)."""
    bary: Tensor
    """[B, H, W, 3] screen-space barycentrics of that face, 0 on background (differentiable)."""
    depth: Tensor
    """[B, H, W] perspective-correct -z_view, 0 on background."""
    face_vertices_view: Tensor
    """[B, F, 3, 3] view-space corners of every face."""
    face_vertices_image: Tensor
    """[B, F, 3, 2] NDC corners of every face (what the soft silhouette needs)."""
    covered: Covered | None = None
    """The covered pixels as a flat list (the shader's work list); None: the shader derives it from
    ``face_idx``."""
    bary_covered: Tensor | None = None
    """[P, 3] ``bary`` at the ``covered`` pixels (differentiable; the shader uses it instead of gathering
    from ``bary``, which saves a gather and its backward); None: gathered from ``bary``."""

    @property
    def mask(self) -> Tensor:
        """[B, H, W] bool coverage."""
        return self.face_idx >= 0


@dataclass(frozen=True)
class DirectionalLights:
    """Ambient + Lambert + Blinn-Phong specular from directional lights (world space)."""

    direction: Tensor
    """[B, L, 3] unit vectors from the surface toward each light."""
    diffuse: Tensor
    """[B, L, 3] light colours for the diffuse term."""
    ambient: Tensor
    """[B, 3] ambient colour."""
    specular: Tensor | None = None
    """[B, L, 3] specular colours, or None for no highlight."""
    shininess: float = 32.0
    """Blinn-Phong exponent."""


@dataclass(frozen=True)
class SHLights:
    """Lighting as 9 real spherical-harmonics coefficients (bands 0-2) of the irradiance, per channel."""

    coeffs: Tensor
    """[B, 9] (grey) or [B, C, 9] (per channel), in the basis order of ``functional.shading.sh9_basis``."""


@dataclass(frozen=True)
class RenderOutput:
    """What ``Renderer`` returns, at the output size (after supersampling is averaged)."""

    image: Tensor
    """[B, C, H, W] shaded colour composited over the background."""
    soft_mask: Tensor
    """[B, H, W] DIB-R soft silhouette (1 on covered pixels; differentiable around them)."""
    alpha: Tensor
    """[B, H, W] coverage times face opacity, averaged over supersamples."""
    depth: Tensor
    """[B, H, W] -z_view of the front surface, 0 on background (centre sample)."""
    normals: Tensor
    """[B, 3, H, W] unit world-space shading normals, 0 on background."""
    labels: Tensor
    """[B, H, W] int64 part id of the front face, -1 on background or unlabeled meshes (centre sample)."""
    face_idx: Tensor
    """[B, H, W] int64 front face, -1 on background (centre sample)."""
