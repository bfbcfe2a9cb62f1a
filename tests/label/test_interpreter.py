"""The interpreter: training on sampled pixels, exact factorised prediction, save/load, keypoints."""

import numpy as np
import pytest
import torch

from ganfactory.annotate.synthetic import make_cluster_annotations
from ganfactory.annotate.training import training_images
from ganfactory.gan import load_generator
from ganfactory.keypoints import refine_peaks
from ganfactory.label import FeatureTaps, InterpreterConfig, load_interpreter, train_interpreter
from ganfactory.label.features import concat_resized
from ganfactory.label.pixels import sample_positions
from ganfactory.label.uncertainty import image_score, js_divergence


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    G = load_generator("tiny32")
    store = make_cluster_annotations(G, tmp_path_factory.mktemp("ann") / "a", range(12), 3, keypoints=True)
    images = training_images(store, G)
    config = InterpreterConfig(taps=FeatureTaps(tuple(G.synthesis.layer_names())), num_models=3,
                               pixels_per_image=384, holdout_pixels_per_image=128, max_epochs=8, patience=2,
                               batch_size=64, seed=1)
    interp, report = train_interpreter(G, images[:10], store.schema, config, progress=False)
    return G, store, images, interp, report


def test_training_reaches_a_useful_heldout_accuracy(trained):
    G, store, images, interp, report = trained
    assert len(report.heldout_accuracy) == 3 and report.train_pixels == 10 * 384
    assert min(report.heldout_accuracy) > 0.75          # 3 colour clusters; chance is about 0.33
    _, pred = interp.predict(G, [im.latent for im in images[:10]])
    labels = np.stack([im.label for im in images[:10]])
    assert (pred.labels == labels).mean() > 0.8


def test_prediction_equals_the_dense_reference(trained):
    """predict_features (factorised first layer, streamed ensemble) == every model on the dense per-pixel table,
    majority vote and JS divergence computed the textbook way."""
    G, store, images, interp, _ = trained
    from ganfactory.gan.latent import synthesize_latents

    _, feats = synthesize_latents(G, [im.latent for im in images[10:12]], return_features=True)
    pred = interp.predict_features(feats)
    dense = concat_resized(feats, interp.taps.layers, 32).permute(0, 2, 3, 1).reshape(-1, interp.taps.dim)
    with torch.no_grad():
        probs = torch.stack([torch.softmax(m(dense), -1) for m in interp.classifiers])   # [E, P, C]
    votes = torch.nn.functional.one_hot(probs.argmax(-1), probs.shape[-1]).sum(0)
    ids = torch.tensor(interp.schema.class_ids)
    assert np.array_equal(pred.labels.reshape(-1), ids[votes.argmax(1)].numpy())
    js = js_divergence(probs).reshape(2, 32, 32)
    assert torch.allclose(pred.pixel_uncertainty, js.clamp_min(0), atol=1e-5)
    assert torch.allclose(pred.score, image_score(js), atol=1e-5)
    assert pred.keypoints.shape == (2, 3, 3)


def test_prediction_does_not_depend_on_the_model_chunking(trained, monkeypatch):
    G, store, images, interp, _ = trained
    from ganfactory.gan.latent import synthesize_latents
    from ganfactory.label import interpreter as module

    _, feats = synthesize_latents(G, [im.latent for im in images[10:12]], return_features=True)
    whole = interp.predict_features(feats)
    monkeypatch.setattr(module, "PREDICT_BUDGET", 1)              # one model per chunk
    chunked = interp.predict_features(feats)
    assert np.array_equal(whole.labels, chunked.labels)
    assert torch.allclose(whole.pixel_uncertainty, chunked.pixel_uncertainty, atol=1e-6)


def test_save_load_round_trip(trained, tmp_path):
    G, store, images, interp, _ = trained
    interp.save(tmp_path / "interp")
    again = load_interpreter(tmp_path / "interp")
    lat = [im.latent for im in images[10:]]
    a, b = interp.predict(G, lat)[1], again.predict(G, lat)[1]
    assert np.array_equal(a.labels, b.labels) and torch.equal(a.pixel_uncertainty, b.pixel_uncertainty)
    assert np.array_equal(a.keypoints, b.keypoints)


