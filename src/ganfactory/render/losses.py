"""The losses inverse graphics trains with (GANverse3D / kaolin's DIB-R recipe), as small functions."""

from __future__ import annotations

import torch
from torch import Tensor

from ganfactory.render.functional.interpolate import face_normals
from ganfactory.render.template import edges

__all__ = ["silhouette_iou_loss", "masked_l1", "uniform_laplacian_loss", "flatten_loss"]


def silhouette_iou_loss(mask: Tensor, target: Tensor, eps: float = 1e-10) -> Tensor:
    """1 - mean over the batch of sum(m g) / sum(m + g - m g); masks [B, H, W] in [0, 1]."""
    if mask.shape != target.shape or mask.ndim != 3:
        raise ValueError(f"masks must both be [B, H, W], got {tuple(mask.shape)} and {tuple(target.shape)}")
    inter = (mask * target).flatten(1).sum(1)
    union = (mask + target - mask * target).flatten(1).sum(1)
    return 1.0 - (inter / (union + eps)).mean()


def masked_l1(image: Tensor, target: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """Mean |image - target| over the pixels inside ``mask`` and all channels.

    image, target: [B, C, H, W]; mask: [B, H, W] (the target's mask; may be soft).
    """
    if image.shape != target.shape or mask.shape != (image.shape[0], *image.shape[2:]):
        raise ValueError(f"expected images [B, C, H, W] and mask [B, H, W], got {tuple(image.shape)}, "
                         f"{tuple(target.shape)}, {tuple(mask.shape)}")
    w = mask.unsqueeze(1)
    return ((image - target).abs() * w).sum() / (w.sum() * image.shape[1] + eps)


def uniform_laplacian_loss(offsets: Tensor, faces: Tensor) -> Tensor:
    """mean((A d - d)^2): A the row-normalised vertex adjacency, d [B, V, 3] offsets from the template."""
    e = edges(faces)
    i = torch.cat([e[:, 0], e[:, 1]])
    j = torch.cat([e[:, 1], e[:, 0]])
    V = offsets.shape[1]
    deg = torch.zeros(V, dtype=offsets.dtype, device=offsets.device).index_add_(
        0, i, torch.ones_like(i, dtype=offsets.dtype))
    mean_nb = torch.zeros_like(offsets).index_add_(1, i, offsets[:, j]) / deg.clamp(min=1)[None, :, None]
    return ((mean_nb - offsets) ** 2).mean()


def flatten_loss(verts: Tensor, face_pairs: Tensor, faces: Tensor) -> Tensor:
    """mean over interior edges of (n1 . n2 - 1)^2 for the unit normals of the two adjacent faces.

    verts [B, V, 3]; faces [F, 3]; face_pairs [E, 2] from ``template.edge_face_pairs``.
    """
    n = face_normals(verts[:, faces])
    cos = (n[:, face_pairs[:, 0]] * n[:, face_pairs[:, 1]]).sum(-1)
    return ((cos - 1.0) ** 2).mean()
