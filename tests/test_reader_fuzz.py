"""Every reader fed broken copies of a valid file (issue 14): each file of a valid AnnotationSet, LabeledDataset,
interpreter and downstream network, and a COCO and a LabelMe import, is truncated, bit-flipped and given wrong
JSON types, one variant at a time. A read either succeeds (a flipped bit may leave a valid file) or fails with
one line (a GanfactoryError), never a traceback; and nothing on disk changes. The checkpoint reader joins once its
own hardening lands (another change): add it to READERS.

The variants are deterministic (a seeded generator); the test reports how many it tried."""

import functools
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganfactory.errors import GanfactoryError

TRUNCATIONS = (0.0, 0.5, 0.97)
FLIPS = 6
WRONG_TYPES = (None, "abc", 7, [], {"x": 1}, 1e300)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _wrong_typed(data, rng) -> list:
    """Copies of a JSON document with one value (at every top-level key, and one level down) replaced by a value
    of another type."""
    out = []
    if isinstance(data, dict):
        for key in data:
            for bad in WRONG_TYPES:
                out.append({**data, key: bad})
            inner = data[key]
            if isinstance(inner, dict) and inner:
                k2 = sorted(inner)[int(rng.integers(len(inner)))]
                out.append({**data, key: {**inner, k2: "abc"}})
            if isinstance(inner, list) and inner and isinstance(inner[0], dict) and inner[0]:
                k2 = sorted(inner[0])[0]
                out.append({**data, key: [{**inner[0], k2: [1]}] + inner[1:]})
    elif isinstance(data, list):
        out.append({"not": "a list"})
    return out


def _variants(data: bytes, name: str, rng) -> list[bytes]:
    out = [data[:int(len(data) * f)] for f in TRUNCATIONS]
    for _ in range(FLIPS):
        if data:
            flipped = bytearray(data)
            i = int(rng.integers(len(flipped)))
            flipped[i] ^= 1 << int(rng.integers(8))
            out.append(bytes(flipped))
    if name.endswith(".json"):
        for doc in _wrong_typed(json.loads(data), rng):
            out.append(json.dumps(doc).encode())
    if name.endswith(".jsonl"):
        first, _, rest = data.partition(b"\n")
        for doc in _wrong_typed(json.loads(first), rng)[:12]:
            out.append(json.dumps(doc).encode() + b"\n" + rest)
    return out


@functools.lru_cache(maxsize=1)
def _tiny32():
    from ganfactory.gan import load_generator

    return load_generator("tiny32")


def _read_store(path):
    from ganfactory.annotate import AnnotationSet

    G = _tiny32()
    store = AnnotationSet(path)
    for i in store.ids:
        store.item(i, G)
    store.validate(G)


def _read_dataset(path):
    from ganfactory.datasets.labeled import LabeledDataset

    ds = LabeledDataset(path)
    for i in range(len(ds)):
        ds[i]
    ds.validate()


def _read_interpreter(path):
    from ganfactory.label import load_interpreter

    load_interpreter(path)


def _read_network(path):
    from ganfactory.downstream import load_segmenter

    load_segmenter(path).predict(np.zeros((1, 16, 16, 3), np.uint8))


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """One valid instance of every format (small)."""
    from ganfactory.annotate.synthetic import make_cluster_annotations
    from ganfactory.annotate.training import training_images
    from ganfactory.datasets.labeled import LabeledSample, write_labeled_dataset
    from ganfactory.downstream import TrainConfig, train_network
    from ganfactory.downstream.data import SegmentationData
    from ganfactory.gan import load_generator
    from ganfactory.label import InterpreterConfig, train_interpreter
    from ganfactory.schema import Schema

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("valid")
    G = load_generator("tiny32")
    store = make_cluster_annotations(G, root / "ann", range(2), 2, keypoints=True)
    interp, _ = train_interpreter(G, training_images(store, G), store.schema, InterpreterConfig(
        num_models=1, pixels_per_image=32, holdout_pixels_per_image=16, max_epochs=1), progress=False)
    interp.save(root / "interp")
    schema = Schema.from_names(["background", "thing"], keypoints=["tip"])
    images = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    write_labeled_dataset(root / "ds", schema, 3, lambda i: LabeledSample(
        f"s{i}", images[i], (images[i, :, :, 0] > 128).astype(np.uint8), [[1.0, 2.0, 1]]), shard_size=2,
        coco_object=None)
    g = torch.Generator().manual_seed(0)
    data = SegmentationData(torch.randint(0, 256, (2, 16, 16, 3), dtype=torch.uint8, generator=g),
                            torch.randint(0, 2, (2, 16, 16), dtype=torch.uint8, generator=g), torch.zeros(2, 0, 3),
                            Schema.from_names(["background", "thing"]), ("a", "b"))
    train_network(data, root / "net", TrainConfig(widths=(4, 8), iterations=1, batch_size=2, log_every=1),
                  progress=False)
    return {"annotations": (root / "ann", _read_store), "labeled": (root / "ds", _read_dataset),
            "interpreter": (root / "interp", _read_interpreter), "downstream": (root / "net", _read_network)}


