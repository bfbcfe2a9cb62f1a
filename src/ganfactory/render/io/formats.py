"""OBJ, PLY and GLB files to and from :class:`Mesh` (one sample of a batch).

Why these choices:

- GLB and PLY go through trimesh. GLB is the one format that keeps everything we need: one node per
  (part, texture, material) group, named after the part, with the part table in the scene's extras
  (``{"ganfactory": {"part_names": [...], "node_parts": {node: part_id}}}``), UVs, textures as PNG,
  colour and alpha in ``baseColorFactor`` (trimesh keeps them as 8-bit values) and the two-sided flag
  in ``doubleSided``.
- OBJ is written and read here, not by trimesh: trimesh's OBJ export of several objects does not read
  back as the same objects. Our OBJ keeps the vertex list as is (``v``), UVs (``vt``), one ``o`` per
  part in part-id order (empty parts included, so ids survive), and an .mtl with ``Kd``, ``d`` and
  ``map_Kd`` PNG textures beside it. OBJ has no two-sided flag.
- PLY holds vertices, faces, per-vertex UVs (``s``, ``t``), a face property ``part`` and at most one
  texture (a PNG beside it, named in a ``comment TextureFile`` line, as MeshLab does); the part names
  are in a ``comment ganfactory_parts <json>`` line.

Not stored in any of them: vertex normals and vertex colours (renderers derive normals from faces).
Vertices that carry different UVs on different faces are split where a format has per-vertex UVs (GLB,
PLY), so only OBJ gives back the exact vertex list. Faces are written grouped by part (a stable sort
by part id, the identity for :func:`read_ac3d` meshes); OBJ and PLY keep that order, GLB also groups
the faces of a part by material, so their order within a part can change. Every format gives back the
same faces with the same corner positions, UVs, parts and texture pixels (8-bit PNG).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganfactory.render.io.ac3d import TextureSet, find_beside
from ganfactory.render.mesh import Mesh

__all__ = ["load_obj", "load_ply", "load_glb", "save_obj", "save_ply", "save_glb"]


# ---------------------------------------------------------------------------------------------- helpers

def _one_sample(mesh: Mesh) -> None:
    if mesh.batch_size != 1:
        raise ValueError(f"a mesh file holds one sample, the mesh has a batch of {mesh.batch_size}; "
                         "save mesh.replace(verts=mesh.verts[i:i + 1], ...) for sample i")


def _texture_image(texture: torch.Tensor) -> Image.Image:
    """[1, C, H, W] in [0, 1] -> an 8-bit PIL image (RGB for C=3, RGBA for C=4, L for C=1)."""
    array = (texture[0].detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    array = array.permute(1, 2, 0).cpu().numpy()
    mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(array.shape[2])
    if mode is None:
        raise ValueError(f"textures must have 1, 3 or 4 channels to be saved, got {array.shape[2]}")
    return Image.fromarray(array[..., 0] if mode == "L" else array, mode)


def _image_texture(image: Image.Image) -> torch.Tensor:
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
    return torch.from_numpy(rgba).permute(2, 0, 1).unsqueeze(0).contiguous()


def _face_arrays(mesh: Mesh) -> dict[str, np.ndarray]:
    """Per-face attributes as numpy arrays, with defaults where the mesh has none."""
    F = mesh.num_faces
    colors = mesh.face_colors.detach().cpu().numpy() if mesh.face_colors is not None else np.ones((F, 3))
    if colors.shape[1] == 1:
        colors = np.repeat(colors, 3, axis=1)
    return {
        "uvs": (mesh.face_uvs.detach().cpu().numpy() if mesh.face_uvs is not None else None),
        "texture": (mesh.face_texture.cpu().numpy() if mesh.face_texture is not None
                    else np.full(F, -1, dtype=np.int64)),
        "colors": colors[:, :3].astype(np.float64),
        "alpha": (mesh.face_alpha.detach().cpu().numpy().astype(np.float64) if mesh.face_alpha is not None
                  else np.ones(F)),
        "two_sided": (mesh.face_two_sided.cpu().numpy() if mesh.face_two_sided is not None
                      else np.zeros(F, dtype=bool)),
        "parts": mesh.face_parts.cpu().numpy() if mesh.face_parts is not None else None,
    }


def _part_order(parts: np.ndarray | None, F: int) -> np.ndarray:
    """Face order with parts contiguous and in id order (a stable sort; identity if already so)."""
    return np.argsort(parts, kind="stable") if parts is not None else np.arange(F)


def _split_by_uv(faces: np.ndarray, uvs: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-vertex UVs for a group of faces: new vertex ids for unique (vertex, uv) pairs.

    Returns (old vertex index per new vertex [n], uv per new vertex [n, 2], new faces [m, 3]); new
    vertices are numbered in order of first appearance, so a group that already has one UV per vertex
    keeps its order.
    """
    corners = faces.reshape(-1)
    corner_uvs = uvs.reshape(-1, 2) if uvs is not None else np.zeros((len(corners), 2))
    keys = np.concatenate([corners[:, None].astype(np.float64), corner_uvs.astype(np.float64)], axis=1)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)                     # unique rows in first-appearance order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    new_faces = rank[inverse.reshape(-1)].reshape(-1, 3)
    return corners[first[order]], corner_uvs[first[order]], new_faces


