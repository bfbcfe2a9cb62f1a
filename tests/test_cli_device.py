"""Every verb of the labelled-data half computes where ``--device`` says, through the CLI: annotation by
inversion, the interpreter (train, predict), synthesis, and the downstream network (train, eval). This machine has
no GPU, so the verbs run with ``--device cpu`` and a CUDA device is refused before any work starts."""

import json

import numpy as np
import pytest
import torch

from ganfactory.annotate.synthetic import make_cluster_annotations
from ganfactory.cli import main
from ganfactory.datasets.labeled import LabeledDataset, LabeledSample, write_labeled_dataset
from ganfactory.gan import load_generator
from ganfactory.gan.sampling import generate, to_uint8


def test_labelling_synthesis_and_downstream_verbs_run_with_device_cpu(tmp_path, capsys):
    torch.set_num_threads(1)
    G = load_generator("tiny32")
    store = make_cluster_annotations(G, tmp_path / "ann", range(4), 2, keypoints=True)
    cpu = ["--device", "cpu"]
    assert main(["interpreter", "train", "--generator", "tiny32", "--annotations", str(store.root), "--out",
                 str(tmp_path / "interp"), "--models", "1", "--pixels-per-image", "64", "--epochs", "1", "--quiet",
                 *cpu]) == 0
    assert main(["interpreter", "predict", "--generator", "tiny32", "--interpreter", str(tmp_path / "interp"),
                 "--annotations", str(store.root), "--out", str(tmp_path / "pred"), *cpu]) == 0
    assert json.loads((tmp_path / "pred" / "scores.json").read_text())["summary"]["items"] == 4
    assert main(["synthesize", "--generator", "tiny32", "--interpreter", str(tmp_path / "interp"), "--seeds", "0-5",
                 "--out", str(tmp_path / "synth"), "--quiet", *cpu]) == 0
    assert len(LabeledDataset(tmp_path / "synth")) == 6
    assert main(["segment", "train", "--data", str(tmp_path / "synth"), "--out", str(tmp_path / "net"),
                 "--iterations", "2", "--batch", "2", "--widths", "4,8", "--quiet", *cpu]) == 0
    assert main(["segment", "eval", "--model", str(tmp_path / "net"), "--data", str(tmp_path / "synth"),
                 "--out", str(tmp_path / "scores.json"), *cpu]) == 0
    assert 0 <= json.loads((tmp_path / "scores.json").read_text())["miou"] <= 1
    # annotation by inversion of real images (here: two generated ones, as a LabeledDataset)
    real = to_uint8(generate(G, [11, 12]).images)
    labels = np.zeros((2, 32, 32), np.uint8)
    write_labeled_dataset(tmp_path / "real", store.schema, 2, lambda i: LabeledSample(
        f"r{i}", real[i], labels[i], [[None, None, 0]] * len(store.schema.keypoints)), coco_object=None)
    assert main(["annotate", "invert", "--generator", "tiny32", "--dataset", str(tmp_path / "real"), "--project",
                 str(tmp_path / "inv"), "--w-steps", "2", "--wplus-steps", "2", "--quiet", *cpu]) == 0
    assert "2 images, mean PSNR" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("verb", [["interpreter", "train", "--generator", "tiny32", "--annotations", "a", "--out",
                                   "o"],
                                  ["synthesize", "--generator", "tiny32", "--interpreter", "i", "--seeds", "0",
                                   "--out", "o"],
                                  ["segment", "eval", "--model", "m", "--data", "d"],
                                  ["bench", "cars", "--out", "o"], ["demo"], ["generate", "--generator", "tiny32",
                                                                             "--seeds", "0", "--out", "o"]])
def test_a_device_this_machine_lacks_is_refused_before_work(verb, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([*verb, "--device", "cuda:0"])
    assert exit_.value.code == 2 and "CUDA is not available" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SystemExit):
        main([*verb, "--device", "gpu"])
    assert "use cpu, cuda or cuda:N" in capsys.readouterr().err
