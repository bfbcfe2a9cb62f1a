"""``ganfactory cars build``: the split as a LabeledDataset, same bytes for any worker count, resume, CLI errors."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from ganfactory.cli import main
from ganfactory.datasets import build as build_module
from ganfactory.datasets.build import (
    HELD_OUT_CAR_IDS,
    BuildSettings,
    _provenance,
    build_split,
    cars_schema,
    split_car_ids,
)
from ganfactory.datasets.car_assembly import CAR_IDS, KEYPOINT_NAMES, NAMED_CAR_IDS, assemble_car
from ganfactory.datasets.cars import render_car_sample
from ganfactory.datasets.labeled import LabeledDataset
from ganfactory.datasets.parts import CARS8, CARS13
from ganfactory.datasets.torcs import DEFAULT_TORCS_ROOT
from ganfactory.datasets.variation import sample_variation, split_seeds

HAVE_TORCS = (DEFAULT_TORCS_ROOT / "cars").is_dir()
needs_torcs = pytest.mark.skipif(not HAVE_TORCS, reason="TORCS data absent: apt-get install torcs-data")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools

FEW = BuildSettings(split="few", n=5, shard_size=2)     # shards of 2, 2 and 1


def tree_bytes(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The builder renders on one thread per process; so do the direct renders here (faster on 2 cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def few_one_worker(tmp_path_factory, one_thread):
    out = tmp_path_factory.mktemp("cars") / "few1"
    build_split(out, FEW, workers=1, progress=False)
    return out


def test_split_cars_and_schema():
    assert split_car_ids("gan-train") == CAR_IDS and split_car_ids("test3d") == CAR_IDS
    assert split_car_ids("few") == split_car_ids("full") == split_car_ids("test") == NAMED_CAR_IDS
    assert [c.name for c in cars_schema("cars-8").classes] == list(CARS8)
    # the unseen-cars protocol: 3 named cars only in test-u, the other 8 in few-u and full-u, and no near copy on
    # opposite sides (car1-trb3 is car1-trb1 within 2 cm; the whole car1 family stays on the labeled side)
    held, seen = set(split_car_ids("test-u")), set(split_car_ids("few-u"))
    assert held == set(HELD_OUT_CAR_IDS) and len(held) == 3 and split_car_ids("full-u") == split_car_ids("few-u")
    assert held | seen == set(NAMED_CAR_IDS) and not held & seen
    assert not any(c.startswith("car1-") for c in held)
    provenance = _provenance(BuildSettings("test-u"), split_car_ids("test-u"), Path("/x"))
    assert provenance["held_out_car_ids"] == list(HELD_OUT_CAR_IDS) and "near" in provenance["held_out_reason"]
    assert "held_out_car_ids" not in _provenance(BuildSettings("test"), split_car_ids("test"), Path("/x"))
    assert [c.name for c in cars_schema("cars-13").classes] == list(CARS13)
    assert cars_schema("cars-13").keypoints == KEYPOINT_NAMES


@needs_torcs
def test_samples_are_the_renders_of_their_seeds(few_one_worker):
    """Every stored sample equals a direct render of its seed: image, labels, keypoints, camera, metadata."""
    ds = LabeledDataset(few_one_worker)
    assert len(ds) == 5 and ds.provenance["split"] == "few"
    assert ds.provenance["seeds"] == [split_seeds("few").start, split_seeds("few").start + 5]
    settings = FEW.render_settings()
    cars = {}
    for i, seed in enumerate(split_seeds("few", 5)):
        image, label, meta = ds[i]
        variation = sample_variation(seed, NAMED_CAR_IDS)
        car = cars.setdefault(variation.car_id, assemble_car(variation.car_id))
        truth = render_car_sample(car, variation, settings)
        assert meta["id"] == f"{seed:08d}" and meta["seed"] == seed and meta["car_id"] == variation.car_id
        assert meta["labels_trusted"] is True
        assert np.array_equal(image, (truth.image * 255).round().to(torch.uint8).permute(1, 2, 0).numpy())
        assert np.array_equal(label, truth.labels.numpy())
        assert meta["camera"]["K"] == truth.K.tolist() and meta["camera"]["R"] == truth.R.tolist()
        assert meta["camera"]["t"] == truth.t.tolist()
        assert meta["azimuth_deg"] == variation.azimuth_deg and meta["elevation_deg"] == variation.elevation_deg
        assert meta["background_kind"] == variation.background_kind
        assert meta["light"]["direction"] == list(variation.light_direction)
        for (x, y, v), (u, w), visible in zip(meta["keypoints"], truth.keypoints_px.tolist(),
                                              truth.keypoints_visible.tolist(), strict=True):
            assert (x is None) == math.isnan(u) and v == int(visible)
            if x is not None:
                assert (x, y) == (u, w)
    ds.validate()


@needs_torcs
def test_same_bytes_with_two_workers_through_the_cli(few_one_worker, tmp_path):
    out = tmp_path / "few2"
    assert main(["cars", "build", "--split", "few", "--n", "5", "--shard-size", "2", "--out", str(out),
                 "--workers", "2", "--no-progress"]) == 0
    assert tree_bytes(out) == tree_bytes(few_one_worker)


@needs_torcs
def test_killed_build_resumes_to_the_same_bytes(few_one_worker, tmp_path, monkeypatch):
    out = tmp_path / "killed"
    real_write_shard = build_module.write_shard

    def killed_after_one(samples):
        yield next(iter(samples))
        raise KeyboardInterrupt                 # the process dies after one sample of the second shard

    def dies_in_shard_1(plan, index, samples):
        real_write_shard(plan, index, killed_after_one(samples) if index == 1 else samples)

    monkeypatch.setattr(build_module, "write_shard", dies_in_shard_1)
    with pytest.raises(KeyboardInterrupt):
        build_split(out, FEW, workers=1, progress=False)
    monkeypatch.undo()
    assert (out / ".tmp-00001").is_dir() and (out / "meta" / "00000.jsonl").is_file()
    assert not (out / "dataset.json").exists() and not (out / "meta" / "00001.jsonl").exists()
    build_split(out, FEW, workers=1, progress=False)
    assert tree_bytes(out) == tree_bytes(few_one_worker)


@needs_torcs
def test_coco_of_a_build_matches_its_labels(few_one_worker):
    ds = LabeledDataset(few_one_worker)
    coco = COCO(str(ds.coco_path))
    car_cat = coco.getCatIds(catNms=["car"])[0]
    for i in range(len(ds)):
        _, label, meta = ds[i]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[i + 1]))
        assert {a["category_id"] for a in anns} == {int(c) for c in np.unique(label) if c} | {car_cat}
        for a in anns:
            truth = label > 0 if a["category_id"] == car_cat else label == a["category_id"]
            assert np.array_equal(coco.annToMask(a), truth.astype(np.uint8))
        car = next(a for a in anns if a["category_id"] == car_cat)
        h, w = label.shape
        assert car["num_keypoints"] == sum(1 for x, y, _ in meta["keypoints"]
                                           if x is not None and 0 <= x + 0.5 <= w and 0 <= y + 0.5 <= h)


@needs_torcs
def test_test3d_writes_each_ground_truth_mesh_once(tmp_path):
    from ganfactory.render.io import load_mesh

    out = tmp_path / "t3d"
    build_split(out, BuildSettings(split="test3d", n=2, class_set="cars-8"), workers=1, progress=False)
    shown = {CAR_IDS[seed % len(CAR_IDS)] for seed in split_seeds("test3d", 2)}
    assert len(shown) == 2 and {p.name for p in (out / "meshes").iterdir()} == {f"{c}.glb" for c in shown}
    ds = LabeledDataset(out)
    car_id = ds.meta(0)["car_id"]
    mesh, car = load_mesh(out / "meshes" / f"{car_id}.glb"), assemble_car(car_id)
    assert mesh.faces.shape[-2] == car.mesh.faces.shape[-2]
    lo, hi = mesh.verts[0].min(0).values, mesh.verts[0].max(0).values
    assert torch.allclose(lo, car.mesh.verts[0].min(0).values, atol=1e-5)      # metres, TORCS frame
    assert torch.allclose(hi, car.mesh.verts[0].max(0).values, atol=1e-5)
    assert int(ds[0][1].max()) < len(CARS8)
    assert ds.meta(0)["labels_trusted"] is (car_id in NAMED_CAR_IDS)


def test_cli_without_torcs_is_one_line_and_exit_2(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["cars", "build", "--split", "few", "--out", str(out), "--torcs-root", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "TORCS car data not found in /nonexistent" in err and "--torcs-root" in err
    assert not out.exists()
    assert main(["cars", "preview", "--out", str(tmp_path / "s.png"), "--torcs-root", "/nonexistent"]) == 2
    assert "TORCS car data not found" in capsys.readouterr().err


def test_cli_refuses_bad_numbers_before_work(tmp_path, capsys):
    assert main(["cars", "build", "--split", "few", "--n", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--n must be at least 1" in capsys.readouterr().err
    assert main(["cars", "build", "--split", "few", "--workers", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
