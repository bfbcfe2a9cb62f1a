"""Fixtures of the multi-view tests: the tiny generator and a real uvicorn server on an ephemeral loopback port."""

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
    from ganfactory.inverse.annotate_page import serving_in_thread

    return serving_in_thread
