"""``inverse train`` under torchrun: two gloo processes compute what one process computes on the same two
micro-batches (``--accumulate 2``): the all-reduced gradients give the same weights and camera offsets
(iteration 0 without refinement, iteration 1 with it)."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ganfactory.datasets.labeled import LabeledSample, finish_dataset, plan_dataset, write_shard
from ganfactory.inverse.camera import OrbitCamera, framing_t
from ganfactory.inverse.network import NetworkConfig
from ganfactory.render import Mesh, RasterSettings, Renderer, icosphere
from ganfactory.schema import ClassInfo, Schema


@pytest.fixture(scope="module")
def multiview(tmp_path_factory):
    """12 renders of 3 ellipsoid 'cars' (content) from 4 view codes, stored like ``multiview build`` stores."""
    root = tmp_path_factory.mktemp("mv") / "data"
    cfg = NetworkConfig()
    v, f = icosphere(2)
    samples = []
    renderer = Renderer(RasterSettings((64, 64)))
    for code, az in enumerate((30.0, 90.0, 150.0, 270.0)):
        for content, colour in enumerate(((0.8, 0.2, 0.2), (0.2, 0.3, 0.9), (0.9, 0.8, 0.2))):
            a, e = torch.tensor([math.radians(az)]), torch.tensor([math.radians(10.0)])
            cam = OrbitCamera(a, e, framing_t(a, e, math.radians(30), cfg.half_extents, cfg.centre), math.radians(30))
            verts = torch.tensor(cfg.centre) + v * torch.tensor(cfg.half_extents) * (0.8 + 0.1 * content)
            mesh = Mesh(verts[None], f, vert_colors=torch.tensor(colour).expand(1, v.shape[0], 3))
            out = renderer(mesh, cam.to_camera((64, 64)))
            image = (out.image[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
            samples.append(LabeledSample(
                id=f"v{code:05d}-c{content:05d}", image=image, label=(out.face_idx[0] >= 0).numpy().astype(np.uint8),
                meta={"view_code": code, "content": content, "camera": {
                    "azimuth_deg": az + 10.0, "elevation_deg": 10.0, "distance_scale": 1.0, "fov_deg": 30.0}}))
    schema = Schema((ClassInfo(0, "background", (0, 0, 0)), ClassInfo(1, "car", (255, 0, 0))))
    plan = plan_dataset(root, schema, len(samples), 16)
    write_shard(plan, 0, samples)
    finish_dataset(plan, "car")
    return root


def test_multiview_holdout_is_whole_content_codes(multiview):
    from ganfactory.inverse.data import load_views
    from ganfactory.inverse.train import _split

    views = load_views(multiview, progress=False)
    train, held = _split(views, 3)
    assert [views.ids[i] for i in held] == [f"v{v:05d}-c00002" for v in range(4)]
    assert sorted(train + held) == list(range(12))
    assert set(views.view_code[train].tolist()) == {0, 1, 2, 3}


def inverse_train(*args, torchrun=0):
    cli = ["-m", "ganfactory.cli", "inverse", "train", *map(str, args)]
    cmd = [sys.executable, *cli]
    if torchrun:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}", *cli]
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def test_two_processes_equal_one_with_two_micro_batches(multiview, tmp_path):
    common = ["--data", multiview, "--quick", "--iterations", "2", "--batch", "4", "--refine-start", "1",
              "--quiet"]
    inverse_train("--out", tmp_path / "one", *common, "--accumulate", "2")
    inverse_train("--out", tmp_path / "two", *common, torchrun=2)
    inverse_train("--out", tmp_path / "whole", *common)   # one micro-batch of 4: other BatchNorm statistics
    logs = {k: [json.loads(x) for x in (tmp_path / k / "log.jsonl").read_text().splitlines()]
            for k in ("one", "two")}
    assert logs["one"][-1]["total"] == pytest.approx(logs["two"][-1]["total"], rel=1e-5)
    ck = {k: load_file(str(next((tmp_path / k / "checkpoints").glob("*.safetensors"))))
          for k in ("one", "two", "whole")}
    params = [k for k in ck["one"] if k.startswith(("model.", "refine.")) and "running_" not in k
              and "num_batches" not in k]
    assert "refine.offsets" in params and float(ck["one"]["refine.offsets"].abs().sum()) > 0
    for k in params:
        assert torch.allclose(ck["one"][k], ck["two"][k], rtol=1e-4, atol=1e-6), k
    assert any(not torch.allclose(ck["one"][k], ck["whole"][k], rtol=1e-4, atol=1e-6) for k in params)
    assert json.loads((tmp_path / "two" / "done.json").read_text())["processes"] == 2
