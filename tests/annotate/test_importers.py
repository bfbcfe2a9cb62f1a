"""Importers of labeled real images: label PNG folders (ids, palette, colours), COCO (polygons, RLE, keypoints) and
LabelMe (polygons, rectangles, points; embedded or referenced images) land as real items with exact labels."""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from ganfactory.annotate import AnnotationSet
from ganfactory.annotate.importers import (
    ImportError_,
    import_coco,
    import_label_folder,
    import_labelme,
    polygon_mask,
)
from ganfactory.cli import main

RNG = np.random.default_rng(0)


def _photo(h=32, w=32):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_polygon_mask_takes_pixel_centres():
    square = polygon_mask(np.array([[1.5, 1.5], [4.5, 1.5], [4.5, 3.5], [1.5, 3.5]]), 6, 6)
    expected = np.zeros((6, 6), bool)
    expected[2:4, 2:5] = True
    assert np.array_equal(square, expected)
    tri = polygon_mask(np.array([[0, 0], [8, 0], [0, 8]]) - 0.5, 8, 8)      # centres with x + y < 7.5 - ... inside
    yy, xx = np.mgrid[0:8, 0:8]
    assert np.array_equal(tri, xx + yy < 7)


def test_label_folder_ids_palette_and_colours(tmp_path, schema):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    truth = {}
    for k, name in enumerate(["a photo", "b", "c"]):
        img = _photo()
        Image.fromarray(img).save(images / f"{name}.jpg" if k == 2 else images / f"{name}.png")
        lab = np.zeros((32, 32), np.uint8)
        lab[k:10 + k, 3:20] = 1 + k
        lab[25:, :4] = 3
        truth[name] = (lab, img)
        if k == 0:
            Image.fromarray(lab, "L").save(labels / f"{name}.png")
        elif k == 1:
            pal = Image.fromarray(lab, "P")
            pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
            pal.save(labels / f"{name}.png")
        else:                                                  # drawn in the schema's colours
            colours = np.array([c.color for c in schema.classes], np.uint8)
            Image.fromarray(colours[lab]).save(labels / f"{name}.png")
    with pytest.raises(ImportError_, match="pass --schema"):
        import_label_folder(tmp_path / "p", images, labels)
    report = import_label_folder(tmp_path / "p", images, labels, schema)
    assert report["imported"] == 3
    store = AnnotationSet(tmp_path / "p")
    assert store.ids == ["a_photo", "b", "c"]
    assert store.annotated_ids() == [] and store.annotated_ids(include_without_latent=True) == store.ids
    for item_id, name in zip(store.ids, ["a photo", "b", "c"], strict=True):
        item = store.item(item_id)
        assert item.origin == "real" and item.latent is None and item.status == "annotated"
        assert np.array_equal(item.label, truth[name][0])
        if name != "c":                                        # the JPEG is lossy; the PNGs are exact
            assert np.array_equal(item.image, truth[name][1])
    bad = np.zeros((32, 32, 3), np.uint8)
    bad[0, 0] = (1, 2, 3)
    Image.fromarray(bad).save(labels / "b.png")
    with pytest.raises(ImportError_, match=r"colour \[1, 2, 3\] is no class colour"):
        import_label_folder(tmp_path / "p", images, labels)
    (labels / "b.png").unlink()
    with pytest.raises(ImportError_, match="no label PNG .* for b.png"):
        import_label_folder(tmp_path / "p", images, labels)


