"""LabeledDataset: images, label maps, keypoints and free per-sample metadata in a sharded directory.

Why this shape: the same writer serves the rendered cars benchmark and, later, the synthetic data of
the factory, so nothing here knows about cars; everything a producer wants to remember about a sample
goes into its metadata dict. Every file is one an ordinary tool opens (PNG, JSON lines, COCO JSON).

Layout (``FORMAT`` version ``FORMAT_VERSION``)::

    DIR/dataset.json            {"format", "format_version", "schema": {"classes": [{"id", "name", "color"}],
                                 "keypoints": [names]}, "count", "shard_size", "shards": [{"name", "count"}],
                                 "coco": "coco.json" | null, "provenance": {...}}
    DIR/images/<shard>/<id>.png RGB, H x W
    DIR/labels/<shard>/<id>.png mode L, H x W, uint8 class ids of the schema
    DIR/meta/<shard>.jsonl      one line per sample, in dataset order: {"id", "keypoints": [[x, y, visible], ...],
                                 "uncertainty": float | null, "latent": any JSON | null, ...free metadata}
    DIR/coco.json               optional COCO: one instance per (image, class present) as compressed RLE, plus
                                 one instance of the whole object (foreground = label > 0) carrying the keypoints

Conventions: class id 0 is the background (unlabelled) class and has no COCO category. Keypoints are
``[x, y, visible]`` with x, y in pixels, pixel centres at integer coordinates (OpenCV), ``visible`` 0 or 1;
an unavailable keypoint is ``[null, null, 0]``. COCO's coordinates put pixel centres at +0.5, so the
COCO file holds ``x + 0.5, y + 0.5`` with COCO's visibility (0 unavailable, 1 hidden, 2 visible).

Atomicity and resume: samples are written in shards of ``shard_size`` (sample ``i`` is in shard
``i // shard_size``). A shard is written under ``DIR/.tmp-<shard>/`` and then renamed into place, its
``meta/<shard>.jsonl`` last: that file is the shard's commit mark. A killed build leaves at most a
temporary directory (or image folders without their meta file), which the next run deletes before it
writes that shard again. ``dataset.json`` is written last, so its presence means "complete"; until then
``dataset.partial.json`` holds the build's header, and a resume with different settings is refused.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ganfactory.atomic import TMP_PREFIX, write_atomic
from ganfactory.errors import GanfactoryError
from ganfactory.formats import check_format_header, read_format_header, reading
from ganfactory.schema import Schema

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "FORMAT",
    "FORMAT_VERSION",
    "DatasetPlan",
    "LabeledDataset",
    "LabeledDatasetError",
    "LabeledSample",
    "coco_from_dataset",
    "finish_dataset",
    "missing_shards",
    "plan_dataset",
    "shard_name",
    "validate_sample",
    "write_coco",
    "write_labeled_dataset",
    "write_shard",
]

FORMAT = "ganfactory.labeled"
FORMAT_VERSION = 1
DEFAULT_SHARD_SIZE = 1000
"""Samples per shard: small enough that a kill loses little work, large enough to keep folders few."""

RESERVED_META_KEYS = ("id", "keypoints", "uncertainty", "latent")
"""Keys of a meta line that the format owns; free metadata may not use them."""

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class LabeledDatasetError(GanfactoryError, ValueError):
    """A LabeledDataset (or a sample for one) that breaks the format; the message says what to fix."""


# ------------------------------------------------------------------------------------------ samples

@dataclass(frozen=True, eq=False)
class LabeledSample:
    """One sample as a producer hands it to the writer."""

    id: str
    """Unique in the dataset; letters, digits, ``.``, ``_``, ``-`` (it becomes a file name)."""
    image: np.ndarray
    """[H, W, 3] uint8 RGB."""
    label: np.ndarray
    """[H, W] uint8 class ids of the schema."""
    keypoints: Sequence[Sequence[float | None]] = ()
    """[K, 3] ``(x, y, visible)`` in the schema's keypoint order (pixel centres at integers; x = y = None
    when unavailable); empty when the schema has no keypoints."""
    uncertainty: float | None = None
    """A producer's per-sample uncertainty (the factory's ensemble disagreement), None for real data."""
    latent: Any = None
    """JSON that regenerates the sample (a seed, or a reference to stored latents), None for real data."""
    meta: dict = field(default_factory=dict)
    """Free JSON metadata (camera, seed, source ...); keys other than RESERVED_META_KEYS."""


def validate_sample(sample: LabeledSample, schema: Schema) -> None:
    """Raise LabeledDatasetError when ``sample`` cannot be written under ``schema``."""
    where = f"sample {sample.id!r}"
    if not isinstance(sample.id, str) or not _ID.match(sample.id):
        raise LabeledDatasetError(f"{where}: ids are letters, digits, '.', '_' and '-' (a file name), "
                                  "starting with a letter or digit")
    image, label = np.asarray(sample.image), np.asarray(sample.label)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise LabeledDatasetError(f"{where}: image must be [H, W, 3] uint8, got {list(image.shape)} {image.dtype}")
    if label.dtype != np.uint8 or label.ndim != 2:
        raise LabeledDatasetError(f"{where}: label must be [H, W] uint8, got {list(label.shape)} {label.dtype}")
    if label.shape != image.shape[:2]:
        raise LabeledDatasetError(f"{where}: label is {label.shape[1]}x{label.shape[0]} but the image is "
                                  f"{image.shape[1]}x{image.shape[0]}; they must have the same size")
    _check_label_ids(label, schema, where)
    if len(sample.keypoints) != len(schema.keypoints):
        raise LabeledDatasetError(f"{where}: {len(sample.keypoints)} keypoints, the schema names "
                                  f"{len(schema.keypoints)} ({', '.join(schema.keypoints) or 'none'})")
    for k, point in enumerate(sample.keypoints):
        if len(point) != 3 or (point[0] is None) != (point[1] is None) or point[2] not in (0, 1):
            raise LabeledDatasetError(f"{where}: keypoint {k} must be [x, y, visible 0|1] (x = y = null when "
                                      f"unavailable), got {list(point)}")
        if point[0] is None and point[2]:
            raise LabeledDatasetError(f"{where}: keypoint {k} is visible but has no position")
        if point[0] is not None and not (np.isfinite(point[0]) and np.isfinite(point[1])):
            raise LabeledDatasetError(f"{where}: keypoint {k} has a non-finite position; use null when unavailable")
    clash = sorted(set(sample.meta) & set(RESERVED_META_KEYS))
    if clash:
        raise LabeledDatasetError(f"{where}: metadata keys {clash} are reserved by the format; rename them")


def _check_label_ids(label: np.ndarray, schema: Schema, where: str) -> None:
    present = np.flatnonzero(np.bincount(label.ravel(), minlength=256))
    outside = [int(v) for v in present if not schema.allowed_ids()[v]]
    if outside:
        raise LabeledDatasetError(f"{where}: label ids {outside} are not classes of the schema "
                                  f"(ids {list(schema.class_ids)})")


def _meta_line(sample: LabeledSample) -> str:
    keypoints = [[None if p[0] is None else float(p[0]), None if p[1] is None else float(p[1]), int(p[2])]
                 for p in sample.keypoints]
    line = {"id": sample.id, "keypoints": keypoints,
            "uncertainty": None if sample.uncertainty is None else float(sample.uncertainty),
            "latent": sample.latent, **sample.meta}
    try:
        return json.dumps(line, separators=(",", ":"), allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as e:
        raise LabeledDatasetError(f"sample {sample.id!r}: metadata is not JSON ({e}); use lists, numbers, "
                                  "strings and None (NaN is not JSON: write null)") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _png_bytes(array: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array), mode).save(buffer, format="PNG")
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------ writing

@dataclass(frozen=True)
class DatasetPlan:
    """A dataset being written: where, what, how many, and how it is sharded."""

    root: Path
    schema: Schema
    count: int
    shard_size: int
    provenance: dict

    @property
    def num_shards(self) -> int:
        return -(-self.count // self.shard_size)

    def shard_range(self, index: int) -> range:
        """Dataset indices of the samples of shard ``index``."""
        return range(index * self.shard_size, min((index + 1) * self.shard_size, self.count))

    def header(self) -> dict:
        """The dataset.json fields fixed before any shard is written."""
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "schema": self.schema.to_json(),
                "count": self.count, "shard_size": self.shard_size, "provenance": self.provenance}


def shard_name(index: int) -> str:
    """``00000``, ``00001``, ... (sorted by name = dataset order)."""
    return f"{index:05d}"


def plan_dataset(root: str | Path, schema: Schema, count: int, shard_size: int = DEFAULT_SHARD_SIZE,
                 provenance: dict | None = None) -> DatasetPlan:
    """Start (or resume) writing a dataset at ``root``.

    Creates ``root`` and records the header in ``dataset.partial.json``; when a build is already there
    (partial or complete) its header must be the same, so that a resume never mixes two settings.
    """
    if count < 1 or shard_size < 1:
        raise LabeledDatasetError(f"count and shard_size must be positive, got {count} and {shard_size}")
    plan = DatasetPlan(Path(root), schema, int(count), int(shard_size),
                       json.loads(json.dumps(provenance or {}, default=_json_default)))
    header = plan.header()
    for name in ("dataset.json", "dataset.partial.json"):
        existing = plan.root / name
        if existing.is_file():
            old = json.loads(existing.read_text())
            differ = sorted(k for k in header if old.get(k) != header[k])
            if differ:
                raise LabeledDatasetError(
                    f"{plan.root} already holds a dataset built with other settings (differing: "
                    f"{', '.join(differ)}); pass another output directory or delete that one")
            return plan
    if plan.root.exists() and not plan.root.is_dir():
        raise LabeledDatasetError(f"{plan.root} is a file; pass a directory for the dataset")
    if plan.root.is_dir() and any(plan.root.iterdir()):
        raise LabeledDatasetError(f"{plan.root} is not empty and holds no dataset build; pass an empty or new "
                                  "directory")
    plan.root.mkdir(parents=True, exist_ok=True)
    write_atomic(plan.root / "dataset.partial.json", _dumps(header))
    return plan


def missing_shards(plan: DatasetPlan) -> list[int]:
    """Shards without their commit mark (``meta/<shard>.jsonl``), in order: what a resume must write."""
    return [i for i in range(plan.num_shards) if not (plan.root / "meta" / f"{shard_name(i)}.jsonl").is_file()]


def write_shard(plan: DatasetPlan, index: int, samples: Iterable[LabeledSample]) -> None:
    """Write shard ``index`` from exactly its samples (``plan.shard_range(index)``), atomically.

    Validates every sample first (ids, sizes, label ids, keypoints). Leftovers of a killed attempt at
    this shard are replaced.
    """
    if not 0 <= index < plan.num_shards:
        raise IndexError(f"shard {index} of a dataset with {plan.num_shards} shards")
    name = shard_name(index)
    tmp = plan.root / f"{TMP_PREFIX}{name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "images").mkdir(parents=True)
    (tmp / "labels").mkdir()
    lines, ids = [], set()
    for sample in samples:
        validate_sample(sample, plan.schema)
        if sample.id in ids:
            raise LabeledDatasetError(f"sample id {sample.id!r} appears twice in shard {name}; ids must be unique")
        ids.add(sample.id)
        (tmp / "images" / f"{sample.id}.png").write_bytes(_png_bytes(np.asarray(sample.image), "RGB"))
        (tmp / "labels" / f"{sample.id}.png").write_bytes(_png_bytes(np.asarray(sample.label), "L"))
        lines.append(_meta_line(sample))
    expected = len(plan.shard_range(index))
    if len(lines) != expected:
        raise LabeledDatasetError(f"shard {name} got {len(lines)} samples, it holds {expected}")
    with open(tmp / "meta.jsonl", "w") as f:
        f.write("".join(line + "\n" for line in lines))
        f.flush()
        os.fsync(f.fileno())
    for kind in ("images", "labels"):
        target = plan.root / kind / name
        target.parent.mkdir(exist_ok=True)
        if target.exists():                      # a killed commit of this shard
            shutil.rmtree(target)
        os.replace(tmp / kind, target)
    (plan.root / "meta").mkdir(exist_ok=True)
    os.replace(tmp / "meta.jsonl", plan.root / "meta" / f"{name}.jsonl")   # the commit mark
    shutil.rmtree(tmp)


def finish_dataset(plan: DatasetPlan, coco_object: str | None = "object") -> Path:
    """Write coco.json (unless ``coco_object`` is None) and then dataset.json; returns dataset.json's path.

    ``coco_object`` names the COCO category of the whole object (foreground, keypoints), e.g. ``"car"``.
    """
    missing = missing_shards(plan)
    if missing:
        raise LabeledDatasetError(f"{plan.root}: shards {[shard_name(i) for i in missing]} are not written yet; "
                                  "run the build again to resume")
    header = plan.header()
    header["shards"] = [{"name": shard_name(i), "count": len(plan.shard_range(i))} for i in range(plan.num_shards)]
    header["coco"] = None if coco_object is None else "coco.json"
    header = {k: header[k] for k in ("format", "format_version", "schema", "count", "shard_size", "shards", "coco",
                                     "provenance")}
    if coco_object is not None:
        write_coco(LabeledDataset(plan.root, header=header), plan.root / "coco.json", coco_object)
    path = plan.root / "dataset.json"
    write_atomic(path, _dumps(header))
    (plan.root / "dataset.partial.json").unlink(missing_ok=True)
    for leftover in plan.root.glob(f"{TMP_PREFIX}*"):
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    return path


def write_labeled_dataset(root: str | Path, schema: Schema, count: int, sample_at: Callable[[int], LabeledSample],
                          shard_size: int = DEFAULT_SHARD_SIZE, provenance: dict | None = None,
                          coco_object: str | None = "object") -> Path:
    """The whole write in one call: ``sample_at(i)`` for every dataset index of the missing shards.

    Resumes a killed build (only missing shards are produced). Producers that parallelise use
    plan_dataset / missing_shards / write_shard / finish_dataset directly.
    """
    plan = plan_dataset(root, schema, count, shard_size, provenance)
    for index in missing_shards(plan):
        write_shard(plan, index, (sample_at(i) for i in plan.shard_range(index)))
    return finish_dataset(plan, coco_object)


def _dumps(data: dict) -> str:
    return json.dumps(data, indent=1, allow_nan=False) + "\n"


# ------------------------------------------------------------------------------------------ reading

class LabeledDataset:
    """Read a LabeledDataset directory: ``ds[i] -> (image [H, W, 3] uint8, label [H, W] uint8, meta dict)``.

    The meta dict is the sample's JSON line (id, keypoints, uncertainty, latent and free metadata).
    The meta files are read at open and each line is parsed on first access (parsing 20,000 lines of cameras
    takes seconds); images and labels are read on access.
    """

    def __init__(self, root: str | Path, header: dict | None = None):
        """``header``: dataset.json's contents to use instead of the file (the writer makes coco.json before
        dataset.json exists)."""
        self.root = Path(root)
        if header is None:
            path = self.root / "dataset.json"
            if not path.is_file():
                partial = (self.root / "dataset.partial.json").is_file()
                raise LabeledDatasetError(
                    f"{self.root}: no dataset.json, so not a complete LabeledDataset"
                    + ("; a build was interrupted there: run it again to resume" if partial else ""))
            header = read_format_header(path, FORMAT, FORMAT_VERSION, LabeledDatasetError, "not a LabeledDataset")
        check_format_header(header, self.root, FORMAT, FORMAT_VERSION, LabeledDatasetError)
        with reading(self.root / "dataset.json", LabeledDatasetError):
            self._open(header)

    def _open(self, header: dict) -> None:
        self.header = header
        self.schema = Schema.from_json(header["schema"])
        self.provenance: dict = header.get("provenance", {})
        self._lines: list[str] = []
        self._shard: list[str] = []
        for shard in header["shards"]:
            path = self.root / "meta" / f"{shard['name']}.jsonl"
            if not path.is_file():
                raise LabeledDatasetError(f"{path} is missing; the dataset is incomplete (rebuild or resume it)")
            lines = [line for line in path.read_text().splitlines() if line]
            if len(lines) != shard["count"]:
                raise LabeledDatasetError(f"{path}: {len(lines)} samples, dataset.json says {shard['count']}")
            self._lines += lines
            self._shard += [shard["name"]] * len(lines)
        if len(self._lines) != header["count"]:
            raise LabeledDatasetError(f"{self.root}: {len(self._lines)} samples in the shards, dataset.json says "
                                      f"{header['count']}")
        self._parsed: list[dict | None] = [None] * len(self._lines)

    def __len__(self) -> int:
        return len(self._lines)

    def _line(self, i: int) -> dict:
        """Sample ``i``'s parsed meta line (cached; callers must not modify it)."""
        i = self._index(i)
        if self._parsed[i] is None:
            where = f"{self.root}/meta/{self._shard[i]}.jsonl: sample {i}"
            try:
                line = json.loads(self._lines[i])
            except (json.JSONDecodeError, RecursionError) as e:
                raise LabeledDatasetError(f"{where} is not JSON ({e})") from None
            if not isinstance(line, dict) or not isinstance(line.get("id"), str) or not _ID.match(line["id"]):
                raise LabeledDatasetError(f"{where} is not a sample record (an object with a file-name id)")
            self._parsed[i] = line
        return self._parsed[i]

    def _index(self, i: int) -> int:
        n = len(self._lines)
        if not -n <= i < n:
            raise IndexError(f"sample {i} of a dataset of {n}")
        return i % n

    @property
    def ids(self) -> list[str]:
        return [self._line(i)["id"] for i in range(len(self))]

    @property
    def coco_path(self) -> Path | None:
        return None if self.header.get("coco") is None else self.root / self.header["coco"]

    def image_path(self, i: int) -> Path:
        i = self._index(i)
        return self.root / "images" / self._shard[i] / f"{self._line(i)['id']}.png"

    def label_path(self, i: int) -> Path:
        i = self._index(i)
        return self.root / "labels" / self._shard[i] / f"{self._line(i)['id']}.png"

    def meta(self, i: int) -> dict:
        """A copy of sample ``i``'s JSON line."""
        self._line(i)
        return json.loads(self._lines[self._index(i)])

    def image(self, i: int) -> np.ndarray:
        """[H, W, 3] uint8."""
        path = self.image_path(i)
        with reading(path, LabeledDatasetError), Image.open(path) as img:
            return np.asarray(img.convert("RGB"))

    def label(self, i: int) -> np.ndarray:
        """[H, W] uint8."""
        path = self.label_path(i)
        with reading(path, LabeledDatasetError), Image.open(path) as img:
            if img.mode != "L":
                raise LabeledDatasetError(f"{path}: label PNGs are mode L (uint8 ids), got {img.mode}")
            return np.asarray(img)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, dict]:
        return self.image(i), self.label(i), self.meta(i)

    def validate(self) -> None:
        """Check every sample on disk (files, modes, sizes, label ids, keypoints, unique ids); raise on the first
        problem, naming the file."""
        with reading(self.root, LabeledDatasetError):
            self._validate()

    def _validate(self) -> None:
        ids = self.ids
        if len(set(ids)) != len(ids):
            dup = next(x for x in ids if ids.count(x) > 1)
            raise LabeledDatasetError(f"{self.root}: sample id {dup!r} appears more than once")
        for i in range(len(self)):
            for path in (self.image_path(i), self.label_path(i)):
                if not path.is_file():
                    raise LabeledDatasetError(f"{path} is missing")
            with Image.open(self.image_path(i)) as img:
                if img.mode != "RGB":
                    raise LabeledDatasetError(f"{self.image_path(i)}: images are RGB PNGs, got mode {img.mode}")
                size = img.size
            label = self.label(i)
            if (label.shape[1], label.shape[0]) != size:
                raise LabeledDatasetError(f"{self.label_path(i)}: {label.shape[1]}x{label.shape[0]} but its image is "
                                          f"{size[0]}x{size[1]}")
            _check_label_ids(label, self.schema, str(self.label_path(i)))
            meta = self._line(i)
            kps = meta.get("keypoints", [])
            if not isinstance(kps, list) or not all(isinstance(p, list) and len(p) == 3 for p in kps):
                raise LabeledDatasetError(f"{self.root}: sample {meta['id']!r}: keypoints are not [x, y, visible] rows")
            if len(meta.get("keypoints", [])) != len(self.schema.keypoints):
                raise LabeledDatasetError(f"{self.root}: sample {meta['id']!r} has {len(meta.get('keypoints', []))} "
                                          f"keypoints, the schema names {len(self.schema.keypoints)}")