def _mesh_from_parts(verts, faces, face_uvs, textures, face_texture, colors, alpha, two_sided, parts,
                     part_names) -> Mesh:
    return Mesh(
        verts=torch.as_tensor(np.asarray(verts, dtype=np.float32)).reshape(1, -1, 3),
        faces=torch.as_tensor(np.asarray(faces, dtype=np.int64)).reshape(-1, 3),
        face_uvs=torch.as_tensor(np.asarray(face_uvs, dtype=np.float32)) if face_uvs is not None else None,
        textures=tuple(textures),
        face_texture=torch.as_tensor(np.asarray(face_texture, dtype=np.int64)) if textures else None,
        face_colors=torch.as_tensor(np.asarray(colors, dtype=np.float32)) if colors is not None else None,
        face_alpha=torch.as_tensor(np.asarray(alpha, dtype=np.float32)) if alpha is not None else None,
        face_two_sided=torch.as_tensor(np.asarray(two_sided, dtype=bool)) if two_sided is not None else None,
        face_parts=torch.as_tensor(np.asarray(parts, dtype=np.int64)) if parts is not None else None,
        part_names=tuple(part_names),
    )


# --------------------------------------------------------------------------------------------------- OBJ

def save_obj(mesh: Mesh, path: str | Path) -> None:
    """Write ``path`` (.obj), ``<stem>.mtl`` and ``<stem>_tex<k>.png`` beside it."""
    _one_sample(mesh)
    path = Path(path)
    a = _face_arrays(mesh)
    verts = mesh.verts[0].detach().cpu().numpy().astype(np.float64)
    faces = mesh.faces.cpu().numpy()
    order = _part_order(a["parts"], mesh.num_faces)
    for k, texture in enumerate(mesh.textures):
        _texture_image(texture).save(path.with_name(f"{path.stem}_tex{k}.png"))

    # One material per (texture, colour, alpha).
    material_keys: dict[tuple, int] = {}
    face_material = np.zeros(mesh.num_faces, dtype=np.int64)
    for f in range(mesh.num_faces):
        key = (int(a["texture"][f]), *np.round(a["colors"][f], 6).tolist(), round(float(a["alpha"][f]), 6))
        face_material[f] = material_keys.setdefault(key, len(material_keys))

    lines = ["# ganfactory mesh", f"mtllib {path.stem}.mtl"]
    lines += [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in verts]
    uv_index = None
    if a["uvs"] is not None:
        unique_uvs, uv_index = np.unique(a["uvs"].reshape(-1, 2), axis=0, return_inverse=True)
        uv_index = uv_index.reshape(-1, 3)
        lines += [f"vt {u:.9g} {v:.9g}" for u, v in unique_uvs]
    names = mesh.part_names if a["parts"] is not None else ()
    current_part, current_material = -1, -1
    for f in order:
        part = int(a["parts"][f]) if a["parts"] is not None else -1
        while current_part < part:          # every part in id order, empty ones too
            current_part += 1
            lines.append(f"o {_obj_name(names, current_part)}".rstrip())
            current_material = -1
        if face_material[f] != current_material:
            current_material = int(face_material[f])
            lines.append(f"usemtl m{current_material}")
        i, j, k = faces[f] + 1
        if uv_index is not None:
            ti, tj, tk = uv_index[f] + 1
            lines.append(f"f {i}/{ti} {j}/{tj} {k}/{tk}")
        else:
            lines.append(f"f {i} {j} {k}")
    while current_part < len(names) - 1:
        current_part += 1
        lines.append(f"o {_obj_name(names, current_part)}".rstrip())
    path.write_text("\n".join(lines) + "\n")

    mtl = []
    for (texture, r, g, b, alpha), m in material_keys.items():
        mtl += [f"newmtl m{m}", f"Kd {r:.9g} {g:.9g} {b:.9g}", f"d {alpha:.9g}"]
        if texture >= 0:
            mtl.append(f"map_Kd {path.stem}_tex{texture}.png")
        mtl.append("")
    path.with_suffix(".mtl").write_text("\n".join(mtl))