def test_coco_polygons_rle_keypoints_and_resize(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(_photo(16, 20)).save(images / "one.png")
    Image.fromarray(_photo(16, 20)).save(images / "two.png")
    wheel = np.zeros((16, 20), np.uint8, order="F")
    wheel[6:9, 4:7] = 1
    rle = mask_utils.encode(wheel)
    rle["counts"] = rle["counts"].decode()
    coco = {
        "images": [{"id": 1, "file_name": "one.png", "height": 16, "width": 20},
                   {"id": 2, "file_name": "two.png", "height": 16, "width": 20}],
        "categories": [{"id": 1, "name": "body", "keypoints": ["front", "back"]}, {"id": 5, "name": "wheel"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 5, "segmentation": rle, "area": 9, "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [[2, 2, 12, 2, 12, 10, 2, 10]], "area": 80,
             "iscrowd": 0, "num_keypoints": 2, "keypoints": [5.5, 4.5, 2, 9.5, 7.5, 1]},
        ],
    }
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    import_coco(tmp_path / "p", tmp_path / "coco.json", images)
    store = AnnotationSet(tmp_path / "p")
    assert [(c.id, c.name) for c in store.schema.classes] == [(0, "background"), (1, "body"), (5, "wheel")]
    assert store.schema.keypoints == ("front", "back")
    expected = np.zeros((16, 20), np.uint8)
    expected[2:10, 2:12] = 1
    expected[6:9, 4:7] = 5                                     # the smaller instance on top
    one = store.item("one")
    assert np.array_equal(one.label, expected)
    assert one.keypoints == [[5.0, 4.0, 1], [9.0, 7.0, 0]]     # COCO centres at +0.5; v=1 is labelled but hidden
    assert not store.item("two").label.any() and store.item("two").keypoints is None
    # resized to a generator's size: labels nearest, keypoints through pixel centres
    import_coco(tmp_path / "q", tmp_path / "coco.json", images, size=40)
    big = AnnotationSet(tmp_path / "q").item("one")
    assert big.image.shape == (40, 40, 3) and big.label.shape == (40, 40)
    assert big.keypoints[0] == pytest.approx([(5 + 0.5) * 2 - 0.5, (4 + 0.5) * 2.5 - 0.5, 1])
    assert set(np.unique(big.label)) == {0, 1, 5}
    coco["categories"][0]["name"] = "cat"
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    with pytest.raises(ImportError_, match="category 'cat' is no class"):
        import_coco(tmp_path / "p", tmp_path / "coco.json", images)


def _png_b64(img):
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_labelme_shapes_and_cli(tmp_path, capsys):
    folder = tmp_path / "lm"
    folder.mkdir()
    img = _photo(24, 24)
    body = [[3.0, 3.0], [20.0, 5.0], [12.0, 20.0]]
    doc = {"imageData": _png_b64(img), "imageHeight": 24, "imageWidth": 24, "shapes": [
        {"label": "body", "shape_type": "polygon", "points": body},
        {"label": "wheel", "shape_type": "rectangle", "points": [[2, 2], [6, 5]]},
        {"label": "front", "shape_type": "point", "points": [[10.5, 3.5]]},
        {"label": "edge", "shape_type": "line", "points": [[0, 0], [5, 5]]},
    ]}
    (folder / "x.json").write_text(json.dumps(doc))
    Image.fromarray(img).save(folder / "y.png")
    (folder / "y.json").write_text(json.dumps({"imagePath": "y.png", "imageData": None, "shapes": [
        {"label": "wheel", "shape_type": "circle", "points": [[10.5, 10.5], [13.5, 10.5]]}]}))
    code = main(["annotate", "import", "--project", str(tmp_path / "p"), "--format", "labelme",
                 "--labelme", str(folder)])
    assert code == 0 and json.loads(capsys.readouterr().out)["imported"] == 2
    store = AnnotationSet(tmp_path / "p")
    assert [c.name for c in store.schema.classes] == ["background", "body", "edge", "wheel"]
    assert store.schema.keypoints == ("front",)
    x = store.item("x")
    expected = np.zeros((24, 24), np.uint8)
    expected[polygon_mask(np.array(body) - 0.5, 24, 24)] = 1
    expected[2:5, 2:6] = 3                                     # LabelMe's pixel (i, j) spans [i, i + 1)
    assert np.array_equal(x.label, expected) and np.array_equal(x.image, img)
    assert x.keypoints == [[10.0, 3.0, 1]]
    yy, xx = np.mgrid[0:24, 0:24]
    y = store.item("y")
    assert np.array_equal(y.label == 3, (xx - 10) ** 2 + (yy - 10) ** 2 <= 9) and y.keypoints == [[None, None, 0]]
    # bad input: one line, exit status 2
    code = main(["annotate", "import", "--project", str(tmp_path / "p"), "--format", "labelme",
                 "--labelme", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no such directory" in err
    (folder / "z.json").write_text(json.dumps({"shapes": [{"label": "cat", "shape_type": "polygon",
                                                           "points": [[0, 0], [3, 0], [0, 3]]}], "imageData":
                                                _png_b64(img)}))
    with pytest.raises(ImportError_, match="label 'cat' is no class"):
        import_labelme(tmp_path / "p", folder)


def test_serve_refuses_bad_input(tmp_path, capsys):
    code = main(["annotate", "serve", "--ckpt", "tiny32", "--project", str(tmp_path / "p"),
                 "--schema", str(tmp_path / "missing.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no such schema file" in err
    (tmp_path / "s.json").write_text(json.dumps({"classes": [{"id": 1, "name": "x", "color": [1, 2, 3]}]}))
    code = main(["annotate", "serve", "--ckpt", "tiny32", "--project", str(tmp_path / "p"),
                 "--schema", str(tmp_path / "s.json")])
    err = capsys.readouterr().err
    assert code == 2 and "class id 0" in err and not (tmp_path / "p").exists()