# ------------------------------------------------------------------------------------------ COCO

def coco_from_dataset(dataset: LabeledDataset, object_name: str = "object") -> dict:
    """The dataset as a COCO dict that pycocotools loads.

    Categories: one per non-background class (id = class id), plus ``object_name`` (id = max class id + 1)
    with the schema's keypoint names. Annotations: per image, one per class present (its pixels, as
    compressed RLE; bbox and area from the mask) and one for the object (foreground = label > 0) with the
    keypoints (COCO pixel coordinates: ours + 0.5; visibility 0 unavailable or outside, 1 hidden, 2 visible).
    """
    from pycocotools import mask as mask_utils

    classes = [c for c in dataset.schema.classes if c.id != 0]
    object_id = max(dataset.schema.class_ids) + 1
    categories = [{"id": c.id, "name": c.name, "supercategory": "part"} for c in classes]
    categories.append({"id": object_id, "name": object_name, "supercategory": "object",
                       "keypoints": list(dataset.schema.keypoints), "skeleton": []})
    images, annotations = [], []

    def add(image_id: int, category_id: int, mask: np.ndarray, **extra) -> None:
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category_id,
                            "segmentation": {"size": [int(s) for s in rle["size"]],
                                             "counts": rle["counts"].decode("ascii")},
                            "area": float(mask_utils.area(rle)), "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                            "iscrowd": 0, **extra})

    for i in range(len(dataset)):
        label, meta = dataset.label(i), dataset._line(i)
        h, w = label.shape
        image_id = i + 1
        images.append({"id": image_id, "file_name": str(dataset.image_path(i).relative_to(dataset.root)),
                       "width": w, "height": h, "sample_id": meta["id"]})
        for c in classes:
            mask = label == c.id
            if mask.any():
                add(image_id, c.id, mask)
        foreground = label > 0
        keypoints = []
        for x, y, visible in meta.get("keypoints", []):
            inside = x is not None and 0 <= x + 0.5 <= w and 0 <= y + 0.5 <= h
            keypoints += [x + 0.5, y + 0.5, 2 if visible else 1] if inside else [0.0, 0.0, 0]
        if foreground.any():
            add(image_id, object_id, foreground, keypoints=keypoints,
                num_keypoints=sum(1 for v in keypoints[2::3] if v > 0))
    return {"info": {"description": f"{FORMAT} dataset", "version": str(FORMAT_VERSION)},
            "licenses": [], "images": images, "annotations": annotations, "categories": categories}


def write_coco(dataset: LabeledDataset, path: str | Path, object_name: str = "object") -> Path:
    """Write :func:`coco_from_dataset` to ``path`` atomically."""
    path = Path(path)
    write_atomic(path, json.dumps(coco_from_dataset(dataset, object_name), separators=(",", ":")) + "\n")
    return path
