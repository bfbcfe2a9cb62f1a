"""AnnotationSet: round trip, exact regeneration from stored latents and noise, clear errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganfactory.annotate import AnnotationError, AnnotationSet
from ganfactory.annotate.synthetic import make_cluster_annotations
from ganfactory.gan import load_generator
from ganfactory.gan.latent import Latent, LatentError, synthesize_latents
from ganfactory.gan.sampling import generate, to_uint8
from ganfactory.schema import Schema


@pytest.fixture(scope="module")
def G():
    torch.set_num_threads(1)
    return load_generator("tiny32")


SCHEMA = Schema.from_names(["background", "body", "wheel"], keypoints=["a", "b"])


def test_round_trip_seed_and_ws_latents(G, tmp_path):
    store = AnnotationSet.create(tmp_path / "ann", SCHEMA, "tiny32")
    seeded = Latent.from_seed(G, 5, 0.7, "random")
    # the seed latent is generate()'s sample exactly (same z, same noise draw)
    ref = to_uint8(generate(G, [5], truncation_psi=0.7, noise_mode="random").images)[0]
    img = to_uint8(synthesize_latents(G, [seeded]))[0]
    assert np.array_equal(img, ref)
    label = (img[..., 0] > 128).astype(np.uint8)
    store.add("a-seed", seeded, img, label, [[3.0, 4.5, 1], [None, None, 0]])
    explicit = Latent(seeded.ws + 0.1, "random", G.synthesis.sample_noise(1, torch.Generator().manual_seed(9)))
    img2 = to_uint8(synthesize_latents(G, [explicit]))[0]
    store.add("b-ws", explicit, img2)
    again = AnnotationSet(tmp_path / "ann")
    assert again.ids == ["a-seed", "b-ws"] and again.annotated_ids() == ["a-seed"]
    assert again.schema == SCHEMA and again.generator == "tiny32"
    item = again.item("a-seed", G)
    assert item.status == "annotated" and np.array_equal(item.label, label)
    assert item.keypoints == [[3.0, 4.5, 1], [None, None, 0]]
    assert json.loads((tmp_path / "ann/items/a-seed/item.json").read_text())["latent"]["kind"] == "seed"
    b = again.item("b-ws")
    assert b.status == "pending" and b.label is None
    assert np.array_equal(to_uint8(synthesize_latents(G, [b.latent]))[0], img2)
    again.validate(G, atol=0)
    again.set_annotation("b-ws", label=np.zeros((32, 32), np.uint8))
    assert again.annotated_ids() == ["a-seed", "b-ws"]
    assert not list((tmp_path / "ann").rglob(".tmp-*"))


def test_validate_catches_a_latent_that_does_not_regenerate(G, tmp_path):
    store = AnnotationSet.create(tmp_path / "ann", SCHEMA)
    lat = Latent.from_seed(G, 1)
    other = to_uint8(synthesize_latents(G, [Latent.from_seed(G, 2)]))[0]
    store.add("x", lat, other)
    with pytest.raises(AnnotationError, match="differs from the stored one"):
        store.validate(G)


def test_errors_say_what_to_fix(G, tmp_path):
    with pytest.raises(AnnotationError, match="no schema.json"):
        AnnotationSet(tmp_path)
    store = AnnotationSet.create(tmp_path / "ann", SCHEMA)
    lat = Latent.from_seed(G, 1)
    img = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(AnnotationError, match=r"label ids \[7\] are not classes"):
        store.add("x", lat, img, np.full((32, 32), 7, np.uint8))
    with pytest.raises(AnnotationError, match="1 keypoints, the schema names 2"):
        store.add("x", lat, img, np.zeros((32, 32), np.uint8), [[1, 2, 1]])
    with pytest.raises(AnnotationError, match="needs a label map or keypoints"):
        store.add("x", lat, img, status="annotated")
    with pytest.raises(AnnotationError, match="folder name"):
        store.add("../x", lat, img)
    with pytest.raises(LatentError, match="noise maps stored"):
        Latent(lat.ws, "random")
    with pytest.raises(AnnotationError, match="not an empty directory"):
        AnnotationSet.create(tmp_path / "ann", SCHEMA)
    assert store.ids == []


def test_cluster_annotations_are_a_valid_store(G, tmp_path):
    store = make_cluster_annotations(G, tmp_path / "ann", range(4), num_clusters=3, keypoints=True)
    # 1 level: the images were made in one batch and are regenerated one by one; on one thread oneDNN picks other
    # kernels per batch size and a pixel can move by 1/255 (NVlabs' generate.py does the same between batch sizes)
    store.validate(G, atol=1)
    assert [c.name for c in store.schema.classes] == ["background", "c1", "c2", "c3"]
    item = store.item("seed000002", G)
    assert set(np.unique(item.label)) <= {1, 2, 3} and len(item.keypoints) == 3


def test_real_items_stay_out_of_training_until_a_latent_is_attached(G, tmp_path):
    from ganfactory.annotate.training import training_images

    store = AnnotationSet.create(tmp_path / "ann", SCHEMA)
    photo = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    label = np.zeros((32, 32), np.uint8)
    label[4:9, 2:7] = 2
    store.add("photo", None, photo, label, meta={"source": "a.jpg"})
    lat = Latent.from_seed(G, 3)
    gen_img = to_uint8(synthesize_latents(G, [lat]))[0]
    store.add("gen", lat, gen_img, label)
    record = json.loads((tmp_path / "ann/items/photo/item.json").read_text())
    assert record["origin"] == "real" and record["latent"] is None
    assert store.annotated_ids() == ["gen"] and store.annotated_ids(include_without_latent=True) == ["gen", "photo"]
    assert len(training_images(store, G)) == 1
    item = store.item("photo")
    assert item.origin == "real" and item.latent is None and np.array_equal(item.image, photo)
    assert item.meta == {"source": "a.jpg"}
    with pytest.raises(AnnotationError, match="invert it first"):
        store.latent("photo")
    store.validate(G)                        # a real item has nothing to regenerate
    # an inversion attaches a latent: the generator's image replaces image.png, the photograph is kept
    inverted = Latent(lat.ws + 0.05, "const")
    inv_img = to_uint8(synthesize_latents(G, [inverted]))[0]
    with pytest.raises(AnnotationError, match="of the stored image's size"):
        store.set_latent("photo", inverted, inv_img[:16])
    store.set_latent("photo", inverted, inv_img)
    assert store.annotated_ids() == ["gen", "photo"]
    item = store.item("photo")
    assert np.array_equal(item.image, inv_img) and np.array_equal(item.label, label) and item.origin == "real"
    assert np.array_equal(np.asarray(Image.open(tmp_path / "ann/items/photo/real.png")), photo)
    assert torch.equal(item.latent.ws, inverted.ws)
    store.validate(G, atol=0)
    assert len(training_images(store, G)) == 2
    assert not list((tmp_path / "ann").rglob(".tmp-*"))
