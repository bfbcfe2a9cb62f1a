"""Loading, relabelling and augmenting downstream training data."""

import numpy as np
import pytest
import torch

from ganfactory.datasets.car_assembly import KEYPOINT_NAMES
from ganfactory.datasets.parts import CARS8, CARS13
from ganfactory.downstream.data import (
    AugmentConfig,
    augment_batch,
    flip_permutation,
    heatmap_targets,
    load_data,
    relabelled,
    resize_sample,
)
from ganfactory.errors import GanfactoryError
from ganfactory.schema import Schema

NO_COLOUR = dict(brightness=0.0, contrast=0.0, saturation=0.0)


def test_flip_permutation_swaps_left_and_right():
    perm = flip_permutation(KEYPOINT_NAMES)
    for i, j in enumerate(perm):
        a, b = KEYPOINT_NAMES[i], KEYPOINT_NAMES[j]
        assert a.replace("left", "right") == b or a.replace("right", "left") == b
        assert perm[j] == i
    assert flip_permutation(["nose", "eye_left", "eye_right"]) == [0, 2, 1]


def test_relabel_cars13_to_cars8():
    source = Schema.from_names(CARS13, keypoints=["k"])
    schema, table = relabelled(source, "cars-8")
    assert [c.name for c in schema.classes] == list(CARS8) and schema.keypoints == ("k",)
    names = {c.id: c.name for c in schema.classes}
    assert names[table[CARS13.index("wing")]] == "body"
    assert names[table[CARS13.index("tyre")]] == names[table[CARS13.index("rim")]] == "wheel"
    assert names[table[CARS13.index("interior")]] == "other"
    assert table[0] == 0
    with pytest.raises(GanfactoryError, match="unknown class merge"):
        relabelled(source, "cars-5")


def test_resize_keeps_keypoints_on_pixel_centres():
    image = np.zeros((64, 64, 3), np.uint8)
    label = np.zeros((64, 64), np.uint8)
    label[10:20, 30:40] = 3
    kps = np.array([[1.5, 0.5, 1], [np.nan, np.nan, 0]], np.float32)
    im2, lab2, kp2 = resize_sample(image, label, kps, 32)
    assert im2.shape == (32, 32, 3) and lab2.shape == (32, 32)
    np.testing.assert_allclose(kp2[0], [0.5, 0.0, 1])      # the edge between pixels 1|2 -> between 0|1
    assert np.isnan(kp2[1, 0])
    assert (lab2[5:10, 15:20] == 3).all() and lab2.sum() == 3 * 25


def test_load_data_relabels_and_resizes(shapes_train):
    table = np.zeros(256, np.uint8)
    table[2] = 1                                     # the disc becomes class 1, the box background
    schema = Schema.from_names(["background", "disc"], keypoints=shapes_train.schema.keypoints)
    data = load_data(shapes_train, 32, [0, 3], table, schema)
    assert data.images.shape == (2, 32, 32, 3) and data.labels.shape == (2, 32, 32)
    assert data.ids == ("s0000", "s0003")
    assert set(data.labels.unique().tolist()) == {0, 1}
    original = shapes_train.label(3)
    assert data.labels[1].sum() == (original == 2).sum() * 4          # nearest 2x: 4 pixels per pixel
    np.testing.assert_allclose(data.keypoints[1, :, :2], (np.array(shapes_train.meta(3)["keypoints"])[:, :2]
                                                          + 0.5) * 2 - 0.5)


def _batch(n=16, size=16):
    g = torch.Generator().manual_seed(3)
    images = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    labels = torch.randint(0, 5, (n, size, size), generator=g)
    kps = torch.tensor([[[2.0, 3.0, 1], [12.0, 7.0, 1]]]).repeat(n, 1, 1)
    return images, labels, kps


def test_augment_identity_and_exact_flip():
    images, labels, kps = _batch()
    same = AugmentConfig(flip=False, scale=(1.0, 1.0), translate=0.0, **NO_COLOUR)
    x, y, k = augment_batch(images, labels, kps, same, torch.Generator().manual_seed(0))
    torch.testing.assert_close(x, images, atol=1e-5, rtol=0)
    assert torch.equal(y, labels) and torch.equal(k, kps)

    flip = AugmentConfig(flip=True, scale=(1.0, 1.0), translate=0.0, **NO_COLOUR)
    x, y, k = augment_batch(images, labels, kps, flip, torch.Generator().manual_seed(0), flip_perm=[1, 0])
    flipped = [not torch.equal(y[i], labels[i]) for i in range(len(y))]
    assert 0 < sum(flipped) < len(flipped)
    for i, f in enumerate(flipped):
        ref_x, ref_y = (images[i].flip(-1), labels[i].flip(-1)) if f else (images[i], labels[i])
        torch.testing.assert_close(x[i], ref_x, atol=1e-5, rtol=0)
        assert torch.equal(y[i], ref_y)
        if f:   # x -> w - 1 - x, and the two points swap names
            torch.testing.assert_close(k[i], torch.tensor([[3.0, 7.0, 1], [13.0, 3.0, 1]]))


def test_augment_moves_keypoints_with_the_labels():
    n, size = 32, 32
    labels = torch.zeros(n, size, size, dtype=torch.long)
    kps = torch.tensor([[[9.0, 12.0, 1], [22.0, 20.0, 1]]]).repeat(n, 1, 1)
    labels[:, 11:14, 8:11] = 1
    labels[:, 19:22, 21:24] = 2
    images = labels[:, None].float().repeat(1, 3, 1, 1) / 2 - 1
    config = AugmentConfig(scale=(0.7, 1.4), translate=0.15)
    x, y, k = augment_batch(images, labels, kps, config, torch.Generator().manual_seed(1), flip_perm=[0, 1])
    checked = 0
    for i in range(n):
        for j, cls in enumerate((1, 2)):
            px, py, vis = k[i, j].tolist()
            if vis:
                assert y[i, round(py), round(px)] == cls
                checked += 1
            else:
                assert not (-0.5 <= px <= size - 0.5 and -0.5 <= py <= size - 0.5)
    assert checked > n


def test_heatmap_targets():
    kps = torch.tensor([[[2.0, 3.0, 1], [5.0, 1.0, 0], [float("nan"), float("nan"), 0]]])
    target, visible = heatmap_targets(kps, 8, 8, sigma=1.0)
    assert visible.tolist() == [[True, False, False]]
    assert target[0, 0, 3, 2] == 1.0 and target[0, 0].argmax() == 3 * 8 + 2
    assert target[0, 0, 3, 3] == pytest.approx(np.exp(-0.5))
    assert target[0, 1].sum() == 0 and target[0, 2].sum() == 0