READERS = ("annotations", "labeled", "interpreter", "downstream")


@pytest.mark.parametrize("reader", READERS)
def test_broken_copies_give_one_line_or_a_read(reader, valid, tmp_path):
    source, read = valid[reader]
    read(source)                                     # the valid original reads
    rng = np.random.default_rng(sum(map(ord, reader)))
    tried = refused = 0
    for rel in sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file()):
        data = (source / rel).read_bytes()
        for k, variant in enumerate(_variants(data, rel.name, rng)):
            copy = tmp_path / f"{reader}-{tried}"
            shutil.copytree(source, copy)
            (copy / rel).write_bytes(variant)
            before = _digest(copy)
            tried += 1
            try:
                read(copy)
            except GanfactoryError as e:
                refused += 1
                assert len(str(e).splitlines()) == 1, (rel, k, str(e))
            except Exception as e:  # noqa: BLE001 -- the property under test: nothing else escapes
                raise AssertionError(f"{reader}: {rel} variant {k}: {type(e).__name__}: {e}") from e
            assert _digest(copy) == before, (rel, k)
            shutil.rmtree(copy)
    print(f"{reader}: {tried} broken copies tried, {refused} refused with one line, the rest read")
    assert tried > 20 and refused > 0


def _labelme(folder: Path) -> None:
    folder.mkdir()
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(folder / "a.png")
    (folder / "a.json").write_text(json.dumps({"imagePath": "a.png", "imageHeight": 12, "imageWidth": 12, "shapes": [
        {"label": "thing", "shape_type": "polygon", "points": [[1, 1], [8, 1], [8, 8]]},
        {"label": "tip", "shape_type": "point", "points": [[3.5, 4.5]]}]}))


def _coco(folder: Path) -> Path:
    folder.mkdir()
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(folder / "a.png")
    path = folder / "coco.json"
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "height": 12, "width": 12}],
                                "categories": [{"id": 1, "name": "thing"}],
                                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "area": 20,
                                                 "segmentation": [[1, 1, 8, 1, 8, 8]]}]}))
    return path


@pytest.mark.parametrize("fmt", ["coco", "labelme"])
def test_broken_import_files_give_one_line_and_no_project(fmt, tmp_path):
    from ganfactory.annotate.importers import import_coco, import_labelme

    src = tmp_path / "src"
    if fmt == "coco":
        target = _coco(src)

        def run(project):
            import_coco(project, target, src)
    else:
        _labelme(src)
        target = src / "a.json"

        def run(project):
            import_labelme(project, src)
    run(tmp_path / "ok")                             # the valid original imports
    rng = np.random.default_rng(3)
    original = target.read_bytes()
    tried = refused = 0
    for k, variant in enumerate(_variants(original, target.name, rng)):
        target.write_bytes(variant)
        project = tmp_path / f"p{k}"
        tried += 1
        try:
            run(project)
        except GanfactoryError as e:
            refused += 1
            assert len(str(e).splitlines()) == 1, (k, str(e))
            assert not project.exists(), k          # nothing half-written
        except Exception as e:  # noqa: BLE001 -- the property under test
            raise AssertionError(f"{fmt} variant {k}: {type(e).__name__}: {e}") from e
    target.write_bytes(original)
    print(f"{fmt}: {tried} broken copies tried, {refused} refused with one line, the rest imported")
    assert tried > 20 and refused > 0
