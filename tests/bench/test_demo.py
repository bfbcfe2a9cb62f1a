"""The demo pipeline on the bundled data, with tiny budgets (the real `make demo` is timed in the README)."""

import dataclasses
import json
from pathlib import Path

from ganfactory.bench import run_bench
from ganfactory.cli import main
from ganfactory.cli.demo import DEFAULT_GENERATOR, demo_config, demo_data
from ganfactory.datasets.labeled import LabeledDataset


def test_bundled_data_is_the_benchmark_format():
    few, test = LabeledDataset(demo_data() / "few"), LabeledDataset(demo_data() / "test")
    assert (len(few), len(test)) == (16, 200)
    few.validate()
    assert few.label(0).shape == (64, 64) and len(few.schema.keypoints) == 8
    assert test.provenance["seeds"] == [3_000_000, 3_000_200]


def test_demo_pipeline_small(tmp_path):
    config = demo_config(DEFAULT_GENERATOR, samples=20, iterations=6)
    config = dataclasses.replace(config, inversion_steps=(3, 3), interpreter_models=2, interpreter_epochs=2,
                                 train=dataclasses.replace(config.train, widths=(8, 16, 32, 64)))
    results = run_bench(config, tmp_path / "demo", str(demo_data()), progress=False)
    assert results["test_images"] == 200
    assert set(results["arms"]) == {"few", "inversion", "mixed"} and set(results["protocols"]) == {"seen"}
    for scores in results["arms"].values():
        assert 0 <= scores["miou"] <= 1
    assert results["arms"]["inversion"]["train_samples"] == 18          # 20 candidates, the top 10% dropped
    assert len(results["uncertainty"]["inversion"]["removed"]) == 2
    assert results["arms"]["mixed"]["train_samples"] == 18 + 16 * round(18 / 16)     # real share 0.5
    page = (tmp_path / "demo" / "report" / "index.html").read_text()
    assert "DatasetGAN wins here" in page or "DatasetGAN loses here" in page
    assert json.loads((tmp_path / "demo" / "bench.json").read_text())["config"]["arms"] == ["few", "inversion",
                                                                                          "mixed"]


def test_demo_replaces_its_own_run_with_other_settings(tmp_path, capsys):
    from ganfactory.cli.demo import _start_over_if_changed

    out = tmp_path / "demo"
    old = demo_config(DEFAULT_GENERATOR, samples=20)
    out.mkdir()
    (out / "bench.json").write_text(json.dumps({"config": old.to_json()}))
    _start_over_if_changed(out, old)
    assert out.is_dir()                                           # same settings: resume
    _start_over_if_changed(out, demo_config(DEFAULT_GENERATOR, samples=30))
    assert not out.exists() and "starting over" in capsys.readouterr().out


def test_demo_bad_input(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--samples", "3"]) == 2
    assert "--samples must be at least 10" in capsys.readouterr().err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file.txt").write_text("x")
    assert main(["demo", "--out", str(tmp_path / "busy")]) == 2
    assert "not empty" in capsys.readouterr().err


def test_demo_reconstructs_bundled_images_and_shows_them_from_the_files(tmp_path):
    """The demo's 3-D part: GLBs of the shipped cars64-3d in OUT/reconstructions, a report section naming the viewer
    command; its picture of each GLB (rendered from the y-up file with the camera JSON) is the network's own render
    of its prediction (reconstruct's render.png, object frame) to 8-bit rounding."""
    import numpy as np
    from PIL import Image

    from ganfactory.cli.demo import reconstruct_demo, render_turned

    folder, section = reconstruct_demo(tmp_path, count=2)
    report = json.loads((folder / "reconstruct.json").read_text())
    assert len(report["images"]) == 2 and len(list(folder.glob("*.glb"))) == 2
    assert f"ganfactory view {folder.resolve()}" in section and "<img" in section
    record = report["images"][1]
    (view,) = render_turned(Path(record["glb"]), record["camera"], (0,), 64)
    network = np.asarray(Image.open(Path(record["glb"]).with_name(Path(record["glb"]).stem + ".render.png")))[:, 64:]
    assert np.abs(view.astype(int) - network.astype(int)).max() <= 2
