"""Datasets: the cars benchmark built from TORCS' cars (assembly, part labels, variation).

The rendering half (images, label maps, the split writer, the ``ganfactory cars`` CLI) builds on
these and on ``ganfactory.render``.
"""

from ganfactory.datasets.car_assembly import (
    CAR_IDS,
    KEYPOINT_NAMES,
    NAMED_CAR_IDS,
    WHEEL_POSITIONS,
    Car,
    CarSpec,
    LightSpec,
    WheelSpec,
    assemble_car,
    procedural_wheel,
    read_car_spec,
    read_torcs_params,
    save_car_mesh,
)
from ganfactory.datasets.parts import (
    CARS8,
    CARS13,
    CARS13_TO_CARS8,
    CLASS_SETS,
    class_names,
    classify_body_object,
    classify_wheel_object,
    coarse_from_fine,
)
from ganfactory.datasets.torcs import DEFAULT_TORCS_ROOT, TorcsNotFound, find_torcs_root
from ganfactory.datasets.variation import (
    SPLITS,
    SampleVariation,
    SplitSpec,
    VariationSettings,
    sample_variation,
    split_seeds,
)

__all__ = [
    "CARS8",
    "CARS13",
    "CARS13_TO_CARS8",
    "CAR_IDS",
    "CLASS_SETS",
    "DEFAULT_TORCS_ROOT",
    "KEYPOINT_NAMES",
    "NAMED_CAR_IDS",
    "SPLITS",
    "WHEEL_POSITIONS",
    "Car",
    "CarSpec",
    "LightSpec",
    "SampleVariation",
    "SplitSpec",
    "TorcsNotFound",
    "VariationSettings",
    "WheelSpec",
    "assemble_car",
    "class_names",
    "classify_body_object",
    "classify_wheel_object",
    "coarse_from_fine",
    "find_torcs_root",
    "procedural_wheel",
    "read_car_spec",
    "read_torcs_params",
    "sample_variation",
    "save_car_mesh",
    "split_seeds",
]
