"""Bad input to the labelled-data verbs (issue 14): each ends as one line and exit 2, with nothing half-written."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganfactory.annotate import AnnotationSet
from ganfactory.annotate.synthetic import make_cluster_annotations
from ganfactory.cli import main
from ganfactory.gan import load_generator, read_any, save_checkpoint


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tiny32 AnnotationSet, an interpreter and a downstream network trained from it."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("made")
    G = load_generator("tiny32")
    store = make_cluster_annotations(G, root / "ann", range(3), 2)
    assert main(["interpreter", "train", "--generator", "tiny32", "--annotations", str(store.root), "--out",
                 str(root / "interp"), "--models", "1", "--pixels-per-image", "64", "--epochs", "1", "--quiet"]) == 0
    assert main(["synthesize", "--generator", "tiny32", "--interpreter", str(root / "interp"), "--seeds", "0-3",
                 "--out", str(root / "synth"), "--quiet"]) == 0
    assert main(["segment", "train", "--data", str(root / "synth"), "--out", str(root / "net"), "--iterations", "1",
                 "--batch", "2", "--widths", "4,8", "--quiet"]) == 0
    return root


@pytest.mark.parametrize("verb", [
    ["generate", "--generator", "tiny32", "--seeds", "0"],
    ["interpreter", "train", "--generator", "tiny32", "--annotations", "{made}/ann"],
    ["segment", "train", "--data", "{made}/synth"],
    ["synthesize", "--generator", "tiny32", "--interpreter", "{made}/interp", "--seeds", "0"],
])
def test_out_that_is_an_existing_file(verb, made, tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("mine")
    assert main([v.format(made=made) for v in verb] + ["--out", str(target)]) == 2
    _one_line_error(capsys, "existing file")
    assert target.read_text() == "mine"


def test_an_interpreter_of_another_generator_is_refused_before_writing(made, tmp_path, capsys):
    assert main(["synthesize", "--generator", "cars64", "--interpreter", str(made / "interp"), "--seeds", "0-1",
                 "--out", str(tmp_path / "synth"), "--quiet"]) == 2
    _one_line_error(capsys, "trained on another generator")
    assert not (tmp_path / "synth").exists()
    assert main(["interpreter", "predict", "--generator", "cars64", "--interpreter", str(made / "interp"),
                 "--seeds", "0", "--out", str(tmp_path / "pred")]) == 2
    _one_line_error(capsys, "trained on another generator")


def test_segment_eval_on_a_truncated_model_or_a_gan_checkpoint(made, tmp_path, capsys):
    import shutil

    broken = tmp_path / "net"
    shutil.copytree(made / "net", broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[:len(data) // 2])
    assert main(["segment", "eval", "--model", str(broken), "--data", str(made / "synth")]) == 2
    _one_line_error(capsys, "model.safetensors")
    ckpt = save_checkpoint(read_any("tiny32"), tmp_path / "gan")
    assert main(["segment", "eval", "--model", str(ckpt), "--data", str(made / "synth")]) == 2
    err = _one_line_error(capsys, "not a trained downstream network")
    assert "training has not finished" not in err


def test_interpreter_train_on_real_items_not_inverted_says_invert_first(tmp_path, capsys):
    from ganfactory.schema import Schema

    store = AnnotationSet.create(tmp_path / "ann", Schema.from_names(["background", "thing"]))
    store.add("photo", None, np.zeros((32, 32, 3), np.uint8), np.ones((32, 32), np.uint8))
    assert main(["interpreter", "train", "--generator", "tiny32", "--annotations", str(store.root), "--out",
                 str(tmp_path / "interp"), "--quiet"]) == 2
    _one_line_error(capsys, "invert them first")


def test_label_ids_beyond_the_schema_name_the_item_and_the_ids(tmp_path, capsys):
    G = load_generator("tiny32")
    store = make_cluster_annotations(G, tmp_path / "ann", range(2), 2)
    label = np.zeros((32, 32), np.uint8)
    label[0, 0] = 9
    Image.fromarray(label, "L").save(store.root / "items" / "seed000001" / "label.png")
    assert main(["interpreter", "train", "--generator", "tiny32", "--annotations", str(store.root), "--out",
                 str(tmp_path / "interp"), "--models", "1", "--epochs", "1", "--quiet"]) == 2
    _one_line_error(capsys, "seed000001", "[9]")
    assert not (tmp_path / "interp").exists()


def test_coco_with_an_unknown_category_imports_nothing(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / name)
    coco = {"images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"}],
            "categories": [{"id": 1, "name": "thing"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 5, 1, 5, 5]]},
                            {"id": 2, "image_id": 2, "category_id": 7, "segmentation": [[1, 1, 5, 1, 5, 5]]}]}
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    assert main(["annotate", "import", "--project", str(tmp_path / "p"), "--format", "coco", "--coco",
                 str(tmp_path / "coco.json"), "--images", str(images)]) == 2
    _one_line_error(capsys, "category ids [7]")
    assert not (tmp_path / "p").exists()
    # into an existing project: a missing image anywhere leaves it as it was
    coco["annotations"][1]["category_id"] = 1
    coco["images"].append({"id": 3, "file_name": "missing.png"})
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    from ganfactory.schema import Schema

    AnnotationSet.create(tmp_path / "q", Schema.from_names(["background", "thing"]))
    assert main(["annotate", "import", "--project", str(tmp_path / "q"), "--format", "coco", "--coco",
                 str(tmp_path / "coco.json"), "--images", str(images)]) == 2
    _one_line_error(capsys, "missing.png")
    assert AnnotationSet(tmp_path / "q").ids == []
