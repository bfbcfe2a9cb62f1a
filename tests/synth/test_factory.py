"""The factory: a valid LabeledDataset with COCO and WebDataset, uncertainty filtering, identical bytes across
backends and across a SIGKILL and resume."""

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ganfactory.annotate import AnnotationSet
from ganfactory.annotate.synthetic import make_cluster_annotations
from ganfactory.annotate.training import training_images
from ganfactory.datasets.labeled import LabeledDataset
from ganfactory.errors import GanfactoryError
from ganfactory.gan import load_generator
from ganfactory.gan.latent import Latent
from ganfactory.label import FeatureTaps, InterpreterConfig, load_interpreter, train_interpreter
from ganfactory.synth import SynthConfig, compact_seeds, kept_per_block, synthesize

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def interp_dir(tmp_path_factory):
    torch.set_num_threads(1)
    G = load_generator("tiny32")
    tmp = tmp_path_factory.mktemp("factory")
    store = make_cluster_annotations(G, tmp / "ann", range(8), 3, keypoints=True)
    config = InterpreterConfig(taps=FeatureTaps(tuple(G.synthesis.layer_names())), num_models=3,
                               pixels_per_image=256, holdout_pixels_per_image=64, max_epochs=3, patience=2)
    interp, _ = train_interpreter(G, training_images(store, G), store.schema, config, progress=False)
    return interp.save(tmp / "interp")


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def config(interp_dir, **kw):
    base = dict(generator="tiny32", interpreter=str(interp_dir), seeds=tuple(range(10, 33)), truncation_psi=0.8,
                noise_mode="random", candidates_per_shard=10, filter_fraction=0.2, batch_size=4, webdataset=True)
    return SynthConfig(**{**base, **kw})


def test_dataset_labels_filtering_coco_and_webdataset(interp_dir, tmp_path):
    from pycocotools.coco import COCO

    cfg = config(interp_dir)
    report = synthesize(cfg, tmp_path / "ds", progress=False)
    # blocks of 10, 10, 3 candidates keep 8, 8, 3 (floor(3 * 0.2) = 0 dropped)
    assert report.samples == 19 == kept_per_block(10, 0.2) * 2 + 3 and report.candidates == 23
    ds = LabeledDataset(tmp_path / "ds")
    ds.validate()
    assert len(ds) == 19 and ds.provenance["seeds"] == "10-32"
    # the labels are the interpreter's prediction for the stored seed latent, and the image regenerates
    G, interp = load_generator("tiny32"), load_interpreter(interp_dir)
    meta = ds.meta(3)
    lat = Latent.from_seed(G, meta["latent"]["seed"], 0.8, "random")
    img, pred = interp.predict(G, [lat])
    from ganfactory.gan.sampling import to_uint8

    assert np.array_equal(ds.image(3), to_uint8(img)[0]) and np.array_equal(ds.label(3), pred.labels[0])
    assert meta["uncertainty"] == pytest.approx(float(pred.score[0]), abs=1e-6)
    assert len(meta["keypoints"]) == 3
    # filtering dropped the 2 most uncertain of the first block of 10
    all_scores = interp.predict(G, [Latent.from_seed(G, s, 0.8, "random") for s in range(10, 20)])[1].score
    dropped = set(range(10, 20)) - {m["latent"]["seed"] for m in (ds.meta(i) for i in range(8))}
    assert dropped == {10 + i for i in all_scores.argsort(descending=True)[:2].tolist()}
    coco = COCO(str(ds.coco_path))
    assert len(coco.getImgIds()) == 19 and coco.loadCats(coco.getCatIds(catNms=["object"]))[0]["keypoints"]
    ann = coco.loadAnns(coco.getAnnIds(imgIds=[1]))[0]
    assert coco.annToMask(ann).sum() == ann["area"]
    with tarfile.open(tmp_path / "ds/wds/00000.tar") as tar:
        names = tar.getnames()
        assert len(names) == 24 and names[:3] == [f"{ds.ids[0]}.png", f"{ds.ids[0]}.label.png", f"{ds.ids[0]}.json"]
        assert tar.extractfile(names[1]).read() == ds.label_path(0).read_bytes()
    # a second run finds nothing to do; other settings are refused
    assert synthesize(cfg, tmp_path / "ds", progress=False).shards_written == 0
    with pytest.raises(GanfactoryError, match="other settings"):
        synthesize(config(interp_dir, truncation_psi=0.5), tmp_path / "ds", progress=False)


def test_local_processes_write_the_bytes_of_one_process(interp_dir, tmp_path):
    cfg = config(interp_dir, seeds=tuple(range(0, 16)), candidates_per_shard=4)
    synthesize(cfg, tmp_path / "one", progress=False)
    synthesize(cfg, tmp_path / "two", workers=2, progress=False)
    a, b = tree_bytes(tmp_path / "one"), tree_bytes(tmp_path / "two")
    assert len(a) > 40 and a == b


