"""Movable parts of a reconstruction with part labels: wheels split off, their axes and hubs fitted, and an
animated GLB (one node per movable part; wheels spin, front wheels steer), written here because trimesh
writes no animations.

Wheels. The faces labelled ``wheel`` are split into four wheels by side (the sign of y: the network's mesh is
mirror-symmetric in y) and, per side, by 2-means on x (front, rear). A wheel's **hub** lies at the
area-weighted centroid of its faces along the car and, by default, at their outermost y (the wheel's outer
face, where the data's hub keypoints are) and at the height of the centre of a wheel standing on the ground
and reaching the top of those faces (``HUB_MODES``); its
**axis** is the direction of least spread of those faces (the normal of the best-fitting plane: a wheel's outer
face is a disc), levelled onto the ground plane by default (``AXIS_MODES``) and turned to point to the car's
left (+y) so that every wheel spins the same way. A wheel with fewer than ``MIN_WHEEL_FACES`` faces is not split
off. The labelled faces stay in the body (node ``body_wheel``): they are a patch of the body's surface, which
turned about an axis would swing out of the surface; the movable wheel is a closed cylinder fitted to them
(``wheel_disc``: outer face centred on the hub, textured with a drawn wheel so that turning shows).

The file (glTF 2.0 binary, y up like the viewer: vertices go through ``render.conventions.vehicle_to_world``,
so the car's front is +z, its left +x and its top +y):

    node 0 "car" (root) -- children:
        "body"                    no mesh; children one node per part class present ("body_body", "body_window",
                                  "body_light", ..., "body_wheel"), each with a mesh; extras {"ganfactory":
                                  {"part", "color"}}
        "steer_front_left"        at the hub (translation), no mesh; child "wheel_front_left" (mesh, at the hub)
        "steer_front_right"       likewise
        "wheel_rear_left", "wheel_rear_right"   mesh nodes at their hubs
    animations  "spin":  each wheel node's rotation about its axis, one turn per second (LINEAR, 9 keys)
                "steer": each steer node's rotation about +y (up): 0, +25, 0, -25, 0 degrees over 2 s

Wheel meshes (the fitted cylinders) are stored relative to their hub, so rotating the node turns the wheel in
place; their node extras hold hub, axis and radius (y-up frame). Body meshes use the reconstruction's colour
texture, wheels a drawn wheel texture, both unlit (``KHR_materials_unlit``: the reconstruction's lighting is
baked into its texture). Vertices are not shared between faces (flat normals, per-face UVs).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ganfactory.atomic import atomic_path
from ganfactory.datasets.parts import CARS8, CLASS_COLORS
from ganfactory.errors import GanfactoryError

__all__ = ["AXIS_MODES", "HUB_MODES", "MIN_WHEEL_FACES", "STEER_DEG", "WHEEL_NAMES", "Wheel", "check_animations",
           "fit_wheel", "read_glb", "split_wheels", "wheel_disc", "wheel_texture", "write_animated_glb"]

MIN_WHEEL_FACES = 3
"""A wheel cluster with fewer faces is left in the body."""
STEER_DEG = 25.0
"""Steering amplitude of the "steer" animation."""
WHEEL_NAMES = ("wheel_front_left", "wheel_front_right", "wheel_rear_left", "wheel_rear_right")
"""In the order of the data's hub keypoints (hub_front_left, hub_front_right, hub_rear_left, hub_rear_right)."""


@dataclass(frozen=True)
class Wheel:
    """One wheel split off a reconstruction, in the car's frame (x forward, y left, z up)."""

    name: str
    faces: np.ndarray
    """[n] int64 face indices into the reconstruction."""
    hub: np.ndarray
    """[3] centre of the wheel's outer face."""
    axis: np.ndarray
    """[3] unit rotation axis, pointing to the car's left (+y)."""
    radius: float
    """Radius of the disc the faces fill: sqrt(2) x their RMS distance from the hub across the axis."""


