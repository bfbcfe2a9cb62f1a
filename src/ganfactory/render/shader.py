"""Fragments + mesh -> per-sample colour, opacity, normals and labels."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ganfactory.render.camera import Camera
from ganfactory.render.functional.gather import Covered, blend, gather_rows
from ganfactory.render.functional.interpolate import CORNERS, perspective_weights, vertex_normals
from ganfactory.render.functional.shading import blinn_phong, sh9_irradiance
from ganfactory.render.functional.texture import sample_texture_at
from ganfactory.render.functional.vectors import normalize
from ganfactory.render.mesh import Mesh
from ganfactory.render.types import DirectionalLights, Fragments, SHLights

__all__ = ["MeshShader", "ShadedSamples", "albedo", "albedo_at", "num_channels"]


@dataclass(frozen=True)
class ShadedSamples:
    """Per-sample shading at the rasterized size (before supersamples are averaged)."""

    color: Tensor
    """[B, H, W, C] lit colour, 0 on background."""
    alpha: Tensor
    """[B, H, W] opacity where covered (face alpha x the alpha of RGBA textures), 0 on background."""
    normals: Tensor
    """[B, H, W, 3] unit world-space normals facing the camera, 0 on background."""
    labels: Tensor
    """[B, H, W] int64 part id, -1 on background or when the mesh has no parts."""


def num_channels(mesh: Mesh) -> int:
    """Colour channels of the mesh's albedo: those of its vertex or face colours, else of its first
    texture without the alpha channel of an RGBA one (4 -> 3); 3 for an uncoloured mesh."""
    if mesh.vert_colors is not None:
        return mesh.vert_colors.shape[-1]
    if mesh.face_colors is not None:
        return mesh.face_colors.shape[-1]
    if mesh.textures:
        channels = mesh.textures[0].shape[1]
        return 3 if channels == 4 else channels
    return 3


def albedo(mesh: Mesh, face_idx: Tensor, bary: Tensor) -> Tensor:
    """[B, H, W, C] base colour: texture (where the face has one) x face colour x vertex colour.

    Missing factors count as 1. ``bary`` should be perspective-correct for textures to look right.
    The alpha channel of RGBA textures is opacity, not colour (``MeshShader`` applies it).
    """
    pixels = Covered.of(face_idx)
    return pixels.spread(albedo_at(mesh, pixels, pixels.take(bary))[0])


def albedo_at(mesh: Mesh, pixels: Covered, w: Tensor) -> tuple[Tensor, Tensor | None]:
    """``albedo`` at the covered pixels: barycentrics ``w`` [P, 3] -> colour [P, C] and the textures'
    opacity [P] (None when no texture has an alpha channel).

    A texture with C + 1 channels (RGBA for RGB colours, as image files with transparency load) has
    its last channel as opacity; a texture with C channels is opaque colour.
    """
    C = num_channels(mesh)
    f = pixels.face
    out = w.new_ones(pixels.num_pixels, C)
    opacity = None
    if mesh.textures:
        if mesh.face_uvs is None:
            raise ValueError("the mesh has textures but no face_uvs: give face_uvs [F, 3, 2] to sample them")
        corners = f[:, None] * 3 + CORNERS.to(f.device)
        uv = blend(mesh.face_uvs.reshape(-1, 2).to(w.dtype), corners, w)
        which = mesh.face_texture.index_select(0, f)
        for k, texture in enumerate(mesh.textures):
            channels = texture.shape[1]
            if channels not in (C, C + 1):
                raise ValueError(f"texture {k} has {channels} channels; the mesh's colours have {C}, so a "
                                 f"texture must have {C} (colour) or {C + 1} (colour and alpha)")
            at = torch.nonzero(which == k).squeeze(1)
            if not at.numel():
                continue
            if at.shape[0] == pixels.num_pixels:  # one texture everywhere: no gather and copy
                sampled = sample_texture_at(texture, uv, pixels.batch)
                out = sampled[:, :C]
                opacity = sampled[:, C] if channels == C + 1 else opacity
                continue
            sampled = sample_texture_at(texture, gather_rows(uv, at), pixels.batch.index_select(0, at))
            out = out.index_copy(0, at, sampled[:, :C])
            if channels == C + 1:
                opacity = w.new_ones(pixels.num_pixels) if opacity is None else opacity
                opacity = opacity.index_copy(0, at, sampled[:, C])
    if mesh.face_colors is not None:
        out = out * gather_rows(mesh.face_colors, f)
    if mesh.vert_colors is not None:
        out = out * blend(mesh.vert_colors.reshape(-1, mesh.vert_colors.shape[-1]),
                          _vertex_rows(mesh, pixels), w)
    return out, opacity


def _vertex_rows(mesh: Mesh, pixels: Covered) -> Tensor:
    """[P, 3] rows of the corners' vertices in a [B * V, ...] per-vertex table."""
    return mesh.faces.index_select(0, pixels.face) + (pixels.batch * mesh.num_verts)[:, None]


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
        face_idx = fragments.face_idx
        pixels = fragments.covered if fragments.covered is not None else Covered.of(face_idx)
        w = fragments.bary_covered if fragments.bary_covered is not None else pixels.take(fragments.bary)
        if self.perspective_correct:
            F = fragments.face_vertices_view.shape[1]
            depth = -gather_rows(fragments.face_vertices_view[..., 2].reshape(-1, 3), pixels.batch * F + pixels.face)
            w = perspective_weights(w, depth)
        base, opacity = albedo_at(mesh, pixels, w)

        vn = mesh.vert_normals if mesh.vert_normals is not None else vertex_normals(mesh.verts, mesh.faces)
        # Normals and positions in one gather: [P, 6].
        table = torch.cat([vn, mesh.verts], -1).reshape(-1, 6)
        n, position = blend(table, _vertex_rows(mesh, pixels), w).split(3, dim=-1)
        n = normalize(n)
        to_camera = normalize(gather_rows(camera.position(), pixels.batch) - position)
        # Shade the side that is seen (two-sided faces, and smooth normals at silhouettes).
        n = torch.where(((n * to_camera).sum(-1, keepdim=True) < 0), -n, n)

        # Lighting runs on the covered pixels as a batch of P one-pixel images (each with its sample's
        # lights), so the background costs nothing.
        b = pixels.batch
        if lights is None:
            color = base
        elif isinstance(lights, DirectionalLights):
            color = blinn_phong(base[:, None], n[:, None], to_camera[:, None], gather_rows(lights.direction, b),
                                gather_rows(lights.diffuse, b), gather_rows(lights.ambient, b),
                                None if lights.specular is None else gather_rows(lights.specular, b),
                                lights.shininess)[:, 0]
        elif isinstance(lights, SHLights):
            color = base * sh9_irradiance(n[:, None, None], gather_rows(lights.coeffs, b))[:, 0, 0]
        else:
            kind = type(lights).__name__
            raise TypeError(f"lights must be None, DirectionalLights or SHLights, got {kind}")
        covered = face_idx >= 0
        alpha = (mesh.face_alpha[pixels.face].to(color.dtype) if mesh.face_alpha is not None
                 else color.new_ones(pixels.num_pixels))
        alpha = pixels.spread(alpha if opacity is None else alpha * opacity)
        if mesh.face_parts is not None:
            labels = torch.where(covered, mesh.face_parts[face_idx.clamp(min=0)], -1)
        else:
            labels = torch.full_like(face_idx, -1)
        return ShadedSamples(color=pixels.spread(color), alpha=alpha, normals=pixels.spread(n), labels=labels)
