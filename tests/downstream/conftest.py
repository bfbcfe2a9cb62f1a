"""A small real LabeledDataset whose labels are a simple function of the image (learnable in seconds)."""

import numpy as np
import pytest

from ganfactory.datasets.labeled import LabeledDataset, LabeledSample, write_labeled_dataset
from ganfactory.schema import Schema

SHAPES_SCHEMA = Schema.from_names(["background", "box", "disc"], {"box": (255, 0, 0), "disc": (0, 0, 255)},
                                  ["corner_left", "corner_right"])


def shapes_sample(seed: int, size: int = 16) -> LabeledSample:
    """A red box (class 1) and a blue disc (class 2) on grey noise; keypoints: the box's top corners (the right
    one hidden for odd seeds)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(90, 140, size=(size, size, 3)).astype(np.uint8)
    label = np.zeros((size, size), np.uint8)
    x0, y0 = rng.integers(1, size // 2, size=2)
    w, h = rng.integers(size // 4, size // 2, size=2)
    label[y0:y0 + h, x0:x0 + w] = 1
    cx, cy = rng.integers(size // 4, 3 * size // 4, size=2)
    yy, xx = np.mgrid[:size, :size]
    label[(xx - cx) ** 2 + (yy - cy) ** 2 <= (size // 6) ** 2] = 2
    image[label == 1] = (220, 30, 30)
    image[label == 2] = (30, 30, 220)
    kps = [[float(x0), float(y0), 1], [float(x0 + w - 1), float(y0), int(seed % 2 == 0)]]
    return LabeledSample(id=f"s{seed:04d}", image=image, label=label, keypoints=kps, uncertainty=seed / 100)


def write_shapes(root, count: int, size: int = 16, first: int = 0) -> LabeledDataset:
    write_labeled_dataset(root, SHAPES_SCHEMA, count, lambda i: shapes_sample(first + i, size), shard_size=16)
    return LabeledDataset(root)


@pytest.fixture(scope="session")
def shapes_train(tmp_path_factory) -> LabeledDataset:
    return write_shapes(tmp_path_factory.mktemp("shapes") / "train", 48)


@pytest.fixture(scope="session")
def shapes_test(tmp_path_factory) -> LabeledDataset:
    return write_shapes(tmp_path_factory.mktemp("shapes") / "test", 16, first=1000)
