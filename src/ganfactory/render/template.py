"""The sphere template GANverse3D deforms, and the mesh topology its regularisers need."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["icosphere", "edges", "edge_face_pairs", "vertex_adjacency"]


def icosphere(level: int = 3, dtype: torch.dtype = torch.float32, device=None) -> tuple[Tensor, Tensor]:
    """Unit icosphere: (verts [V, 3], faces [F, 3]) with V = 10 * 4^level + 2 and F = 20 * 4^level.

    Level 3 gives DIB-R's template, 642 vertices and 1280 faces. Faces run counter-clockwise seen from
    outside (their normals point outward), so they are front-facing where the sphere faces the camera.
    """
    p = (1.0 + math.sqrt(5.0)) / 2.0
    verts = torch.tensor([[-1, p, 0], [1, p, 0], [-1, -p, 0], [1, -p, 0], [0, -1, p], [0, 1, p],
                          [0, -1, -p], [0, 1, -p], [p, 0, -1], [p, 0, 1], [-p, 0, -1], [-p, 0, 1]],
                         dtype=torch.float64)
    faces = torch.tensor([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
                          [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
                          [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]])
    verts = verts / verts.norm(dim=1, keepdim=True)
    for _ in range(level):
        # One new vertex per unique edge, at the normalised midpoint; each face splits into four.
        e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).sort(dim=1).values
        uniq, inverse = torch.unique(e, dim=0, return_inverse=True)
        mid = verts[uniq].mean(1)
        mid = mid / mid.norm(dim=1, keepdim=True)
        m = (inverse + verts.shape[0]).view(3, -1)  # midpoints of edges 01, 12, 20 of every face
        a, b, c = faces.unbind(1)
        faces = torch.cat([torch.stack([a, m[0], m[2]], 1), torch.stack([b, m[1], m[0]], 1),
                           torch.stack([c, m[2], m[1]], 1), torch.stack([m[0], m[1], m[2]], 1)])
        verts = torch.cat([verts, mid])
    return verts.to(dtype=dtype, device=device), faces.to(device=device)


def edges(faces: Tensor) -> Tensor:
    """[E, 2] unique undirected edges (i < j) of faces [F, 3]."""
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).sort(dim=1).values
    return torch.unique(e, dim=0)


def edge_face_pairs(faces: Tensor) -> Tensor:
    """[E, 2] the two faces sharing each interior edge (edges with one face or more than two are skipped)."""
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).sort(dim=1).values
    face_of = torch.arange(faces.shape[0], device=faces.device).repeat(3)
    _, inverse, counts = torch.unique(e, dim=0, return_inverse=True, return_counts=True)
    order = torch.argsort(inverse, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    good = counts == 2
    return torch.stack([face_of[order[starts[good]]], face_of[order[starts[good] + 1]]], 1)


def vertex_adjacency(num_verts: int, faces: Tensor, normalize: bool = True) -> Tensor:
    """[V, V] sparse COO adjacency of the mesh graph; rows normalised to sum to 1 when ``normalize``."""
    e = edges(faces)
    idx = torch.cat([e, e.flip(1)]).t()
    deg = torch.zeros(num_verts, device=faces.device).index_add_(0, idx[0], torch.ones(idx.shape[1],
                                                                                     device=faces.device))
    values = 1.0 / deg[idx[0]] if normalize else torch.ones(idx.shape[1], device=faces.device)
    return torch.sparse_coo_tensor(idx, values, (num_verts, num_verts), check_invariants=True).coalesce()
