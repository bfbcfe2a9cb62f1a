"""Networks, training, checkpoints, resume and the segment CLI on a small learnable dataset."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from ganfactory.cli import main
from ganfactory.downstream import (
    ModelSpec,
    TrainConfig,
    create_model,
    evaluate,
    load_data,
    load_segmenter,
    train_network,
)
from ganfactory.errors import GanfactoryError

SMALL = TrainConfig(widths=(8, 16, 32), iterations=120, batch_size=8, learning_rate=5e-3, log_every=20,
                    val_every=60, checkpoint_every=50)


@pytest.mark.parametrize("arch", ["unet", "deeplabv3"])
def test_networks_map_images_to_class_and_keypoint_maps(arch):
    spec = ModelSpec(arch, num_classes=5, num_keypoints=3, widths=(4, 8))
    torch.manual_seed(0)
    out = create_model(spec).eval()(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 8, 32, 32)


def test_unet_rejects_indivisible_sizes():
    with pytest.raises(GanfactoryError, match="divisible by 4"):
        create_model(ModelSpec("unet", 2, widths=(4, 8, 16)))(torch.zeros(1, 3, 18, 18))
    with pytest.raises(GanfactoryError, match="unknown architecture"):
        ModelSpec("resnet")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shapes_train, shapes_test):
    out = tmp_path_factory.mktemp("run") / "net"
    result = train_network(load_data(shapes_train), out, SMALL, val=load_data(shapes_test), progress=False)
    return out, result


def test_training_learns_segmentation_and_keypoints(trained, shapes_test):
    out, result = trained
    assert result.history[-1]["loss"] < 0.6 * result.history[0]["loss"]
    scores = evaluate(load_segmenter(out), load_data(shapes_test), keep=3)
    assert scores["miou"] > 0.85 and scores["pixel_accuracy"] > 0.95
    assert scores["pck"]["pck"] > 0.5 and scores["pck"]["scored"] == 16 + 8     # right corners: even seeds only
    assert scores["predictions"]["labels"].shape == (3, 16, 16)
    assert result.validation["miou"] == pytest.approx(scores["miou"])
    cm = np.array(scores["confusion"])
    assert cm.sum() == 16 * 16 * 16
    assert scores["pixel_accuracy"] == pytest.approx(np.trace(cm) / cm.sum())


def test_files_and_reload(trained, shapes_test):
    out, result = trained
    record = json.loads((out / "model.json").read_text())
    assert record["format"] == "ganfactory.downstream" and record["config"]["iterations"] == 120
    assert record["train_samples"] == 48 and record["spec"]["num_keypoints"] == 2
    assert not (out / "checkpoint.pt").exists()
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [20, 40, 60, 80, 100, 120]
    seg = load_segmenter(out)
    a, ka = seg.predict(load_data(shapes_test).images)
    b, kb = seg.predict(load_data(shapes_test).images, batch_size=5)
    assert np.array_equal(a, b) and np.allclose(ka, kb, atol=1e-5)
    assert not seg.model.training


def test_finished_run_is_kept_and_other_settings_refused(trained, shapes_train, shapes_test):
    out, result = trained
    before = (out / "model.safetensors").read_bytes()
    same = train_network(load_data(shapes_train), out, SMALL, val=load_data(shapes_test), progress=False)
    assert same.final_loss == result.final_loss and same.seconds == 0.0
    assert (out / "model.safetensors").read_bytes() == before
    with pytest.raises(GanfactoryError, match="other settings"):
        train_network(load_data(shapes_train), out, TrainConfig(iterations=5), progress=False)


def test_predictions_resize_to_the_input(trained, shapes_test):
    seg = load_segmenter(trained[0])
    data = load_data(shapes_test, 32)
    labels, kps = seg.predict(data.images)
    assert labels.shape == (16, 32, 32) and kps.shape == (16, 2, 3)
    scores = evaluate(seg, data)
    assert scores["miou"] > 0.8


def _train_cmd(data, out):
    return [sys.executable, "-m", "ganfactory.cli", "segment", "train", "--data", str(data), "--out", str(out),
            "--iterations", "400", "--batch", "8", "--widths", "8,16,32", "--checkpoint-every", "10", "--quiet"]


def test_killed_run_resumes_to_the_same_bytes(tmp_path, shapes_train):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = subprocess.run(_train_cmd(shapes_train.root, tmp_path / "whole"), env=env, capture_output=True,
                           text=True)
    assert whole.returncode == 0, whole.stderr
    # SIGINT back to its default in the child: a shell that starts the test suite in the background hands down
    # SIGINT ignored, and Python then never raises KeyboardInterrupt
    proc = subprocess.Popen(_train_cmd(shapes_train.root, tmp_path / "killed"), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not (tmp_path / "killed" / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before the kill; make it longer"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 130
    assert not (tmp_path / "killed" / "model.json").exists()
    resumed = subprocess.run(_train_cmd(shapes_train.root, tmp_path / "killed"), env=env, capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "killed" / "model.safetensors").read_bytes() == (tmp_path / "whole" /
                                                                       "model.safetensors").read_bytes()
    def losses(run):
        return [(r["iteration"], r["loss"]) for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())]

    assert losses(tmp_path / "killed") == losses(tmp_path / "whole")       # no rows twice, same trajectory


def test_segment_cli_train_eval_and_bad_input(tmp_path, shapes_train, shapes_test, capsys):
    run = tmp_path / "run"
    assert main(["segment", "train", "--data", str(shapes_train.root), "--out", str(run), "--iterations", "20",
                 "--batch", "8", "--widths", "8,16", "--quiet"]) == 0
    assert main(["segment", "eval", "--model", str(run), "--data", str(shapes_test.root),
                 "--out", str(tmp_path / "scores.json")]) == 0
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert set(scores["per_class_iou"]) == {"background", "box", "disc"} and 0 <= scores["miou"] <= 1
    assert "pck" in scores
    # synthesized data: samples above an uncertainty are skipped (the fixture's uncertainty is seed / 100)
    assert main(["segment", "train", "--data", str(shapes_train.root), "--out", str(tmp_path / "certain"),
                 "--iterations", "2", "--batch", "4", "--widths", "8,16", "--max-uncertainty", "0.2", "--quiet"]) == 0
    assert json.loads((tmp_path / "certain" / "model.json").read_text())["train_samples"] == 21     # seeds 0..20
    capsys.readouterr()
    assert main(["segment", "eval", "--model", str(tmp_path / "nothing"), "--data", str(shapes_test.root)]) == 2
    err = capsys.readouterr().err
    assert "no model.json" in err and len(err.strip().splitlines()) == 1
    assert main(["segment", "train", "--data", str(tmp_path / "missing"), "--out", str(run)]) == 2
    assert main(["segment", "train", "--data", str(shapes_train.root), "--out", str(tmp_path / "r2"),
                 "--widths", "8,x"]) == 2
