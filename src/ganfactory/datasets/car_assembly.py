"""Assemble a TORCS car: body from its .acc, four wheels from its .xml, part labels, keypoints.

Why assemble rather than load: a TORCS car file holds the body only. The game places the wheels at
run time from the physics parameters in ``<car>.xml``; we do the same, so images, labels, keypoints
and the ground-truth mesh all come from one assembled :class:`Mesh`.

Frame of every array here: TORCS' car frame, x forward, y left, z up, metres; the origin is TORCS'
(about the middle of the car, z = 0 at the bottom of the body). The ground is below it, at the
bottom of the wheels (:attr:`CarSpec.ground_z`).

Facts used (``../shared/notes/torcs-cars.md``):

- wheel x from ``Front Axle``/``Rear Axle`` xpos, y from ``<Front|Rear> <Right|Left> Wheel`` ypos;
  radius = rim diameter / 2 + tire width x tire height-width ratio; hub height
  z = radius - ride height / bellcrank (bellcrank from the matching ``... Suspension`` section);
- 3-D wheel sets (``Graphic Objects/3d wheel directory``): ``wheels/<set>/wheel0.acc``, a unit cube
  model with its outer face at +y, scaled to (2r, width, 2r); right wheels are mirrored in y with
  their winding flipped. Otherwise the procedural wheel: a dark tread cylinder and sidewalls and two
  rim discs textured from ``tex-wheel.rgb``;
- objects whose names start with ``WI`` are drawn translucent by TORCS, with the texture's alpha.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganfactory.datasets.parts import CARS13, classify_body_object, classify_wheel_object
from ganfactory.datasets.torcs import find_torcs_root
from ganfactory.render.io import read_ac3d, save_mesh
from ganfactory.render.io.ac3d import clean_ac3d_name, find_beside, load_texture
from ganfactory.render.mesh import Mesh

__all__ = [
    "CAR_IDS",
    "KEYPOINT_NAMES",
    "NAMED_CAR_IDS",
    "TYRE_COLOR",
    "WHEEL_POSITIONS",
    "Car",
    "CarSpec",
    "LightSpec",
    "WheelSpec",
    "assemble_car",
    "procedural_wheel",
    "read_car_spec",
    "read_torcs_params",
    "save_car_mesh",
]

CAR_IDS: tuple[str, ...] = (
    "155-DTM", "acura-nsx-sz", "baja-bug", "buggy", "car1-ow1", "car1-stock1", "car1-stock2", "car1-trb1",
    "car1-trb3", "car2-trb1", "car3-trb1", "car4-trb1", "car5-trb1", "car6-trb1", "car7-trb1", "car8-trb1",
    "p406",
)
"""The 17 cars of Debian's torcs-data (all used for images)."""

NAMED_CAR_IDS: tuple[str, ...] = (
    "car1-stock1", "car1-stock2", "car1-trb1", "car1-trb3", "car2-trb1", "car3-trb1", "car4-trb1",
    "car5-trb1", "car6-trb1", "car7-trb1", "car8-trb1",
)
"""The 11 cars with real part objects: their part labels are trusted."""

WHEEL_POSITIONS: tuple[str, ...] = ("front_left", "front_right", "rear_left", "rear_right")

KEYPOINT_NAMES: tuple[str, ...] = (
    "hub_front_left", "hub_front_right", "hub_rear_left", "hub_rear_right",
    "headlight_left", "headlight_right", "taillight_left", "taillight_right",
)
"""Keypoint order of every car: the 4 hub outer-face centres, then the 4 lamps."""

TYRE_COLOR = (0.08, 0.08, 0.08)
"""RGB of the procedural wheel's untextured tread and sidewalls."""

PROCEDURAL_SEGMENTS = 24
"""Segments around the procedural wheel (TORCS uses a similar count)."""