def test_ray_two_workers_write_the_local_bytes(interp_dir, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ganfactory[ray]')")
    cfg = config(interp_dir, seeds=tuple(range(0, 16)), candidates_per_shard=4)
    synthesize(cfg, tmp_path / "local", progress=False)
    report = synthesize(cfg, tmp_path / "ray", backend="ray", workers=2, progress=False)
    assert report.shards_written == 4 and not ray.is_initialized()
    assert tree_bytes(tmp_path / "local") == tree_bytes(tmp_path / "ray")


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_sigkill_then_resume_equals_an_uninterrupted_run(interp_dir, tmp_path, workers):
    cmd = [sys.executable, "-m", "ganfactory.cli", "synthesize", "--ckpt", "tiny32", "--interpreter", str(interp_dir),
           "--seeds", "0-99", "--shard-size", "5", "--filter", "0.2", "--trunc", "0.8", "--noise-mode", "random",
           "--batch", "4", "--webdataset", "--quiet", "--workers", str(workers)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([*cmd, "--out", str(tmp_path / "full")], check=True, env=env, capture_output=True)
    proc = subprocess.Popen([*cmd, "--out", str(tmp_path / "killed")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    mark = tmp_path / "killed/meta/00001.jsonl"
    deadline = time.time() + 60
    while not mark.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert mark.exists(), "the run never committed a shard"
    assert not (tmp_path / "killed/dataset.json").exists(), "the run finished before the kill; make it longer"
    done = len(list((tmp_path / "killed/meta").glob("*.jsonl")))
    assert 1 <= done < 20, f"{done} of 20 shards were committed before the kill"
    subprocess.run([*cmd, "--out", str(tmp_path / "killed")], check=True, env=env, capture_output=True)
    assert tree_bytes(tmp_path / "killed") == tree_bytes(tmp_path / "full")
    ds = LabeledDataset(tmp_path / "killed")
    assert len(ds) == 80 and len(set(ds.ids)) == 80


def test_compact_seeds_and_bad_settings(interp_dir, tmp_path):
    assert compact_seeds((0, 1, 2, 5, 7, 8)) == "0-2,5,7-8"
    with pytest.raises(GanfactoryError, match="repeat"):
        config(interp_dir, seeds=(1, 1))
    with pytest.raises(GanfactoryError, match="backend"):
        synthesize(config(interp_dir), tmp_path / "x", backend="spark")
    with pytest.raises(GanfactoryError, match="--address"):
        synthesize(config(interp_dir), tmp_path / "x", address="auto")


def test_cli_interpreter_train_predict_and_errors(interp_dir, tmp_path):
    from ganfactory.cli import main

    G = load_generator("tiny32")
    make_cluster_annotations(G, tmp_path / "ann", range(4), 2)
    assert main(["interpreter", "train", "--ckpt", "tiny32", "--annotations", str(tmp_path / "ann"), "--out",
                 str(tmp_path / "interp"), "--models", "1", "--pixels-per-image", "64", "--epochs", "1",
                 "--quiet"]) == 0
    assert (tmp_path / "interp/weights.safetensors").is_file()
    assert main(["interpreter", "predict", "--ckpt", "tiny32", "--interpreter", str(interp_dir), "--seeds", "3-4",
                 "--out", str(tmp_path / "pred")]) == 0
    scores = json.loads((tmp_path / "pred/scores.json").read_text())
    assert list(scores) == ["seed0003", "seed0004"] and (tmp_path / "pred/overlay_grid.png").is_file()
    # a real image without a latent (imported, not inverted yet) is skipped, not an error
    store = AnnotationSet(tmp_path / "ann")
    store.add("photo", None, np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32), np.uint8))
    assert main(["interpreter", "predict", "--ckpt", "tiny32", "--interpreter", str(tmp_path / "interp"),
                 "--annotations", str(tmp_path / "ann"), "--out", str(tmp_path / "pred2")]) == 0
    summary = json.loads((tmp_path / "pred2/scores.json").read_text())["summary"]
    assert summary["items"] == 4 and 0 <= summary["pixel_accuracy"] <= 1
    assert main(["generate", "--ckpt", "tiny32", "--seeds", "7-8", "--noise-mode", "random", "--out",
                 str(tmp_path / "gen")]) == 0
    assert main(["interpreter", "predict", "--ckpt", "tiny32", "--interpreter", str(interp_dir), "--latents",
                 str(tmp_path / "gen/latents.npz"), "--out", str(tmp_path / "pred3")]) == 0
    assert (tmp_path / "pred3/seed0008.png").read_bytes() == (tmp_path / "gen/seed0008.png").read_bytes()
    assert main(["interpreter", "train", "--ckpt", "tiny32", "--annotations", str(tmp_path), "--out",
                 str(tmp_path / "i2")]) == 2
    assert main(["synthesize", "--ckpt", "tiny32", "--interpreter", str(tmp_path / "nope"), "--seeds", "0-3",
                 "--out", str(tmp_path / "ds")]) == 2
