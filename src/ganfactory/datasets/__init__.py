"""Datasets: the cars benchmark built from TORCS' cars.

``assemble_car`` (body, wheels, part labels, keypoints), ``sample_variation`` (everything a seed
decides) and ``render_car_sample`` (image, label map, keypoints with visibility, camera). The generic
LabeledDataset format (``labeled``: writer, reader, COCO) and the split builder (``build_split``, behind
``ganfactory cars build``) build on these.
"""

from ganfactory.datasets.build import BuildSettings, build_split, car_sample_record, cars_schema, split_car_ids
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
from ganfactory.datasets.cars import (
    CarSample,
    RenderSettings,
    camera_for,
    contact_sheet,
    render_car_sample,
)
from ganfactory.datasets.labeled import (
    LabeledDataset,
    LabeledDatasetError,
    LabeledSample,
    write_coco,
    write_labeled_dataset,
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
    "BuildSettings",
    "Car",
    "CarSample",
    "CarSpec",
    "LabeledDataset",
    "LabeledDatasetError",
    "LabeledSample",
    "LightSpec",
    "RenderSettings",
    "SampleVariation",
    "SplitSpec",
    "TorcsNotFound",
    "VariationSettings",
    "WheelSpec",
    "assemble_car",
    "build_split",
    "camera_for",
    "car_sample_record",
    "cars_schema",
    "class_names",
    "classify_body_object",
    "classify_wheel_object",
    "coarse_from_fine",
    "contact_sheet",
    "find_torcs_root",
    "procedural_wheel",
    "read_car_spec",
    "read_torcs_params",
    "render_car_sample",
    "sample_variation",
    "save_car_mesh",
    "split_car_ids",
    "split_seeds",
    "write_coco",
    "write_labeled_dataset",
]