_LENGTH_UNITS = {None: 1.0, "": 1.0, "m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254, "ft": 0.3048}


# ------------------------------------------------------------------------------------------- the .xml

@dataclass(frozen=True)
class WheelSpec:
    """One wheel from <car>.xml; lengths in metres, positions in the TORCS car frame."""

    position: str
    """One of WHEEL_POSITIONS."""
    x: float
    """The axle's xpos."""
    y: float
    """The wheel's ypos (centre plane; > 0 on the left)."""
    rim_radius: float
    radius: float
    """Rim radius + tyre sidewall height."""
    width: float
    ride_height: float
    bellcrank: float

    @property
    def hub_z(self) -> float:
        return self.radius - self.ride_height / self.bellcrank

    @property
    def side(self) -> float:
        """+1 for a left wheel (outer face towards +y), -1 for a right one."""
        return 1.0 if self.y > 0 else -1.0

    @property
    def hub_outer(self) -> tuple[float, float, float]:
        """The centre of the wheel's outer face: the hub keypoint."""
        return (self.x, self.y + self.side * self.width / 2, self.hub_z)


@dataclass(frozen=True)
class LightSpec:
    """One ``Graphic Objects/Light`` entry: TORCS' lamp sprite (type head1, head2, brake, brake2, rear...)."""

    kind: str
    position: tuple[float, float, float]
    size: float


@dataclass(frozen=True)
class CarSpec:
    """What the assembler reads from <car>.xml."""

    car_id: str
    wheels: tuple[WheelSpec, ...]
    """In WHEEL_POSITIONS order."""
    wheel_set: str | None
    """Name of the 3-D wheel set (``wheels/<set>/``), or None for the procedural wheel."""
    wheel_texture: str
    """Texture of the procedural wheel, beside the car files."""
    lights: tuple[LightSpec, ...]
    body_length: float | None
    body_width: float | None
    body_height: float | None

    @property
    def ground_z(self) -> float:
        """Height of the ground in the car frame: the bottom of the lowest wheel."""
        return min(w.hub_z - w.radius for w in self.wheels)


def read_torcs_params(path: str | Path) -> dict[str, str | float]:
    """A TORCS parameter file as a flat dict ``"Section/Sub/name" -> value``.

    Numbers (``attnum``) are converted to SI lengths when their unit is a length (in, mm, cm, ft);
    other units are kept as written. Strings (``attstr``) are kept as strings.
    """
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, FileNotFoundError) as error:
        raise ValueError(f"cannot read the TORCS parameter file {path}: {error}") from None
    out: dict[str, str | float] = {}

    def walk(element: ET.Element, prefix: str) -> None:
        for child in element:
            name = child.get("name", "")
            if child.tag == "section":
                walk(child, f"{prefix}{name}/")
            elif child.tag == "attnum":
                value = float(child.get("val", "nan"))
                out[prefix + name] = value * _LENGTH_UNITS.get(child.get("unit"), 1.0)
            elif child.tag == "attstr":
                out[prefix + name] = child.get("val", "")

    walk(root, "")
    return out


