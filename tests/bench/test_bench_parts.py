"""Pieces of the cars benchmark that need no run: arm 4's mixed batches, the keypoints' classes, the settings'
checks, the report's verdict, the annotator's honest visibility."""

import numpy as np
import pytest
import torch

from ganfactory.bench import BenchConfig, keypoint_classes, mixed_data
from ganfactory.datasets.build import cars_schema
from ganfactory.downstream.data import SegmentationData
from ganfactory.errors import GanfactoryError
from ganfactory.report.bench import datasetgan_verdict


def _data(n, value, schema):
    return SegmentationData(torch.full((n, 4, 4, 3), value, dtype=torch.uint8),
                            torch.full((n, 4, 4), value, dtype=torch.uint8), torch.zeros(n, 8, 3), schema,
                            tuple(f"{value}-{i}" for i in range(n)))


def test_mixed_data_gives_the_real_images_their_share_of_every_batch():
    schema = cars_schema("cars-8")
    mixed = mixed_data(_data(90, 1, schema), _data(3, 2, schema), 0.25)
    real = (mixed.labels[:, 0, 0] == 2).sum().item()
    assert real == 3 * 10 and len(mixed) == 120                # 30 real of 120 = the share asked for
    assert len(set(mixed.ids)) == len(mixed)                   # repeats get their own ids
    with pytest.raises(GanfactoryError, match="different classes"):
        mixed_data(_data(4, 1, schema), _data(2, 1, cars_schema("cars-13")), 0.5)


def test_keypoint_classes_name_each_points_part():
    s8, s13 = cars_schema("cars-8"), cars_schema("cars-13")
    ids8 = {c.name: c.id for c in s8.classes}
    ids13 = {c.name: c.id for c in s13.classes}
    k8, k13 = keypoint_classes(s8), keypoint_classes(s13)
    names = list(s8.keypoints)
    hub, head, tail = names.index(next(n for n in names if n.startswith("hub"))), \
        names.index(next(n for n in names if n.startswith("headlight"))), \
        names.index(next(n for n in names if n.startswith("taillight")))
    assert k8[hub] == (ids8["wheel"],) and k8[head] == k8[tail] == (ids8["light"],)
    assert set(k13[hub]) == {ids13["tyre"], ids13["rim"]} and k13[tail] == (ids13["taillight"],)


def test_settings_are_checked():
    with pytest.raises(GanfactoryError, match="inversion"):
        BenchConfig("g", arms=("few", "mixed"))
    with pytest.raises(GanfactoryError, match="protocols"):
        BenchConfig("g", protocols=("others",))
    with pytest.raises(GanfactoryError, match="noise mode"):
        BenchConfig("g", noise_mode="none")
    with pytest.raises(GanfactoryError, match="full"):
        BenchConfig("g", arms=("few", "inversion"), sweep_generators=("a", "b"))
    d = BenchConfig("g").to_json()
    assert (d["truncation_psi"], d["truncation_layers"], d["noise_mode"]) == (0.7, "coarse", "random")
    assert d["protocols"] == ["seen", "unseen"] and d["arms"] == ["few", "inversion", "annotator", "mixed", "full"]


def test_verdict_says_who_wins_and_where():
    few = {"miou": 0.40, "per_class_iou": {"wheel": 0.5, "light": 0.3, "body": 0.6}}
    worse = {"miou": 0.35, "per_class_iou": {"wheel": 0.3, "light": 0.25, "body": 0.62}}
    better = {"miou": 0.47, "per_class_iou": {"wheel": 0.5, "light": 0.45, "body": 0.6}}
    lose = datasetgan_verdict({"few": few, "inversion": worse})
    assert lose.startswith("DatasetGAN loses here") and "0.050 below" in lose and "wheel -0.20" in lose
    win = datasetgan_verdict({"few": few, "inversion": worse, "mixed": better})
    assert win.startswith("DatasetGAN wins here") and "+0.070" in win and "light +0.15" in win
    assert datasetgan_verdict({"inversion": worse}) is None


class _Segmenter:
    """Labels a fixed map: a wheel blob at (8, 8), body elsewhere on the car; keypoints at fixed places."""

    def __init__(self, schema):
        self.schema = schema

    def predict(self, images):
        n, h, w = images.shape[:3]
        labels = np.zeros((n, h, w), np.uint8)
        labels[:, 4:28, 4:28] = 1                       # body
        labels[:, 7:10, 7:10] = 4                       # wheel
        kps = np.zeros((n, 8, 3), np.float32)
        kps[:, :, 0] = [8, 20, 8, 20, 40, 12, 12, 12]   # hub 0 on the wheel, hub 1 on the body, ...
        kps[:, :, 1] = [8, 20, 8, 20, 1, 12, 12, 12]
        return labels, kps


def test_simulated_annotator_marks_only_points_on_their_part_visible(tmp_path):
    from ganfactory.annotate.store import AnnotationSet
    from ganfactory.annotate.synthetic import make_network_annotations
    from ganfactory.gan import load_generator

    torch.set_num_threads(1)
    G = load_generator("tiny32")
    schema = cars_schema("cars-8")
    assert [c.name for c in schema.classes][4] == "wheel"
    seg = _Segmenter(schema)
    honest = make_network_annotations(G, tmp_path / "a", [1], seg, 0.7, noise_mode="random", truncation_cutoff=2,
                                      keypoint_classes=keypoint_classes(schema))
    old = make_network_annotations(G, tmp_path / "b", [1], seg)
    vis = [p[2] for p in AnnotationSet(tmp_path / "a").record("seed000001")["keypoints"]]
    vis_old = [p[2] for p in AnnotationSet(tmp_path / "b").record("seed000001")["keypoints"]]
    assert vis[:4] == [1, 0, 1, 0] and sum(vis[4:]) == 0            # no light pixel anywhere: no lamp visible
    assert vis_old == [1, 1, 1, 1, 0, 1, 1, 1]                      # the old rule: anywhere on the car
    latent = honest.record("seed000001")["latent"]
    assert latent["noise_mode"] == "random" and latent["truncation_cutoff"] == 2
    assert old.record("seed000001")["latent"]["noise_mode"] == "const"


def test_a_missing_sweep_generator_is_refused_before_any_work(tmp_path, capsys):
    from ganfactory.cli import main

    out = tmp_path / "run"
    assert main(["bench", "cars", "--quick", "--out", str(out), "--sweep-generators", "cars64,/no/such.pt"]) == 2
    assert "no such checkpoint /no/such.pt" in capsys.readouterr().err and not out.exists()
