"""Mesh files: OBJ, PLY and GLB (with UVs, textures and parts) and AC3D (.ac/.acc) with its object tree.

``load_mesh`` and ``save_mesh`` pick the format from the suffix; ``read_ac3d`` gives the AC3D object
tree as well (names, face ranges, materials) for assemblers such as the TORCS cars builder.
Every function reads and writes the file's own frame; nothing is rotated on the way
(``read_ac3d(..., z_up=True)`` is the one opt-in exception, for TORCS).
"""

from __future__ import annotations

from pathlib import Path

from ganfactory.render.io.ac3d import (
    AC3DMaterial,
    AC3DModel,
    AC3DObject,
    TextureWarning,
    clean_ac3d_name,
    load_texture,
    parse_ac3d,
    read_ac3d,
)
from ganfactory.render.io.formats import load_glb, load_obj, load_ply, save_glb, save_obj, save_ply
from ganfactory.render.mesh import Mesh

__all__ = [
    "AC3DMaterial",
    "AC3DModel",
    "AC3DObject",
    "LOADERS",
    "SAVERS",
    "TextureWarning",
    "clean_ac3d_name",
    "load_mesh",
    "load_texture",
    "parse_ac3d",
    "read_ac3d",
    "save_mesh",
]

LOADERS = {
    ".ac": lambda path, require_textures: read_ac3d(path, require_textures=require_textures).mesh,
    ".acc": lambda path, require_textures: read_ac3d(path, require_textures=require_textures).mesh,
    ".obj": load_obj,
    ".ply": load_ply,
    ".glb": lambda path, require_textures: load_glb(path),
    ".gltf": lambda path, require_textures: load_glb(path),
}
"""Suffix -> reader ``(path, require_textures)``; each returns a Mesh with a batch of one (GLB embeds
its textures, so the flag has nothing to check there)."""

SAVERS = {".obj": save_obj, ".ply": save_ply, ".glb": save_glb}
"""Suffix -> writer; each takes (mesh with a batch of one, path)."""


def load_mesh(path: str | Path, require_textures: bool = False) -> Mesh:
    """Read a mesh file (.ac, .acc, .obj, .ply, .glb, .gltf) into a Mesh with a batch of one.

    A texture the file names but that is not beside it, or that cannot be decoded, leaves its faces
    untextured with one ``TextureWarning`` each; ``require_textures=True`` raises instead.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in LOADERS:
        raise ValueError(f"cannot read {str(path)!r}: the suffix must be one of {sorted(LOADERS)}")
    if not Path(path).is_file():
        raise FileNotFoundError(f"no mesh file at {path}")
    return LOADERS[suffix](path, require_textures)


def save_mesh(mesh: Mesh, path: str | Path) -> None:
    """Write one mesh (batch of one) as .obj, .ply or .glb, with its UVs, textures and parts."""
    suffix = Path(path).suffix.lower()
    if suffix not in SAVERS:
        raise ValueError(f"cannot write {str(path)!r}: the suffix must be one of {sorted(SAVERS)}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    SAVERS[suffix](mesh, path)