def read_car_spec(car_id: str, torcs_root: str | Path | None = None) -> CarSpec:
    """Parse ``cars/<car_id>/<car_id>.xml`` into the facts the assembler needs."""
    car_dir = _car_dir(car_id, torcs_root)
    path = car_dir / f"{car_id}.xml"
    p = read_torcs_params(path)

    def num(key: str, default: float | None = None) -> float:
        value = p.get(key, default)
        if value is None:
            raise ValueError(f"{path}: missing {key!r}, which the car assembly needs")
        return float(value)

    wheels = []
    for position in WHEEL_POSITIONS:
        axle, side = position.split("_")
        wheel = f"{axle.title()} {side.title()} Wheel"
        rim_radius = num(f"{wheel}/rim diameter") / 2
        radius = rim_radius + num(f"{wheel}/tire width") * num(f"{wheel}/tire height-width ratio")
        wheels.append(WheelSpec(
            position=position, x=num(f"{axle.title()} Axle/xpos"), y=num(f"{wheel}/ypos"),
            rim_radius=rim_radius, radius=radius, width=num(f"{wheel}/tire width"),
            ride_height=num(f"{wheel}/ride height"),
            bellcrank=num(f"{axle.title()} {side.title()} Suspension/bellcrank", 1.0)))
    lights = []
    k = 1
    while f"Graphic Objects/Light/{k}/type" in p:
        base = f"Graphic Objects/Light/{k}/"
        lights.append(LightSpec(kind=str(p[base + "type"]),
                                position=(num(base + "xpos"), num(base + "ypos"), num(base + "zpos")),
                                size=num(base + "size", 0.0)))
        k += 1
    wheel_set = p.get("Graphic Objects/3d wheel directory")
    return CarSpec(
        car_id=car_id, wheels=tuple(wheels), wheel_set=str(wheel_set) if wheel_set else None,
        wheel_texture=str(p.get("Graphic Objects/wheel texture", "tex-wheel.rgb")), lights=tuple(lights),
        body_length=p.get("Car/body length"), body_width=p.get("Car/body width"),  # type: ignore[arg-type]
        body_height=p.get("Car/body height"))  # type: ignore[arg-type]


def _car_dir(car_id: str, torcs_root: str | Path | None) -> Path:
    root = find_torcs_root(torcs_root)
    car_dir = root / "cars" / car_id
    if not car_dir.is_dir():
        known = sorted(d.name for d in (root / "cars").iterdir() if d.is_dir())
        raise ValueError(f"no car {car_id!r} in {root / 'cars'}; cars there: {', '.join(known)}")
    return car_dir


# ------------------------------------------------------------------------------------------ assembly

@dataclass(frozen=True)
class Car:
    """An assembled car in the TORCS frame (metres).

    ``mesh`` (batch of one) has ``face_parts`` = ``cars-13`` class ids and ``part_names`` = CARS13,
    RGB textures, and ``face_alpha`` = the opacity TORCS draws a face with (the texture's alpha at the
    face for ``WI*`` objects, else 1), so it renders as is with ``ganfactory.render.Renderer``.
    """

    car_id: str
    spec: CarSpec
    mesh: Mesh
    face_object: torch.Tensor
    """[F] int64 index into ``object_names``: which source object a face comes from."""
    object_names: tuple[str, ...]
    """``"body/<cleaned name>"`` or ``"<wheel position>/<cleaned name>"`` per source object."""
    keypoints: torch.Tensor
    """[8, 3] float32 keypoints in KEYPOINT_NAMES order (NaN where unavailable)."""
    keypoint_sources: tuple[str, ...]
    """Per keypoint: ``"wheel"``, ``"parts"`` (lamp objects), ``"xml"`` (light sprites) or ``"none"``."""
    labels_trusted: bool
    """True for the 11 cars with real part objects (NAMED_CAR_IDS)."""
    texture_paths: tuple[Path, ...] = ()
    """The file behind each of ``mesh.textures`` (the livery is the one named after the car)."""

    @property
    def keypoints_available(self) -> torch.Tensor:
        """[8] bool."""
        return ~torch.isnan(self.keypoints).any(dim=1)


