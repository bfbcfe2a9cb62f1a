"""Fragments + mesh -> per-sample colour, opacity, normals and labels."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ganfactory.render.camera import Camera
from ganfactory.render.functional.interpolate import interpolate, perspective_correct, vertex_normals
from ganfactory.render.functional.shading import blinn_phong, sh9_irradiance
from ganfactory.render.functional.texture import sample_texture
from ganfactory.render.mesh import Mesh
from ganfactory.render.types import DirectionalLights, Fragments, SHLights

__all__ = ["MeshShader", "ShadedSamples", "albedo", "num_channels"]


@dataclass(frozen=True)
class ShadedSamples:
    """Per-sample shading at the rasterized size (before supersamples are averaged)."""

    color: Tensor
    """[B, H, W, C] lit colour, 0 on background."""
    alpha: Tensor
    """[B, H, W] face opacity where covered, 0 on background."""
    normals: Tensor
    """[B, H, W, 3] unit world-space normals facing the camera, 0 on background."""
    labels: Tensor
    """[B, H, W] int64 part id, -1 on background or when the mesh has no parts."""


def num_channels(mesh: Mesh) -> int:
    if mesh.textures:
        return mesh.textures[0].shape[1]
    if mesh.vert_colors is not None:
        return mesh.vert_colors.shape[-1]
    if mesh.face_colors is not None:
        return mesh.face_colors.shape[-1]
    return 3


def albedo(mesh: Mesh, face_idx: Tensor, bary: Tensor) -> Tensor:
    """[B, H, W, C] base colour: texture (where the face has one) x face colour x vertex colour.

    Missing factors count as 1. ``bary`` should be perspective-correct for textures to look right.
    """
    B, H, W = face_idx.shape
    C = num_channels(mesh)
    covered = face_idx >= 0
    f = face_idx.clamp(min=0)
    out = bary.new_ones(B, H, W, C)
    if mesh.textures:
        if mesh.face_uvs is None:
            raise ValueError("the mesh has textures but no face_uvs: give face_uvs [F, 3, 2] to sample them")
        uv = interpolate(mesh.face_uvs, face_idx, bary)
        which = torch.where(covered, mesh.face_texture[f], -1)
        tex = out
        for k, texture in enumerate(mesh.textures):
            sampled = sample_texture(texture, uv)
            tex = torch.where((which == k).unsqueeze(-1), sampled, tex)
        out = tex
    if mesh.face_colors is not None:
        out = out * mesh.face_colors[f]
    if mesh.vert_colors is not None:
        out = out * interpolate(mesh.vert_colors[:, mesh.faces], face_idx, bary)
    return out * covered.unsqueeze(-1)


class MeshShader(nn.Module):
    """Albedo x lighting. Lights: None (unlit albedo), ``DirectionalLights`` or ``SHLights``."""

    def __init__(self, perspective_correct: bool = True) -> None:
        super().__init__()
        self.perspective_correct = perspective_correct

    def forward(
        self,
        fragments: Fragments,
        mesh: Mesh,
        camera: Camera,
        lights: DirectionalLights | SHLights | None = None,
    ) -> ShadedSamples:
        face_idx, bary = fragments.face_idx, fragments.bary
        covered = face_idx >= 0
        if self.perspective_correct:
            bary = perspective_correct(bary, face_idx, -fragments.face_vertices_view[..., 2])
        base = albedo(mesh, face_idx, bary)

        vn = mesh.vert_normals if mesh.vert_normals is not None else vertex_normals(mesh.verts, mesh.faces)
        n = torch.nn.functional.normalize(interpolate(vn[:, mesh.faces], face_idx, bary), dim=-1, eps=1e-12)
        position = interpolate(mesh.verts[:, mesh.faces], face_idx, bary)
        to_camera = torch.nn.functional.normalize(camera.position()[:, None, None, :] - position, dim=-1)
        # Shade the side that is seen (two-sided faces, and smooth normals at silhouettes).
        n = torch.where(((n * to_camera).sum(-1, keepdim=True) < 0), -n, n)

        if lights is None:
            color = base
        elif isinstance(lights, DirectionalLights):
            color = blinn_phong(base, n, to_camera, lights.direction, lights.diffuse, lights.ambient,
                                lights.specular, lights.shininess)
        elif isinstance(lights, SHLights):
            color = base * sh9_irradiance(n, lights.coeffs)
        else:
            kind = type(lights).__name__
            raise TypeError(f"lights must be None, DirectionalLights or SHLights, got {kind}")
        mask = covered.unsqueeze(-1).to(color.dtype)
        color = color * mask
        alpha = covered.to(color.dtype)
        if mesh.face_alpha is not None:
            alpha = alpha * mesh.face_alpha[face_idx.clamp(min=0)]
        if mesh.face_parts is not None:
            labels = torch.where(covered, mesh.face_parts[face_idx.clamp(min=0)], -1)
        else:
            labels = torch.full_like(face_idx, -1)
        return ShadedSamples(color=color, alpha=alpha, normals=n * mask, labels=labels)
