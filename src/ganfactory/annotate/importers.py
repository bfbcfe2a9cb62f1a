"""Importers: labeled real images (a folder of label PNGs, COCO, LabelMe) into an AnnotationSet.

Why: a few labeled photographs are often at hand already, and after inversion (``annotate invert``) they teach
the interpreter as generated samples do. Imported items have origin "real", no latent and status "annotated";
the store keeps them out of training until a latent is attached (see ``ganfactory.annotate.store``).

Coordinates: our keypoints put pixel centres at integers. COCO and LabelMe put pixel (i, j) on the square
[i, i + 1) x [j, j + 1) (centres at +0.5), so their points are shifted by -0.5. Polygons are rasterised by the
even-odd rule on pixel centres (LabelMe); COCO masks are decoded by pycocotools, COCO's own rasteriser.
Overlaps: COCO instances are painted largest first (small parts stay on top), LabelMe shapes in file order
(later on top, as LabelMe's own export does).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from ganfactory.annotate.store import AnnotationError, AnnotationSet, open_project
from ganfactory.errors import GanfactoryError
from ganfactory.formats import reading
from ganfactory.keypoints import keypoints_from_rows, keypoints_to_rows, scale_keypoints
from ganfactory.schema import Schema, SchemaError

__all__ = ["ImportError_", "import_coco", "import_label_folder", "import_labelme", "item_id_for", "polygon_mask"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class ImportError_(GanfactoryError, ValueError):  # noqa: N801 -- the builtin ImportError means something else
    """Labeled data that cannot be imported; the message names the file and what to fix."""


def item_id_for(name: str) -> str:
    """A store item id from a file name: its stem with characters outside ``[A-Za-z0-9._-]`` replaced by '_'."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).stem)
    return stem if stem and stem[0].isalnum() else f"img{stem}"