def assemble_car(car_id: str, torcs_root: str | Path | None = None) -> Car:
    """Read and assemble one car: body, four wheels, labels, glass alpha, keypoints."""
    car_dir = _car_dir(car_id, torcs_root)
    spec = read_car_spec(car_id, torcs_root)
    body_path = car_dir / f"{car_id}.acc"
    if not body_path.is_file():
        raise FileNotFoundError(f"{car_dir}: the body model {body_path.name} is missing")
    body = read_ac3d(body_path, z_up=True, require_textures=True)
    pieces: list[_Piece] = [_body_piece(body, car_id)]

    if spec.wheel_set is not None:
        wheel_path = find_torcs_root(torcs_root) / "wheels" / spec.wheel_set / "wheel0.acc"
        if not wheel_path.is_file():
            raise FileNotFoundError(f"{car_id}: 3-D wheel set {spec.wheel_set!r} not found at {wheel_path}")
        wheel_model = read_ac3d(wheel_path, z_up=True, require_textures=True)
        for w in spec.wheels:
            pieces.append(_wheel3d_piece(wheel_model, w))
    else:
        texture_path = find_beside(car_dir, spec.wheel_texture)
        if texture_path is None:
            raise FileNotFoundError(f"{car_id}: wheel texture {spec.wheel_texture!r} not in {car_dir}")
        for w in spec.wheels:
            pieces.append(_procedural_piece(w, texture_path))

    mesh, face_object, object_names, texture_paths = _combine(pieces)
    keypoints, sources = _keypoints(mesh, spec)
    return Car(car_id=car_id, spec=spec, mesh=mesh, face_object=face_object, object_names=object_names,
               keypoints=keypoints, keypoint_sources=sources, labels_trusted=car_id in NAMED_CAR_IDS,
               texture_paths=tuple(texture_paths))


def save_car_mesh(car: Car, path: str | Path) -> None:
    """Write the ground-truth mesh (.obj, .glb or .ply) in metres, one part per ``cars-13`` class."""
    save_mesh(car.mesh, path)


@dataclass(frozen=True)
class _Piece:
    """Arrays of one source model placed in the car frame, before concatenation."""

    verts: np.ndarray          # [V, 3]
    normals: np.ndarray        # [V, 3]
    faces: np.ndarray          # [F, 3]
    face_uvs: np.ndarray       # [F, 3, 2]
    texture_paths: tuple[Path, ...]
    textures: tuple[torch.Tensor, ...]
    face_texture: np.ndarray   # [F], index into this piece's textures, -1 untextured
    face_colors: np.ndarray    # [F, 3]
    face_alpha: np.ndarray     # [F]
    face_two_sided: np.ndarray  # [F]
    face_class: np.ndarray     # [F] cars-13 ids
    face_object: np.ndarray    # [F] index into object_names
    object_names: tuple[str, ...]


def _sampled_alpha(mesh: Mesh, face_ids: np.ndarray) -> np.ndarray:
    """Texture alpha at the UV centroid of each face (nearest texel, wrapped); 1 when untextured."""
    alpha = np.ones(len(face_ids))
    if not len(face_ids) or mesh.face_texture is None:
        return alpha
    uv = mesh.face_uvs[face_ids].mean(dim=1).numpy()
    tex = mesh.face_texture[face_ids].numpy()
    for t in np.unique(tex[tex >= 0]):
        image = mesh.textures[t][0, 3].numpy() if mesh.textures[t].shape[1] == 4 else None
        if image is None:
            continue
        H, W = image.shape
        sel = tex == t
        cols = np.clip((np.mod(uv[sel, 0], 1.0) * W).astype(int), 0, W - 1)
        rows = np.clip(((1.0 - np.mod(uv[sel, 1], 1.0)) * H).astype(int), 0, H - 1)
        alpha[sel] = image[rows, cols]
    return alpha


def _model_arrays(model, face_class: np.ndarray, prefix: str) -> dict:
    mesh = model.mesh
    alpha = mesh.face_alpha.numpy().astype(np.float64).copy()
    for o in model.objects:
        if o.num_faces and clean_ac3d_name(o.name).upper().startswith("WI"):
            ids = np.arange(o.face_start, o.face_stop)
            alpha[ids] = alpha[ids] * _sampled_alpha(mesh, ids)
    return dict(
        verts=mesh.verts[0].numpy().astype(np.float64),
        normals=(mesh.vert_normals[0].numpy().astype(np.float64) if mesh.vert_normals is not None
                 else np.zeros((mesh.num_verts, 3))),
        faces=mesh.faces.numpy(), face_uvs=mesh.face_uvs.numpy().astype(np.float64),
        texture_paths=model.texture_paths, textures=mesh.textures, face_texture=mesh.face_texture.numpy(),
        face_colors=mesh.face_colors.numpy().astype(np.float64), face_alpha=alpha,
        face_two_sided=mesh.face_two_sided.numpy(), face_class=face_class,
        face_object=mesh.face_parts.numpy(),
        object_names=tuple(f"{prefix}/{clean_ac3d_name(o.name)}" for o in model.objects))