def _obj_name(names: tuple[str, ...], part: int) -> str:
    """The name on an ``o`` line (may be empty); runs of blanks become one space when read back."""
    return " ".join((names[part] if part < len(names) else f"part{part}").split())


def load_obj(path: str | Path, require_textures: bool = False) -> Mesh:
    """Read an OBJ: polygons as fans, ``o``/``g`` lines as parts, ``usemtl`` with ``Kd``, ``d``, ``map_Kd``.

    The part names of a file with neither ``o`` nor ``g`` lines are empty and ``face_parts`` is None.
    A missing or unreadable ``map_Kd`` texture: as ``read_ac3d`` (warn, or raise with ``require_textures``).
    """
    path = Path(path)
    verts, uvs = [], []
    faces, face_uvs, face_parts, face_mtl = [], [], [], []
    part_names: list[str] = []
    materials: dict[str, dict] = {}
    current_mtl = ""
    has_uv = True
    for line_no, raw in enumerate(path.read_text(encoding="latin-1").splitlines(), start=1):
        tokens = raw.split("#", 1)[0].split()
        if not tokens:
            continue
        key = tokens[0]
        if key == "v":
            verts.append([float(t) for t in tokens[1:4]])
        elif key == "vt":
            uvs.append([float(t) for t in tokens[1:3]])
        elif key in ("o", "g"):
            part_names.append(" ".join(tokens[1:]))
        elif key == "usemtl":
            current_mtl = " ".join(tokens[1:])
        elif key == "mtllib":
            mtl_path = find_beside(path.parent, " ".join(tokens[1:]))
            if mtl_path is not None:
                materials.update(_read_mtl(mtl_path))
        elif key == "f":
            corners = []
            for t in tokens[1:]:
                fields = t.split("/")
                vi = int(fields[0])
                ti = int(fields[1]) if len(fields) > 1 and fields[1] else None
                corners.append((vi - 1 if vi > 0 else len(verts) + vi,
                                None if ti is None else (ti - 1 if ti > 0 else len(uvs) + ti)))
            if len(corners) < 3:
                raise ValueError(f"{path}, line {line_no}: a face needs at least 3 corners")
            for c in range(1, len(corners) - 1):
                tri = (corners[0], corners[c], corners[c + 1])
                faces.append([v for v, _ in tri])
                if any(t is None for _, t in tri):
                    has_uv = False
                else:
                    face_uvs.append([uvs[t] for _, t in tri])
                face_parts.append(len(part_names) - 1)
                face_mtl.append(current_mtl)
    if not has_uv:
        face_uvs = None

    found = TextureSet(path.parent, str(path), require_textures)
    F = len(faces)
    face_texture = np.full(F, -1, dtype=np.int64)
    colors = np.ones((F, 3))
    alpha = np.ones(F)
    for f, name in enumerate(face_mtl):
        m = materials.get(name)
        if m is None:
            continue
        colors[f], alpha[f] = m["Kd"], m["d"]
        if m["map_Kd"] is not None and face_uvs is not None:
            face_texture[f] = found.index(m["map_Kd"], f" of material {name!r}")
    textures = found.textures
    parts = None
    if part_names:
        parts = np.array(face_parts)
        if (parts < 0).any():       # faces before the first o/g line
            part_names.insert(0, "")
            parts = parts + 1
    return _mesh_from_parts(np.array(verts).reshape(-1, 3), np.array(faces).reshape(-1, 3), face_uvs,
                            textures, face_texture, colors, alpha, None, parts, part_names)


def _read_mtl(path: Path) -> dict[str, dict]:
    materials: dict[str, dict] = {}
    current = None
    for raw in path.read_text(encoding="latin-1").splitlines():
        tokens = raw.split("#", 1)[0].split()
        if not tokens:
            continue
        if tokens[0] == "newmtl":
            current = materials.setdefault(" ".join(tokens[1:]),
                                           {"Kd": (1.0, 1.0, 1.0), "d": 1.0, "map_Kd": None})
        elif current is None:
            continue
        elif tokens[0] == "Kd":
            current["Kd"] = tuple(float(t) for t in tokens[1:4])
        elif tokens[0] == "d":
            current["d"] = float(tokens[1])
        elif tokens[0] == "Tr":
            current["d"] = 1.0 - float(tokens[1])
        elif tokens[0] == "map_Kd":
            current["map_Kd"] = tokens[-1]
    return materials


