"""kaolin's functional DIB-R API on CPU (and CUDA): change one import, keep the code.

    # from kaolin.render.mesh import rasterize, dibr_soft_mask, dibr_rasterization, ...
    from ganfactory.render.kaolin_compat import rasterize, dibr_soft_mask, dibr_rasterization, ...

Signatures, argument meanings, defaults and return values are kaolin's (``kaolin.render.mesh``,
``kaolin.metrics.render.mask_iou``, ``kaolin.ops.mesh.uniform_laplacian``); each function is a thin
layer over ``ganfactory.render.functional``. The only backend is ours: ``backend``/``rast_backend``
accept kaolin's "cuda" (meaning "the default") and nothing else.
"""

from __future__ import annotations

import torch

from ganfactory.render.functional.rasterize import barycentrics, select_faces
from ganfactory.render.functional.soft_mask import soft_silhouette
from ganfactory.render.template import edges

__all__ = ["rasterize", "dibr_soft_mask", "dibr_rasterization", "prepare_vertices", "texture_mapping",
           "mask_iou", "uniform_laplacian"]

_BACKENDS = ("cuda",)


def _check_backend(backend: str) -> None:
    if backend not in _BACKENDS:
        raise ValueError(f'backend "{backend}" is not available here; use "cuda" (which means the default, '
                         "pure-PyTorch DIB-R of ganfactory, on any device)")


def rasterize(height, width, face_vertices_z, face_vertices_image, face_features, valid_faces=None,
              multiplier=None, eps=None, backend="cuda"):
    """kaolin's ``rasterize``: returns (interpolated features [B, H, W, D] or a tuple, face_idx [B, H, W]).

    Features are interpolated with screen-space barycentrics; gradients reach ``face_vertices_image``
    and ``face_features`` (not ``face_vertices_z``), as in kaolin.
    """
    _check_backend(backend)
    multiplier = 1000 if multiplier is None else multiplier
    eps = 1e-8 if eps is None else eps
    feats = torch.cat(face_features, -1) if isinstance(face_features, (list, tuple)) else face_features
    face_idx = select_faces(face_vertices_image, face_vertices_z, height, width, valid_faces,
                            multiplier=multiplier, eps=eps)
    bary = barycentrics(face_vertices_image, face_idx, multiplier=multiplier, eps=eps)
    B = face_idx.shape[0]
    b = torch.arange(B, device=face_idx.device).view(B, 1, 1)
    corners = feats[b, face_idx.clamp(min=0)]  # [B, H, W, 3, D]
    image = (bary.unsqueeze(-1) * corners).sum(-2) * (face_idx >= 0).unsqueeze(-1).to(feats.dtype)
    if isinstance(face_features, (list, tuple)):
        sizes = [f.shape[-1] for f in face_features]
        image = tuple(torch.split(image, sizes, dim=-1))
    return image, face_idx


def dibr_soft_mask(face_vertices_image, selected_face_idx, sigmainv=7000, boxlen=0.02, knum=30,
                   multiplier=1000.0):
    """kaolin's ``dibr_soft_mask``: soft mask [B, H, W], differentiable w.r.t. ``face_vertices_image``."""
    return soft_silhouette(face_vertices_image, selected_face_idx, float(sigmainv), float(boxlen), int(knum),
                           float(multiplier))


def dibr_rasterization(height, width, face_vertices_z, face_vertices_image, face_features, face_normals_z,
                       sigmainv=7000, boxlen=0.02, knum=30, multiplier=None, eps=None, rast_backend="cuda"):
    """kaolin's ``dibr_rasterization``: (features, soft mask, face_idx); normal z < 0 faces are culled."""
    features, face_idx = rasterize(height, width, face_vertices_z, face_vertices_image, face_features,
                                   face_normals_z >= 0.0, multiplier, eps, rast_backend)
    soft_mask = dibr_soft_mask(face_vertices_image, face_idx, sigmainv, boxlen, knum,
                               1000.0 if multiplier is None else multiplier)
    return features, soft_mask, face_idx


