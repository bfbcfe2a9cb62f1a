"""AC3D reader: hand-written files with known triangles, and one real TORCS car."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganfactory.render import Camera, RasterSettings, Renderer
from ganfactory.render.io import TextureWarning, clean_ac3d_name, load_mesh, load_texture, parse_ac3d, read_ac3d

TORCS_CARS = Path("/usr/share/games/torcs/cars")

MATERIALS = (
    'MATERIAL "red" rgb 1 0 0  amb 0.2 0.2 0.2  emis 0 0 0  spec 0.5 0.5 0.5  shi 10  trans 0\n'
    'MATERIAL "glass" rgb 0 0 1  amb 0.2 0.2 0.2  emis 0 0 0  spec 0.5 0.5 0.5  shi 10  trans 0.75\n'
)

STRIP = "AC3Db\n" + MATERIALS + """OBJECT world
kids 1
OBJECT poly
name "STRIP_s_3"
numvert 5
0 0 0
1 0 0
0 1 0
1 1 0
2 2 0
numsurf 1
SURF 0x14
mat 1
refs 5
0 0 0
1 1 0
2 0 1
3 1 1
4 0.5 0.5
kids 0
"""


def face_normals(mesh) -> torch.Tensor:
    fv = mesh.face_verts()[0]
    return torch.linalg.cross(fv[:, 1] - fv[:, 0], fv[:, 2] - fv[:, 0])


def test_strip_alternates_winding_so_all_triangles_face_the_same_way():
    model = parse_ac3d(STRIP)
    mesh = model.mesh
    # Strip triangle k: (k, k+1, k+2) for even k, (k+1, k, k+2) for odd k.
    assert mesh.faces.tolist() == [[0, 1, 2], [2, 1, 3], [2, 3, 4]]
    assert torch.equal(mesh.verts[0], torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [2, 2, 0.0]]))
    normals = face_normals(mesh)
    assert (normals[:, 2] > 0).all() and (normals[:, :2] == 0).all()
    assert mesh.face_uvs[1].tolist() == [[0, 1], [1, 0], [1, 1]]
    # Material 1: blue, trans 0.75 -> alpha 0.25; not two-sided (0x14 = strip + smooth).
    assert mesh.face_colors.tolist() == [[0, 0, 1]] * 3
    assert torch.allclose(mesh.face_alpha, torch.full((3,), 0.25))
    assert not mesh.face_two_sided.any()
    assert model.face_material.tolist() == [1, 1, 1]
    assert [o.name for o in model.objects] == ["", "STRIP_s_3"]
    assert mesh.part_names == ("", "STRIP")
    assert mesh.face_parts.tolist() == [1, 1, 1]
    assert (model.objects[1].face_start, model.objects[1].face_stop) == (0, 3)
    assert model.objects[1].parent == 0 and model.objects[0].parent == -1


def test_z_up_maps_ac3d_y_up_to_torcs_frame_and_keeps_facing():
    mesh = parse_ac3d(STRIP, z_up=True).mesh
    # (x, y, z) -> (x, -z, y): vertex (1, 1, 0) -> (1, 0, 1); the +z facing becomes -y.
    assert mesh.verts[0, 3].tolist() == [1, 0, 1]
    normals = face_normals(mesh)
    assert (normals[:, 1] < 0).all() and (normals[:, [0, 2]].abs() < 1e-6).all()


FAN = "AC3Db\n" + MATERIALS + """OBJECT world
kids 1
OBJECT poly
name "PENTAGON"
numvert 6
0 0 0
2 0 0
3 1 0
1 3 0
-1 1 0
9 9 9
numsurf 3
SURF 0x20
mat 0
refs 5
0 0 0
1 1 0
2 1 0.5
3 0.5 1
4 0 0.5
SURF 0x2
mat 0
refs 2
0 0 0
5 0 0
SURF 0x34
mat 0
refs 5
0 0 0
1 0 0
1 0 0
2 0 0
3 0 0
kids 0
"""


def test_polygon_is_a_fan_lines_are_skipped_and_two_sided_flag_is_kept():
    mesh = parse_ac3d(FAN).mesh
    # Fan (0, k, k+1); the line surface adds nothing; the strip 0,1,1,2,3 keeps only the
    # non-degenerate triangle k=2: (1, 2, 3) (k even), its neighbours repeat vertex 1.
    assert mesh.faces.tolist() == [[0, 1, 2], [0, 2, 3], [0, 3, 4], [1, 2, 3]]
    assert mesh.face_two_sided.tolist() == [True, True, True, True]
    assert (face_normals(mesh)[:, 2] > 0).all()
    assert mesh.face_uvs[2].tolist() == [[0, 0], [0.5, 1], [0, 0.5]]
    assert mesh.vert_normals is None       # .ac vertices carry no normals


NESTED = "AC3Db\n" + MATERIALS + """OBJECT world
kids 2
OBJECT group
name "CAR"
loc 10 0 0
rot 0 -1 0  1 0 0  0 0 1
kids 1
OBJECT poly
name "WHEEL_s_12"
loc 0 1 0
numvert 3
1 0 0 1 0 0
1 1 0 1 0 0
1 0 1 1 0 0
numsurf 1
SURF 0x10
mat 0
refs 3
0 0 0
1 0 1
2 1 0
kids 0
OBJECT poly
name "GROUND"
numvert 3
0 0 0 0 1 0
0 0 -1 0 1 0
1 0 0 0 1 0
numsurf 1
SURF 0x00
refs 3
0 0 0
1 0 0
2 0 0
kids 0
"""


def test_nested_kids_compose_loc_and_rot_with_their_parents():
    model = parse_ac3d(NESTED)
    mesh = model.mesh
    # WHEEL vertex (1, 0, 0): + its loc -> (1, 1, 0) in CAR; R (90 deg about z) -> (-1, 1, 0);
    # + CAR loc -> (9, 1, 0).
    expected = torch.tensor([[9, 1, 0], [8, 1, 0], [9, 1, 1], [0, 0, 0], [0, 0, -1], [1, 0, 0.0]])
    assert torch.allclose(mesh.verts[0], expected)
    # The .acc normal (1, 0, 0) turns with the object: R (1, 0, 0) = (0, 1, 0).
    assert torch.allclose(mesh.vert_normals[0, 0], torch.tensor([0.0, 1.0, 0.0]))
    assert [o.name for o in model.objects] == ["", "CAR", "WHEEL_s_12", "GROUND"]
    assert [o.parent for o in model.objects] == [-1, 0, 1, 0]
    assert mesh.part_names == ("", "CAR", "WHEEL", "GROUND")
    assert mesh.face_parts.tolist() == [2, 3]
    assert [(o.face_start, o.face_stop) for o in model.objects] == [(0, 0), (0, 0), (0, 1), (1, 2)]
    # The object's own origin: R (0, 1, 0) + (10, 0, 0).
    assert np.allclose(np.array(model.objects[2].world_from_object)[:3, 3], [9, 0, 0])


def test_texture_is_found_beside_the_file_case_insensitively_and_read_as_sgi(tmp_path):
    rgba = np.random.default_rng(0).integers(0, 256, size=(8, 16, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "skin.rgb", format="SGI")
    textures = 'texture "SKIN.RGB" base\ntexture "x.rgb" tiled'
    text = STRIP.replace('name "STRIP_s_3"', 'name "STRIP_s_3"\n' + textures)
    (tmp_path / "car.acc").write_text(text)
    model = read_ac3d(tmp_path / "car.acc")
    assert [p.name for p in model.texture_paths] == ["skin.rgb"]
    assert model.mesh.face_texture.tolist() == [0, 0, 0]
    texture = model.mesh.textures[0]
    assert texture.shape == (1, 4, 8, 16)
    assert torch.equal((texture[0].permute(1, 2, 0) * 255).round().to(torch.uint8), torch.from_numpy(rgba))
    assert load_mesh(tmp_path / "car.acc").num_faces == 3


def quad_object(name: str, x0: int) -> str:
    """A unit-wide quad from x0 to x0 + 1 facing +z, naming the texture ``{texture}``, UVs over [0, 1]."""
    return f"""OBJECT poly