# --------------------------------------------------------------------------------------------------- PLY

def save_ply(mesh: Mesh, path: str | Path) -> None:
    """Write a binary PLY (and ``<stem>.png`` when the mesh has a texture); at most one texture."""
    import trimesh

    _one_sample(mesh)
    path = Path(path)
    if len(mesh.textures) > 1:
        raise ValueError(f"PLY holds one texture, the mesh has {len(mesh.textures)}; save it as .glb or .obj")
    a = _face_arrays(mesh)
    order = _part_order(a["parts"], mesh.num_faces)
    faces = mesh.faces.cpu().numpy()[order]
    uvs = a["uvs"][order] if a["uvs"] is not None else None
    old, vert_uvs, new_faces = _split_by_uv(faces, uvs)
    verts = mesh.verts[0].detach().cpu().numpy()[old]
    visual = trimesh.visual.TextureVisuals(uv=vert_uvs) if uvs is not None else None
    tm = trimesh.Trimesh(verts, new_faces, process=False, visual=visual)
    if a["parts"] is not None:
        tm.face_attributes["part"] = a["parts"][order].astype(np.int32)
    data = trimesh.exchange.ply.export_ply(tm, encoding="binary", include_attributes=True)
    comments = []
    if mesh.textures:
        texture_name = f"{path.stem}.png"
        _texture_image(mesh.textures[0]).save(path.with_name(texture_name))
        comments.append(f"comment TextureFile {texture_name}")
    if a["parts"] is not None:
        comments.append("comment ganfactory_parts " + json.dumps(list(mesh.part_names)))
    head, sep, body = data.partition(b"\nelement vertex")
    path.write_bytes(head + b"\n" + "\n".join(comments).encode() + sep + body if comments else data)


def load_ply(path: str | Path, require_textures: bool = False) -> Mesh:
    """Read a PLY through trimesh; UVs (``s``/``t`` or ``u``/``v``), ``part`` and the texture when present.

    A missing or unreadable texture: as ``read_ac3d`` (warn, or raise with ``require_textures``).
    """
    import trimesh

    path = Path(path)
    header = _ply_header(path)
    tm = trimesh.load(path, file_type="ply", process=False, force="mesh")
    verts = np.asarray(tm.vertices)
    faces = np.asarray(tm.faces, dtype=np.int64)
    uv = getattr(tm.visual, "uv", None)
    face_uvs = np.asarray(uv)[faces] if uv is not None and len(uv) == len(verts) else None
    textures, face_texture = [], None
    texture_name = next((line.split(None, 2)[2] for line in header
                         if line.startswith("comment TextureFile")), None)
    if texture_name is not None and face_uvs is not None:
        found = TextureSet(path.parent, str(path), require_textures)
        if found.index(texture_name) == 0:
            textures = found.textures
            face_texture = np.zeros(len(faces), dtype=np.int64)
    raw = tm.metadata.get("_ply_raw", {}).get("face", {}).get("data")
    parts, part_names = None, []
    if raw is not None and raw.dtype.names and "part" in raw.dtype.names:
        parts = np.asarray(raw["part"], dtype=np.int64)
        names = next((line.split(None, 2)[2] for line in header
                      if line.startswith("comment ganfactory_parts")), None)
        part_names = json.loads(names) if names else [f"part{i}" for i in range(int(parts.max()) + 1)]
    return _mesh_from_parts(verts, faces, face_uvs, textures, face_texture, None, None, None, parts,
                            part_names)


def _ply_header(path: Path) -> list[str]:
    lines = []
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("latin-1").strip()
            lines.append(line)
            if line == "end_header" or len(lines) > 10000:
                break
    return lines


# --------------------------------------------------------------------------------------------------- GLB

