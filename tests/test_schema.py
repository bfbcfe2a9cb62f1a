"""The schema every labeled format shares: its rules, its JSON, and remaps between class sets."""

import numpy as np
import pytest

from ganfactory.datasets.parts import CARS8, CARS13, CLASS_MERGES
from ganfactory.schema import ClassInfo, Schema, SchemaError, remap_table


def test_schema_rules():
    with pytest.raises(SchemaError, match="class id 0"):            # moved from tests/datasets/test_labeled.py
        Schema.from_names([])
    with pytest.raises(SchemaError, match="unique"):
        Schema((ClassInfo(0, "a", (0, 0, 0)), ClassInfo(0, "b", (1, 1, 1))))
    with pytest.raises(SchemaError, match="uint8"):
        Schema((ClassInfo(0, "a", (0, 0, 0)), ClassInfo(300, "b", (1, 1, 1))))
    with pytest.raises(SchemaError, match="need id, name and color"):
        Schema.from_json({"classes": [{"id": 0}]})
    s = Schema.from_names(["background", "x"], keypoints=["k"])
    assert Schema.from_json(s.to_json()) == s


def test_the_registered_merge_maps_every_fine_class():
    merge = CLASS_MERGES["cars-8"]
    fine, coarse = Schema.from_names(CARS13), merge.schema()
    table = remap_table(fine, coarse, merge.mapping)
    assert [c.name for c in coarse.classes] == list(CARS8)
    assert set(np.unique(table[: len(CARS13)]).tolist()) == set(range(len(CARS8)))
    with pytest.raises(SchemaError, match="not a class of the target schema"):
        remap_table(fine, Schema.from_names(["background"]), {})