name "{name}"
texture "{{texture}}"
numvert 4
{x0} -1 0
{x0 + 1} -1 0
{x0 + 1} 1 0
{x0} 1 0
numsurf 1
SURF 0x10
mat 0
refs 4
0 0 0
1 1 0
2 1 1
3 0 1
kids 0
"""


QUAD = "AC3Db\n" + MATERIALS + "OBJECT world\nkids 2\n" + quad_object("LEFT", -1) + quad_object("RIGHT", 0)
"""Two unit quads side by side facing +z (the AC3D frame), each object naming the same texture."""


def write_sgi_grey_alpha(path, h=4, w=4):
    """An SGI file with 2 channels (grey + alpha): valid SGI, a mode Pillow cannot decode."""
    header = bytearray(512)
    header[0:2] = (474).to_bytes(2, "big")  # magic
    header[2], header[3] = 0, 1  # verbatim storage, 1 byte per channel
    for offset, value in ((4, 3), (6, w), (8, h), (10, 2)):  # dimension 3, xsize, ysize, zsize = 2
        header[offset:offset + 2] = value.to_bytes(2, "big")
    header[16:20] = (255).to_bytes(4, "big")  # pixmax
    path.write_bytes(bytes(header) + bytes(range(h * w * 2)))


def test_missing_texture_loads_the_geometry_and_warns_once(tmp_path):
    (tmp_path / "car.ac").write_text(QUAD.format(texture="shared/skin.png"))
    with pytest.warns(TextureWarning, match="'shared/skin.png' of object 'LEFT' is not in") as caught:
        model = read_ac3d(tmp_path / "car.ac")
    assert len([w for w in caught if issubclass(w.category, TextureWarning)]) == 1  # two objects, one warning
    mesh = model.mesh
    assert mesh.num_faces == 4 and mesh.textures == () and mesh.face_texture.tolist() == [-1] * 4
    assert model.texture_paths == ()
    with pytest.raises(FileNotFoundError, match="'shared/skin.png' of object 'LEFT' is not in"):
        read_ac3d(tmp_path / "car.ac", require_textures=True)
    with pytest.raises(FileNotFoundError, match="skin.png"):
        load_mesh(tmp_path / "car.ac", require_textures=True)
    with pytest.warns(TextureWarning):
        assert load_mesh(tmp_path / "car.ac").num_faces == 4


def test_texture_pillow_cannot_decode_loads_the_geometry_and_warns(tmp_path):
    write_sgi_grey_alpha(tmp_path / "skin.rgb")
    with pytest.raises(ValueError, match="cannot read texture"):  # Pillow really refuses this mode
        load_texture(tmp_path / "skin.rgb")
    (tmp_path / "car.ac").write_text(QUAD.format(texture="skin.rgb"))
    with pytest.warns(TextureWarning, match="cannot read texture .*skin.rgb") as caught:
        mesh = read_ac3d(tmp_path / "car.ac").mesh
    assert len([w for w in caught if issubclass(w.category, TextureWarning)]) == 1
    assert mesh.num_faces == 4 and mesh.textures == () and (mesh.face_texture == -1).all()
    with pytest.raises(ValueError, match="car.ac: cannot read texture"):
        read_ac3d(tmp_path / "car.ac", require_textures=True)
    # Garbage under an image name is the same case.
    (tmp_path / "skin.rgb").write_bytes(b"not an image at all")
    with pytest.warns(TextureWarning, match="cannot read texture"):
        assert read_ac3d(tmp_path / "car.ac").mesh.num_faces == 4


def test_rgba_texture_renders_its_colour_and_its_alpha_as_opacity(tmp_path):
    # Texture: opaque green on the left half, fully transparent red on the right half.
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[:, :4] = (0, 255, 0, 255)
    rgba[:, 4:] = (255, 0, 0, 0)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "skin.png")
    text = QUAD.format(texture="skin.png")
    # The left quad samples u in [0.1, 0.4] (texel columns 0-3 only, bilinear filtering included), the
    # right one u in [0.6, 0.9] (columns 4-7).
    left_uv, right_uv = "0 0.1 0\n1 0.4 0\n2 0.4 1\n3 0.1 1\n", "0 0.6 0\n1 0.9 0\n2 0.9 1\n3 0.6 1\n"
    whole = "0 0 0\n1 1 0\n2 1 1\n3 0 1\n"
    text = text.replace(whole, left_uv, 1).replace(whole, right_uv, 1)
    (tmp_path / "car.ac").write_text(text.replace("rgb 1 0 0", "rgb 1 1 1", 1))
    mesh = read_ac3d(tmp_path / "car.ac").mesh
    assert mesh.textures[0].shape == (1, 4, 8, 8)
    camera = Camera.orbit(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([3.0]), 0.8, (16, 16))
    out = Renderer(RasterSettings((16, 16)))(mesh, camera, background=torch.tensor([0.0, 0.0, 1.0]))
    left = out.face_idx[0] >= 0
    left &= torch.isin(out.face_idx[0], torch.tensor([0, 1]))
    right = torch.isin(out.face_idx[0], torch.tensor([2, 3]))
    assert left.sum() > 10 and right.sum() > 10
    assert torch.allclose(out.alpha[0][left], torch.ones(())) and torch.allclose(out.alpha[0][right], torch.zeros(()))
    green, blue = torch.tensor([0.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    assert torch.allclose(out.image[0].permute(1, 2, 0)[left], green, atol=1e-6)
    assert torch.allclose(out.image[0].permute(1, 2, 0)[right], blue, atol=1e-6)  # see-through
    assert out.image.shape[1] == 3


def test_bad_counts_name_the_line():
    broken = STRIP.replace("refs 5", "refs 6")
    with pytest.raises(ValueError, match="line 23: cannot read"):
        parse_ac3d(broken)
    with pytest.raises(ValueError, match="not an AC3D file"):
        parse_ac3d("OBJ\n")


def test_clean_name_strips_only_the_exporter_suffix():
    assert clean_ac3d_name("WIPER_s_5") == "WIPER"
    assert clean_ac3d_name("23FRONTLIGH_s_1") == "23FRONTLIGH"
    assert clean_ac3d_name("MY_s_CAR") == "MY_s_CAR"
    assert clean_ac3d_name("BODY") == "BODY"


NO_TORCS = "TORCS data absent: run scripts/install-torcs-data.sh (apt-get install torcs-data)"


@pytest.mark.skipif(not TORCS_CARS.is_dir(), reason=NO_TORCS)
def test_real_torcs_car_has_its_parts_and_outward_faces():
    model = read_ac3d(TORCS_CARS / "car1-trb1" / "car1-trb1.acc", z_up=True)
    mesh = model.mesh
    assert mesh.num_faces == 4351 and mesh.num_verts == 3663
    named = [o for o in model.objects if o.num_faces]
    assert len(named) == 47
    names = {o.clean_name for o in named}
    assert {"MESH", "WIPER", "BOTTOM"} <= names and any(n.startswith("WI") for n in names)
    assert len(mesh.textures) == 1 and mesh.textures[0].shape[1] == 4
    # TORCS frame: x forward (length about 4.5 m), y left (width about 2 m), z up from the ground.
    lo, hi = mesh.verts[0].min(0).values, mesh.verts[0].max(0).values
    assert 4.2 < hi[0] - lo[0] < 4.8 and 1.8 < hi[1] - lo[1] < 2.3 and abs(lo[2]) < 0.05
    # Winding: the triangles face where the file's own vertex normals point, and mostly away
    # from the car's centre (the interior faces inward, which is why this is not 100%).
    n = face_normals(mesh)
    area = n.norm(dim=1)
    agree = ((n * mesh.vert_normals[0][mesh.faces].mean(1)).sum(1) > 0).float()
    assert (agree * area).sum() / area.sum() > 0.98
    outward = ((n * (mesh.face_verts()[0].mean(1) - mesh.verts[0].mean(0))).sum(1) > 0).float()
    assert (outward * area).sum() / area.sum() > 0.6
    # A one-shell car faces outward almost everywhere.
    shell = read_ac3d(TORCS_CARS / "p406" / "p406.acc", z_up=True, load_textures=False).mesh
    n = face_normals(shell)
    outward = ((n * (shell.face_verts()[0].mean(1) - shell.verts[0].mean(0))).sum(1) > 0).float()
    assert (outward * n.norm(dim=1)).sum() / n.norm(dim=1).sum() > 0.9