def save_glb(mesh: Mesh, path: str | Path) -> None:
    """Write a binary glTF: one node per (part, texture, colour, alpha, two-sided) group."""
    import trimesh
    from trimesh.visual.material import PBRMaterial

    _one_sample(mesh)
    a = _face_arrays(mesh)
    verts = mesh.verts[0].detach().cpu().numpy()
    faces = mesh.faces.cpu().numpy()
    parts = a["parts"] if a["parts"] is not None else np.zeros(mesh.num_faces, dtype=np.int64)
    names = mesh.part_names if a["parts"] is not None else ("mesh",)
    images = [_texture_image(t) for t in mesh.textures]

    groups: dict[tuple, list[int]] = {}
    for f in _part_order(a["parts"], mesh.num_faces):
        key = (int(parts[f]), int(a["texture"][f]), *np.round(a["colors"][f], 6).tolist(),
               round(float(a["alpha"][f]), 6), bool(a["two_sided"][f]))
        groups.setdefault(key, []).append(int(f))

    scene = trimesh.Scene()
    node_parts: dict[str, int] = {}
    used: set[str] = set()
    for key, face_ids in groups.items():
        part, texture, r, g, b, alpha, two_sided = key
        old, vert_uvs, new_faces = _split_by_uv(faces[face_ids],
                                                a["uvs"][face_ids] if a["uvs"] is not None else None)
        material = PBRMaterial(
            baseColorFactor=[r, g, b, alpha], doubleSided=two_sided,
            alphaMode="BLEND" if alpha < 1 else "OPAQUE",
            baseColorTexture=images[texture] if texture >= 0 else None)
        visual = trimesh.visual.TextureVisuals(uv=vert_uvs if a["uvs"] is not None else None,
                                               material=material)
        geometry = trimesh.Trimesh(verts[old], new_faces, process=False, visual=visual)
        base = names[part] if part < len(names) and names[part] else f"part{part}"
        node, k = base, 0
        while node in used:
            k += 1
            node = f"{base}#{k}"
        used.add(node)
        node_parts[node] = part
        scene.add_geometry(geometry, node_name=node, geom_name=node)
    scene.metadata["ganfactory"] = {"part_names": list(names), "node_parts": node_parts,
                                    "node_order": list(node_parts), "has_parts": a["parts"] is not None,
                                    "has_uvs": a["uvs"] is not None}
    Path(path).write_bytes(scene.export(file_type="glb"))


def load_glb(path: str | Path) -> Mesh:
    """Read a glTF/GLB through trimesh; our own files give back their part table, others one part per node."""
    import trimesh

    scene = trimesh.load(path, force="scene", process=False)
    table = scene.metadata.get("ganfactory") or {}
    nodes = list(scene.graph.nodes_geometry)
    order = table.get("node_order")
    nodes = [n for n in order if n in nodes] if order else sorted(nodes)
    all_verts, all_faces, all_uvs, texture_ids = [], [], [], []
    colors, alpha, two_sided, parts = [], [], [], []
    textures: list[torch.Tensor] = []
    image_ids: dict[int, int] = {}
    part_names = list(table.get("part_names", []))
    offset = 0
    has_uvs = table.get("has_uvs", True)
    for k, node in enumerate(nodes):
        transform, geometry_name = scene.graph[node]
        geometry = scene.geometry[geometry_name]
        if not isinstance(geometry, trimesh.Trimesh):
            continue
        v = trimesh.transform_points(np.asarray(geometry.vertices), transform)
        f = np.asarray(geometry.faces, dtype=np.int64)
        uv = getattr(geometry.visual, "uv", None)
        all_uvs.append(np.asarray(uv)[f] if uv is not None else np.zeros((len(f), 3, 2)))
        has_uvs = has_uvs and uv is not None
        material = getattr(geometry.visual, "material", None)
        factor = getattr(material, "baseColorFactor", None)
        factor = np.asarray([255, 255, 255, 255] if factor is None else factor, dtype=np.float64) / 255.0
        image = getattr(material, "baseColorTexture", None) if material is not None else None
        tex = -1
        if image is not None:
            if id(image) not in image_ids:
                image_ids[id(image)] = len(textures)
                textures.append(_image_texture(image))
            tex = image_ids[id(image)]
        all_verts.append(v)
        all_faces.append(f + offset)
        offset += len(v)
        texture_ids.append(np.full(len(f), tex))
        colors.append(np.repeat(factor[None, :3], len(f), axis=0))
        alpha.append(np.full(len(f), factor[3] if len(factor) > 3 else 1.0))
        two_sided.append(np.full(len(f), bool(getattr(material, "doubleSided", False))))
        if "node_parts" in table:
            parts.append(np.full(len(f), int(table["node_parts"][node])))
        else:
            part_names.append(node)
            parts.append(np.full(len(f), k))
    cat = (lambda xs, shape: np.concatenate(xs) if xs else np.zeros(shape))  # noqa: E731
    has_parts = table.get("has_parts", True)
    return _mesh_from_parts(
        cat(all_verts, (0, 3)), cat(all_faces, (0, 3)), cat(all_uvs, (0, 3, 2)) if has_uvs else None,
        textures, cat(texture_ids, (0,)), cat(colors, (0, 3)), cat(alpha, (0,)), cat(two_sided, (0,)),
        cat(parts, (0,)) if has_parts else None, part_names if has_parts else [])
