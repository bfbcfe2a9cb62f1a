"""Fixtures of the multi-view tests: the tiny generator, a cluster interpreter of it, and the web layer's server."""

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_G():
    from ganfactory.gan import load_generator

    torch.set_num_threads(1)
    return load_generator("tiny32")


@pytest.fixture
def serve():
    """``serve(app)``: a context manager giving the base URL of ``app`` served by uvicorn in a thread."""
    from ganfactory.web import serving

    return serving


@pytest.fixture(scope="session")
def interp_dir(tmp_path_factory, tiny_G):
    """A cluster interpreter of tiny32 whose class 1 (the darkest cluster) is the background."""
    from ganfactory.annotate.synthetic import make_cluster_annotations
    from ganfactory.annotate.training import training_images
    from ganfactory.label import FeatureTaps, InterpreterConfig, train_interpreter

    tmp = tmp_path_factory.mktemp("interp")
    store = make_cluster_annotations(tiny_G, tmp / "ann", range(6), 3)
    config = InterpreterConfig(taps=FeatureTaps(("b16.conv1", "b32.conv1")), num_models=2, pixels_per_image=256,
                               holdout_pixels_per_image=64, max_epochs=2, patience=1)
    interp, _ = train_interpreter(tiny_G, training_images(store, tiny_G), store.schema, config, progress=False)
    return interp.save(tmp / "interp")
