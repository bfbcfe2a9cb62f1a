"""3-D scores against truth: identities of the point metrics, and the whole scoring on a known mesh."""

import json
import math

import numpy as np
import pytest
import torch

from ganfactory.cli import main
from ganfactory.datasets.labeled import LabeledSample, write_labeled_dataset
from ganfactory.inverse.bench3d import score_model
from ganfactory.inverse.camera import OrbitCamera
from ganfactory.inverse.metrics3d import chamfer_fscore, exterior_faces, hard_iou, normalise_points, sample_surface
from ganfactory.inverse.model import save_model
from ganfactory.inverse.network import InverseGraphicsNet, NetworkConfig
from ganfactory.render import Mesh, RasterSettings, Renderer, icosphere
from ganfactory.render.io import save_mesh
from ganfactory.schema import Schema


def test_point_metrics_identities():
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(500, 3, generator=g)
    assert chamfer_fscore(pts, pts) == (0.0, 1.0)
    moved = normalise_points(pts * 3.0 + torch.tensor([1.0, -2.0, 5.0]))
    assert torch.allclose(moved, normalise_points(pts), atol=1e-5)
    assert float((moved.max(0).values - moved.min(0).values).max()) == pytest.approx(1.0)
    far = chamfer_fscore(pts, pts + 1.0)
    assert far[1] == 0.0 and far[0] > 0.5


def test_surface_samples_lie_on_the_triangles():
    verts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 2], [1, 0, 2], [0, 1, 2]])
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    p = sample_surface(verts, faces, 1000, torch.Generator().manual_seed(0))
    assert bool(((p[:, 2] == 0) | (p[:, 2] == 2)).all()) and bool((p[:, 0] + p[:, 1] <= 1 + 1e-6).all())


def test_exterior_faces_skip_a_hidden_inner_shell():
    v, f = icosphere(2)
    verts = torch.cat([v, 0.5 * v])[None]
    faces = torch.cat([f, f + v.shape[0]])
    ext = exterior_faces(Mesh(verts, faces))
    assert bool(ext[:f.shape[0]].float().mean() > 0.95) and not bool(ext[f.shape[0]:].any())


def test_hard_iou():
    a = torch.zeros(2, 4, 4, dtype=torch.bool)
    b = a.clone()
    a[0, :2], b[0, 1:3] = True, True
    assert hard_iou(a, b).tolist() == pytest.approx([1 / 3, 1.0])


@pytest.fixture()
def known_mesh_split(tmp_path):
    """A zeroed network (it predicts its template ellipsoid at a fixed camera) and a two-sample test3d-like split
    of that very ellipsoid: seen from the network's camera, and from 90 degrees further round."""
    config = NetworkConfig(image_size=32, latent=16, channels=(8, 8, 8, 8), texture_size=8,
                           half_extents=(2.0, 0.9, 0.6), centre=(0.0, 0.0, 0.6), t_init=(0.0, 0.0, -9.0))
    net = InverseGraphicsNet(config)
    with torch.no_grad():
        for head in (net.offsets, net.scale, net.shift, net.camera):
            head.weight.zero_()
            head.bias.zero_()
    net.eval()
    el = math.radians(sum(config.elevation_range_deg) / 2)
    verts = net.template.verts * torch.tensor(config.half_extents) + torch.tensor(config.centre)
    truth = Mesh(verts[None], net.template.faces)
    root = tmp_path / "test3d"

    def sample(i: int) -> LabeledSample:
        az = math.radians(90.0 * i)
        cam = OrbitCamera(torch.tensor([az]), torch.tensor([el]), torch.tensor([config.t_init]), math.radians(30))
        out = Renderer(RasterSettings((32, 32)))(truth, cam.to_camera((32, 32)))
        mask = (out.face_idx[0] >= 0).numpy()
        K, R, t = cam.to_camera((32, 32)).to_opencv()
        image = np.where(mask[..., None], 200, 30).astype(np.uint8).repeat(3, -1)
        return LabeledSample(id=f"s{i}", image=image, label=mask.astype(np.uint8),
                             meta={"car_id": "blob", "azimuth_deg": 90.0 * i, "elevation_deg": math.degrees(el),
                                   "fov_deg": 30.0, "camera": {"K": K[0].tolist(), "R": R[0].tolist(),
                                                               "t": t[0].tolist()}})

    write_labeled_dataset(root, Schema.from_names(["background", "car"]), 2, sample, coco_object=None)
    save_mesh(truth.replace(face_colors=torch.ones(truth.num_faces, 3)), root / "meshes" / "blob.glb")
    return net, root


def test_scores_of_a_network_that_predicts_the_true_mesh(known_mesh_split):
    net, root = known_mesh_split
    scores, sheet = score_model(net, root, progress=False)
    first, second = scores["samples"]
    assert first["input_iou"] == pytest.approx(1.0) and first["multiview_iou"] == pytest.approx(1.0)
    assert first["azimuth_error_deg"] == pytest.approx(0.0, abs=1e-3)
    assert first["fscore_5"] > 0.97 and first["chamfer_l1"] < 0.02
    assert second["azimuth_error_deg"] == pytest.approx(90.0, abs=1e-3)
    assert second["input_iou_true_camera"] == pytest.approx(1.0) and second["input_iou"] < 0.9
    assert sheet.shape[0] > 2 * 32 and sheet.dtype == np.uint8


def test_bench_cars3d_cli_scores_a_given_model_and_resumes(tmp_path, known_mesh_split):
    net, root = known_mesh_split
    model = save_model(net, tmp_path / "model")
    args = ["bench", "cars3d", "--out", str(tmp_path / "bench"), "--model", f"real={model}", "--test3d", str(root),
            "--quiet"]
    assert main(args) == 0
    results = json.loads((tmp_path / "bench" / "results.json").read_text())
    assert results["arms"]["real"]["summary"]["azimuth_error_median_deg"] == pytest.approx(45.0, abs=1e-2)
    assert "<table" in (tmp_path / "bench" / "report.html").read_text()
    scores = tmp_path / "bench" / "arms" / "real" / "scores.json"
    stamp = scores.stat().st_mtime_ns
    assert main(args) == 0 and scores.stat().st_mtime_ns == stamp  # resumed: the scoring stage is skipped
    assert main(args[:-1] + ["--arms", "real,gan-single", "--quiet"]) == 2  # other settings are refused
