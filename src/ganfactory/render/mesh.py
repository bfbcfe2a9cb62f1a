"""A batch of triangle meshes that share one face list.

Why one face list: the inverse-graphics network deforms a single template (every sample has the same
topology), and a loaded asset is rendered many times under different cameras. Sharing ``faces`` keeps
rasterisation fully batched without padding.

Shapes use B = batch, V = vertices, F = faces, C = channels, T = number of textures.
Every per-face field is shared by the batch; every per-vertex field and every texture is per sample.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Mesh"]


@dataclass(frozen=True)
class Mesh:
    """Vertices, faces and the attributes a renderer or a label map needs.

    Winding: a face is front-facing when its corners run counter-clockwise as seen by the camera
    (see ``ganfactory.render.conventions``).
    """

    verts: Tensor
    """[B, V, 3] float, world space."""
    faces: Tensor
    """[F, 3] int64 vertex indices, shared by the batch."""
    vert_colors: Tensor | None = None
    """[B, V, C] per-vertex colours (or any attribute to interpolate), or None."""
    vert_normals: Tensor | None = None
    """[B, V, 3] per-vertex normals (unit length), or None to derive from faces."""
    face_uvs: Tensor | None = None
    """[F, 3, 2] texture coordinates per face corner; u right, v up (v = 0 is the bottom row)."""
    textures: tuple[Tensor, ...] = ()
    """T textures, each [B, C, Ht, Wt] with rows top to bottom (as images are stored)."""
    face_texture: Tensor | None = None
    """[F] int64 index into ``textures``, -1 for an untextured face."""
    face_colors: Tensor | None = None
    """[F, C] material base colour per face (multiplies the texture where there is one)."""
    face_alpha: Tensor | None = None
    """[F] float opacity in [0, 1]; 1 is opaque (glass is about 0.2)."""
    face_two_sided: Tensor | None = None
    """[F] bool; True faces are never back-face culled."""
    face_parts: Tensor | None = None
    """[F] int64 part id per face (for label maps), indexing ``part_names``."""
    part_names: tuple[str, ...] = ()
    """Names of the part ids."""

    def __post_init__(self) -> None:
        _check(self.verts.ndim == 3 and self.verts.shape[-1] == 3, "verts must be [B, V, 3]", self.verts)
        _check(self.faces.ndim == 2 and self.faces.shape[-1] == 3, "faces must be [F, 3]", self.faces)
        _check(not self.faces.dtype.is_floating_point, "faces must be an integer tensor", self.faces)
        B, V, F = self.verts.shape[0], self.verts.shape[1], self.faces.shape[0]
        for name, shape in (("vert_colors", (B, V, None)), ("vert_normals", (B, V, 3)),
                            ("face_uvs", (F, 3, 2)), ("face_texture", (F,)), ("face_colors", (F, None)),
                            ("face_alpha", (F,)), ("face_two_sided", (F,)), ("face_parts", (F,))):
            value = getattr(self, name)
            if value is not None:
                _check(_matches(value, shape), f"{name} must have shape {_fmt(shape)}", value)
        for t in self.textures:
            _check(t.ndim == 4 and t.shape[0] == B, "each texture must be [B, C, Ht, Wt]", t)
        if self.textures and self.face_texture is None:
            raise ValueError("textures given without face_texture (which face uses which texture)")

    @property
    def batch_size(self) -> int:
        return self.verts.shape[0]

    @property
    def num_verts(self) -> int:
        return self.verts.shape[1]

    @property
    def num_faces(self) -> int:
        return self.faces.shape[0]

    def face_verts(self) -> Tensor:
        """[B, F, 3, 3] the corner positions of every face."""
        return self.verts[:, self.faces]

    def replace(self, **changes) -> Mesh:
        """A copy with some fields changed (for example new ``verts`` from a network)."""
        return dataclasses.replace(self, **changes)

    def to(self, device: torch.device | str) -> Mesh:
        changes = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Tensor):
                changes[f.name] = v.to(device)
        changes["textures"] = tuple(t.to(device) for t in self.textures)
        return self.replace(**changes)


def _matches(t: Tensor, shape: tuple) -> bool:
    return t.ndim == len(shape) and all(s is None or s == d for s, d in zip(shape, t.shape, strict=True))


def _fmt(shape: tuple) -> str:
    return "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"


def _check(ok: bool, message: str, value: Tensor) -> None:
    if not ok:
        raise ValueError(f"{message}, got {tuple(value.shape)} ({value.dtype})")
