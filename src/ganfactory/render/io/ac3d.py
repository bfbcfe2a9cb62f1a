"""Read AC3D models (.ac, and TORCS' .acc extension) into a :class:`Mesh` plus their object tree.

Why our own reader: trimesh does not read AC3D, and the cars benchmark needs what AC3D keeps and other
formats lose: the object names (they become part labels), the two-sided flag per surface, triangle
strips with alternating winding (.acc) and the first of several UV layers.

What is read (the format in ``../shared/notes/torcs-cars.md``):

- ``MATERIAL`` lines (colour, transparency), ``OBJECT`` blocks with ``name``, ``texture`` (the first
  one of an object; TORCS lists four layers, only ``base`` defines appearance), ``texrep``/``texoff``,
  ``rot``/``loc`` (relative to the parent), ``numvert`` (3 numbers, or 6 with a normal in .acc),
  ``numsurf`` and ``kids``; ``data``, ``url``, ``crease`` and unknown lines are skipped.
- Surfaces: type 0 (polygon) becomes a fan ``(r0, ri, ri+1)``; type 4 (triangle strip) becomes
  ``(ri, ri+1, ri+2)`` for even i and ``(ri+1, ri, ri+2)`` for odd i, so every triangle keeps the
  strip's facing; types 1 and 2 (lines) have no area and are skipped. Triangles that repeat a vertex
  (strip restarts) are dropped. Flag 0x20 marks a surface two-sided.
- ``rot`` is read as a row-major 3x3 matrix R applied to column vectors, ``x_parent = R x + loc``.
  (plib, TORCS' loader, applies the transpose; no TORCS car uses ``rot``, so the two agree there.)

Frames: the file's own frame (AC3D is y-up) unless ``z_up=True``, which applies TORCS' mapping
``(x, y, z) -> (x, -z, y)`` (a proper rotation, so winding and facing are kept): x forward, y left,
z up for the TORCS cars.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganfactory.render.mesh import Mesh

__all__ = [
    "AC3DMaterial",
    "AC3DModel",
    "AC3DObject",
    "Z_UP_FROM_AC3D",
    "clean_ac3d_name",
    "find_beside",
    "load_texture",
    "TextureSet",
    "TextureWarning",
    "parse_ac3d",
    "read_ac3d",
]

Z_UP_FROM_AC3D = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""[3, 3] TORCS' map from the y-up AC3D frame to its z-up frame: (x, y, z) -> (x, -z, y)."""

SURF_POLYGON, SURF_CLOSED_LINE, SURF_LINE, SURF_STRIP = 0, 1, 2, 4
SURF_TWO_SIDED = 0x20

_SUFFIX = re.compile(r"_s_\d+$")


@dataclass(frozen=True)
class AC3DMaterial:
    """One ``MATERIAL`` line; colours are RGB in [0, 1]."""

    name: str
    rgb: tuple[float, float, float]
    amb: tuple[float, float, float]
    emis: tuple[float, float, float]
    spec: tuple[float, float, float]
    shininess: float
    transparency: float
    """0 is opaque, 1 fully transparent (AC3D's ``trans``)."""


@dataclass(frozen=True)
class AC3DObject:
    """One ``OBJECT`` of the tree, in depth-first order (a parent comes before its kids).

    Its index in :attr:`AC3DModel.objects` is its part id in the mesh (``mesh.face_parts``).
    """

    name: str
    """The name as written (``""`` when the object has none), suffix included."""
    kind: str
    """``world``, ``poly``, ``group`` or ``light``."""
    parent: int
    """Index of the parent object, -1 for a root."""
    texture: str | None
    """The first texture file name as written in the file, or None."""
    vert_start: int
    vert_stop: int
    """Own vertices are ``mesh.verts[:, vert_start:vert_stop]``."""
    face_start: int
    face_stop: int
    """Own triangles are ``mesh.faces[face_start:face_stop]`` (kids' triangles come later)."""
    world_from_object: tuple[tuple[float, ...], ...]
    """[4, 4] row-major transform from the object's own coordinates to the output frame."""

    @property
    def clean_name(self) -> str:
        return clean_ac3d_name(self.name)

    @property
    def num_faces(self) -> int:
        return self.face_stop - self.face_start


