"""LabeledDataset: writer/reader round trip, validation errors, atomic shards and resume, COCO via pycocotools."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from ganfactory.datasets.labeled import (
    LabeledDataset,
    LabeledDatasetError,
    LabeledSample,
    missing_shards,
    plan_dataset,
    validate_sample,
    write_labeled_dataset,
    write_shard,
)
from ganfactory.schema import Schema

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools + numpy 2

SCHEMA = Schema.from_names(["background", "body", "wheel", "light"], {"body": (10, 20, 30)},
                           keypoints=["left", "right"])
COUNT, SHARD = 7, 3          # shards of 3, 3 and 1


def make_sample(i: int) -> LabeledSample:
    """A sample whose every field depends on ``i`` (H x W = 12 x 16, not square, to catch transposes)."""
    rng = np.random.default_rng(i)
    image = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    label = np.zeros((12, 16), np.uint8)
    label[2:9, 3:13] = 1
    label[7:10, 4:7] = 2
    label[3, 12] = 3 if i % 2 else 1
    keypoints = [[float(rng.uniform(0, 15)), float(rng.uniform(0, 11)), int(i % 2)], [None, None, 0]]
    if i == 5:
        keypoints[1] = [20.0, 5.0, 0]           # outside the image: not a COCO keypoint
    return LabeledSample(id=f"s{i:03d}", image=image, label=label, keypoints=keypoints,
                         uncertainty=0.25 * i if i % 3 else None, latent={"seed": i},
                         meta={"source": "synthetic", "index": i, "vector": np.arange(3) * i})


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("labeled") / "ds"
    write_labeled_dataset(root, SCHEMA, COUNT, make_sample, shard_size=SHARD, provenance={"test": 1})
    return root


def test_round_trip(written):
    ds = LabeledDataset(written)
    assert len(ds) == COUNT and ds.schema == SCHEMA and ds.provenance == {"test": 1}
    header = json.loads((written / "dataset.json").read_text())
    assert header["format"] == "ganfactory.labeled" and header["format_version"] == 1
    assert [s["name"] for s in header["shards"]] == ["00000", "00001", "00002"]
    assert [s["count"] for s in header["shards"]] == [3, 3, 1]
    assert sorted(p.name for p in written.iterdir()) == ["coco.json", "dataset.json", "images", "labels", "meta"]
    for i in range(COUNT):
        image, label, meta = ds[i]
        truth = make_sample(i)
        assert image.dtype == np.uint8 and image.shape == (12, 16, 3) and np.array_equal(image, truth.image)
        assert label.dtype == np.uint8 and label.shape == (12, 16) and np.array_equal(label, truth.label)
        assert meta["id"] == truth.id and meta["latent"] == {"seed": i}
        assert meta["uncertainty"] == truth.uncertainty
        assert meta["keypoints"] == [list(p) for p in truth.keypoints]
        assert meta == {**meta, "source": "synthetic", "index": i, "vector": [0, i, 2 * i]}
        assert ds.image_path(i) == written / "images" / f"{i // SHARD:05d}" / f"s{i:03d}.png"
    assert ds[-1][2]["id"] == "s006"
    with pytest.raises(IndexError):
        ds[COUNT]
    with Image.open(ds.label_path(0)) as img:
        assert img.mode == "L"
    ds.validate()


def test_gan_trainer_reads_only_the_images(written):
    from ganfactory.gan.data import list_images

    assert list_images(written) == [f"images/{i // SHARD:05d}/s{i:03d}.png" for i in range(COUNT)]


def test_coco_loads_and_masks_equal_the_label_maps(written):
    ds = LabeledDataset(written)
    coco = COCO(str(ds.coco_path))
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    assert names == {1: "body", 2: "wheel", 3: "light", 4: "object"}
    assert coco.loadCats(4)[0]["keypoints"] == ["left", "right"]
    for i in range(COUNT):
        image_info = coco.loadImgs(i + 1)[0]
        assert image_info["file_name"] == str(ds.image_path(i).relative_to(written))
        assert (image_info["height"], image_info["width"]) == (12, 16)
        _, label, meta = ds[i]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[i + 1]))
        by_cat = {a["category_id"]: a for a in anns}
        assert len(by_cat) == len(anns)
        assert set(by_cat) - {4} == {int(c) for c in np.unique(label) if c}
        for cid, ann in by_cat.items():
            truth = label > 0 if cid == 4 else label == cid
            assert np.array_equal(coco.annToMask(ann), truth.astype(np.uint8))
            assert ann["area"] == truth.sum()
            rows, cols = np.nonzero(truth)
            assert ann["bbox"] == [cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1]
        (x, y, v), _ = meta["keypoints"]
        assert by_cat[4]["keypoints"][:3] == pytest.approx([x + 0.5, y + 0.5, 2 if v else 1])
        assert by_cat[4]["keypoints"][3:] == [0, 0, 0]          # unavailable (or outside the image)
        assert by_cat[4]["num_keypoints"] == 1


def test_sample_validation_says_what_is_wrong():
    good = make_sample(1)

    def bad(**changes):
        fields = {k: getattr(good, k) for k in ("id", "image", "label", "keypoints", "uncertainty", "latent", "meta")}
        return LabeledSample(**{**fields, **changes})

    validate_sample(good, SCHEMA)
    label = good.label.copy()
    label[0, 0], label[1, 1] = 9, 200
    with pytest.raises(LabeledDatasetError, match=r"label ids \[9, 200\] are not classes of the schema"):
        validate_sample(bad(label=label), SCHEMA)
    with pytest.raises(LabeledDatasetError, match="label is 16x11 but the image is 16x12"):
        validate_sample(bad(label=good.label[:11]), SCHEMA)
    with pytest.raises(LabeledDatasetError, match=r"image must be \[H, W, 3\] uint8"):
        validate_sample(bad(image=good.image.astype(np.float32)), SCHEMA)
    with pytest.raises(LabeledDatasetError, match="1 keypoints, the schema names 2"):
        validate_sample(bad(keypoints=good.keypoints[:1]), SCHEMA)
    with pytest.raises(LabeledDatasetError, match="keypoint 0"):
        validate_sample(bad(keypoints=[[float("nan"), 1.0, 1], [None, None, 0]]), SCHEMA)
    with pytest.raises(LabeledDatasetError, match="reserved"):
        validate_sample(bad(meta={"latent": 1}), SCHEMA)
    with pytest.raises(LabeledDatasetError, match="file name"):
        validate_sample(bad(id="a/b"), SCHEMA)


def test_reader_validation_finds_broken_files(written, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(written, copy)
    ds = LabeledDataset(copy)
    Image.fromarray(np.full((12, 16), 77, np.uint8), "L").save(ds.label_path(4))
    with pytest.raises(LabeledDatasetError, match=r"s004.png: label ids \[77\]"):
        ds.validate()
    Image.fromarray(np.zeros((12, 15), np.uint8), "L").save(ds.label_path(4))
    with pytest.raises(LabeledDatasetError, match="s004.png: 15x12 but its image is 16x12"):
        ds.validate()
    ds.label_path(4).unlink()
    with pytest.raises(LabeledDatasetError, match="s004.png is missing"):
        ds.validate()
    (copy / "meta" / "00001.jsonl").unlink()
    with pytest.raises(LabeledDatasetError, match="00001.jsonl is missing"):
        LabeledDataset(copy)


def test_killed_build_resumes_to_the_same_bytes(written, tmp_path):
    root = tmp_path / "ds"
    plan = plan_dataset(root, SCHEMA, COUNT, SHARD, {"test": 1})
    write_shard(plan, 0, (make_sample(i) for i in plan.shard_range(0)))

    def killed_after_one():
        yield make_sample(3)
        raise KeyboardInterrupt                 # the process dies in the middle of shard 1

    with pytest.raises(KeyboardInterrupt):
        write_shard(plan, 1, killed_after_one())
    assert (root / ".tmp-00001" / "images" / "s003.png").is_file()    # a temporary shard is left over
    # and shard 2 as if killed between its renames: images in place, no commit mark
    (root / "images" / "00002").mkdir()
    (root / "images" / "00002" / "junk.png").write_bytes(b"half")
    assert not (root / "dataset.json").exists()
    assert missing_shards(plan) == [1, 2]
    with pytest.raises(LabeledDatasetError, match="run it again to resume"):
        LabeledDataset(root)

    produced = []

    def counting(i):
        produced.append(i)
        return make_sample(i)

    write_labeled_dataset(root, SCHEMA, COUNT, counting, shard_size=SHARD, provenance={"test": 1})
    assert produced == [3, 4, 5, 6]             # only the missing shards were produced again
    assert tree_bytes(root) == tree_bytes(written)


def test_resume_with_other_settings_is_refused(written, tmp_path):
    with pytest.raises(LabeledDatasetError, match="differing: count"):
        plan_dataset(written, SCHEMA, COUNT + 1, SHARD, {"test": 1})
    with pytest.raises(LabeledDatasetError, match="differing: provenance"):
        plan_dataset(written, SCHEMA, COUNT, SHARD, {"test": 2})
    (tmp_path / "other.txt").write_text("x")
    with pytest.raises(LabeledDatasetError, match="not empty"):
        plan_dataset(tmp_path, SCHEMA, COUNT, SHARD)
