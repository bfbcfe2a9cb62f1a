"""AnnotationSet: generated images, the latents that regenerate them exactly, and their annotations.

Why this shape: the style interpreter learns from a generator's *features* of an annotated image, so
an annotation is only useful if the latent (and the noise) regenerate that image bit for bit; the
original DatasetGAN redrew noise at every forward pass and its saved latents did not reproduce the
annotated features. Every item therefore stores its latent with its noise, or a seed whose
regeneration is deterministic. The same store serves the interpreter, the browser annotator and the
inversion importer, so nothing here knows about any of them.

Real images (imported from label PNGs, COCO or LabelMe) have no latent until an inversion finds one: their
``latent`` is null and ``origin`` is "real". They are kept out of the training set (``annotated_ids``), since
the interpreter needs the generator's features of the annotated image. ``set_latent`` attaches an inverted
latent later: the generator's image of it becomes ``image.png`` (what the features describe) and the real
photograph is kept as ``real.png``; the labels stay those drawn on the real image.

Layout (``FORMAT`` version ``FORMAT_VERSION``)::

    DIR/schema.json                 {"format", "format_version", "schema": {"classes": [{"id", "name", "color"}],
                                     "keypoints": [names]}, "generator": str | null, "image_size": [H, W] | null}
    DIR/items/<id>/item.json        {"id", "status": "pending" | "annotated" | "skipped",
                                     "origin": "generated" | "real"      (absent = "generated"),
                                     "latent": {"kind": "seed", "seed", "truncation_psi", "noise_mode",
                                                "truncation_cutoff" (optional)}
                                             | {"kind": "ws", "noise_mode"}      (arrays in latent.npz)
                                             | null                              (a real image not inverted yet),
                                     "keypoints": [[x, y, visible], ...] | null, ...free metadata}
    DIR/items/<id>/latent.npz       kind "ws" only: ws [num_ws, w_dim] float32, noise.<layer> [1, 1, H, W] float32
                                     for noise mode 'random'
    DIR/items/<id>/image.png        RGB, the generator's image of the latent (uint8, NVlabs rounding)
    DIR/items/<id>/label.png        mode L, uint8 class ids of the schema (absent until annotated)
    DIR/items/<id>/real.png         origin "real" with a latent only: the photograph the labels were drawn on

Conventions are those of the LabeledDataset (``ganfactory.datasets.labeled``): class 0 is the background;
keypoints are ``[x, y, visible]`` in pixels with pixel centres at integers, ``[null, null, 0]`` when
unavailable. An item is used for training when its status is "annotated".

Atomicity: a new item is written under ``DIR/.tmp-<id>/`` and renamed into ``items/<id>``; every later
update of one file writes a temporary file and renames it. A killed writer leaves a ``.tmp-*`` entry that
the next ``add`` of that id replaces.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganfactory.atomic import TMP_PREFIX, write_atomic, write_json
from ganfactory.errors import GanfactoryError
from ganfactory.formats import read_format_header, reading
from ganfactory.gan.latent import Latent, synthesize_latents
from ganfactory.schema import Schema

__all__ = ["DEFAULT_SCHEMA", "FORMAT", "FORMAT_VERSION", "ORIGINS", "STATUSES", "AnnotationError", "AnnotationItem",
           "AnnotationSet", "open_project"]

FORMAT = "ganfactory.annotations"
FORMAT_VERSION = 1
STATUSES = ("pending", "annotated", "skipped")
ORIGINS = ("generated", "real")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

DEFAULT_SCHEMA = Schema.from_names(["background", "object"])
"""A new project's classes when no schema is given: enough to start painting; pass --schema for real work."""


class AnnotationError(GanfactoryError, ValueError):
    """An AnnotationSet (or an item for one) that breaks the format; the message says what to fix."""


@dataclass(frozen=True, eq=False)
class AnnotationItem:
    """One item as read from the store."""

    id: str
    status: str
    latent: Latent | None
    """None for a real image that has not been inverted."""
    image: np.ndarray
    """[H, W, 3] uint8: the generator's image of the latent (for a real image without latent: the photograph)."""
    label: np.ndarray | None
    """[H, W] uint8 class ids, None until annotated."""
    keypoints: list | None
    """[K, 3] ``[x, y, visible]`` or None."""
    meta: dict = field(default_factory=dict)
    origin: str = "generated"
    """"generated" (a sample of the generator) or "real" (an imported photograph)."""


