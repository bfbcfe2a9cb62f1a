"""Per-pixel attributes from per-corner ones, through the (differentiable) barycentrics."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ganfactory.render.functional.gather import Covered, blend, scatter_add_rows
from ganfactory.render.functional.vectors import normalize

__all__ = ["interpolate", "perspective_correct", "perspective_weights", "face_normals", "vertex_normals",
           "CORNERS"]

CORNERS = torch.arange(3)
"""Offsets of a face's three corners in a [F * 3, C] corner table."""


def interpolate(face_attrs: Tensor, face_idx: Tensor, bary: Tensor) -> Tensor:
    """Barycentric interpolation of corner attributes; zeros on background.

    Args:
        face_attrs: [B, F, 3, C] attribute of each face corner (or [F, 3, C], shared by the batch).
        face_idx: [B, H, W] int64 visible face, -1 for none.
        bary: [B, H, W, 3] barycentrics (screen-space for DIB-R, or perspective-corrected).
    Returns:
        [B, H, W, C].
    """
    B = face_idx.shape[0]
    if face_attrs.ndim == 3:
        face_attrs = face_attrs.unsqueeze(0)
    if face_attrs.ndim != 4 or face_attrs.shape[0] not in (1, B) or face_attrs.shape[2] != 3:
        raise ValueError(f"face_attrs must be [B, F, 3, C] or [F, 3, C], got {tuple(face_attrs.shape)}")
    px = Covered.of(face_idx)
    F, C = face_attrs.shape[1], face_attrs.shape[3]
    face = px.face if face_attrs.shape[0] == 1 else px.batch * F + px.face
    idx = face[:, None] * 3 + CORNERS.to(face.device)
    return px.spread(blend(face_attrs.reshape(-1, C), idx, px.take(bary)))


class _PerspectiveWeights(torch.autograd.Function):
    """out_k = q_k / s with q_k = w_k / d_k and s = q_0 + q_1 + q_2.

    Backward: dL/dq_k = (g_k - sum_j g_j out_j) / s, then dL/dw_k = dL/dq_k / d_k and
    dL/dd_k = -dL/dq_k q_k / d_k (one node instead of autograd's two divisions, a sum and an expand).
    """

    @staticmethod
    def forward(ctx, w: Tensor, depth: Tensor) -> Tensor:
        q = w / depth
        s = q[:, :1] + q[:, 1:2] + q[:, 2:]  # the same value as sum(-1, keepdim=True), faster
        out = q / s
        ctx.save_for_backward(depth, q, s, out)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        depth, q, s, out = ctx.saved_tensors
        dot = grad[:, :1] * out[:, :1] + grad[:, 1:2] * out[:, 1:2] + grad[:, 2:] * out[:, 2:]
        gq = (grad - dot) / s
        grad_w = gq / depth if ctx.needs_input_grad[0] else None
        grad_depth = -gq * q / depth if ctx.needs_input_grad[1] else None
        return grad_w, grad_depth


def perspective_weights(w: Tensor, depth: Tensor) -> Tensor:
    """Screen-space weights [P, 3] and corner depths [P, 3] -> perspective-correct weights ``w_k / d_k``
    normalised (hand-written backward)."""
    if w.ndim != 2 or w.shape[1] != 3 or depth.shape != w.shape:
        raise ValueError(f"perspective_weights needs w and depth [P, 3], got {tuple(w.shape)}, {tuple(depth.shape)}")
    return _PerspectiveWeights.apply(w, depth)


def perspective_correct(bary: Tensor, face_idx: Tensor, face_depth: Tensor) -> Tensor:
    """Screen-space barycentrics -> perspective-correct ones: w_k / d_k normalised.

    Args:
        bary: [B, H, W, 3]; face_idx: [B, H, W]; face_depth: [B, F, 3] positive depths (-z_view).
    """
    px = Covered.of(face_idx)
    F = face_depth.shape[1]
    depth = face_depth.reshape(-1, 3)[px.batch * F + px.face]
    return px.spread(perspective_weights(px.take(bary), depth))


def face_normals(face_vertices: Tensor, unit: bool = True) -> Tensor:
    """[B, F, 3, 3] corners -> [B, F, 3] normals ``cross(v1 - v0, v2 - v0)`` (counter-clockwise = front)."""
    n = torch.linalg.cross(face_vertices[..., 1, :] - face_vertices[..., 0, :],
                           face_vertices[..., 2, :] - face_vertices[..., 0, :], dim=-1)
    return normalize(n) if unit else n


class _AreaWeightedNormals(torch.autograd.Function):
    """Per-vertex sum of the adjacent faces' ``cross(v1 - v0, v2 - v0)`` (twice the area-weighted normal).

    Forward: gather the corners, one cross product per face, one scatter of the three corners' copies.
    Backward, with g_f = the sum of the output gradient at the face's three vertices and n = e1 x e2
    (e1 = v1 - v0, e2 = v2 - v0): dL/de1 = e2 x g_f, dL/de2 = g_f x e1, so v1 receives e2 x g_f, v2
    receives g_f x e1 and v0 minus both. Autograd's version was a gather, three selects, two
    subtractions, a cross product and a repeat, each with its own backward.
    """

    @staticmethod
    def forward(ctx, verts: Tensor, corners: Tensor) -> Tensor:
        BV = verts.shape[0]
        v = verts.contiguous().index_select(0, corners.reshape(-1)).view(-1, 3, 3)
        e1, e2 = v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]
        n = torch.linalg.cross(e1, e2, dim=-1)
        ctx.save_for_backward(corners, e1, e2)
        ctx.num_rows = BV
        return scatter_add_rows(corners.T.reshape(-1), n.repeat(3, 1), BV)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        corners, e1, e2 = ctx.saved_tensors
        g = grad.index_select(0, corners.reshape(-1)).view(-1, 3, 3).sum(1)
        g1 = torch.linalg.cross(e2, g, dim=-1)
        g2 = torch.linalg.cross(g, e1, dim=-1)
        spread = torch.stack([-(g1 + g2), g1, g2], 1)  # [F', 3 corners, 3]
        return scatter_add_rows(corners.reshape(-1), spread.reshape(-1, 3), ctx.num_rows), None


def vertex_normals(verts: Tensor, faces: Tensor) -> Tensor:
    """[B, V, 3] unit vertex normals: the area-weighted sum of the adjacent faces' normals."""
    B, V = verts.shape[:2]
    corners = (faces[None] + V * torch.arange(B, device=verts.device)[:, None, None]).reshape(-1, 3)  # [B F, 3]
    return normalize(_AreaWeightedNormals.apply(verts.reshape(B * V, 3), corners).view(B, V, 3))
