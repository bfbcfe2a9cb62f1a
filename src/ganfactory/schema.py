"""What every labeled format shares: the classes of label maps, the keypoint names, and remaps between class sets.

Why its own module: the AnnotationSet, the LabeledDataset, the interpreter, the downstream models and the importers
all store or check a schema; none of them should have to import another's format to get it.

Conventions (every format follows them): class id 0 is the background; label maps hold uint8 class ids; keypoints
are named in the schema's order and stored per image as ``[x, y, visible]`` in pixels with pixel centres at integers
(``ganfactory.keypoints`` converts them to arrays).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ganfactory.errors import GanfactoryError

__all__ = ["ClassInfo", "ClassMerge", "Schema", "SchemaError", "default_color", "remap_table"]


class SchemaError(GanfactoryError, ValueError):
    """A schema (or a remap between schemas) that breaks the rules; the message says what to fix."""


@dataclass(frozen=True)
class ClassInfo:
    """One class of the label maps."""

    id: int
    """The uint8 value in label PNGs (0 = background)."""
    name: str
    color: tuple[int, int, int]
    """RGB for overlays."""


@dataclass(frozen=True)
class Schema:
    """What label values and keypoints mean; stored in dataset.json."""

    classes: tuple[ClassInfo, ...]
    keypoints: tuple[str, ...] = ()
    """Keypoint names, in the order of every sample's keypoint list."""

    def __post_init__(self) -> None:
        ids = [c.id for c in self.classes]
        names = [c.name for c in self.classes]
        if not self.classes or 0 not in ids:
            raise SchemaError("a schema needs class id 0 (the background); add it to the classes")
        if len(set(ids)) != len(ids) or len(set(names)) != len(names):
            raise SchemaError(f"class ids and names must be unique, got {list(zip(ids, names, strict=True))}")
        if not all(0 <= i <= 255 for i in ids):
            raise SchemaError(f"class ids are uint8 values 0..255, got {ids}")
        if len(set(self.keypoints)) != len(self.keypoints):
            raise SchemaError(f"keypoint names must be unique, got {list(self.keypoints)}")

    @classmethod
    def from_names(cls, names: Sequence[str], colors: dict[str, tuple[int, int, int]] | None = None,
                   keypoints: Sequence[str] = ()) -> Schema:
        """Classes with id = position in ``names`` (``names[0]`` is the background)."""
        colors = colors or {}
        return cls(tuple(ClassInfo(i, n, tuple(colors.get(n, default_color(i)))) for i, n in enumerate(names)),
                   tuple(keypoints))

    @property
    def class_ids(self) -> tuple[int, ...]:
        return tuple(c.id for c in self.classes)

    def allowed_ids(self) -> np.ndarray:
        """[256] bool: which uint8 label values the schema defines."""
        table = np.zeros(256, dtype=bool)
        table[list(self.class_ids)] = True
        return table

    def to_json(self) -> dict:
        return {"classes": [{"id": c.id, "name": c.name, "color": list(c.color)} for c in self.classes],
                "keypoints": list(self.keypoints)}

    @classmethod
    def from_json(cls, data: dict) -> Schema:
        try:
            classes = tuple(ClassInfo(int(c["id"]), str(c["name"]), tuple(int(v) for v in c["color"]))
                            for c in data["classes"])
        except (KeyError, TypeError, ValueError) as e:
            raise SchemaError(f"schema classes need id, name and color (RGB) each: {e}") from None
        return cls(classes, tuple(str(k) for k in data.get("keypoints", ())))


def default_color(i: int) -> tuple[int, int, int]:
    rng = np.random.default_rng([i, 7])
    return (0, 0, 0) if i == 0 else tuple(int(v) for v in rng.integers(40, 256, size=3))


@dataclass(frozen=True)
class ClassMerge:
    """A named merge of a fine class set into a coarse one (the cars benchmark's cars-13 -> cars-8, say); the
    data sets that define class sets register theirs in ``ganfactory.datasets.CLASS_MERGES``."""

    names: tuple[str, ...]
    """The coarse classes, ``names[0]`` the background."""
    mapping: dict[str, str]
    """Fine class name -> coarse class name; a fine class missing here keeps its name."""
    colors: dict[str, tuple[int, int, int]]

    def schema(self, keypoints: Sequence[str] = ()) -> Schema:
        return Schema.from_names(self.names, self.colors, keypoints)


def remap_table(source: Schema, target: Schema, mapping: dict[str, str]) -> np.ndarray:
    """[256] uint8 lookup: source class id -> target class id, by class *names* (``mapping`` source name ->
    target name; a source class missing from ``mapping`` keeps its name). Unmapped ids map to 0."""
    table = np.zeros(256, np.uint8)
    target_ids = {c.name: c.id for c in target.classes}
    for c in source.classes:
        name = mapping.get(c.name, c.name)
        if name not in target_ids:
            raise SchemaError(f"class {c.name!r} maps to {name!r}, which is not a class of the target schema "
                              f"({', '.join(target_ids)})")
        table[c.id] = target_ids[name]
    return table
