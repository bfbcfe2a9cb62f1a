"""TORCS car assembly on the real data (skipped with a reason when torcs-data is not installed)."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ganfactory.datasets.car_assembly import (
    CAR_IDS,
    KEYPOINT_NAMES,
    NAMED_CAR_IDS,
    assemble_car,
    procedural_wheel,
    read_car_spec,
    read_torcs_params,
    save_car_mesh,
)
from ganfactory.datasets.parts import CARS13
from ganfactory.datasets.torcs import DEFAULT_TORCS_ROOT, TorcsNotFound, find_torcs_root
from ganfactory.render.io import load_mesh, read_ac3d

HAVE_TORCS = (DEFAULT_TORCS_ROOT / "cars").is_dir()
needs_torcs = pytest.mark.skipif(
    not HAVE_TORCS, reason="TORCS data absent: run scripts/install-torcs-data.sh (apt-get install torcs-data)")


@pytest.fixture(scope="module")
def cars():
    """All 17 cars, assembled once for the module (about 2 s)."""
    return {car_id: assemble_car(car_id) for car_id in CAR_IDS}


def cls(name: str) -> int:
    return CARS13.index(name)


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(TorcsNotFound) as error:
        find_torcs_root(tmp_path / "nowhere")
    message = str(error.value)
    assert "apt-get install torcs-data" in message and "--torcs-root" in message and "\n" not in message
    (tmp_path / "cars").mkdir()
    assert find_torcs_root(tmp_path) == tmp_path
    assert find_torcs_root(tmp_path / "cars") == tmp_path


def test_params_convert_length_units(tmp_path):
    (tmp_path / "x.xml").write_text(
        '<?xml version="1.0"?><params name="x"><section name="A"><section name="B">'
        '<attnum name="d" unit="in" val="18"/><attnum name="w" unit="mm" val="255"/>'
        '<attnum name="c" unit="cm" val="3"/><attnum name="m" val="1.5"/>'
        '<attnum name="k" unit="lbs/in" val="7"/><attstr name="s" val="trb1-5"/></section></section></params>')
    p = read_torcs_params(tmp_path / "x.xml")
    assert p["A/B/d"] == pytest.approx(0.4572) and p["A/B/w"] == pytest.approx(0.255)
    assert p["A/B/c"] == pytest.approx(0.03) and p["A/B/m"] == 1.5 and p["A/B/k"] == 7 and p["A/B/s"] == "trb1-5"


def test_procedural_wheel_faces_outward():
    w = procedural_wheel(radius=0.33, rim_radius=0.23, width=0.25, segments=16)
    v, f = w["verts"], w["faces"]
    normals = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    assert (np.einsum("ij,ij->i", normals, v[f].mean(axis=1)) > 0).all()
    assert len(f) == 16 * 8 and set(w["face_class"][w["textured"]]) == {cls("rim")}
    assert np.abs(v[:, 1]).max() == pytest.approx(0.125)
    assert np.linalg.norm(v[:, [0, 2]], axis=1).max() == pytest.approx(0.33)


@needs_torcs
def test_xml_of_a_real_car():
    spec = read_car_spec("car1-trb1")
    fl, fr, rl, rr = spec.wheels
    assert (fl.x, rl.x) == (1.22, -1.42) and (fl.y, fr.y, rl.y, rr.y) == (0.84, -0.84, 0.80, -0.80)
    assert fr.rim_radius == pytest.approx(18 * 0.0254 / 2)
    assert fr.radius == pytest.approx(18 * 0.0254 / 2 + 0.255 * 0.40)
    assert rr.radius == pytest.approx(18 * 0.0254 / 2 + 0.330 * 0.30) and rr.width == pytest.approx(0.330)
    assert (fr.ride_height, fr.bellcrank, rr.ride_height) == (pytest.approx(0.090), 1.1, pytest.approx(0.105))
    assert fr.hub_z == pytest.approx(fr.radius - 0.090 / 1.1)
    assert fl.hub_outer == pytest.approx((1.22, 0.84 + 0.255 / 2, fl.hub_z))
    assert fr.hub_outer == pytest.approx((1.22, -0.84 - 0.255 / 2, fr.hub_z))
    assert spec.wheel_set == "trb1-5" and spec.body_length == pytest.approx(4.52)
    assert len(spec.lights) == 12 and spec.lights[0].kind == "brake2"
    assert spec.lights[0].position == pytest.approx((-2.18, 0.57, 0.61))
    p406 = read_car_spec("p406")
    assert p406.wheel_set is None and p406.wheel_texture == "tex-wheel.rgb"


@needs_torcs
def test_every_car_assembles_with_four_symmetric_wheels(cars):
    assert sorted(p.name for p in (DEFAULT_TORCS_ROOT / "cars").iterdir()) == sorted(CAR_IDS)
    for car_id, car in cars.items():
        spec, mesh = car.spec, car.mesh
        body_faces = read_ac3d(DEFAULT_TORCS_ROOT / "cars" / car_id / f"{car_id}.acc", load_textures=False)
        wheel_faces = mesh.num_faces - body_faces.mesh.num_faces
        assert wheel_faces > 0 and wheel_faces % 4 == 0, car_id
        fl, fr, rl, rr = spec.wheels
        assert fl.y == pytest.approx(-fr.y) and rl.y == pytest.approx(-rr.y), car_id
        assert fl.x == fr.x > 0 > rl.x == rr.x, car_id
        for wheel in spec.wheels:
            assert 0.25 < wheel.radius < 0.40 and 0.0 < wheel.hub_z < 0.35, (car_id, wheel)
        # The tyre faces of each wheel lie on that wheel: within its radius of its hub.
        verts = mesh.verts[0]
        for k, wheel in enumerate(spec.wheels):
            objects = [i for i, n in enumerate(car.object_names) if n.startswith(wheel.position + "/")]
            faces = torch.isin(car.face_object, torch.tensor(objects))
            assert int(faces.sum()) == wheel_faces // 4, (car_id, wheel.position)
            corners = verts[mesh.faces[faces]].reshape(-1, 3).double()
            hub = torch.tensor([wheel.x, wheel.y, wheel.hub_z], dtype=torch.float64)
            radial = (corners - hub)[:, [0, 2]].norm(dim=1)
            assert radial.max() <= wheel.radius + 1e-4 and (corners[:, 1] - wheel.y).abs().max() <= \
                wheel.width / 2 + 1e-4, (car_id, wheel.position)
            assert torch.allclose(car.keypoints[k].double(), torch.tensor(wheel.hub_outer, dtype=torch.float64))
            assert car.keypoint_sources[k] == "wheel"
        # Bodies stand on their wheels: the ground is below the body, within 30 cm.
        assert -0.31 < spec.ground_z <= 0.0, car_id


@needs_torcs
def test_right_wheels_are_mirrored_and_still_face_outward(cars):
    for car_id in ("car1-trb1", "car1-stock1", "car1-ow1", "p406"):
        car = cars[car_id]
        mesh = car.mesh
        tyre = mesh.face_parts == cls("tyre")
        corners = mesh.face_verts()[0][tyre].double()
        normals = torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        centres = corners.mean(dim=1)
        for wheel in car.spec.wheels:
            on_wheel = ((centres[:, 0] - wheel.x).abs() < wheel.radius + 1e-3) & \
                       ((centres[:, 1] - wheel.y).abs() < wheel.width / 2 + 1e-3)
            away = centres[on_wheel] - torch.tensor([wheel.x, wheel.y, wheel.hub_z], dtype=torch.float64)
            away[:, 1] = 0        # the tread faces away from the axle
            tread = (away.norm(dim=1) > 0.98 * wheel.radius)
            outward = ((normals[on_wheel][tread] * away[tread]).sum(dim=1) > 0).double().mean()
            assert outward > 0.9, (car_id, wheel.position, float(outward))
        # The right front wheel is the left one mirrored in y (same dimensions there).
        left = torch.isin(car.face_object, torch.tensor(
            [i for i, n in enumerate(car.object_names) if n.startswith("front_left/")]))
        right = torch.isin(car.face_object, torch.tensor(
            [i for i, n in enumerate(car.object_names) if n.startswith("front_right/")]))
        lv, rv = mesh.face_verts()[0][left], mesh.face_verts()[0][right]
        mirrored = lv[:, [0, 2, 1]] * torch.tensor([1.0, -1.0, 1.0])   # flipped winding, mirrored y
        assert torch.allclose(mirrored, rv, atol=1e-5), car_id


@needs_torcs
def test_named_cars_have_window_wheel_and_light_parts(cars):
    has = {car_id: set(car.mesh.face_parts.unique().tolist()) for car_id, car in cars.items()}
    for car_id in NAMED_CAR_IDS:
        assert {cls("window"), cls("tyre"), cls("rim"), cls("body"), cls("interior")} <= has[car_id], car_id
        assert cars[car_id].labels_trusted
    with_lights = {c for c in CAR_IDS if {cls("headlight"), cls("taillight")} <= has[c]}
    # car1-stock2 is the one named car without lamp objects (nor XML lights); shells have none.
    assert with_lights == set(NAMED_CAR_IDS) - {"car1-stock2"}
    assert {c for c in CAR_IDS if cls("mirror") in has[c]} == set(NAMED_CAR_IDS) - {"car1-stock1", "car1-stock2"}
    assert {c for c in CAR_IDS if cls("plate") in has[c]} == {"car1-trb1", "car1-trb3", "car4-trb1",
                                                              "car5-trb1", "car8-trb1"}
    assert len({c for c in CAR_IDS if cls("wing") in has[c]}) == 12
    for car_id in set(CAR_IDS) - set(NAMED_CAR_IDS):
        assert not cars[car_id].labels_trusted
        assert has[car_id] <= {cls("body"), cls("wing"), cls("tyre"), cls("rim")}, car_id


@needs_torcs
def test_glass_is_translucent_and_paint_is_opaque(cars):
    for car_id in NAMED_CAR_IDS:
        mesh = cars[car_id].mesh
        window = mesh.face_parts == cls("window")
        assert 0.15 < float(mesh.face_alpha[window].mean()) < 0.75, car_id
        assert (mesh.face_alpha[mesh.face_parts == cls("body")] == 1).all(), car_id


@needs_torcs
def test_lamp_keypoints_are_paired_and_at_the_ends(cars):
    for car_id, car in cars.items():
        k = dict(zip(KEYPOINT_NAMES, car.keypoints.tolist(), strict=True))
        s = dict(zip(KEYPOINT_NAMES, car.keypoint_sources, strict=True))
        for lamp in ("headlight", "taillight"):
            left, right = k[f"{lamp}_left"], k[f"{lamp}_right"]
            if s[f"{lamp}_left"] == "none":
                assert s[f"{lamp}_right"] == "none" and math.isnan(left[0]), car_id
                continue
            assert left[1] > 0.3 and right[1] < -0.3, (car_id, lamp)
            # Mirror images up to the face a lamp point snaps to (face centroids are a few cm apart).
            assert abs(left[1] + right[1]) < 0.08 and abs(left[0] - right[0]) < 0.08, (car_id, lamp)
            assert (left[0] > 1.4) if lamp == "headlight" else (left[0] < -1.7), (car_id, lamp)
            assert 0.2 < left[2] < 0.9, (car_id, lamp)
        expected = "parts" if car_id in set(NAMED_CAR_IDS) - {"car1-stock2"} else None
        if expected:
            assert car.keypoint_sources[4:] == ("parts",) * 4, car_id
    assert cars["p406"].keypoint_sources[4:] == ("none", "none", "xml", "xml")
    assert cars["car1-stock2"].keypoint_sources[4:] == ("none",) * 4
    assert int(cars["car1-trb1"].keypoints_available.sum()) == 8


@needs_torcs
def test_ground_truth_mesh_exports_with_parts(cars, tmp_path):
    car = cars["car2-trb1"]
    save_car_mesh(car, tmp_path / "car2-trb1.glb")
    back = load_mesh(tmp_path / "car2-trb1.glb")
    assert back.part_names == CARS13 and back.num_faces == car.mesh.num_faces
    # GLB groups faces by part and material: compare the faces as sets of (part, corners).
    def rows(mesh):
        table = torch.cat([mesh.face_parts[:, None].double(),
                           mesh.face_verts()[0].reshape(-1, 9).double()], dim=1).numpy()
        return table[np.lexsort(table.T[::-1])]

    assert np.allclose(rows(back), rows(car.mesh), atol=1e-5)
    assert Path(tmp_path / "car2-trb1.glb").stat().st_size > 10_000
