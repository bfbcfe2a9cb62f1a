"""The renderer: rasterize, shade, composite, silhouette. One class composed of the stages.

Translucent faces (``Mesh.face_alpha`` < 1) are composited over the nearest opaque surface behind them:
a second rasterisation without the translucent faces gives that surface. One translucent layer is
enough for what we render (car glass over the interior).
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnf
from torch import Tensor, nn

from ganfactory.render.camera import Camera
from ganfactory.render.functional.soft_mask import soft_silhouette
from ganfactory.render.mesh import Mesh
from ganfactory.render.rasterizer import MeshRasterizer
from ganfactory.render.shader import MeshShader
from ganfactory.render.types import (
    DirectionalLights,
    RasterSettings,
    RenderOutput,
    SHLights,
    SoftMaskSettings,
)

__all__ = ["Renderer"]


class Renderer(nn.Module):
    """``Renderer(RasterSettings(image_size=(64, 64)))(mesh, camera) -> RenderOutput``."""

    def __init__(self, raster: RasterSettings, soft_mask: SoftMaskSettings | None = None) -> None:
        super().__init__()
        self.raster = raster
        self.soft_mask_settings = soft_mask if soft_mask is not None else SoftMaskSettings()
        self.rasterizer = MeshRasterizer(raster)
        self.shader = MeshShader(raster.perspective_correct)

    def forward(
        self,
        mesh: Mesh,
        camera: Camera,
        lights: DirectionalLights | SHLights | None = None,
        background: Tensor | None = None,
    ) -> RenderOutput:
        """Render a batch.

        Args:
            background: [C] colour, or [B, C, H, W] image at the output size; default zeros.
        """
        s = self.raster.supersample
        frags = self.rasterizer(mesh, camera)
        front = self.shader(frags, mesh, camera, lights)
        B, Hs, Ws, C = front.color.shape
        bg = self._background(background, B, C, Hs, Ws, front.color)

        a = front.alpha.unsqueeze(-1)
        behind_color, behind_alpha = bg, torch.zeros_like(front.alpha)
        behind_is_black = background is None
        if mesh.face_alpha is not None and bool((mesh.face_alpha < 1).any()):
            opaque = (mesh.face_alpha >= 1)[None].expand(B, -1)
            back = self.shader(self.rasterizer(mesh, camera, valid_faces=opaque), mesh, camera, lights)
            ba = back.alpha.unsqueeze(-1)
            behind_color = back.color + (1 - ba) * bg
            behind_alpha = back.alpha
            behind_is_black = False
        # Over the default black background (1 - a) * 0 adds exactly nothing: skip its three image-sized
        # operations and their backward.
        color = front.color * a if behind_is_black else front.color * a + (1 - a) * behind_color
        alpha = 1 - (1 - front.alpha) * (1 - behind_alpha)

        sm = self.soft_mask_settings
        soft = soft_silhouette(frags.face_vertices_image, frags.face_idx, sm.sigmainv, sm.boxlen, sm.knum,
                               impl=self.raster.impl)

        def pool(x: Tensor) -> Tensor:  # [B, C, Hs, Ws] -> [B, C, H, W]
            return nnf.avg_pool2d(x, s) if s > 1 else x

        def centre(x: Tensor) -> Tensor:  # [B, Hs, Ws, ...] -> the centre sample of each pixel
            return x[:, s // 2::s, s // 2::s] if s > 1 else x

        normals = front.normals.permute(0, 3, 1, 2)
        if s > 1:  # averaged unit normals are renormalised (background stays 0)
            normals = pool(normals)
            normals = nnf.normalize(normals, dim=1, eps=1e-12) * (normals.abs().sum(1, keepdim=True) > 0)
        return RenderOutput(
            image=pool(color.permute(0, 3, 1, 2)),
            soft_mask=pool(soft[:, None])[:, 0],
            alpha=pool(alpha[:, None])[:, 0],
            depth=centre(frags.depth),
            normals=normals,
            labels=centre(front.labels),
            face_idx=centre(frags.face_idx),
        )

    @staticmethod
    def _background(background: Tensor | None, B: int, C: int, Hs: int, Ws: int, like: Tensor) -> Tensor:
        if background is None:
            return torch.zeros_like(like)
        if background.ndim == 1:
            if background.shape[0] != C:
                raise ValueError(f"background colour must have {C} channels, got {background.shape[0]}")
            return background.to(like).expand(B, Hs, Ws, C)
        if background.ndim == 4 and background.shape[:2] == (B, C):
            return nnf.interpolate(background.to(like), size=(Hs, Ws), mode="nearest").permute(0, 2, 3, 1)
        raise ValueError(f"background must be [C] or [B, C, H, W], got {tuple(background.shape)}")