def _face_stats(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tri = verts[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=-1)
    return tri.mean(1), area


AXIS_MODES = ("level", "spread", "symmetry")
"""How a wheel's axis is fitted: ``spread`` = the least-spread direction of its faces; ``level`` (default) =
that direction projected onto the ground plane (a car's axles are horizontal: no camber), which removes the
tilt a wheel patch on the rounded lower edge of a deformed sphere has; ``symmetry`` = the normal of the
car's mirror plane (y), the same for every wheel."""


HUB_MODES = ("ground", "centroid")
"""How a wheel's hub and radius are fitted: ``centroid`` = the faces' area-weighted centroid, radius sqrt(2) x
their RMS distance across the axis (a disc's); ``ground`` (default) = the centroid's x, the faces' outermost y
(the outer face) and a wheel that spans from the ground (the mesh's lowest point) to the top of its faces:
radius = half that height, hub height = ground + radius. Why: the part head labels the wheel on the sphere's
rounded lower edge, wrapping under the car; the centroid of that patch sits near the ground and inside the body
(looked at: discs through the ground, or hidden in the body); a car's wheels stand on the ground, reach up into
their arches and end at its sides."""


def fit_wheel(verts: np.ndarray, faces: np.ndarray, name: str, face_ids: np.ndarray,
              axis_mode: str = "level", hub_mode: str = "ground", ground: float | None = None) -> Wheel:
    """Hub and radius (``HUB_MODES``) and axis (``AXIS_MODES``, toward +y) of the faces ``face_ids``; ``ground``
    is the height of the ground (default: the lowest vertex)."""
    if axis_mode not in AXIS_MODES:
        raise ValueError(f"axis_mode must be one of {AXIS_MODES}, got {axis_mode!r}")
    if hub_mode not in HUB_MODES:
        raise ValueError(f"hub_mode must be one of {HUB_MODES}, got {hub_mode!r}")
    centroid, area = _face_stats(verts, faces[face_ids])
    w = area / max(area.sum(), 1e-12)
    hub = (w[:, None] * centroid).sum(0)
    # Spread of the faces' corners (each corner weighted by its face's area): a disc's normal has the least.
    corners = verts[faces[face_ids]].reshape(-1, 3)
    cw = np.repeat(w, 3) / 3
    d = corners - hub
    cov = (cw[:, None, None] * d[:, :, None] * d[:, None, :]).sum(0)
    _, vecs = np.linalg.eigh(cov)
    axis = vecs[:, 0]
    if axis_mode == "level":
        axis = np.array([axis[0], axis[1], 0.0]) if np.hypot(axis[0], axis[1]) > 1e-6 else np.array([0, 1.0, 0])
    elif axis_mode == "symmetry":
        axis = np.array([0.0, 1.0, 0.0])
    if axis[1] < 0:
        axis = -axis
    axis = axis / np.linalg.norm(axis)
    across = d - (d @ axis)[:, None] * axis
    radius = float(np.sqrt(2 * (cw * (across ** 2).sum(-1)).sum()))  # a uniform disc's RMS radius is r / sqrt 2
    if hub_mode == "ground":
        ground = float(verts[:, 2].min()) if ground is None else ground
        radius = max(0.5 * (float(corners[:, 2].max()) - ground), 1e-6)
        side = np.sign(hub[1]) if hub[1] else 1.0
        hub = np.array([hub[0], side * float(np.abs(corners[:, 1]).max()), ground + radius])
    return Wheel(name=name, faces=face_ids, hub=hub, axis=axis, radius=radius)


def split_wheels(verts: np.ndarray, faces: np.ndarray, labels: np.ndarray, wheel_class: int,
                 axis_mode: str = "level", hub_mode: str = "ground") -> list[Wheel]:
    """The wheels of a reconstruction (``verts`` [V, 3] car frame, ``labels`` [F] part ids), in
    ``WHEEL_NAMES`` order; wheels with fewer than ``MIN_WHEEL_FACES`` faces are left out."""
    ids = np.nonzero(labels == wheel_class)[0]
    if not len(ids):
        return []
    centroid, _ = _face_stats(verts, faces[ids])
    wheels = []
    for side, sign in (("left", 1.0), ("right", -1.0)):
        on_side = ids[centroid[:, 1] * sign > 0]
        if not len(on_side):
            continue
        x = _face_stats(verts, faces[on_side])[0][:, 0]
        front = _two_means(x)
        for end, members in (("front", on_side[front]), ("rear", on_side[~front])):
            if len(members) >= MIN_WHEEL_FACES:
                wheels.append(fit_wheel(verts, faces, f"wheel_{end}_{side}", members, axis_mode, hub_mode))
    return sorted(wheels, key=lambda w: WHEEL_NAMES.index(w.name))


def _two_means(x: np.ndarray, iterations: int = 20) -> np.ndarray:
    """[n] bool: True for the cluster of larger x (front), by 1-D 2-means started at the extremes."""
    lo, hi = float(x.min()), float(x.max())
    if hi - lo < 1e-9:
        return x >= lo  # one position: call it all front
    for _ in range(iterations):
        upper = x > (lo + hi) / 2
        new_lo, new_hi = float(x[~upper].mean()), float(x[upper].mean())
        if new_lo == lo and new_hi == hi:
            break
        lo, hi = new_lo, new_hi
    return x > (lo + hi) / 2


WHEEL_SEGMENTS = 24
WHEEL_WIDTH = 0.35
"""A fitted wheel's width as a share of its radius (a car tyre's is about 0.6 of the radius; the disc is
drawn narrower so that it stays inside the body's wheel arch)."""


def wheel_disc(wheel: Wheel, segments: int = WHEEL_SEGMENTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A closed cylinder standing in for the wheel: (verts [V, 3] car frame, faces [F, 3], uvs [F, 3, 2]).

    Why not the labelled faces themselves: they are a patch of the body's surface, and turning a patch about
    its axis swings it out of the surface (shards outside, a hole behind). The cylinder's outer cap is centred
    on the hub, it extends ``WHEEL_WIDTH`` x radius inwards, and its caps map onto the wheel texture
    (``wheel_texture``: tyre, rim and spokes, so that turning is visible); its tread samples the tyre ring.
    """
    a = wheel.axis
    u = np.cross(a, [0.0, 0.0, 1.0])
    u = u / np.linalg.norm(u) if np.linalg.norm(u) > 1e-6 else np.array([1.0, 0.0, 0.0])
    v = np.cross(a, u)
    angles = 2 * np.pi * np.arange(segments) / segments
    ring = np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v  # [S, 3]
    outward = 1.0 if wheel.hub[1] >= 0 else -1.0  # the outer cap faces away from the car's middle
    outer = wheel.hub
    inner = wheel.hub - outward * WHEEL_WIDTH * wheel.radius * a
    verts = np.concatenate([outer + wheel.radius * ring, inner + wheel.radius * ring, [outer, inner]])
    S = segments
    faces, uvs = [], []
    cap_uv = 0.5 + 0.5 * np.stack([np.cos(angles), np.sin(angles)], -1)
    tread_uv = np.array([0.5, 0.97])  # the tyre ring of wheel_texture
    for k in range(S):
        j = (k + 1) % S
        # Winding: counter-clockwise seen from outside (the outer cap's normal along +outward * a).
        o = [2 * S, k, j] if outward > 0 else [2 * S, j, k]
        i = [2 * S + 1, S + j, S + k] if outward > 0 else [2 * S + 1, S + k, S + j]
        faces += [o, i]
        uvs += [[[0.5, 0.5], cap_uv[o[1] % S], cap_uv[o[2] % S]], [[0.5, 0.5], cap_uv[i[1] % S], cap_uv[i[2] % S]]]
        quad = [[k, S + k, S + j], [k, S + j, j]] if outward > 0 else [[k, S + j, S + k], [k, j, S + j]]
        faces += quad
        uvs += [[tread_uv] * 3, [tread_uv] * 3]
    return verts, np.asarray(faces, np.int64), np.asarray(uvs, np.float64)


def wheel_texture(size: int = 64, spokes: int = 5) -> np.ndarray:
    """[size, size, 3] uint8: a dark tyre ring, a grey rim with ``spokes`` spokes, a dark hub cap."""
    c = (np.arange(size) + 0.5) / size * 2 - 1
    x, y = np.meshgrid(c, -c)
    r, phi = np.hypot(x, y), np.arctan2(y, x)
    image = np.full((size, size, 3), 35, np.uint8)  # tyre
    rim = r < 0.7
    image[rim] = (70, 70, 75)
    spoke = rim & (np.cos(spokes * phi) > 0.55) & (r > 0.15)
    image[spoke] = (200, 200, 205)
    image[r < 0.15] = (150, 150, 155)
    return image


# --- glTF writing -----------------------------------------------------------------------------------------

_FLOAT, _UINT = 5126, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_REPEAT, _LINEAR_FILTER = 10497, 9729


def _world(points: np.ndarray) -> np.ndarray:
    """Car frame (x forward, y left, z up) -> the y-up world frame (``vehicle_to_world``'s permutation)."""
    return points[..., [1, 2, 0]]


def _quat(axis: np.ndarray, angle: float) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of a rotation by ``angle`` radians about ``axis``."""
    a = axis / np.linalg.norm(axis)
    return np.array([*(a * math.sin(angle / 2)), math.cos(angle / 2)], dtype=np.float32)


class _Builder:
    """Accumulates buffer views and accessors of one binary buffer."""

    def __init__(self) -> None:
        self.blob = bytearray()
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def view(self, data: bytes, target: int | None = None) -> int:
        while len(self.blob) % 4:
            self.blob.append(0)
        view = {"buffer": 0, "byteOffset": len(self.blob), "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        self.blob += data
        self.views.append(view)
        return len(self.views) - 1

    def accessor(self, array: np.ndarray, kind: str, target: int | None = None, bounds: bool = False) -> int:
        component = _UINT if array.dtype == np.uint32 else _FLOAT
        array = np.ascontiguousarray(array, dtype=np.uint32 if component == _UINT else np.float32)
        acc = {"bufferView": self.view(array.tobytes(), target), "componentType": component,
               "count": int(array.shape[0]), "type": kind}
        if bounds:
            flat = array.reshape(array.shape[0], -1)
            acc["min"] = [float(v) for v in flat.min(0)]
            acc["max"] = [float(v) for v in flat.max(0)]
        self.accessors.append(acc)
        return len(self.accessors) - 1


def _primitive(b: _Builder, verts: np.ndarray, faces: np.ndarray, face_uvs: np.ndarray, origin: np.ndarray,
               material: int = 0) -> dict:
    """A triangle primitive of ``faces`` (unshared vertices, world frame, relative to ``origin``)."""
    tri = _world(verts[faces]) - origin  # [n, 3, 3]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal = normal / np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-12)
    positions = tri.reshape(-1, 3)
    normals = np.repeat(normal, 3, axis=0)
    uv = face_uvs.reshape(-1, 2).astype(np.float64)
    texcoord = np.stack([uv[:, 0], 1.0 - uv[:, 1]], -1)  # glTF's t runs down from the image's top row
    n = positions.shape[0]
    return {"attributes": {"POSITION": b.accessor(positions, "VEC3", _ARRAY_BUFFER, bounds=True),
                           "NORMAL": b.accessor(normals, "VEC3", _ARRAY_BUFFER),
                           "TEXCOORD_0": b.accessor(texcoord, "VEC2", _ARRAY_BUFFER)},
            "indices": b.accessor(np.arange(n, dtype=np.uint32), "SCALAR", _ELEMENT_ARRAY_BUFFER, bounds=True),
            "material": material, "mode": 4}


def write_animated_glb(path: str | Path, verts: np.ndarray, faces: np.ndarray, face_uvs: np.ndarray,
                       texture: np.ndarray, labels: np.ndarray, classes: tuple[str, ...] = CARS8,
                       spin_seconds: float = 1.0, steer_seconds: float = 2.0, axis_mode: str = "level") -> list[Wheel]:
    """Write the animated GLB of one reconstruction; returns the wheels it split off.

    Args:
        verts: [V, 3] car frame (x forward, y left, z up). faces: [F, 3]. face_uvs: [F, 3, 2] (v up).
        texture: [H, W, 3] uint8, rows top to bottom. labels: [F] part ids of ``classes`` (per face).
    """
    verts, faces, labels = np.asarray(verts, np.float64), np.asarray(faces, np.int64), np.asarray(labels)
    if labels.shape != (faces.shape[0],):
        raise GanfactoryError(f"labels must be one per face ({faces.shape[0]}), got {labels.shape}")
    wheels = split_wheels(verts, faces, labels, classes.index("wheel"), axis_mode) if "wheel" in classes else []

    b = _Builder()
    meshes: list[dict] = []
    nodes: list[dict] = [{"name": "car", "children": []}]

    def add_node(node: dict, parent: int) -> int:
        nodes.append(node)
        nodes[parent].setdefault("children", []).append(len(nodes) - 1)
        return len(nodes) - 1

    def mesh_node(name: str, part: str, ids: np.ndarray, origin: np.ndarray, parent: int, **extra) -> int:
        meshes.append({"name": name, "primitives": [_primitive(b, verts, faces[ids], face_uvs[ids], origin)]})
        return add_mesh_node(name, part, parent, **extra)

    def add_mesh_node(name: str, part: str, parent: int, **extra) -> int:
        info = {"part": part, "color": list(CLASS_COLORS.get(part, (200, 200, 200))), **extra}
        return add_node({"name": name, "mesh": len(meshes) - 1, "extras": {"ganfactory": info}}, parent)

    body = add_node({"name": "body", "extras": {"ganfactory": {"part": "body", "movable": False}}}, 0)
    for k, name in enumerate(classes):
        ids = np.nonzero(labels == k)[0]
        if k == 0 or not len(ids):
            continue
        # The wheel-labelled faces stay in the body (the surface a fitted wheel sits in; "body_wheel").
        mesh_node(f"body_{name}", name, ids, np.zeros(3), body)

    spin_targets, steer_targets = [], []
    for w in wheels:
        hub = _world(w.hub)
        info = {"hub": [float(v) for v in hub], "axis": [float(v) for v in _world(w.axis)],
                "radius": w.radius, "faces_labelled": int(len(w.faces)), "movable": True}
        dv, df, duv = wheel_disc(w)
        meshes.append({"name": w.name, "primitives": [_primitive(b, dv, df, duv, hub, material=1)]})
        if "front" in w.name:
            steer = add_node({"name": w.name.replace("wheel", "steer"), "translation": [float(v) for v in hub],
                              "extras": {"ganfactory": {"part": "steer", "movable": True}}}, 0)
            node = add_mesh_node(w.name, "wheel", steer, **info)
            steer_targets.append(steer)
        else:
            node = add_mesh_node(w.name, "wheel", 0, **info)
            nodes[node]["translation"] = [float(v) for v in hub]
        spin_targets.append((node, _world(w.axis)))

    animations = []
    if spin_targets:
        keys = 9
        times = np.linspace(0.0, spin_seconds, keys, dtype=np.float32)
        t_acc = b.accessor(times, "SCALAR", bounds=True)
        channels, samplers = [], []
        for node, axis in spin_targets:
            q = np.stack([_quat(axis, 2 * math.pi * k / (keys - 1)) for k in range(keys)])
            samplers.append({"input": t_acc, "output": b.accessor(q, "VEC4"), "interpolation": "LINEAR"})
            channels.append({"sampler": len(samplers) - 1, "target": {"node": node, "path": "rotation"}})
        animations.append({"name": "spin", "channels": channels, "samplers": samplers})
    if steer_targets:
        angles = [0.0, STEER_DEG, 0.0, -STEER_DEG, 0.0]
        times = np.linspace(0.0, steer_seconds, len(angles), dtype=np.float32)
        t_acc = b.accessor(times, "SCALAR", bounds=True)
        q = np.stack([_quat(np.array([0.0, 1.0, 0.0]), math.radians(a)) for a in angles])
        q_acc = b.accessor(q, "VEC4")
        samplers = [{"input": t_acc, "output": q_acc, "interpolation": "LINEAR"}]
        channels = [{"sampler": 0, "target": {"node": n, "path": "rotation"}} for n in steer_targets]
        animations.append({"name": "steer", "channels": channels, "samplers": samplers})

    image_view = b.view(_png(texture))
    wheel_view = b.view(_png(wheel_texture()))
    gltf = {
        "asset": {"version": "2.0", "generator": "ganfactory.inverse.animate"},
        "extensionsUsed": ["KHR_materials_unlit"],
        "scene": 0,
        "scenes": [{"name": "reconstruction", "nodes": [0], "extras": {"ganfactory": {
            "frame": "y up: x = the car's left, y = up, z = the car's front (vehicle_to_world of x forward, "
                     "y left, z up)",
            "classes": list(classes), "wheels": [w.name for w in wheels],
            "animations": {"spin": "wheels turn about their axes, one turn per second",
                           "steer": f"front wheels steer +-{STEER_DEG:g} degrees about the up axis"}}}}],
        "nodes": nodes,
        "meshes": meshes,
        "materials": [{"name": name, "doubleSided": False, "extensions": {"KHR_materials_unlit": {}},
                       "pbrMetallicRoughness": {"baseColorTexture": {"index": k}, "metallicFactor": 0.0,
                                                "roughnessFactor": 1.0}}
                      for k, name in enumerate(("texture", "wheel"))],
        "textures": [{"sampler": 0, "source": 0}, {"sampler": 0, "source": 1}],
        "samplers": [{"magFilter": _LINEAR_FILTER, "minFilter": _LINEAR_FILTER, "wrapS": _REPEAT, "wrapT": _REPEAT}],
        "images": [{"bufferView": image_view, "mimeType": "image/png"},
                   {"bufferView": wheel_view, "mimeType": "image/png"}],
        "animations": animations,
        "accessors": b.accessors,
        "bufferViews": b.views,
        "buffers": [{"byteLength": len(b.blob)}],
    }
    if not animations:
        del gltf["animations"]
    check_animations(gltf)
    with atomic_path(Path(path)) as tmp:
        Path(tmp).write_bytes(_glb(gltf, bytes(b.blob)))
    return wheels


def _png(texture: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.asarray(texture, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _glb(gltf: dict, blob: bytes) -> bytes:
    """The GLB container: 12-byte header, JSON chunk (space padded), BIN chunk (zero padded)."""
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    blob += b"\0" * (-len(blob) % 4)
    length = 12 + 8 + len(text) + 8 + len(blob)
    return (struct.pack("<4sII", b"glTF", 2, length) + struct.pack("<I4s", len(text), b"JSON") + text
            + struct.pack("<I4s", len(blob), b"BIN\0") + blob)


def read_glb(path: str | Path) -> tuple[dict, bytes]:
    """(the JSON, the BIN chunk) of a GLB file."""
    data = Path(path).read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    if magic != b"glTF" or version != 2 or length != len(data):
        raise GanfactoryError(f"{path}: not a glTF 2.0 binary")
    n, kind = struct.unpack_from("<I4s", data, 12)
    if kind != b"JSON":
        raise GanfactoryError(f"{path}: the first chunk is not JSON")
    gltf = json.loads(data[20:20 + n])
    blob = b""
    if 20 + n < len(data):
        m, kind = struct.unpack_from("<I4s", data, 20 + n)
        blob = data[28 + n:28 + n + m] if kind == b"BIN\0" else b""
    return gltf, blob


_PATH_TYPES = {"translation": "VEC3", "rotation": "VEC4", "scale": "VEC3", "weights": "SCALAR"}


def check_animations(gltf: dict) -> None:
    """Raise GanfactoryError unless every animation follows glTF 2.0's schema rules for channels and samplers:
    a channel names an existing sampler of its animation and an existing node, with a known target path and
    no two channels on the same (node, path); a sampler's input is a float SCALAR accessor with min and max
    and increasing times, its output an accessor of the path's type with as many elements (3x for
    CUBICSPLINE), and its interpolation LINEAR, STEP or CUBICSPLINE."""
    accessors, nodes = gltf.get("accessors", []), gltf.get("nodes", [])

    def fail(message: str) -> None:
        raise GanfactoryError(f"invalid glTF animation: {message}")

    for a, anim in enumerate(gltf.get("animations", [])):
        samplers, channels = anim.get("samplers", []), anim.get("channels", [])
        if not channels or not samplers:
            fail(f"animation {a} needs at least one channel and one sampler")
        seen = set()
        for c, ch in enumerate(channels):
            s, target = ch.get("sampler"), ch.get("target", {})
            if not isinstance(s, int) or not 0 <= s < len(samplers):
                fail(f"animation {a} channel {c}: sampler {s} does not exist")
            node, path = target.get("node"), target.get("path")
            if not isinstance(node, int) or not 0 <= node < len(nodes):
                fail(f"animation {a} channel {c}: node {node} does not exist")
            if path not in _PATH_TYPES:
                fail(f"animation {a} channel {c}: unknown target path {path!r}")
            if (node, path) in seen:
                fail(f"animation {a}: two channels target node {node} {path}")
            seen.add((node, path))
            sampler = samplers[s]
            interp = sampler.get("interpolation", "LINEAR")
            if interp not in ("LINEAR", "STEP", "CUBICSPLINE"):
                fail(f"animation {a} sampler {s}: interpolation {interp!r}")
            i, o = sampler.get("input"), sampler.get("output")
            if not all(isinstance(k, int) and 0 <= k < len(accessors) for k in (i, o)):
                fail(f"animation {a} sampler {s}: input or output accessor does not exist")
            ai, ao = accessors[i], accessors[o]
            if ai["type"] != "SCALAR" or ai["componentType"] != _FLOAT or "min" not in ai or "max" not in ai:
                fail(f"animation {a} sampler {s}: input must be a float SCALAR accessor with min and max")
            if ao["type"] != _PATH_TYPES[path]:
                fail(f"animation {a} sampler {s}: output type {ao['type']} for path {path}")
            need = ai["count"] * (3 if interp == "CUBICSPLINE" else 1)
            if path != "weights" and ao["count"] != need:
                fail(f"animation {a} sampler {s}: {ao['count']} outputs for {ai['count']} key times")
            if ai["min"][0] < 0 or ai["max"][0] < ai["min"][0]:
                fail(f"animation {a} sampler {s}: key times must be >= 0 and increasing")