class AnnotationSet:
    """Open an AnnotationSet directory (``AnnotationSet.create`` makes a new one)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        path = self.root / "schema.json"
        if not path.is_file():
            raise AnnotationError(f"{self.root}: no schema.json, so not an AnnotationSet; create one with "
                                  "AnnotationSet.create(root, schema)")
        header = read_format_header(path, FORMAT, FORMAT_VERSION, AnnotationError, "not an AnnotationSet")
        self.header = header
        with reading(path, AnnotationError):
            self.schema = Schema.from_json(header["schema"])
            self.generator: str | None = header.get("generator")
            if self.generator is not None and not isinstance(self.generator, str):
                raise AnnotationError(f"{path}: generator must be a name or path (a string)")

    @classmethod
    def create(cls, root: str | Path, schema: Schema, generator: str | None = None) -> AnnotationSet:
        """A new, empty store at ``root`` (an empty or new directory). ``generator``: the checkpoint path or
        built-in name the latents belong to (recorded for users; not enforced)."""
        root = Path(root)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise AnnotationError(f"{root} exists and is not an empty directory; pass a new one")
        (root / "items").mkdir(parents=True)
        header = {"format": FORMAT, "format_version": FORMAT_VERSION, "schema": schema.to_json(),
                  "generator": generator}
        write_json(root / "schema.json", header)
        return cls(root)

    # -------------------------------------------------------------------------------- listing

    @property
    def ids(self) -> list[str]:
        """Item ids, sorted."""
        return sorted(p.name for p in (self.root / "items").iterdir() if (p / "item.json").is_file())

    def __len__(self) -> int:
        return len(self.ids)

    def annotated_ids(self, include_without_latent: bool = False) -> list[str]:
        """Ids of items whose status is 'annotated' (the training set), sorted. Real images without a latent are
        left out unless ``include_without_latent``: the interpreter cannot compute their features."""
        records = [self._item_json(i) for i in self.ids]
        return [r["id"] for r in records if r["status"] == "annotated"
                and (include_without_latent or r.get("latent") is not None)]

    # -------------------------------------------------------------------------------- writing

    def add(self, item_id: str, latent: Latent | None, image: np.ndarray, label: np.ndarray | None = None,
            keypoints: list | None = None, status: str | None = None, meta: dict | None = None) -> None:
        """Add (or replace) an item. ``status`` defaults to 'annotated' when a label is given, else 'pending'.
        ``latent`` None adds a real image (origin "real"; see ``set_latent``)."""
        record = self.check_item(item_id, latent, image, label, keypoints, status, meta)
        image = np.asarray(image)
        tmp = self.root / f"{TMP_PREFIX}{item_id}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        (tmp / "image.png").write_bytes(_png(image, "RGB"))
        if label is not None:
            (tmp / "label.png").write_bytes(_png(np.asarray(label), "L"))
        if latent is not None and latent.seed is None:
            np.savez(tmp / "latent.npz", **latent.arrays())
        (tmp / "item.json").write_text(json.dumps(record, indent=1) + "\n")
        target = self.root / "items" / item_id
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)

    def check_item(self, item_id: str, latent: Latent | None, image: np.ndarray, label: np.ndarray | None = None,
                   keypoints: list | None = None, status: str | None = None, meta: dict | None = None) -> dict:
        """What ``add`` checks, without writing: raises AnnotationError naming the item and the problem, else
        returns the item.json record ``add`` would write (importers check a whole input before adding any)."""
        if not isinstance(item_id, str) or not _ID.match(item_id):
            raise AnnotationError(f"item id {item_id!r}: use letters, digits, '.', '_' and '-' (it is a folder name)")
        status = status or ("annotated" if label is not None else "pending")
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise AnnotationError(f"item {item_id!r}: image must be [H, W, 3] uint8, got {list(image.shape)} "
                                  f"{image.dtype}")
        origin = "generated" if latent is not None else "real"
        record = {"id": item_id, "status": status, "origin": origin,
                  "latent": None if latent is None else latent.to_json(), "keypoints": keypoints, **(meta or {})}
        self._check_record(record, image.shape[:2], label)
        return record

    def set_annotation(self, item_id: str, label: np.ndarray | None = None, keypoints: list | None = None,
                       status: str = "annotated") -> None:
        """Store a label map and/or keypoints for an existing item and set its status (each file atomically)."""
        record = self._item_json(item_id)
        with Image.open(self.root / "items" / item_id / "image.png") as img:
            size = (img.height, img.width)
        if keypoints is not None:
            record["keypoints"] = keypoints
        record["status"] = status
        has_label = label is not None or (self.root / "items" / item_id / "label.png").is_file()
        self._check_record(record, size, label, has_label=has_label)
        if label is not None:
            write_atomic(self.root / "items" / item_id / "label.png", _png(np.asarray(label), "L"))
        write_json(self.root / "items" / item_id / "item.json", record)

    def set_latent(self, item_id: str, latent: Latent, image: np.ndarray) -> None:
        """Attach a latent (an inversion's result) to an item, with ``image`` [H, W, 3] uint8 the generator's image
        of it, of the stored image's size. A real item keeps its photograph as ``real.png`` (the first time) and
        its labels; from now on it is in the training set when annotated. Files are replaced one at a time,
        item.json last, so a reader never sees the new latent with the old image."""
        record = self._item_json(item_id)
        folder = self.root / "items" / item_id
        image = np.asarray(image)
        with Image.open(folder / "image.png") as img:
            size = (img.height, img.width)
        if image.dtype != np.uint8 or image.shape != (*size, 3):
            raise AnnotationError(f"item {item_id!r}: the latent's image must be [H, W, 3] uint8 of the stored "
                                  f"image's size {list(size)}, got {list(image.shape)} {image.dtype}")
        if record.get("origin") == "real" and not (folder / "real.png").is_file():
            write_atomic(folder / "real.png", (folder / "image.png").read_bytes())
        if latent.seed is None:
            buffer = io.BytesIO()
            np.savez(buffer, **latent.arrays())
            write_atomic(folder / "latent.npz", buffer.getvalue())
        write_atomic(folder / "image.png", _png(image, "RGB"))
        record["latent"] = latent.to_json()
        write_json(folder / "item.json", record)

    def _check_record(self, record: dict, size: tuple[int, int], label: np.ndarray | None,
                      has_label: bool | None = None) -> None:
        where = f"item {record['id']!r}"
        if record["status"] not in STATUSES:
            raise AnnotationError(f"{where}: status must be one of {STATUSES}, got {record['status']!r}")
        has_label = label is not None if has_label is None else has_label
        if record["status"] == "annotated" and not has_label and not record.get("keypoints"):
            raise AnnotationError(f"{where}: status 'annotated' needs a label map or keypoints")
        if label is not None:
            label = np.asarray(label)
            if label.dtype != np.uint8 or label.shape != tuple(size):
                raise AnnotationError(f"{where}: label must be [H, W] uint8 of the image's size {list(size)}, got "
                                      f"{list(label.shape)} {label.dtype}")
            bad = sorted(set(np.unique(label).tolist()) - set(self.schema.class_ids))
            if bad:
                raise AnnotationError(f"{where}: label ids {bad} are not classes of the schema "
                                      f"(ids {list(self.schema.class_ids)}); fix the label or add them to schema.json")
        kps = record.get("keypoints")
        if kps is not None:
            if len(kps) != len(self.schema.keypoints):
                raise AnnotationError(f"{where}: {len(kps)} keypoints, the schema names {len(self.schema.keypoints)} "
                                      f"({', '.join(self.schema.keypoints) or 'none'})")
            for k, p in enumerate(kps):
                if len(p) != 3 or (p[0] is None) != (p[1] is None) or p[2] not in (0, 1) or (p[0] is None and p[2]):
                    raise AnnotationError(f"{where}: keypoint {k} must be [x, y, visible 0|1] (x = y = null when "
                                          f"unavailable), got {p}")

    # -------------------------------------------------------------------------------- reading

    def _item_json(self, item_id: str) -> dict:
        path = self.root / "items" / item_id / "item.json"
        if not path.is_file():
            raise AnnotationError(f"{self.root}: no item {item_id!r}")
        try:
            record = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            raise AnnotationError(f"{path}: not JSON ({type(e).__name__}); fix or delete the item") from None
        if (not isinstance(record, dict) or record.get("id") != item_id or record.get("status") not in STATUSES
                or not isinstance(record.get("latent"), dict | None)):
            raise AnnotationError(f"{path}: not an item record (id, status, latent); fix or delete the item")
        return record

    def record(self, item_id: str) -> dict:
        """The item's item.json (status, origin, latent spec, keypoints, metadata), without reading its images."""
        return self._item_json(item_id)

    def latent(self, item_id: str, G=None) -> Latent:
        """The item's latent; items stored as a seed need the generator ``G`` to rebuild ws."""
        with reading(self.root / "items" / item_id, AnnotationError):
            return self._latent(item_id, G)

    def _latent(self, item_id: str, G=None) -> Latent:
        record = self._item_json(item_id)
        spec = record["latent"]
        if spec is None:
            raise AnnotationError(f"item {item_id!r} is a real image without a latent; invert it first "
                                  "('ganfactory annotate invert')")
        if spec["kind"] == "seed":
            if G is None:
                raise AnnotationError(f"item {item_id!r} stores a seed; pass the generator to rebuild its latent")
            return Latent.from_seed(G, spec["seed"], spec["truncation_psi"], spec["noise_mode"],
                                    spec.get("truncation_cutoff"))
        if spec["kind"] != "ws":
            raise AnnotationError(f"item {item_id!r}: latent kind {spec['kind']!r} is not 'seed' or 'ws'")
        with np.load(self.root / "items" / item_id / "latent.npz") as data:
            noise = {k[6:]: torch.from_numpy(data[k]) for k in data.files if k.startswith("noise.")}
            return Latent(torch.from_numpy(data["ws"]), spec["noise_mode"], noise or None)

    def item(self, item_id: str, G=None) -> AnnotationItem:
        with reading(self.root / "items" / item_id, AnnotationError):
            return self._item(item_id, G)

    def _item(self, item_id: str, G=None) -> AnnotationItem:
        record = self._item_json(item_id)
        folder = self.root / "items" / item_id
        with Image.open(folder / "image.png") as img:
            image = np.asarray(img.convert("RGB"))
        label = None
        if (folder / "label.png").is_file():
            with Image.open(folder / "label.png") as img:
                if img.mode != "L":
                    raise AnnotationError(f"{folder / 'label.png'}: label PNGs are mode L (uint8 ids), got {img.mode}")
                label = np.asarray(img)
        meta = {k: v for k, v in record.items() if k not in ("id", "status", "origin", "latent", "keypoints")}
        latent = None if record["latent"] is None else self.latent(item_id, G)
        return AnnotationItem(item_id, record["status"], latent, image, label, record.get("keypoints"), meta,
                              record.get("origin", "generated"))

    def validate(self, G=None, atol: int = 1) -> None:
        """Check every item (files, sizes, label ids, keypoints); with ``G`` also that each latent regenerates its
        stored image (max difference <= ``atol`` in uint8 steps, for float differences across CPUs)."""
        from ganfactory.gan.sampling import to_uint8

        for item_id in self.ids:
            item = self.item(item_id, G)
            with reading(self.root / "items" / item_id / "item.json", AnnotationError):
                self._check_record({"id": item_id, "status": item.status, "keypoints": item.keypoints},
                                   item.image.shape[:2], item.label, has_label=item.label is not None)
            if G is not None and item.latent is not None:
                img = to_uint8(synthesize_latents(G, [item.latent]))[0]
                if img.shape != item.image.shape:
                    raise AnnotationError(f"item {item_id!r}: the generator makes {img.shape[1]}x{img.shape[0]} "
                                          f"images, the stored one is {item.image.shape[1]}x{item.image.shape[0]}; "
                                          "is this the store's generator?")
                diff = int(np.abs(img.astype(int) - item.image.astype(int)).max())
                if diff > atol:
                    raise AnnotationError(f"item {item_id!r}: its latent regenerates an image that differs from the "
                                          f"stored one by {diff} levels; the latent or generator does not match")


def open_project(project: str | Path, schema: Schema | None = None, generator: str | None = None,
                 default: Schema = DEFAULT_SCHEMA) -> AnnotationSet:
    """The AnnotationSet at ``project``, created (with ``schema``, else ``default``) when the directory is new or
    empty. A given schema must match an existing project's.

    Why one function: the annotator, the importers and the inversion all open-or-create a project, and they must
    agree on when a directory is a project, when it may become one, and when a schema conflicts."""
    project = Path(project)
    if not (project / "schema.json").is_file():
        if project.exists() and (not project.is_dir() or any(project.iterdir())):
            raise AnnotationError(f"{project} is neither an AnnotationSet (no schema.json) nor an empty directory; "
                                  "pass a new directory or an existing project")
        return AnnotationSet.create(project, schema or default, generator)
    store = AnnotationSet(project)
    if schema is not None and schema != store.schema:
        raise AnnotationError(f"{project} already has a different schema; drop --schema or edit "
                              f"{project / 'schema.json'}")
    return store


def _png(array: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array), mode).save(buffer, format="PNG")
    return buffer.getvalue()