def polygon_mask(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """[H, W] bool: pixels whose centre (integer coordinates) lies inside the closed polygon ``points`` [N, 2]
    (x, y), by the even-odd rule; the same rule as the page's polygon tool."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    inside = np.zeros((height, width), dtype=bool)
    for (ax, ay), (bx, by) in zip(pts, np.roll(pts, -1, axis=0), strict=True):
        if ay == by:
            continue
        crosses = (ay <= yy) != (by <= yy)
        x_at = ax + (yy - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (xx < x_at)
    return inside


# ------------------------------------------------------------------------------------------ shared

def _store(project: str | Path, schema: Schema | None, inferred: Schema | None) -> tuple[AnnotationSet, bool]:
    """(the project's store, whether this call created it); a new one gets ``schema`` (explicit) or else
    ``inferred``."""
    is_new = not (Path(project) / "schema.json").is_file()
    if is_new and schema is None and inferred is None:
        raise ImportError_(f"{project} is a new project and label PNGs do not name their classes: pass --schema")
    try:
        return open_project(project, schema, default=inferred if schema is None else schema), is_new
    except SchemaError as e:
        raise ImportError_(str(e)) from None


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise ImportError_(f"{path}: no such image") from None
    except OSError as e:
        raise ImportError_(f"{path}: not an image Pillow reads ({e})") from None


def _resize(image: np.ndarray, label: np.ndarray, keypoints: list | None, size: int | None):
    """Image (bilinear), label (nearest) and keypoints to ``size`` x ``size``; unchanged when size is None."""
    if size is None or image.shape[:2] == (size, size):
        return image, label, keypoints
    h, w = label.shape
    image = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
    label = np.asarray(Image.fromarray(label, "L").resize((size, size), Image.NEAREST))
    if keypoints is not None:
        keypoints = keypoints_to_rows(scale_keypoints(keypoints_from_rows(keypoints), size / w, size / h))
    return image, label, keypoints


def _add_all(store: AnnotationSet, rows: Iterable[tuple[str, np.ndarray, np.ndarray, list | None, dict]],
             size: int | None, fmt: str, created: bool, where: Path) -> dict:
    """Read and check every row first, then add them: bad input anywhere leaves the project as it was (a project
    this import created is removed again). ``where``: the input, named in errors."""
    seen: dict[str, str] = {}
    prepared = []
    try:
        with reading(where, ImportError_):
            prepared = _prepare(store, rows, size, fmt, seen)
        if not prepared:
            raise ImportError_(f"nothing to import: no {fmt} items found")
    except GanfactoryError:
        if created:
            _remove_new_project(store.root)
        raise
    for item_id, image, label, keypoints, meta in prepared:
        store.add(item_id, None, image, label, keypoints, status="annotated", meta=meta)
    return {"project": str(store.root), "format": fmt, "imported": len(prepared), "items": len(store)}


def _prepare(store: AnnotationSet, rows, size: int | None, fmt: str, seen: dict[str, str]) -> list:
    prepared = []
    for item_id, image, label, keypoints, meta in rows:
        if item_id in seen:
            raise ImportError_(f"{meta['source']} and {seen[item_id]} both become item {item_id!r}; rename one")
        seen[item_id] = meta["source"]
        if label.shape != image.shape[:2]:
            raise ImportError_(f"{meta['source']}: the label is {label.shape[1]}x{label.shape[0]}, the image "
                               f"{image.shape[1]}x{image.shape[0]}; they must have the same size")
        image, label, keypoints = _resize(image, label, keypoints, size)
        meta = {**meta, "format": fmt}
        try:
            store.check_item(item_id, None, image, label, keypoints, "annotated", meta)
        except AnnotationError as e:
            raise ImportError_(f"{meta['source']}: {e}") from None
        prepared.append((item_id, image, label, keypoints, meta))
    return prepared


def _remove_new_project(root: Path) -> None:
    """Undo the creation of an empty project (schema.json and an empty items/), nothing else."""
    items = root / "items"
    if items.is_dir() and not any(items.iterdir()) and {p.name for p in root.iterdir()} <= {"schema.json", "items"}:
        items.rmdir()
        (root / "schema.json").unlink()
        if not any(root.iterdir()):
            root.rmdir()


# ------------------------------------------------------------------------------------------ label PNG folder

def import_label_folder(project: str | Path, images: str | Path, labels: str | Path, schema: Schema | None = None,
                        size: int | None = None) -> dict:
    """Images in ``images`` with label PNGs of the same stem in ``labels``. A label PNG is either uint8 class
    ids (mode L, or P whose palette indices are the ids, as in Pascal VOC) or RGB in the schema's colours."""
    images, labels = Path(images), Path(labels)
    for d in (images, labels):
        if not d.is_dir():
            raise ImportError_(f"{d}: no such directory")
    store, created = _store(project, schema, None)
    colours = {c.color: c.id for c in store.schema.classes}
    label_files = {p.stem: p for p in sorted(labels.glob("*.png"))}
    image_files = [p for p in sorted(images.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    unmatched = [p.name for p in image_files if p.stem not in label_files]
    if unmatched:
        raise ImportError_(f"no label PNG in {labels} for {', '.join(unmatched[:5])}"
                           f"{' ...' if len(unmatched) > 5 else ''}; every image needs <stem>.png")

    def rows():
        for path in image_files:
            yield (item_id_for(path.name), _read_image(path), _read_label_png(label_files[path.stem], colours), None,
                   {"source": str(path)})

    return _add_all(store, rows(), size, "folder", created, labels)


def _read_label_png(path: Path, colours: dict[tuple[int, int, int], int]) -> np.ndarray:
    with Image.open(path) as img:
        if img.mode in ("L", "P"):
            return np.array(img, dtype=np.uint8)
        if img.mode in ("I", "I;16"):
            ids = np.asarray(img)
            if ids.min() < 0 or ids.max() > 255:
                raise ImportError_(f"{path}: label values {ids.min()}..{ids.max()} do not fit uint8 class ids")
            return ids.astype(np.uint8)
        rgb = np.asarray(img.convert("RGB"))
    out = np.zeros(rgb.shape[:2], np.uint8)
    known = np.zeros(rgb.shape[:2], bool)
    for colour, cid in colours.items():
        hit = (rgb == colour).all(-1)
        out[hit] = cid
        known |= hit
    if not known.all():
        bad = rgb[~known][0].tolist()
        raise ImportError_(f"{path}: colour {bad} is no class colour of the schema; use uint8 ids (mode L) or the "
                           "schema's colours")
    return out


# ------------------------------------------------------------------------------------------ COCO

def import_coco(project: str | Path, coco: str | Path, images: str | Path, schema: Schema | None = None,
                size: int | None = None) -> dict:
    """A COCO instances file: every image, its instance masks painted by category (matched to the schema's classes
    by name), and the keypoints of its first instance that has any (COCO visibility 2 = visible, 1 = labelled
    but hidden, 0 = unavailable)."""
    from pycocotools import mask as mask_utils

    coco, images = Path(coco), Path(images)
    data = _load_json(coco)
    try:
        categories = {int(c["id"]): c for c in data["categories"]}
        records = data["images"]
        annotations = data.get("annotations", [])
    except (KeyError, TypeError, ValueError):
        raise ImportError_(f"{coco}: not a COCO instances file (needs images, categories, annotations)") from None
    try:
        image_ids = {rec["id"] for rec in records}
        named = all(isinstance(rec["file_name"], str) for rec in records)
        used = {a["category_id"] for a in annotations}
        refs = {a["image_id"] for a in annotations}
    except (KeyError, TypeError):
        named = False
    if not named:
        raise ImportError_(f"{coco}: every image needs id and file_name, every annotation category_id and "
                           "image_id")
    unknown = sorted(used - set(categories), key=str)
    if unknown:
        raise ImportError_(f"{coco}: annotations use category ids {unknown} that the file's categories do not "
                           f"define ({sorted(categories)}); nothing was imported")
    strays = sorted(refs - image_ids, key=str)
    if strays:
        raise ImportError_(f"{coco}: annotations refer to image ids {strays[:5]} that the file does not list; "
                           "nothing was imported")
    kp_names = next((tuple(c["keypoints"]) for c in categories.values() if c.get("keypoints")), ())
    inferred = None
    if all(1 <= i <= 255 for i in categories):
        try:
            inferred = _schema_with_ids({i: c["name"] for i, c in categories.items()}, kp_names)
        except SchemaError as e:
            raise ImportError_(f"{coco}: {e}") from None
    store, created = _store(project, schema, inferred)
    by_name = {c.name: c.id for c in store.schema.classes}
    class_of = {}
    for i, c in categories.items():
        if c["name"] not in by_name:
            if created:
                _remove_new_project(store.root)
            raise ImportError_(f"{coco}: category {c['name']!r} is no class of the project's schema "
                               f"({', '.join(by_name)}); add it to schema.json")
        class_of[i] = by_name[c["name"]]
    per_image: dict[int, list] = {}
    for a in annotations:
        per_image.setdefault(a["image_id"], []).append(a)

    def rows():
        for rec in records:
            path = images / rec["file_name"]
            image = _read_image(path)
            h, w = image.shape[:2]
            label = np.zeros((h, w), np.uint8)
            anns = sorted(per_image.get(rec["id"], []), key=lambda a: -float(a.get("area", 0)))
            for a in anns:
                segm = a.get("segmentation")
                if not segm:
                    continue
                rle = mask_utils.frPyObjects(segm, h, w) if isinstance(segm, list) else segm
                if isinstance(rle, dict) and isinstance(rle.get("counts"), list):
                    rle = mask_utils.frPyObjects(rle, h, w)
                m = mask_utils.decode(rle)
                m = m.max(axis=2) if m.ndim == 3 else m
                label[m > 0] = class_of[a["category_id"]]
            keypoints = None
            with_kp = [a for a in per_image.get(rec["id"], []) if a.get("num_keypoints", 0) > 0 and a.get("keypoints")]
            if store.schema.keypoints and with_kp:
                keypoints = _coco_keypoints(with_kp[0], categories[with_kp[0]["category_id"]], store.schema, coco)
            yield item_id_for(rec["file_name"]), image, label, keypoints, {"source": str(path)}

    return _add_all(store, rows(), size, "coco", created, coco)


def _schema_with_ids(names: dict[int, str], keypoints: tuple[str, ...]) -> Schema:
    from ganfactory.schema import ClassInfo, default_color

    classes = [ClassInfo(0, "background", (0, 0, 0))]
    classes += [ClassInfo(i, n, default_color(i)) for i, n in sorted(names.items())]
    return Schema(tuple(classes), keypoints)


def _coco_keypoints(ann: dict, category: dict, schema: Schema, where: Path) -> list:
    names = category.get("keypoints") or []
    flat = ann["keypoints"]
    found = {n: flat[3 * k:3 * k + 3] for k, n in enumerate(names)}
    out = []
    for name in schema.keypoints:
        x, y, v = found.get(name, (0, 0, 0))
        if v not in (0, 1, 2):
            raise ImportError_(f"{where}: keypoint visibility must be 0, 1 or 2, got {v}")
        out.append([None, None, 0] if v == 0 else [float(x) - 0.5, float(y) - 0.5, 1 if v == 2 else 0])
    return out


# ------------------------------------------------------------------------------------------ LabelMe

def import_labelme(project: str | Path, folder: str | Path, schema: Schema | None = None,
                   size: int | None = None) -> dict:
    """LabelMe JSON files in ``folder``: polygon, rectangle and circle shapes paint their label's class; point
    shapes whose label is a keypoint name of the schema place that keypoint (visible). Without a schema, a new
    project gets background + the shape labels (sorted) as classes and the point labels as keypoints."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImportError_(f"{folder}: no such directory")
    files = sorted(folder.glob("*.json"))
    docs = [(p, _load_json(p)) for p in files]
    regions, points = set(), set()
    for path, doc in docs:
        if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
            raise ImportError_(f"{path}: not a LabelMe file (no 'shapes' list)")
        for s in doc["shapes"]:
            (points if s.get("shape_type") == "point" else regions).add(str(s.get("label")))
    inferred = None
    try:
        inferred = Schema.from_names(["background"] + sorted(regions - {"background"}), keypoints=sorted(points))
    except SchemaError as e:
        raise ImportError_(f"{folder}: {e}") from None
    store, created = _store(project, schema, inferred)
    by_name = {c.name: c.id for c in store.schema.classes}
    kp_index = {n: k for k, n in enumerate(store.schema.keypoints)}

    def rows():
        for path, doc in docs:
            image = _labelme_image(path, doc)
            h, w = image.shape[:2]
            label = np.zeros((h, w), np.uint8)
            keypoints = [[None, None, 0] for _ in kp_index] if kp_index else None
            for s in doc["shapes"]:
                kind, name = s.get("shape_type") or "polygon", str(s.get("label"))
                pts = np.asarray(s.get("points", []), dtype=np.float64).reshape(-1, 2) - 0.5
                if kind == "point":
                    if name not in kp_index:
                        raise ImportError_(f"{path}: point {name!r} is no keypoint of the schema "
                                           f"({', '.join(kp_index) or 'none'})")
                    keypoints[kp_index[name]] = [float(pts[0, 0]), float(pts[0, 1]), 1]
                    continue
                if kind in ("line", "linestrip", "points"):
                    continue                     # no area to paint
                if name not in by_name:
                    raise ImportError_(f"{path}: label {name!r} is no class of the schema ({', '.join(by_name)})")
                if kind == "rectangle":
                    (x0, y0), (x1, y1) = pts[:2]
                    pts = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
                if kind == "circle":
                    (cx, cy), (px, py) = pts[:2]
                    yy, xx = np.mgrid[0:h, 0:w]
                    m = (xx - cx) ** 2 + (yy - cy) ** 2 <= (px - cx) ** 2 + (py - cy) ** 2
                elif kind in ("polygon", "rectangle"):
                    m = polygon_mask(pts, h, w)
                else:
                    raise ImportError_(f"{path}: shape type {kind!r} is not supported (polygon, rectangle, circle, "
                                       "point)")
                label[m] = by_name[name]
            yield item_id_for(path.name), image, label, keypoints, {"source": str(path)}

    return _add_all(store, rows(), size, "labelme", created, folder)


def _labelme_image(path: Path, doc: dict) -> np.ndarray:
    if doc.get("imageData"):
        try:
            raw = base64.b64decode(doc["imageData"], validate=True)
            with Image.open(io.BytesIO(raw)) as img:
                return np.asarray(img.convert("RGB"))
        except (binascii.Error, ValueError, OSError) as e:
            raise ImportError_(f"{path}: imageData is not a base64 image ({e})") from None
    if not doc.get("imagePath"):
        raise ImportError_(f"{path}: neither imageData nor imagePath")
    return _read_image(path.parent / doc["imagePath"])


def _load_json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ImportError_(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ImportError_(f"{path}: not JSON ({e})") from None
