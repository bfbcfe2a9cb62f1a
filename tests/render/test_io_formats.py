"""OBJ, PLY and GLB round trips: vertices, faces, UVs, parts and texture pixels come back."""

import numpy as np
import pytest
import torch

from ganfactory.render.io import load_mesh, save_mesh
from ganfactory.render.mesh import Mesh


def quantized_texture(seed: int, h: int, w: int) -> torch.Tensor:
    """[1, 4, h, w] with values k / 255, so an 8-bit PNG stores it exactly."""
    values = torch.from_numpy(np.random.default_rng(seed).integers(0, 256, size=(1, 4, h, w)))
    return values.float() / 255


def two_part_mesh(num_textures: int = 2) -> Mesh:
    """Two quads (parts ``BODY`` and ``WI``, each on its own vertices with one UV per vertex)."""
    verts = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0],
                          [0, 0, 1], [2, 0, 1], [0, 3, 1], [2, 3, 1.5]])
    faces = torch.tensor([[0, 1, 2], [1, 3, 2], [4, 5, 6], [5, 7, 6]])
    vert_uvs = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 1], [0.25, 0.25], [0.75, 0.25], [0.25, 0.75],
                             [0.75, 0.75]])
    textures = (quantized_texture(0, 4, 8), quantized_texture(1, 6, 2))[:num_textures]
    return Mesh(
        verts=verts.unsqueeze(0), faces=faces, face_uvs=vert_uvs[faces],
        textures=textures,
        face_texture=torch.tensor([0, 0, num_textures - 1, num_textures - 1]),
        face_colors=torch.tensor([[1, 1, 1], [1, 1, 1], [0.2, 0.4, 1], [0.2, 0.4, 1.0]]),
        face_alpha=torch.tensor([1, 1, 0.2, 0.2]),
        face_two_sided=torch.tensor([False, False, True, True]),
        face_parts=torch.tensor([0, 0, 1, 1]), part_names=("BODY", "WI"))


def assert_same_surface(a: Mesh, b: Mesh, exact_vertices: bool) -> None:
    assert a.num_faces == b.num_faces
    if exact_vertices:
        assert torch.allclose(a.verts, b.verts) and torch.equal(a.faces, b.faces)
    assert torch.allclose(a.face_verts(), b.face_verts(), atol=1e-6)
    assert torch.allclose(a.face_uvs, b.face_uvs, atol=1e-6)
    assert a.part_names == b.part_names and torch.equal(a.face_parts, b.face_parts)
    assert torch.equal(a.face_texture, b.face_texture)
    assert len(a.textures) == len(b.textures)
    for ta, tb in zip(a.textures, b.textures, strict=True):
        assert ta.shape == tb.shape and torch.equal((ta * 255).round(), (tb * 255).round())


@pytest.mark.parametrize("suffix", [".obj", ".glb"])
def test_round_trip_keeps_vertices_faces_uvs_parts_textures_and_materials(tmp_path, suffix):
    mesh = two_part_mesh()
    save_mesh(mesh, tmp_path / f"car{suffix}")
    back = load_mesh(tmp_path / f"car{suffix}")
    assert_same_surface(mesh, back, exact_vertices=True)
    assert torch.allclose(back.face_colors, mesh.face_colors, atol=0.5 / 255)
    assert torch.allclose(back.face_alpha, mesh.face_alpha, atol=0.5 / 255)
    if suffix == ".glb":
        assert torch.equal(back.face_two_sided, mesh.face_two_sided)


def test_ply_round_trip_with_one_texture(tmp_path):
    mesh = two_part_mesh(num_textures=1)
    save_mesh(mesh, tmp_path / "car.ply")
    back = load_mesh(tmp_path / "car.ply")
    assert_same_surface(mesh, back, exact_vertices=True)
    with pytest.raises(ValueError, match="one texture"):
        save_mesh(two_part_mesh(num_textures=2), tmp_path / "two.ply")


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".glb"])
def test_uv_seams_and_shared_vertices_keep_the_surface(tmp_path, suffix):
    # Vertex 1 and 2 are shared by two faces with different UVs (a seam), and the parts repeat a name.
    mesh = Mesh(verts=torch.tensor([[[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0.0]]]),
                faces=torch.tensor([[0, 1, 2], [1, 3, 2]]),
                face_uvs=torch.tensor([[[0, 0], [0.5, 0], [0, 0.5]], [[1, 0], [1, 1], [0, 1.0]]]),
                textures=(quantized_texture(2, 3, 3),), face_texture=torch.tensor([0, 0]),
                face_parts=torch.tensor([1, 2]), part_names=("", "LIGHT", "LIGHT"))
    save_mesh(mesh, tmp_path / f"seam{suffix}")
    back = load_mesh(tmp_path / f"seam{suffix}")
    assert_same_surface(mesh, back, exact_vertices=suffix == ".obj")
    if suffix != ".obj":
        assert back.num_verts == 6      # the two seam vertices are split


def test_unknown_suffix_and_batches_are_refused(tmp_path):
    with pytest.raises(ValueError, match="suffix must be one of"):
        save_mesh(two_part_mesh(), tmp_path / "car.stl")
    with pytest.raises(ValueError, match="suffix must be one of"):
        load_mesh(tmp_path / "car.xyz")
    batch = two_part_mesh()
    batch = batch.replace(verts=batch.verts.repeat(2, 1, 1), textures=())
    with pytest.raises(ValueError, match="batch of 2"):
        save_mesh(batch, tmp_path / "car.obj")