def test_training_is_deterministic(trained):
    G, store, images, interp, report = trained
    again, report2 = train_interpreter(G, images[:10], store.schema,
                                       InterpreterConfig(**{**interp.config.__dict__, "num_models": 1}),
                                       progress=False)
    assert report2.heldout_accuracy[0] == report.heldout_accuracy[0]
    assert torch.equal(again.classifiers[0].fc1.weight, interp.classifiers[0].fc1.weight)


def test_keypoint_heads_find_cluster_centres_roughly(trained):
    G, store, images, interp, _ = trained
    _, pred = interp.predict(G, [im.latent for im in images[:10]])
    truth = np.array([[p[:2] if p[0] is not None else [np.nan, np.nan] for p in im.keypoints] for im in images[:10]],
                     dtype=float)
    err = np.linalg.norm(pred.keypoints[..., :2] - truth, axis=-1)
    assert np.nanmedian(err) < 6.0                      # pixels, on 32 px images


def test_refine_peaks_recovers_a_subpixel_gaussian():
    yy, xx = torch.meshgrid(torch.arange(24.0), torch.arange(32.0), indexing="ij")
    heat = torch.exp(-((xx - 10.3) ** 2 + (yy - 7.6) ** 2) / (2 * 2.0**2))[None, None]
    x, y, peak = refine_peaks(heat)
    assert abs(x.item() - 10.3) < 0.1 and abs(y.item() - 7.6) < 0.1 and peak.item() > 0.9


def test_class_balanced_sampling():
    label = torch.zeros(32, 32, dtype=torch.long)
    label[:4, :4] = 1                                    # 16 pixels of class 1
    label[10:20, 10:20] = 2                              # 100 pixels of class 2
    g = torch.Generator().manual_seed(0)
    idx = sample_positions(label, 90, None, True, g)
    counts = torch.bincount(label.reshape(-1)[idx], minlength=3).tolist()
    assert counts == [37, 16, 37]                        # class 1 gives all it has, the rest split evenly
    exclude = torch.arange(0, 1024, 2)
    idx = sample_positions(label, None, exclude, False, g)
    assert len(idx) == 512 and not torch.isin(idx, exclude).any()


def test_pixel_metrics_hand_computed():
    from ganfactory.metrics import pixel_metrics

    truth = np.array([[[0, 0, 1, 1]]], np.uint8)
    pred = np.array([[[0, 1, 1, 1]]], np.uint8)
    m = pixel_metrics(pred, truth, [0, 1, 2])
    assert m["pixel_accuracy"] == 0.75
    assert m["iou"] == {0: 0.5, 1: 2 / 3}                       # class 2 absent from both: not averaged
    assert m["mean_iou"] == pytest.approx((0.5 + 2 / 3) / 2)


@pytest.mark.slow
def test_compiled_prediction_equals_eager(trained):
    """torch.compile fuses the resize-and-sum (compiles for about half a minute, hence slow)."""
    G, store, images, interp, _ = trained
    from ganfactory.gan.latent import synthesize_latents
    from ganfactory.label.interpreter import Interpreter

    _, feats = synthesize_latents(G, [im.latent for im in images[10:12]], return_features=True)
    compiled = Interpreter(interp.taps, interp.schema, interp.classifiers, interp.keypoint_head, interp.config,
                           compile=True)
    a, b = interp.predict_features(feats), compiled.predict_features(feats)
    assert (a.labels == b.labels).mean() > 0.999
    assert torch.allclose(a.pixel_uncertainty, b.pixel_uncertainty, atol=1e-5)


def test_training_refuses_annotations_that_do_not_regenerate(trained):
    G, store, images, interp, _ = trained
    from ganfactory.label import TrainingImage

    wrong = TrainingImage(images[0].latent, images[0].label, None, images[1].image)
    with pytest.raises(Exception, match="does not regenerate"):
        train_interpreter(G, [wrong], store.schema, interp.config, progress=False)
