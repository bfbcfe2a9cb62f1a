"""Reconstruction files: the GLB and OBJ open in trimesh with their texture; the camera JSON; model round trip."""

import json

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from ganfactory.cli import main
from ganfactory.inverse.model import load_model, save_model
from ganfactory.inverse.network import InverseGraphicsNet, NetworkConfig

SMALL = NetworkConfig(image_size=32, latent=32, channels=(8, 8, 16, 16), texture_size=16)


@pytest.fixture()
def model_dir(tmp_path):
    torch.manual_seed(0)
    net = InverseGraphicsNet(SMALL)
    with torch.no_grad():
        net.offsets.weight.normal_(0, 0.02)
        net.texture_up[-1].bias.copy_(torch.tensor([2.0, -2.0, 0.0]))  # a red texture
    return save_model(net.eval(), tmp_path / "model", {"note": "random weights"}), net


def test_model_round_trip_float16(tmp_path, model_dir):
    _, net = model_dir
    half = save_model(net, tmp_path / "half", half=True)
    back, config = load_model(half)
    assert config["format"] == "ganfactory.inverse"
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        a, b = net(images), back(images)
    assert torch.allclose(a.verts, b.verts, atol=2e-2) and torch.allclose(a.texture, b.texture, atol=1e-2)


def test_reconstruct_writes_glb_obj_and_camera_that_trimesh_opens(tmp_path, model_dir, capsys):
    path, net = model_dir
    image = (np.random.default_rng(0).random((48, 60, 3)) * 255).astype(np.uint8)  # not square: centre-cropped
    Image.fromarray(image).save(tmp_path / "car.png")
    out = tmp_path / "out"
    assert main(["reconstruct", str(tmp_path / "car.png"), "--model", str(path), "--out", str(out)]) == 0
    scene = trimesh.load(out / "car.glb")
    (geometry,) = scene.geometry.values()
    assert geometry.faces.shape == (1280, 3) and geometry.vertices.shape[0] >= 642
    texture = np.asarray(geometry.visual.material.baseColorTexture.convert("RGB"))
    assert texture.shape == (16, 16, 3) and texture[..., 0].mean() > 150 > texture[..., 1].mean()
    assert geometry.visual.uv.shape == (geometry.vertices.shape[0], 2)
    obj = trimesh.load(out / "car.obj")
    assert obj.faces.shape == (1280, 3) and obj.visual.material.image is not None
    camera = json.loads((out / "car.camera.json").read_text())
    assert {"azimuth_deg", "elevation_deg", "distance", "K", "R", "t"} <= set(camera)
    assert np.allclose(np.asarray(camera["R"]) @ np.asarray(camera["R"]).T, np.eye(3), atol=1e-5)
    report = json.loads((out / "reconstruct.json").read_text())
    assert report["images"][0]["glb"].endswith("car.glb")
    assert (out / "car.render.png").is_file()


def test_reconstruct_bad_input_is_one_line(tmp_path, model_dir, capsys):
    path, _ = model_dir
    (tmp_path / "bad.png").write_text("not an image")
    assert main(["reconstruct", str(tmp_path / "bad.png"), "--model", str(path), "--out", str(tmp_path)]) == 2
    assert "not an image" in capsys.readouterr().err
    assert main(["reconstruct", str(tmp_path / "bad.png"), "--model", str(tmp_path / "nope")]) == 2


def test_reconstruction_files_hold_the_prediction_in_the_world_frame(tmp_path, model_dir):
    """Round trip: the GLB read with trimesh is the predicted mesh moved by vehicle_to_world (same triangles, y up),
    the OBJ holds the same vertex list, and the camera JSON's R, t seen through our renderer draw the file's mesh
    exactly where the network's own camera draws its object-frame mesh."""
    from ganfactory.inverse.camera import OrbitCamera
    from ganfactory.inverse.metrics3d import hard_iou, silhouettes
    from ganfactory.inverse.reconstruct import file_camera, load_image, reconstruct_images
    from ganfactory.render import Camera, Mesh
    from ganfactory.render.conventions import vehicle_to_world
    from ganfactory.render.io import load_mesh
    from ganfactory.render.rasterizer import rasterize_mesh

    path, net = model_dir
    Image.fromarray((np.random.default_rng(1).random((32, 32, 3)) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    reconstruct_images(net, [tmp_path / "a.png"], tmp_path / "out")
    with torch.no_grad():
        pred = net(load_image(tmp_path / "a.png", 32)[None])
    world = vehicle_to_world(pred.verts[0]).numpy()
    faces = net.faces.numpy()
    (glb,) = trimesh.load(tmp_path / "out" / "a.glb").geometry.values()
    # same triangles, corner by corner (trimesh splits vertices along the UV seam, so compare corner positions)
    assert np.abs(glb.vertices[glb.faces] - world[faces]).max() < 1e-6
    assert np.ptp(glb.vertices[:, 1]) == pytest.approx(np.ptp(pred.verts[0, :, 2].numpy()), abs=1e-6)  # z up -> y up
    obj = trimesh.load(tmp_path / "out" / "a.obj", process=False)
    assert np.abs(np.asarray(obj.vertices)[obj.faces] - world[faces]).max() < 1e-6
    assert np.abs(load_mesh(tmp_path / "out" / "a.obj").verts[0].numpy() - world).max() < 1e-6  # the vertex list
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".tmp-")]
    camera = json.loads((tmp_path / "out" / "a.camera.json").read_text())
    assert camera["frame"].startswith("world frame")
    size = (32, 32)
    K, R, t = (torch.tensor(camera[k], dtype=torch.float32)[None] for k in ("K", "R", "t"))
    file_mask = rasterize_mesh(Mesh(torch.as_tensor(world, dtype=torch.float32)[None], net.faces),
                               Camera.from_opencv(K, R, t, size), size).face_idx >= 0
    own = silhouettes(Mesh(pred.verts, net.faces), OrbitCamera(pred.camera.azimuth, pred.camera.elevation,
                                                               pred.camera.t, pred.camera.fov_y), 32)
    assert own.sum() > 20 and float(hard_iou(file_mask, own)[0]) > 0.99
    file_mesh = Mesh(torch.as_tensor(world, dtype=torch.float32)[None], net.faces)
    for turn in (40, 90, 200):   # file_camera's orbit is OrbitCamera.turned's
        turned = rasterize_mesh(file_mesh, file_camera(camera, 32, turn), size).face_idx >= 0
        assert float(hard_iou(turned, silhouettes(Mesh(pred.verts, net.faces), pred.camera.turned(turn), 32))[0]) > 0.99
