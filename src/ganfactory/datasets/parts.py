"""Part labels of the TORCS cars: the one table to edit when a name is labelled wrong.

Why a table of name rules: the cars' AC3D objects carry names such as ``WIFRONT_s_0`` or
``23FRONTLIGH_s_1`` (truncated by the exporter); a short ordered list of patterns labels all 11 cars
with real part objects, and a few per-car overrides fix what the names get wrong. The rules and
overrides come from inspecting renders (``../shared/notes/torcs-cars.md``).

How a name is labelled: strip the ``_s_<n>`` suffix, upper-case, apply ``OVERRIDES[(car, name)]`` if
present, else the first rule of ``BODY_RULES`` whose regular expression is found in the name, else
``body``. The pseudo-class ``lamp`` becomes ``headlight`` when the object's centroid is in the front
half (x > 0 in the TORCS frame) and ``taillight`` otherwise. Wheel objects use ``WHEEL_RULES``.

Class sets (BENCHMARK.md): ``cars-13`` keeps the fine classes, ``cars-8`` merges them. Class id 0 is
background in both.
"""

from __future__ import annotations

import re

import torch

from ganfactory.render.io.ac3d import clean_ac3d_name
from ganfactory.schema import ClassMerge

__all__ = [
    "BODY_RULES",
    "CARS8",
    "CARS13",
    "CARS13_TO_CARS8",
    "CLASS_COLORS",
    "CLASS_MERGES",
    "CLASS_SETS",
    "LAMP",
    "OVERRIDES",
    "WHEEL_RULES",
    "class_names",
    "classify_body_object",
    "classify_wheel_object",
    "coarse_from_fine",
]

LAMP = "lamp"
"""Pseudo-class of the rules: a headlight or a taillight, decided by where the object is."""

# (regular expression searched in the cleaned, upper-cased name, class); the first match wins.
BODY_RULES: tuple[tuple[str, str], ...] = (
    (r"WIPER|WIGRILL", "trim"),
    (r"LICEN[CS]E|REARENDLICE", "plate"),
    (r"MIRROR", "mirror"),
    (r"LIGHT|LIGH$|FRONTL$|BULB|BULP|ADDITIONALF|REARENDBRAK|WIREARENDBR|REARENDLI", LAMP),
    (r"^WI", "window"),
    (r"BUMPER", "body"),
    (r"WING|SPOIL|WINFFIN", "wing"),
    (r"EXHA|GRILL|INLET|INL$|OUTLET|OUTL$|AIR|AI$|BRAKECOOL|ANTENNA|^HBFRONT", "trim"),
    (r"DRIVER|SEAT|STEER|VOLANT|COCKPIT|CONSOLE|ROLLBAR|GIRTHS|DASHBOARD|INSTRUMENT|CABIN", "interior"),
    (r"BOTTOM|BOTT$|WHEE|DIFFUS|SIDESKIRT", "underbody"),
    (r"INSIDE|INSI$|INNERFRAME|ENGINE|^OBJECT$|^DISK$", "interior"),
    (r"PLATE", "trim"),
)
BODY_DEFAULT = "body"

WHEEL_RULES: tuple[tuple[str, str], ...] = ((r"^TIRE", "tyre"),)
WHEEL_DEFAULT = "rim"

# (car id, cleaned upper-case object name) -> class; found by looking at renders.
OVERRIDES: dict[tuple[str, str], str] = {
    ("car2-trb1", "CARBODY"): "mirror",
    ("car1-trb1", "MESH"): "wing",
    ("car3-trb1", "BODYCOCKPIT"): "body",
    ("car6-trb1", "CONSTOP"): "interior",   # the dashboard console (CONSOLETOP in the other cars)
    ("car6-trb1", "CONSFRONT"): "interior",
    ("155-DTM", "REAR"): "wing",
    ("acura-nsx-sz", "REAR"): "wing",
    ("155-DTM", "BOTTOM"): "body",
    ("acura-nsx-sz", "BOTTOM"): "body",
    ("buggy", "BOTTOM"): "body",
}

CARS13: tuple[str, ...] = ("background", "body", "wing", "window", "headlight", "taillight", "tyre", "rim",
                           "mirror", "plate", "trim", "underbody", "interior")
"""The fine classes; a class id is the index in this tuple."""

CARS8: tuple[str, ...] = ("background", "body", "window", "light", "wheel", "mirror", "plate", "other")

CARS13_TO_CARS8: dict[str, str] = {
    "background": "background", "body": "body", "wing": "body", "window": "window",
    "headlight": "light", "taillight": "light", "tyre": "wheel", "rim": "wheel", "mirror": "mirror",
    "plate": "plate", "trim": "other", "underbody": "other", "interior": "other",
}

CLASS_SETS: dict[str, tuple[str, ...]] = {"cars-8": CARS8, "cars-13": CARS13}

CLASS_COLORS: dict[str, tuple[int, int, int]] = {
    "background": (0, 0, 0), "body": (70, 130, 180), "wing": (0, 80, 160), "window": (0, 220, 220),
    "headlight": (255, 255, 0), "taillight": (255, 60, 0), "light": (255, 200, 0), "tyre": (60, 60, 60),
    "rim": (190, 190, 190), "wheel": (128, 128, 128), "mirror": (255, 0, 255), "plate": (255, 255, 255),
    "trim": (140, 90, 40), "underbody": (90, 60, 120), "interior": (60, 160, 60), "other": (100, 110, 60),
}
"""RGB colour per class name, for overlays and the dataset schema."""

CLASS_MERGES: dict[str, ClassMerge] = {"cars-8": ClassMerge(CARS8, CARS13_TO_CARS8, CLASS_COLORS)}
"""The named class merges of the data sets this package builds (a plain registry: ``--classes`` choices, and the
merges ``ganfactory.downstream.data.table_between`` tries when two schemas' class names differ)."""

_BODY = tuple((re.compile(p), c) for p, c in BODY_RULES)
_WHEEL = tuple((re.compile(p), c) for p, c in WHEEL_RULES)


def class_names(class_set: str) -> tuple[str, ...]:
    """The class names of ``cars-8`` or ``cars-13`` (id = index)."""
    if class_set not in CLASS_SETS:
        raise ValueError(f"unknown class set {class_set!r}; choose one of {sorted(CLASS_SETS)}")
    return CLASS_SETS[class_set]


def classify_body_object(name: str, car_id: str | None = None, centroid_x: float | None = None) -> str:
    """The ``cars-13`` class of a body object name (raw or cleaned).

    ``centroid_x`` (metres, TORCS frame) decides lamps; without it a lamp stays ``lamp``.
    """
    key = clean_ac3d_name(name).upper()
    label = OVERRIDES.get((car_id, key)) if car_id is not None else None
    if label is None:
        label = next((c for pattern, c in _BODY if pattern.search(key)), BODY_DEFAULT)
    if label == LAMP and centroid_x is not None:
        label = "headlight" if centroid_x > 0 else "taillight"
    return label


def classify_wheel_object(name: str) -> str:
    """The ``cars-13`` class of an object of a 3-D wheel file: ``tyre`` or ``rim``."""
    key = clean_ac3d_name(name).upper()
    return next((c for pattern, c in _WHEEL if pattern.search(key)), WHEEL_DEFAULT)


def coarse_from_fine() -> torch.Tensor:
    """[13] int64 lookup table: ``cars8_ids = coarse_from_fine()[cars13_ids]``."""
    return torch.tensor([CARS8.index(CARS13_TO_CARS8[name]) for name in CARS13], dtype=torch.int64)