@dataclass(frozen=True)
class AC3DModel:
    """A read AC3D file: the mesh (batch of one) and the facts a car assembler needs.

    ``mesh.face_parts`` holds the object index of every triangle and ``mesh.part_names`` the cleaned
    name (suffix ``_s_<n>`` removed) of every object, so names may repeat; use ``objects`` to tell
    same-named objects apart.
    """

    mesh: Mesh
    objects: tuple[AC3DObject, ...]
    materials: tuple[AC3DMaterial, ...]
    face_material: torch.Tensor
    """[F] int64 index into ``materials``."""
    texture_paths: tuple[Path, ...]
    """The file behind each of ``mesh.textures``."""


def clean_ac3d_name(name: str) -> str:
    """The object name without the exporter's ``_s_<n>`` suffix (``"WIPER_s_5"`` -> ``"WIPER"``)."""
    return _SUFFIX.sub("", name)


def find_beside(directory: Path, name: str) -> Path | None:
    """The file called ``name`` in ``directory``, matching case-insensitively, or None.

    Why: the models were made on case-insensitive systems; ``Car.RGB`` must find ``car.rgb``.
    Only the base name of ``name`` is used (paths in files are written for other machines).
    """
    base = name.replace("\\", "/").split("/")[-1]
    exact = directory / base
    if exact.is_file():
        return exact
    lower = base.lower()
    for candidate in sorted(directory.iterdir()) if directory.is_dir() else ():
        if candidate.name.lower() == lower and candidate.is_file():
            return candidate
    return None


def load_texture(path: str | Path) -> torch.Tensor:
    """[1, 4, H, W] float32 RGBA in [0, 1], rows top to bottom; reads SGI .rgb, PNG, JPEG (Pillow).

    A file Pillow cannot decode (an unknown format, or an SGI mode it does not support, such as
    2-channel grey + alpha) raises ValueError naming the file.
    """
    try:
        with Image.open(path) as image:
            rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise
    except (OSError, ValueError, SyntaxError) as error:
        raise ValueError(f"cannot read texture {path}: {error}") from None
    return torch.from_numpy(rgba).permute(2, 0, 1).unsqueeze(0).contiguous()


class TextureWarning(UserWarning):
    """A mesh file names a texture that is missing or unreadable; the faces using it load untextured."""


class TextureSet:
    """The textures one mesh file names: each found beside the file and read once.

    Why: models from other collections keep textures in a shared folder, or in formats Pillow cannot
    read; the geometry is still worth loading. A bad texture gives one ``TextureWarning`` per name
    (the faces that use it get index -1, untextured), or an error when ``require`` is set.
    """

    def __init__(self, directory: Path, source: str, require: bool) -> None:
        self.directory, self.source, self.require = directory, source, require
        self.paths: list[Path] = []
        self.textures: list[torch.Tensor] = []
        self._bad: set[str] = set()

    def index(self, name: str, user: str = "") -> int:
        """Index of texture ``name`` in ``textures`` (read on first use), or -1 when it cannot be had.

        ``user`` says who names it, for messages (e.g. " of object 'body'").
        """
        found = find_beside(self.directory, name)
        if found is None:
            if self.require:
                raise FileNotFoundError(f"{self.source}: texture {name!r}{user} is not in {self.directory}")
            return self._warn(name, f"texture {name!r}{user} is not in {self.directory}")
        if found in self.paths:
            return self.paths.index(found)
        try:
            texture = load_texture(found)
        except ValueError as error:
            if self.require:
                raise ValueError(f"{self.source}: {error}") from None
            return self._warn(name, str(error))
        self.paths.append(found)
        self.textures.append(texture)
        return len(self.textures) - 1

    def _warn(self, name: str, message: str) -> int:
        if name not in self._bad:
            self._bad.add(name)
            warnings.warn(f"{self.source}: {message}; its faces load untextured "
                          "(require_textures=True refuses the file instead)", TextureWarning, stacklevel=4)
        return -1