def prepare_vertices(vertices, faces, camera_proj, camera_rot=None, camera_trans=None, camera_transform=None):
    """kaolin's ``prepare_vertices``: (face_vertices_camera [B, F, 3, 3], face_vertices_image [B, F, 3, 2],
    face_normals [B, F, 3] unit).

    Camera: ``P_cam = R (P - T)`` from ``camera_rot`` [B, 3, 3] and ``camera_trans`` [B, 3] (or [B, 3, 1]),
    or ``P_cam = [P, 1] @ camera_transform`` [B, 4, 3]; projection ``xy * proj[:2] / (z * proj[2])``
    with ``camera_proj`` [3, 1].
    """
    if camera_transform is None:
        if camera_rot is None or camera_trans is None:
            raise ValueError("camera_transform or camera_trans and camera_rot must be defined")
        cam = torch.matmul(vertices - camera_trans.reshape(-1, 1, 3), camera_rot.transpose(1, 2))
    else:
        if camera_rot is not None or camera_trans is not None:
            raise ValueError("camera_trans and camera_rot must be None when camera_transform is defined")
        cam = torch.nn.functional.pad(vertices, (0, 1), value=1.0) @ camera_transform
    projected = cam * camera_proj.reshape(-1, 1, 3)
    image = projected[..., :2] / projected[..., 2:3]
    fvc, fvi = cam[:, faces], image[:, faces]
    n = torch.linalg.cross(fvc[:, :, 1] - fvc[:, :, 0], fvc[:, :, 2] - fvc[:, :, 0], dim=2)
    n = n / (n.norm(dim=2, keepdim=True) + 1e-10)
    return fvc, fvi, n


def texture_mapping(texture_coordinates, texture_maps, mode="nearest"):
    """kaolin's ``texture_mapping``: sample [B, C, h', w'] maps at UVs [B, h, w, 2] or [B, N, 2] in [0, 1].

    kaolin's semantics: UVs are clamped to [0, 1], v runs bottom to top, ``grid_sample`` with
    ``align_corners=False`` and border padding. Returns [B, h, w, C] or [B, N, C].
    """
    B, C = texture_coordinates.shape[0], texture_maps.shape[1]
    grid = texture_coordinates.reshape(B, -1, 1, 2).clamp(0.0, 1.0) * 2 - 1
    grid = torch.stack([grid[..., 0], -grid[..., 1]], -1)
    out = torch.nn.functional.grid_sample(texture_maps, grid, mode=mode, align_corners=False,
                                          padding_mode="border")
    return out.permute(0, 2, 3, 1).reshape(B, *texture_coordinates.shape[1:-1], C)


def mask_iou(lhs_mask, rhs_mask):
    """kaolin's ``mask_iou``: the IoU LOSS ``1 - mean_b IoU`` of masks [B, H, W] (a scalar)."""
    B = lhs_mask.shape[0]
    if rhs_mask.shape != lhs_mask.shape:
        raise ValueError(f"mask shapes differ: {tuple(lhs_mask.shape)} vs {tuple(rhs_mask.shape)}")
    mul = lhs_mask * rhs_mask
    up = mul.reshape(B, -1).sum(1)
    down = (lhs_mask + rhs_mask - mul).reshape(B, -1).sum(1)
    return 1.0 - (up / (down + 1e-10)).mean()


def uniform_laplacian(num_vertices, faces):
    """kaolin's ``uniform_laplacian``: dense [V, V], L[i, j] = 1 / deg(i) for neighbours, L[i, i] = -1
    (isolated vertices: -1 on the diagonal, 0 elsewhere)."""
    e = edges(faces)
    L = torch.zeros(num_vertices, num_vertices, device=faces.device)
    L[e[:, 0], e[:, 1]] = 1.0
    L[e[:, 1], e[:, 0]] = 1.0
    deg = L.sum(1, keepdim=True)
    L = torch.where(deg > 0, L / deg.clamp(min=1), L)
    torch.diagonal(L)[:] = -1.0
    return L

