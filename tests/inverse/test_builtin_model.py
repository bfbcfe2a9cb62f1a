"""The shipped model: loads by name, and reconstructs bundled real renders (never trained on) recognisably."""

from importlib import resources
from pathlib import Path

import torch

from ganfactory.datasets.build import split_car_ids
from ganfactory.datasets.labeled import LabeledDataset
from ganfactory.datasets.variation import sample_variation
from ganfactory.inverse.camera import wrap_degrees
from ganfactory.inverse.metrics3d import hard_iou, silhouettes
from ganfactory.inverse.model import DEFAULT_MODEL, load_model

DEMO_TEST = Path(str(resources.files("ganfactory") / "assets" / "cars64-demo" / "test"))


def demo_scores(net, n: int = 24) -> tuple[float, float]:
    """(mean input-view IoU with the predicted camera, median azimuth error in degrees) on bundled test renders;
    their azimuth comes from the seed (the cars builder's variation), the mask from the label map."""
    ds = LabeledDataset(DEMO_TEST)
    images = torch.stack([torch.from_numpy(ds.image(i).copy()).permute(2, 0, 1) for i in range(n)]).float() / 255
    masks = torch.stack([torch.from_numpy(ds.label(i) != 0) for i in range(n)])
    cars = split_car_ids("test")
    azimuth = torch.tensor([sample_variation(ds.meta(i)["seed"], cars).azimuth_deg for i in range(n)])
    with torch.no_grad():
        pred = net(images)
    iou = hard_iou(silhouettes(net.mesh(pred), pred.camera, net.config.image_size), masks)
    error = wrap_degrees(pred.camera.azimuth_deg - azimuth).abs()
    return float(iou.mean()), float(error.median())


def test_builtin_model_reconstructs_bundled_test_renders():
    net, config = load_model(DEFAULT_MODEL)
    assert config["facts"]["iterations"] > 0
    iou, azimuth_error = demo_scores(net)
    # A network trained for 6 iterations (an ellipsoid at about one camera) scores 0.58 and 68 degrees here.
    assert iou > 0.7 and azimuth_error < 30, (iou, azimuth_error)