def read_ac3d(path: str | Path, *, z_up: bool = False, load_textures: bool = True,
              require_textures: bool = False) -> AC3DModel:
    """Read an .ac/.acc file; textures are looked up beside it (case-insensitively).

    ``z_up=True`` returns TORCS' z-up frame instead of the file's y-up one (see the module docstring).
    ``load_textures=False`` reads geometry only (faster; ``textures`` stay empty, ``face_texture``
    is -1). A texture that is not beside the file, or that cannot be decoded, leaves its faces
    untextured with one ``TextureWarning`` per texture; ``require_textures=True`` raises instead
    (FileNotFoundError for a missing one, ValueError for an unreadable one).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="latin-1")
    except FileNotFoundError:
        raise FileNotFoundError(f"no AC3D file at {path}") from None
    return parse_ac3d(text, directory=path.parent, z_up=z_up, load_textures=load_textures,
                      source=str(path), require_textures=require_textures)


def parse_ac3d(text: str, *, directory: str | Path | None = None, z_up: bool = False,
               load_textures: bool = True, source: str = "<text>", require_textures: bool = False) -> AC3DModel:
    """Parse AC3D text; ``directory`` is where textures are looked up (None: textures not loaded).

    Bad textures: as ``read_ac3d``.
    """
    parser = _Parser(text.splitlines(), source)
    parser.parse()
    return parser.build(Path(directory) if directory is not None else None, z_up=z_up,
                        load_textures=load_textures and directory is not None, require_textures=require_textures)


class _Parser:
    """A line-based reader that accumulates numpy arrays for the whole tree."""

    def __init__(self, lines: list[str], source: str) -> None:
        self.lines = lines
        self.i = 0
        self.source = source
        self.materials: list[AC3DMaterial] = []
        self.objects: list[dict] = []
        self.verts: list[np.ndarray] = []     # per object, [n, 3] in the output frame
        self.normals: list[np.ndarray | None] = []
        self.num_verts = 0
        self.faces: list[np.ndarray] = []     # per object, [m, 3] global vertex indices
        self.uvs: list[np.ndarray] = []       # per object, [m, 3, 2]
        self.flags: list[np.ndarray] = []     # per object, [m] SURF flags
        self.mats: list[np.ndarray] = []      # per object, [m] material index
        self.num_faces = 0

    def fail(self, message: str) -> ValueError:
        return ValueError(f"{self.source}, line {self.i + 1}: {message}")

    def next_line(self) -> list[str]:
        return self.next_raw().split()

    def next_raw(self) -> str:
        """The next non-empty line, stripped."""
        while self.i < len(self.lines):
            line = self.lines[self.i].strip()
            self.i += 1
            if line:
                return line
        raise self.fail("unexpected end of file (is the file truncated, or a count too large?)")

    def parse(self) -> None:
        try:
            self._parse()
        except (ValueError, IndexError) as error:
            if str(error).startswith(self.source):
                raise
            raise self.fail(f"cannot read this line ({error}); check the counts (numvert, numsurf, "
                            "refs, kids) before it") from None

    def _parse(self) -> None:
        if not self.lines or not self.lines[0].startswith("AC3D"):
            raise ValueError(f"{self.source}: not an AC3D file (the first line must start with 'AC3D')")
        self.i = 1
        while self.i < len(self.lines):
            line = self.lines[self.i].strip()
            if not line:
                self.i += 1
                continue
            if line.startswith("MATERIAL"):
                self.materials.append(self.material(line))
                self.i += 1
            elif line.startswith("OBJECT"):
                self.object(parent=-1, parent_matrix=np.eye(4))
            else:
                self.i += 1     # unknown top-level line: skip

    def material(self, line: str) -> AC3DMaterial:
        m = re.match(r'MATERIAL\s+(?:"([^"]*)"|(\S+))\s+(.*)$', line)
        if m is None:
            raise self.fail(f"bad MATERIAL line: {line!r}")
        tokens = m.group(3).split()
        values: dict[str, list[float]] = {}
        key = None
        for tok in tokens:
            try:
                number = float(tok)
            except ValueError:
                key = tok
                values[key] = []
                continue
            if key is not None:
                values[key].append(number)

        def rgb(k: str) -> tuple[float, float, float]:
            v = (values.get(k, []) + [0.0, 0.0, 0.0])[:3]
            return (v[0], v[1], v[2])

        return AC3DMaterial(name=m.group(1) if m.group(1) is not None else m.group(2), rgb=rgb("rgb"),
                            amb=rgb("amb"), emis=rgb("emis"), spec=rgb("spec"),
                            shininess=(values.get("shi") or [0.0])[0],
                            transparency=(values.get("trans") or [0.0])[0])

    def object(self, parent: int, parent_matrix: np.ndarray) -> None:
        tokens = self.next_line()
        if tokens[0] != "OBJECT":
            raise self.fail(f"expected OBJECT, got {tokens[0]!r} (check the 'kids' count above)")
        kind = tokens[1] if len(tokens) > 1 else "poly"
        name, texture = "", None
        rot, loc = np.eye(3), np.zeros(3)
        texrep, texoff = np.ones(2), np.zeros(2)
        local_verts = np.zeros((0, 3))
        local_normals: np.ndarray | None = None
        surfaces: list[tuple[int, int, list[int], list[tuple[float, float]]]] = []
        while True:
            raw = self.next_raw()
            tokens = raw.split()
            key = tokens[0]
            if key == "name":
                name = _quoted(raw[len("name"):])
            elif key == "texture":
                if texture is None:
                    texture = _quoted(raw[len("texture"):])
            elif key == "texrep":
                texrep = np.array([float(t) for t in tokens[1:3]])
            elif key == "texoff":
                texoff = np.array([float(t) for t in tokens[1:3]])
            elif key == "rot":
                rot = np.array([float(t) for t in tokens[1:10]]).reshape(3, 3)
            elif key == "loc":
                loc = np.array([float(t) for t in tokens[1:4]])
            elif key == "data":
                self.i += 1     # the text line(s) follow; TORCS writes one line
            elif key == "numvert":
                n = int(tokens[1])
                rows = [self.lines[j] for j in range(self.i, self.i + n)]
                self.i += n
                try:
                    block = np.array(" ".join(rows).split(), dtype=np.float64)
                except ValueError:
                    raise self.fail("a vertex line holds something other than numbers") from None
                if n and block.size % n:
                    raise self.fail(f"{n} vertex lines with {block.size} numbers in all")
                block = block.reshape(n, -1) if n else np.zeros((0, 3))
                local_verts = block[:, :3]
                local_normals = block[:, 3:6] if block.shape[1] >= 6 else None
            elif key == "numsurf":
                for _ in range(int(tokens[1])):
                    surfaces.append(self.surface())
            elif key == "kids":
                num_kids = int(tokens[1])
                break
            # anything else (crease, url, subdiv, hidden, locked, folded): skipped

        local = np.eye(4)
        local[:3, :3], local[:3, 3] = rot, loc
        world = parent_matrix @ local
        index = len(self.objects)
        self.add_object(name, kind, parent, texture, world, local_verts, local_normals,
                        surfaces, texrep, texoff)
        for _ in range(num_kids):
            self.object(parent=index, parent_matrix=world)

    def surface(self) -> tuple[int, int, list[int], list[tuple[float, float]]]:
        tokens = self.next_line()
        if tokens[0] != "SURF":
            raise self.fail(f"expected SURF, got {tokens[0]!r} (check the 'numsurf' count)")
        flags = int(tokens[1], 0)
        mat = 0
        tokens = self.next_line()
        if tokens[0] == "mat":
            mat = int(tokens[1])
            tokens = self.next_line()
        if tokens[0] != "refs":
            raise self.fail(f"expected refs, got {tokens[0]!r}")
        count = int(tokens[1])
        refs, uvs = [], []
        for _ in range(count):
            parts = self.lines[self.i].split()
            refs.append(int(parts[0]))
            uvs.append((float(parts[1]), float(parts[2])) if len(parts) >= 3 else (0.0, 0.0))
            self.i += 1
        return flags, mat, refs, uvs

    def add_object(self, name, kind, parent, texture, world, local_verts, local_normals,
                   surfaces, texrep, texoff) -> None:
        vert_start = self.num_verts
        verts = local_verts @ world[:3, :3].T + world[:3, 3]
        normals = None
        if local_normals is not None:
            normal_matrix = np.linalg.inv(world[:3, :3]).T
            normals = local_normals @ normal_matrix.T
            length = np.linalg.norm(normals, axis=1, keepdims=True)
            normals = normals / np.where(length > 0, length, 1.0)
        tris, tri_uvs, tri_flags, tri_mats = [], [], [], []
        n_local = len(local_verts)
        for flags, mat, refs, uvs in surfaces:
            kind_bits = flags & 0x0F
            if kind_bits == SURF_POLYGON:
                corners = [(0, k, k + 1) for k in range(1, len(refs) - 1)]
            elif kind_bits == SURF_STRIP:
                corners = [(k, k + 1, k + 2) if k % 2 == 0 else (k + 1, k, k + 2)
                           for k in range(len(refs) - 2)]
            else:
                continue
            for a, b, c in corners:
                ia, ib, ic = refs[a], refs[b], refs[c]
                if ia == ib or ib == ic or ia == ic:
                    continue
                if max(ia, ib, ic) >= n_local or min(ia, ib, ic) < 0:
                    raise self.fail(f"object {name!r} refers to vertex {max(ia, ib, ic)} "
                                    f"but has {n_local} vertices")
                tris.append((ia, ib, ic))
                tri_uvs.append((uvs[a], uvs[b], uvs[c]))
                tri_flags.append(flags)
                tri_mats.append(mat)
        faces = np.array(tris, dtype=np.int64).reshape(-1, 3) + vert_start
        face_uvs = np.array(tri_uvs, dtype=np.float64).reshape(-1, 3, 2) * texrep + texoff
        self.verts.append(verts)
        self.normals.append(normals)
        self.faces.append(faces)
        self.uvs.append(face_uvs)
        self.flags.append(np.array(tri_flags, dtype=np.int64))
        self.mats.append(np.array(tri_mats, dtype=np.int64))
        self.num_verts += n_local
        face_start = self.num_faces
        self.num_faces += len(faces)
        self.objects.append(dict(name=name, kind=kind, parent=parent, texture=texture,
                                 vert_start=vert_start, vert_stop=self.num_verts,
                                 face_start=face_start, face_stop=self.num_faces,
                                 world_from_object=world))

    def build(self, directory: Path | None, *, z_up: bool, load_textures: bool,
              require_textures: bool = False) -> AC3DModel:
        # Objects were appended after their own surfaces were read but before their kids, so the
        # list is in depth-first pre-order and the indices recorded for parents are right.
        frame = Z_UP_FROM_AC3D if z_up else np.eye(3)
        frame4 = np.eye(4)
        frame4[:3, :3] = frame
        verts = np.concatenate(self.verts) if self.verts else np.zeros((0, 3))
        verts = verts @ frame.T
        # Objects without vertices (groups, the world) do not decide whether the file has normals.
        has_normals = any(len(v) for v in self.verts) and all(
            n is not None for n, v in zip(self.normals, self.verts, strict=True) if len(v))
        normals = (np.concatenate([n if n is not None else np.zeros((0, 3)) for n in self.normals]) @ frame.T
                   if has_normals else None)
        faces = np.concatenate(self.faces) if self.faces else np.zeros((0, 3), dtype=np.int64)
        face_uvs = np.concatenate(self.uvs) if self.uvs else np.zeros((0, 3, 2))
        flags = np.concatenate(self.flags) if self.flags else np.zeros(0, dtype=np.int64)
        mats = np.concatenate(self.mats) if self.mats else np.zeros(0, dtype=np.int64)
        materials = self.materials or [AC3DMaterial("default", (1.0, 1.0, 1.0), (0.2, 0.2, 0.2),
                                                    (0.0, 0.0, 0.0), (0.5, 0.5, 0.5), 10.0, 0.0)]
        if len(mats) and mats.max() >= len(materials):
            raise ValueError(f"{self.source}: a surface uses material {mats.max()} but the file defines "
                             f"{len(materials)}")

        objects, face_parts = [], np.zeros(len(faces), dtype=np.int64)
        face_texture = np.full(len(faces), -1, dtype=np.int64)
        found = TextureSet(directory, self.source, require_textures) if load_textures else None
        for k, o in enumerate(self.objects):
            face_parts[o["face_start"]:o["face_stop"]] = k
            if found is not None and o["texture"] and o["face_stop"] > o["face_start"]:
                face_texture[o["face_start"]:o["face_stop"]] = found.index(o["texture"], f" of object {o['name']!r}")
            world = frame4 @ o["world_from_object"]
            objects.append(AC3DObject(
                name=o["name"], kind=o["kind"], parent=o["parent"], texture=o["texture"],
                vert_start=o["vert_start"], vert_stop=o["vert_stop"], face_start=o["face_start"],
                face_stop=o["face_stop"], world_from_object=tuple(tuple(float(x) for x in r) for r in world)))

        rgb = np.array([m.rgb for m in materials], dtype=np.float32)
        trans = np.array([m.transparency for m in materials], dtype=np.float32)
        mesh = Mesh(
            verts=torch.from_numpy(verts.astype(np.float32)).unsqueeze(0),
            faces=torch.from_numpy(faces),
            vert_normals=(torch.from_numpy(normals.astype(np.float32)).unsqueeze(0)
                          if normals is not None else None),
            face_uvs=torch.from_numpy(face_uvs.astype(np.float32)),
            textures=tuple(found.textures) if found is not None else (),
            face_texture=torch.from_numpy(face_texture),
            face_colors=torch.from_numpy(rgb[mats]) if len(mats) else torch.zeros(0, 3),
            face_alpha=torch.from_numpy(1.0 - trans[mats]) if len(mats) else torch.zeros(0),
            face_two_sided=torch.from_numpy((flags & SURF_TWO_SIDED) != 0),
            face_parts=torch.from_numpy(face_parts),
            part_names=tuple(clean_ac3d_name(o.name) for o in objects),
        )
        if len(faces) == 0:
            warnings.warn(f"{self.source}: no triangles (only lines or empty objects)", stacklevel=3)
        return AC3DModel(mesh=mesh, objects=tuple(objects), materials=tuple(materials),
                         face_material=torch.from_numpy(mats),
                         texture_paths=tuple(found.paths) if found is not None else ())


def _quoted(rest: str) -> str:
    """The string after a keyword: the text between the first pair of quotes, else the first word."""
    rest = rest.strip()
    if rest.startswith('"'):
        end = rest.find('"', 1)
        return rest[1:end] if end > 0 else rest[1:]
    return rest.split()[0] if rest else ""
