"""Fixtures of the annotator tests: the tiny generator, a project schema, and a real uvicorn server on an
ephemeral port of 127.0.0.1 (in a thread of the test process, stopped after the test)."""

import json

import pytest
import torch

from ganfactory.schema import Schema

SCHEMA = Schema.from_names(["background", "body", "wheel", "window"],
                           {"body": (230, 25, 75), "wheel": (60, 180, 75), "window": (0, 130, 200)},
                           keypoints=["front", "back"])


@pytest.fixture(scope="session")
def G():
    from ganfactory.gan import load_generator

    torch.set_num_threads(1)
    return load_generator("tiny32")


@pytest.fixture
def schema():
    """background, body, wheel, window; keypoints front and back."""
    return SCHEMA


@pytest.fixture
def schema_file(tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA.to_json()))
    return path


@pytest.fixture
def serve():
    """``serve(app)``: a context manager giving the base URL of ``app`` served by uvicorn (``ganfactory.web``)."""
    from ganfactory.web import serving

    return serving