def _body_piece(body, car_id: str) -> _Piece:
    mesh = body.mesh
    face_centroid_x = mesh.face_verts()[0].mean(dim=1)[:, 0]
    face_class = np.zeros(mesh.num_faces, dtype=np.int64)
    for o in body.objects:
        if o.num_faces:
            cx = float(face_centroid_x[o.face_start:o.face_stop].mean())
            face_class[o.face_start:o.face_stop] = CARS13.index(classify_body_object(o.name, car_id, cx))
    return _Piece(**_model_arrays(body, face_class, "body"))


def _wheel3d_piece(model, wheel: WheelSpec) -> _Piece:
    face_class = np.zeros(model.mesh.num_faces, dtype=np.int64)
    for o in model.objects:
        face_class[o.face_start:o.face_stop] = CARS13.index(classify_wheel_object(o.name))
    a = _model_arrays(model, face_class, wheel.position)
    scale = np.array([2 * wheel.radius, wheel.width, 2 * wheel.radius])
    mirror = np.array([1.0, wheel.side, 1.0])
    a["verts"] = a["verts"] * scale * mirror + np.array([wheel.x, wheel.y, wheel.hub_z])
    normals = a["normals"] / scale * mirror                 # inverse-transpose of the scaling
    a["normals"] = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    if wheel.side < 0:                                      # a reflection turns faces inside out
        a["faces"] = a["faces"][:, [0, 2, 1]]
        a["face_uvs"] = a["face_uvs"][:, [0, 2, 1]]
    return _Piece(**a)


def procedural_wheel(radius: float, rim_radius: float, width: float,
                     segments: int = PROCEDURAL_SEGMENTS) -> dict[str, np.ndarray]:
    """TORCS' wheel when a car names no 3-D set, centred at the origin, axis along y, outer face +y.

    Returns numpy arrays: ``verts`` [V, 3], ``faces`` [F, 3] (outward facing), ``face_uvs`` [F, 3, 2],
    ``textured`` [F] bool (the two rim discs, mapped to the top-left quarter of tex-wheel.rgb) and
    ``face_class`` [F] (``rim`` for the discs; ``tyre`` for the tread and the sidewalls between the rim
    radius and the tyre radius).
    """
    theta = 2 * math.pi * np.arange(segments) / segments
    ring = np.stack([np.cos(theta), np.zeros(segments), np.sin(theta)], axis=1)
    verts, faces, uvs, textured, classes = [], [], [], [], []
    tyre, rim = CARS13.index("tyre"), CARS13.index("rim")

    def add(points: np.ndarray) -> int:
        start = sum(len(v) for v in verts)
        verts.append(points)
        return start

    for side in (1.0, -1.0):
        y = side * width / 2
        centre = add(np.array([[0.0, y, 0.0]]))
        inner = add(ring * rim_radius + [0, y, 0])
        outer = add(ring * radius + [0, y, 0])
        for k in range(segments):
            n = (k + 1) % segments
            # Disc fan and sidewall quad, wound to face +y on the outer side and -y on the inner side.
            tris = [(centre, inner + n, inner + k), (inner + k, inner + n, outer + n),
                    (inner + k, outer + n, outer + k)]
            if side < 0:
                tris = [(a, c, b) for a, b, c in tris]
            for t, (a, b, c) in enumerate(tris):
                faces.append((a, b, c))
                is_disc = t == 0
                textured.append(is_disc)
                classes.append(rim if is_disc else tyre)
                uvs.append([_disc_uv(i, centre, inner, segments, theta) for i in (a, b, c)] if is_disc
                           else [[0.0, 0.0]] * 3)
    tread_out = add(ring * radius + [0, width / 2, 0])
    tread_in = add(ring * radius + [0, -width / 2, 0])
    for k in range(segments):
        n = (k + 1) % segments
        quad = ((tread_out + k, tread_out + n, tread_in + n), (tread_out + k, tread_in + n, tread_in + k))
        for a, b, c in quad:
            faces.append((a, b, c))
            textured.append(False)
            classes.append(tyre)
            uvs.append([[0.0, 0.0]] * 3)
    return dict(verts=np.concatenate(verts), faces=np.array(faces, dtype=np.int64),
                face_uvs=np.array(uvs, dtype=np.float64), textured=np.array(textured),
                face_class=np.array(classes, dtype=np.int64))


