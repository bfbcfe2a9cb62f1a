"""The labeller's stages run end to end on small data and a finished labeller is reused, not remade."""

import numpy as np
import pytest

from ganfactory.datasets.labeled import LabeledSample, write_labeled_dataset
from ganfactory.errors import GanfactoryError
from ganfactory.inverse.labeller import LabellerSettings, build_labeller
from ganfactory.schema import Schema


def test_stages_and_reuse(tmp_path):
    rng = np.random.default_rng(0)

    def sample(i):
        image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        label = np.zeros((32, 32), np.uint8)
        label[8:24, 6 + i % 4:26] = 1                    # a "car" box on a noisy background
        image[label > 0] = (200, 40, 40)
        return LabeledSample(id=f"r{i}", image=image, label=label, meta={"labels_trusted": i != 3})

    real = tmp_path / "real"
    write_labeled_dataset(real, Schema.from_names(["background", "car"]), 8, sample, coco_object=None)
    settings = LabellerSettings(generator="tiny32", real_data=str(real), classes=None, segmenter_iterations=3,
                                segmenter_widths=(4, 8), annotated=3, interpreter_models=1, interpreter_epochs=1,
                                pixels_per_image=64, layers=("b16.conv1", "b32.conv1"))
    out = build_labeller(settings, tmp_path / "lab", progress=False)
    assert (out / "interpreter.json").is_file()
    assert sorted(p.name for p in (tmp_path / "lab" / "annotations" / "items").iterdir()) == [
        "seed50000000", "seed50000001", "seed50000002"]
    import json

    seg = json.loads((tmp_path / "lab" / "segmenter" / "model.json").read_text())
    assert seg["train_samples"] == 7                     # the untrusted sample is left out
    stamp = (out / "weights.safetensors").stat().st_mtime_ns
    assert build_labeller(settings, tmp_path / "lab", progress=False) == out
    assert (out / "weights.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(GanfactoryError, match="other settings"):
        build_labeller(LabellerSettings(**{**settings.to_json(), "annotated": 4, "layers": settings.layers,
                                           "segmenter_widths": settings.segmenter_widths}),
                       tmp_path / "lab", progress=False)
