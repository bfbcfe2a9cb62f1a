"""Inversion: the generator's own images are recovered, images in a batch are independent, and a LabeledDataset
becomes an AnnotationSet whose latents regenerate their images and whose labels are the real ones."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from ganfactory.annotate import AnnotationSet
from ganfactory.annotate.inversion import REPORT, invert_labeled_dataset
from ganfactory.datasets.labeled import LabeledSample, write_labeled_dataset
from ganfactory.gan.invert import InversionConfig, invert, psnr
from ganfactory.gan.io import read_any
from ganfactory.gan.sampling import generate, to_uint8
from ganfactory.schema import Schema

FAST = InversionConfig(w_steps=40, wplus_steps=40, w_avg_samples=2000)


@pytest.fixture(scope="module")
def ckpt():
    torch.set_num_threads(1)
    return read_any("tiny32")


@pytest.fixture(scope="module")
def own_images(ckpt):
    """Images the generator can make exactly (psi 0.7, const noise), as inversion targets."""
    return generate(ckpt.generator, [0, 1, 2], truncation_psi=0.7).images


def test_recovers_the_generators_own_images(ckpt, own_images):
    G, D = ckpt.generator, ckpt.discriminator
    start = to_uint8(G.synthesis(G.w_avg.expand(1, G.num_ws, -1)))
    result = invert(G, own_images, FAST, D=D)
    real = to_uint8(own_images)
    baseline = psnr(np.repeat(start, len(real), 0), real)
    assert (result.psnr_w > baseline + 5).all(), (result.psnr_w, baseline)
    assert (result.psnr >= result.psnr_w).all(), (result.psnr, result.psnr_w)
    assert result.psnr.mean() > 28
    # the returned images are the generator's images of the returned latents
    with torch.no_grad():
        again = to_uint8(G.synthesis(result.ws, noise_mode="random", noise=result.noise))
    assert np.array_equal(again, result.images)
    assert result.ws.shape == (3, G.num_ws, G.w_dim) and result.w.shape == (3, G.w_dim)


def test_images_of_a_batch_are_inverted_independently(ckpt, own_images):
    # Every loss term is per image and Adam is elementwise, so a batch equals its images inverted one by one
    # (the phase-1 jitter is switched off: its draws depend on the batch layout).
    config = replace(FAST, w_steps=8, wplus_steps=8, initial_noise_factor=0.0)
    both = invert(ckpt.generator, own_images[:2], config, D=ckpt.discriminator)
    alone = invert(ckpt.generator, own_images[1:2], config, D=ckpt.discriminator)
    assert (both.ws[1:] - alone.ws).abs().max() < 1e-3, (both.ws[1:] - alone.ws).abs().max()
    for name in alone.noise:
        assert (both.noise[name][1:] - alone.noise[name]).abs().max() < 1e-3, name


def test_bad_target_shape_is_refused(ckpt):
    with pytest.raises(ValueError, match=r"targets must be \[N, 3, 32, 32\]"):
        invert(ckpt.generator, torch.zeros(1, 3, 16, 16), FAST)


def test_labeled_dataset_becomes_inverted_annotations(ckpt, own_images, tmp_path):
    G = ckpt.generator
    schema = Schema.from_names(["background", "thing"], keypoints=["p"])
    real = to_uint8(own_images)
    labels = [(img[..., 0] > img[..., 0].mean()).astype(np.uint8) for img in real]
    keypoints = [[[3.0, 4.0, 1]], [[None, None, 0]], [[10.5, 2.0, 1]]]
    write_labeled_dataset(tmp_path / "ds", schema, 3,
                          lambda i: LabeledSample(f"s{i}", real[i], labels[i], keypoints[i]), coco_object=None)
    config = replace(FAST, w_steps=10, wplus_steps=10)
    store = invert_labeled_dataset(G, tmp_path / "ds", tmp_path / "proj", config=config, generator="tiny32",
                                   batch=2, progress=False)
    assert store.annotated_ids() == ["s0", "s1", "s2"]
    store.validate(G, atol=0)  # every latent regenerates its stored image exactly
    report = json.loads((tmp_path / "proj" / REPORT).read_text())
    for i in range(3):
        item = store.item(f"s{i}", G)
        assert item.origin == "real" and item.latent.noise_mode == "random"
        assert np.array_equal(item.label, labels[i]) and item.keypoints == keypoints[i]
        rec = report["items"][f"s{i}"]
        assert rec["psnr"] == pytest.approx(float(psnr(item.image[None], real[i:i + 1])[0]), abs=1e-3)
    assert report["mean_psnr"] == pytest.approx(np.mean([r["psnr"] for r in report["items"].values()]), abs=1e-3)
    # a rerun resumes: nothing left to invert, nothing rewritten
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "proj").rglob("*") if p.is_file()}
    invert_labeled_dataset(G, tmp_path / "ds", tmp_path / "proj", config=config, progress=False)
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "proj").rglob("*") if p.is_file()}
    assert {p: t for p, t in after.items() if p.name != REPORT} == {p: t for p, t in before.items() if p.name != REPORT}
    assert AnnotationSet(tmp_path / "proj").ids == ["s0", "s1", "s2"]
    # a subset: the first samples only
    sub = invert_labeled_dataset(G, tmp_path / "ds", tmp_path / "sub", config=replace(config, w_steps=2, wplus_steps=2),
                                 limit=2, progress=False)
    assert sub.annotated_ids() == ["s0", "s1"]


def test_cli_inverts_a_label_folder_and_resumes(ckpt, own_images, tmp_path):
    import subprocess
    import sys

    from PIL import Image

    real = to_uint8(own_images[:2])
    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    for i, img in enumerate(real):
        Image.fromarray(img).save(tmp_path / "img" / f"car{i}.png")
        Image.fromarray((img[..., 1] > 100).astype(np.uint8), mode="L").save(tmp_path / "lab" / f"car{i}.png")
    (tmp_path / "schema.json").write_text(json.dumps(Schema.from_names(["background", "thing"]).to_json()))

    def run(*args):
        return subprocess.run([sys.executable, "-m", "ganfactory.cli", "annotate", "invert", "--ckpt", "tiny32",
                               "--project", str(tmp_path / "proj"), "--w-steps", "5", "--wplus-steps", "5", "--quiet",
                               *args], capture_output=True, text=True)

    res = run("--images", str(tmp_path / "img"), "--labels", str(tmp_path / "lab"), "--schema",
              str(tmp_path / "schema.json"))
    assert res.returncode == 0, res.stderr
    assert "2 images, mean PSNR" in res.stdout
    store = AnnotationSet(tmp_path / "proj")
    assert len(store.annotated_ids()) == 2 and all(store.item(i).latent is not None for i in store.ids)
    again = run("--images", str(tmp_path / "img"), "--labels", str(tmp_path / "lab"))
    assert again.returncode == 0 and "not imported again" in again.stdout
    bad = run("--images", str(tmp_path / "img"))
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert "--images and --labels go together" in bad.stderr
