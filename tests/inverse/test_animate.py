"""Movable parts (``inverse.animate``): wheel split and fit on a labelled car-shaped template, and the animated GLB
read back by our reader, by the animation checks and by trimesh."""

import copy
import math

import numpy as np
import pytest
import trimesh

from ganfactory.datasets.parts import CARS8
from ganfactory.errors import GanfactoryError
from ganfactory.inverse.animate import (
    WHEEL_NAMES,
    check_animations,
    read_glb,
    split_wheels,
    wheel_disc,
    write_animated_glb,
)
from ganfactory.inverse.network import SphereTemplate

WHEEL = CARS8.index("wheel")


@pytest.fixture(scope="module")
def car():
    return ellipsoid_car()


def ellipsoid_car():
    """The inverse network's template as a car-sized ellipsoid, with a window band on top and four wheel patches
    at the lower corners (what the part head predicts, idealised): (verts, faces, face_uvs, labels)."""
    t = SphereTemplate(3)
    verts = t.verts.double().numpy() * np.array([2.3, 1.0, 0.68]) + np.array([0.0, 0.0, 0.58])
    faces = t.faces.numpy()
    c = verts[faces].mean(1)
    labels = np.full(len(faces), CARS8.index("body"))
    labels[c[:, 2] > 0.9] = CARS8.index("window")
    labels[(c[:, 2] < 0.45) & (np.abs(np.abs(c[:, 0]) - 1.4) < 0.35) & (np.abs(c[:, 1]) > 0.5)] = WHEEL
    return verts, faces, t.face_uvs.numpy(), labels


def test_four_wheels_named_by_position_with_mirrored_fits(car):
    verts, faces, _, labels = car
    wheels = split_wheels(verts, faces, labels, WHEEL, "spread", "centroid")
    assert [w.name for w in wheels] == list(WHEEL_NAMES)
    assert sum(len(w.faces) for w in wheels) == (labels == WHEEL).sum()
    fl, fr, rl, rr = wheels
    assert fl.hub[0] > 1 and fl.hub[1] > 0.5 and rr.hub[0] < -1 and rr.hub[1] < -0.5
    flip = np.array([1.0, -1.0, 1.0])
    assert np.allclose(fr.hub, fl.hub * flip, atol=1e-9)  # the template is mirror-symmetric
    assert np.allclose(fr.axis, -(fl.axis * flip), atol=1e-9)  # mirrored, then turned to point to +y
    assert all(w.axis[1] > 0 for w in wheels)
    # On the ellipsoid's rounded lower edge the patch is tilted: its least-spread direction points down and out.
    assert fl.axis[2] < -0.3
    # The default hub: the wheel stands on the ground (the lowest vertex) and reaches the top of its faces.
    ground = verts[:, 2].min()
    for w in split_wheels(verts, faces, labels, WHEEL):
        top = verts[faces[w.faces]][..., 2].max()
        assert w.hub[2] - w.radius == pytest.approx(ground) and w.hub[2] + w.radius == pytest.approx(top)
        assert abs(w.hub[1]) == pytest.approx(np.abs(verts[faces[w.faces]][..., 1]).max())  # the outer face
    level = split_wheels(verts, faces, labels, WHEEL, "level")
    assert all(abs(w.axis[2]) < 1e-12 and abs(np.linalg.norm(w.axis) - 1) < 1e-12 for w in level)
    sym = split_wheels(verts, faces, labels, WHEEL, "symmetry")
    assert all(np.allclose(w.axis, [0, 1, 0]) for w in sym)


def test_small_clusters_stay_in_the_body(car):
    verts, faces, _, _ = car
    labels = np.ones(len(faces), int)
    c = verts[faces].mean(1)
    labels[np.argsort(-c[:, 0] - c[:, 1])[:2]] = WHEEL  # two faces only: not a wheel
    assert split_wheels(verts, faces, labels, WHEEL) == []


