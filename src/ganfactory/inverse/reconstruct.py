"""One image in, a textured mesh file and its camera out: ``ganfactory reconstruct``.

Per image ``DIR/<stem>.glb`` (textured; trimesh, Blender and three.js open it), ``DIR/<stem>.obj`` (+ .mtl and
the texture PNG), ``DIR/<stem>.camera.json`` (the predicted camera: orbit parameters and OpenCV K, R, t) and
``DIR/<stem>.render.png`` (the mesh rendered with that camera, beside the input, for a quick look). Every file is
written atomically (the OBJ with its companions, ``ganfactory.atomic.atomic_files``).

Frame of the files (``FILE_FRAME``): the world frame of ``ganfactory.render.conventions``, y up (glTF's convention,
so every glTF viewer shows the car standing on its wheels), the car's front along +z and its left side along +x;
metres for models trained on the cars renders. GLB and OBJ hold the same vertices. The network predicts in the
cars' object frame (x forward, y left, z up; ``ganfactory.inverse.camera``) and the files are that mesh moved by
``vehicle_to_world`` (an exact axis permutation, a rotation, so the winding is kept). The camera JSON's ``R`` and
``t`` map a vertex of the files to OpenCV camera coordinates, ``x_cv = R X + t``; its azimuth and elevation mean
the same in both frames (0 looks at the front, 90 at the left side). The cars benchmark's true meshes
(``test3d/meshes``) stay in the TORCS frame of their dataset; ``vehicle_to_world`` puts one over a reconstruction.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ganfactory.atomic import atomic_files, atomic_path, write_json
from ganfactory.errors import GanfactoryError
from ganfactory.inverse.camera import OrbitCamera
from ganfactory.inverse.network import InverseGraphicsNet, Prediction
from ganfactory.render import Camera, Mesh, RasterSettings, Renderer
from ganfactory.render.conventions import CV_FROM_VIEW, vehicle_to_world
from ganfactory.render.io import save_mesh

__all__ = ["FILE_FRAME", "Reconstruction", "camera_json", "export_reconstruction", "file_camera", "file_mesh",
           "load_image", "reconstruct_images", "sample_mesh"]

FILE_FRAME = ("world frame of ganfactory.render.conventions: y up, the car's front along +z, its left along +x; "
              "OpenCV x_cv = R X + t for a vertex X of the GLB/OBJ")
"""The ``frame`` field of every camera JSON (the module docstring says why)."""


def load_image(path: str | Path, size: int) -> torch.Tensor:
    """[3, size, size] float in [0, 1]: the image centre-cropped to a square and resized."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
    except FileNotFoundError:
        raise GanfactoryError(f"{path}: no such image") from None
    except (UnidentifiedImageError, OSError) as e:
        raise GanfactoryError(f"{path}: not an image Pillow can read ({e})") from None
    w, h = im.size
    side = min(w, h)
    im = im.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
    if side != size:
        im = im.resize((size, size), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


def sample_mesh(net: InverseGraphicsNet, prediction: Prediction, i: int) -> Mesh:
    """Sample ``i`` of a prediction as a textured mesh with a batch of one (what the files hold)."""
    full = net.mesh(prediction)
    return full.replace(verts=full.verts[i:i + 1].detach(), textures=(full.textures[0][i:i + 1].detach(),))


def file_mesh(mesh: Mesh) -> Mesh:
    """A predicted mesh (object frame) in the files' frame: its vertices moved by ``vehicle_to_world``."""
    return mesh.replace(verts=vehicle_to_world(mesh.verts))


def camera_json(camera: OrbitCamera, i: int, image_size: tuple[int, int]) -> dict:
    """Sample ``i``'s camera as JSON in the files' frame: ``camera.to_json`` with ``R`` acting on world points.

    ``R_obj p_obj = R_obj[:, AXES] p_world`` for the permutation ``p_world = p_obj[AXES]``, so the world
    rotation is ``vehicle_to_world`` applied to R's rows: exact, like the vertices."""
    info = camera.to_json(i, image_size)
    info["R"] = vehicle_to_world(torch.tensor(info["R"], dtype=torch.float64)).tolist()
    info["frame"] = FILE_FRAME
    return info


def file_camera(camera: dict, size: int, turn_deg: float = 0.0) -> Camera:
    """The renderer's camera (``size`` x ``size``) of a camera JSON, acting on the files' vertices; ``turn_deg``
    orbits it about the vertical axis through the origin, as ``OrbitCamera.turned`` does (``R Ry(-turn)``: the
    object turned the other way under a fixed camera)."""
    flip = torch.tensor(CV_FROM_VIEW)
    R, t = flip @ torch.tensor(camera["R"]), flip @ torch.tensor(camera["t"])
    c, s = math.cos(math.radians(-turn_deg)), math.sin(math.radians(-turn_deg))
    turn = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return Camera.from_fov((R @ turn)[None], t[None], math.radians(camera["fov_deg"]), (size, size))


@dataclass(frozen=True)
class Reconstruction:
    """The files written for one image."""

    glb: Path
    obj: Path
    camera: Path
    render: Path


def export_reconstruction(net: InverseGraphicsNet, prediction: Prediction, i: int, image: torch.Tensor,
                          out: Path, stem: str) -> Reconstruction:
    """Write sample ``i``'s GLB, OBJ, camera JSON and a render beside its input (each file atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    mesh = sample_mesh(net, prediction, i)
    size = net.config.image_size
    paths = Reconstruction(out / f"{stem}.glb", out / f"{stem}.obj", out / f"{stem}.camera.json",
                           out / f"{stem}.render.png")
    for path in (paths.glb, paths.obj):  # the OBJ comes with its .mtl and texture PNG, named after it
        with atomic_files(path) as tmp:
            save_mesh(file_mesh(mesh), tmp)
    camera = prediction.camera.detach()
    info = camera_json(camera, i, (size, size))
    info["lighting"] = ("sh9" if prediction.light is not None else "baked into the texture")
    if prediction.light is not None:  # the shading normals were the object frame's
        info["sh9"] = prediction.light.coeffs[i].detach().tolist()
        info["sh9_frame"] = "object frame x forward, y left, z up (the network's; vehicle_to_world maps it)"
    write_json(paths.camera, info)
    with torch.no_grad():
        one = camera.index(slice(i, i + 1)).to_camera((size, size))
        light = None if prediction.light is None else type(prediction.light)(prediction.light.coeffs[i:i + 1])
        rendered = Renderer(RasterSettings((size, size), supersample=2))(mesh, one, light,
                                                                         background=torch.ones(3))
    pair = torch.cat([image.clamp(0, 1), rendered.image[0].clamp(0, 1)], dim=2)
    array = (pair.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    with atomic_path(paths.render) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
    return paths


def reconstruct_images(net: InverseGraphicsNet, paths: list[Path], out: str | Path, device: str = "cpu",
                       batch: int = 16) -> list[dict]:
    """Reconstruct every image of ``paths`` into ``out``; returns one record per image (files, seconds)."""
    out = Path(out)
    stems = [p.stem for p in paths]
    if len(set(stems)) != len(stems):
        raise GanfactoryError("two input images share a file name stem; their outputs would collide")
    size = net.config.image_size
    records = []
    net.eval()
    for start in range(0, len(paths), batch):
        chunk = paths[start:start + batch]
        images = torch.stack([load_image(p, size) for p in chunk])
        t0 = time.perf_counter()
        with torch.no_grad():
            prediction = net(images.to(device))
        predict_s = (time.perf_counter() - t0) / len(chunk)
        for k, path in enumerate(chunk):
            t1 = time.perf_counter()
            files = export_reconstruction(net, prediction, k, images[k], out, path.stem)
            records.append({"image": str(path), "glb": str(files.glb), "obj": str(files.obj),
                            "camera": json.loads(files.camera.read_text()),
                            "seconds_predict": round(predict_s, 4),
                            "seconds_export": round(time.perf_counter() - t1, 4)})
    return records