def _disc_uv(index: int, centre: int, inner: int, segments: int, theta: np.ndarray) -> list[float]:
    if index == centre:
        return [0.25, 0.75]
    k = index - inner
    return [0.25 + 0.25 * math.cos(theta[k]), 0.75 + 0.25 * math.sin(theta[k])]


def _procedural_piece(wheel: WheelSpec, texture_path: Path) -> _Piece:
    w = procedural_wheel(wheel.radius, wheel.rim_radius, wheel.width)
    verts, faces, face_uvs = w["verts"], w["faces"], w["face_uvs"]
    if wheel.side < 0:
        verts = verts * [1.0, -1.0, 1.0]
        faces, face_uvs = faces[:, [0, 2, 1]], face_uvs[:, [0, 2, 1]]
    F = len(faces)
    colors = np.where(w["textured"][:, None], 1.0, np.array(TYRE_COLOR)[None, :])
    return _Piece(
        verts=verts + [wheel.x, wheel.y, wheel.hub_z], normals=np.zeros_like(verts), faces=faces,
        face_uvs=face_uvs, texture_paths=(texture_path,), textures=(load_texture(texture_path),),
        face_texture=np.where(w["textured"], 0, -1), face_colors=colors, face_alpha=np.ones(F),
        face_two_sided=np.zeros(F, dtype=bool), face_class=w["face_class"],
        face_object=np.where(w["textured"], 0, 1),
        object_names=(f"{wheel.position}/DISC", f"{wheel.position}/TYRE"))


def _combine(pieces: list[_Piece]) -> tuple[Mesh, torch.Tensor, tuple[str, ...], list[Path]]:
    """Concatenate pieces; textures are shared by file path; vertex normals are recomputed where
    a piece has none (the procedural wheel)."""
    texture_paths: list[Path] = []
    textures: list[torch.Tensor] = []
    arrays: dict[str, list] = {k: [] for k in ("verts", "normals", "faces", "face_uvs", "face_texture",
                                               "face_colors", "face_alpha", "face_two_sided",
                                               "face_class", "face_object")}
    object_names: list[str] = []
    v_offset = 0
    for piece in pieces:
        remap = []
        for path, texture in zip(piece.texture_paths, piece.textures, strict=True):
            if path not in texture_paths:
                texture_paths.append(path)
                textures.append(texture[:, :3].contiguous())   # opacity lives in face_alpha
            remap.append(texture_paths.index(path))
        remap_arr = np.array(remap + [-1], dtype=np.int64)     # index -1 maps to the appended -1
        normals = piece.normals
        if not np.any(normals):
            normals = _vertex_normals(piece.verts, piece.faces)
        arrays["verts"].append(piece.verts)
        arrays["normals"].append(normals)
        arrays["faces"].append(piece.faces + v_offset)
        arrays["face_uvs"].append(piece.face_uvs)
        arrays["face_texture"].append(remap_arr[piece.face_texture])
        arrays["face_colors"].append(piece.face_colors[:, :3])
        arrays["face_alpha"].append(piece.face_alpha)
        arrays["face_two_sided"].append(piece.face_two_sided)
        arrays["face_class"].append(piece.face_class)
        arrays["face_object"].append(piece.face_object + len(object_names))
        object_names.extend(piece.object_names)
        v_offset += len(piece.verts)
    cat = {k: np.concatenate(v) for k, v in arrays.items()}
    mesh = Mesh(
        verts=torch.from_numpy(cat["verts"].astype(np.float32)).unsqueeze(0),
        faces=torch.from_numpy(cat["faces"].astype(np.int64)),
        vert_normals=torch.from_numpy(cat["normals"].astype(np.float32)).unsqueeze(0),
        face_uvs=torch.from_numpy(cat["face_uvs"].astype(np.float32)),
        textures=tuple(textures),
        face_texture=torch.from_numpy(cat["face_texture"].astype(np.int64)),
        face_colors=torch.from_numpy(cat["face_colors"].astype(np.float32)),
        face_alpha=torch.from_numpy(cat["face_alpha"].astype(np.float32)),
        face_two_sided=torch.from_numpy(cat["face_two_sided"].astype(bool)),
        face_parts=torch.from_numpy(cat["face_class"].astype(np.int64)),
        part_names=CARS13,
    )
    return mesh, torch.from_numpy(cat["face_object"].astype(np.int64)), tuple(object_names), texture_paths