def test_glb_round_trip(car, tmp_path):
    verts, faces, uvs, labels = car
    texture = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    path = tmp_path / "car.glb"
    wheels = write_animated_glb(path, verts, faces, uvs, texture, labels)
    gltf, blob = read_glb(path)
    check_animations(gltf)
    names = [n["name"] for n in gltf["nodes"]]
    assert names[0] == "car" and set(WHEEL_NAMES) <= set(names)
    assert {"body_body", "body_window", "body_wheel"} <= set(names)
    assert {"steer_front_left", "steer_front_right"} <= set(names)
    assert [a["name"] for a in gltf["animations"]] == ["spin", "steer"]
    spin = gltf["animations"][0]
    assert sorted(names[c["target"]["node"]] for c in spin["channels"]) == sorted(WHEEL_NAMES)
    # The spin keys of a wheel are a full turn about its (y-up frame) axis: the last key is the identity again.
    acc = gltf["accessors"][spin["samplers"][0]["output"]]
    view = gltf["bufferViews"][acc["bufferView"]]
    q = np.frombuffer(blob, np.float32, acc["count"] * 4, view["byteOffset"]).reshape(-1, 4)
    axis = np.array(gltf["nodes"][spin["channels"][0]["target"]["node"]]["extras"]["ganfactory"]["axis"])
    assert np.allclose(q[2, :3], axis * math.sin(math.pi / 4), atol=1e-6)  # a quarter turn at key 2 of 8
    assert np.allclose(np.abs(q[-1]), [0, 0, 0, 1], atol=1e-6)

    scene = trimesh.load(path)
    assert len(scene.geometry) == 3 + len(wheels)  # body, window, the wheel patches, four fitted wheels
    # y up: the scene's bounds are the car's bounds permuted (x left, y up, z forward), wheels in place.
    lo, hi = verts.min(0), verts.max(0)
    assert np.allclose(scene.bounds, [[lo[1], lo[2], lo[0]], [hi[1], hi[2], hi[0]]], atol=1e-5)
    body_faces = sum(len(g.faces) for k, g in scene.geometry.items() if k.startswith("body_"))
    assert body_faces == len(faces)  # the body is whole: the labelled wheel faces stay in it
    for w in wheels:  # each fitted wheel sits at its hub, its outer face there, its radius across the axis
        hub, axis = _world(w.hub), _world(w.axis)
        pts = scene.geometry[w.name].vertices + hub  # the wheel nodes are translated to their hubs
        off = pts - hub
        radial = np.linalg.norm(off - (off @ axis)[:, None] * axis, axis=1)
        assert radial.max() == pytest.approx(w.radius, rel=1e-5)
        assert np.all(np.sign(w.hub[1]) * (off @ axis) < 1e-6)  # inwards of the hub


def _world(p):
    return np.asarray(p)[..., [1, 2, 0]]


def test_wheel_disc_is_closed_and_faces_out(car):
    verts, faces, _, labels = car
    for w in split_wheels(verts, faces, labels, WHEEL):
        v, f, uv = wheel_disc(w)
        tri = v[f]
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        centre = v[-2:].mean(0)
        assert np.all((normal * (tri.mean(1) - centre)).sum(-1) > 0)  # convex and wound outwards
        edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
        _, counts = np.unique(edges, axis=0, return_counts=True)
        assert np.all(counts == 2)  # closed: every edge shared by two faces
        assert uv.shape == (len(f), 3, 2) and uv.min() >= 0 and uv.max() <= 1


def test_animation_checks_reject_broken_channels(car, tmp_path):
    verts, faces, uvs, labels = car
    path = tmp_path / "car.glb"
    write_animated_glb(path, verts, faces, uvs, np.zeros((4, 4, 3), np.uint8), labels)
    gltf, _ = read_glb(path)
    breakers = [
        lambda g: g["animations"][0]["channels"][0]["target"].update(node=len(g["nodes"])),
        lambda g: g["animations"][0]["channels"][0].update(sampler=99),
        lambda g: g["animations"][0]["channels"][0]["target"].update(path="colour"),
        lambda g: g["animations"][0]["channels"].append(copy.deepcopy(g["animations"][0]["channels"][0])),
        lambda g: g["animations"][0]["samplers"][0].update(interpolation="SMOOTH"),
        lambda g: g["accessors"][g["animations"][0]["samplers"][0]["output"]].update(type="VEC3"),
        lambda g: g["accessors"][g["animations"][0]["samplers"][0]["output"]].update(count=3),
        lambda g: g["accessors"][g["animations"][0]["samplers"][0]["input"]].pop("min"),
    ]
    for k, brk in enumerate(breakers):
        broken = copy.deepcopy(gltf)
        brk(broken)
        with pytest.raises(GanfactoryError, match="invalid glTF animation"):
            check_animations(broken)
            pytest.fail(f"breaker {k} was not caught")


def test_labels_must_be_one_per_face(car, tmp_path):
    verts, faces, uvs, labels = car
    with pytest.raises(GanfactoryError, match="one per face"):
        write_animated_glb(tmp_path / "x.glb", verts, faces, uvs, np.zeros((4, 4, 3), np.uint8), labels[:-1])
