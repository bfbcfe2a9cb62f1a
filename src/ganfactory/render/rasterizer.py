"""Mesh + camera -> Fragments: projection, culling, face selection, differentiable barycentrics."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganfactory.render.camera import Camera
from ganfactory.render.functional.gather import Covered, gather_rows
from ganfactory.render.functional.rasterize import barycentrics_at, select_faces
from ganfactory.render.mesh import Mesh
from ganfactory.render.types import Fragments, RasterSettings

__all__ = ["MeshRasterizer", "rasterize_mesh", "project_faces", "front_facing"]


def project_faces(mesh: Mesh, camera: Camera) -> tuple[Tensor, Tensor]:
    """Face corners in view space [B, F, 3, 3] and in NDC [B, F, 3, 2]."""
    if camera.batch_size != mesh.batch_size:
        raise ValueError(f"camera batch {camera.batch_size} != mesh batch {mesh.batch_size}")
    verts_view = camera.world_to_view(mesh.verts)
    verts_image = camera.view_to_ndc(verts_view)
    B, V, F = mesh.batch_size, mesh.num_verts, mesh.num_faces
    rows = (mesh.faces.reshape(1, -1) + V * torch.arange(B, device=mesh.faces.device)[:, None]).reshape(-1)
    return (gather_rows(verts_view.reshape(B * V, 3), rows).view(B, F, 3, 3),
            gather_rows(verts_image.reshape(B * V, 2), rows).view(B, F, 3, 2))


def front_facing(face_vertices_image: Tensor) -> Tensor:
    """[B, F] bool: corners counter-clockwise in the image (x right, y up), zero area included.

    The image-space winding is exact under perspective (a view-space normal test is not).
    """
    e1 = face_vertices_image[..., 1, :] - face_vertices_image[..., 0, :]
    e2 = face_vertices_image[..., 2, :] - face_vertices_image[..., 0, :]
    return e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0] >= 0


def rasterize_mesh(
    mesh: Mesh,
    camera: Camera,
    image_size: tuple[int, int],
    cull_backfaces: bool = True,
    impl: str = "binned",
    valid_faces: Tensor | None = None,
) -> Fragments:
    """Rasterize at ``image_size`` (the camera's NDC frame is resolution independent).

    Faces with a corner at or behind the camera plane (z_view >= 0) are not drawn (no clipping).
    ``valid_faces`` [B, F] bool can exclude more faces (the renderer uses it to see through glass).
    """
    H, W = image_size
    fvv, fvi = project_faces(mesh, camera)
    with torch.no_grad():
        valid = (fvv[..., 2] < 0).all(-1)
        if cull_backfaces:
            keep = front_facing(fvi)
            if mesh.face_two_sided is not None:
                keep = keep | mesh.face_two_sided.to(keep.device)[None]
            valid = valid & keep
        if valid_faces is not None:
            valid = valid & valid_faces
    face_idx = select_faces(fvi, fvv[..., 2], H, W, valid, impl=impl)
    pixels = Covered.of(face_idx)
    w = barycentrics_at(fvi, pixels)
    # Perspective-correct depth: 1 / d = sum_k w_k / d_k with screen-space weights.
    F = fvi.shape[1]
    corner_depth = -gather_rows(fvv[..., 2].reshape(-1, 3), pixels.batch * F + pixels.face)  # [P, 3]
    bary = pixels.spread(w)
    depth = pixels.spread(1.0 / (w / corner_depth).sum(-1))
    return Fragments(face_idx=face_idx, bary=bary, depth=depth, face_vertices_view=fvv,
                     face_vertices_image=fvi, covered=pixels, bary_covered=w)


class MeshRasterizer(nn.Module):
    """Thin module over ``rasterize_mesh``; rasterizes at image_size x supersample."""

    def __init__(self, settings: RasterSettings) -> None:
        super().__init__()
        self.settings = settings

    def forward(self, mesh: Mesh, camera: Camera, valid_faces: Tensor | None = None) -> Fragments:
        s = self.settings
        H, W = s.image_size
        return rasterize_mesh(mesh, camera, (H * s.supersample, W * s.supersample), s.cull_backfaces, s.impl,
                              valid_faces)