def _vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[V, 3] area-weighted average of the adjacent face normals, unit length."""
    normals = np.zeros_like(verts)
    face_normals = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    for corner in range(3):
        np.add.at(normals, faces[:, corner], face_normals)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


# --------------------------------------------------------------------------------------------- keypoints

def _keypoints(mesh: Mesh, spec: CarSpec) -> tuple[torch.Tensor, tuple[str, ...]]:
    """Hubs from the wheels; lamps from the lamp faces, else from the XML light sprites, else NaN.

    A lamp from faces is the centroid of that side's lamp faces weighted by their area projected on
    the lamp's direction (+x for headlights, -x for taillights), i.e. the middle of the lamp as seen
    from the front or the back (frames facing elsewhere do not count), snapped to the centroid of the
    nearest such face so that it lies on the lamp. The XML sprites sit 2-17 cm from it (they float
    just outside the body); their mean per side is the fallback.
    """
    points = np.full((len(KEYPOINT_NAMES), 3), np.nan)
    sources = ["none"] * len(KEYPOINT_NAMES)
    for k, wheel in enumerate(spec.wheels):
        points[k] = wheel.hub_outer
        sources[k] = "wheel"
    corners = mesh.face_verts()[0].numpy().astype(np.float64)
    centroids = corners.mean(axis=1)
    area_x = 0.5 * np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])[:, 0]
    classes = mesh.face_parts.numpy()
    xml_kinds = {"headlight": ("head",), "taillight": ("brake", "rear")}
    for k, name in enumerate(KEYPOINT_NAMES[4:], start=4):
        lamp, side = name.split("_")
        sign = 1.0 if side == "left" else -1.0
        sel = (classes == CARS13.index(lamp)) & (centroids[:, 1] * sign > 0)
        weight = np.maximum(area_x[sel] * (1.0 if lamp == "headlight" else -1.0), 0.0)
        if weight.sum() > 0:
            middle = (centroids[sel] * weight[:, None]).sum(0) / weight.sum()
            # Snap to the nearest facing lamp face: twin lamps have their middle on the body between them.
            facing = centroids[sel][weight > 0]
            points[k] = facing[np.argmin(np.linalg.norm(facing - middle, axis=1))]
            sources[k] = "parts"
            continue
        lights = [np.array(light.position) for light in spec.lights
                  if light.kind.startswith(xml_kinds[lamp]) and light.position[1] * sign > 0]
        if lights:
            points[k] = np.mean(lights, axis=0)
            sources[k] = "xml"
    return torch.from_numpy(points.astype(np.float32)), tuple(sources)
