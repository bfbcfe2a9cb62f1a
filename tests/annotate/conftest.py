"""Fixtures of the annotator tests: the tiny generator, a project schema, and a real uvicorn server on an
ephemeral port of 127.0.0.1 (in a thread of the test process, stopped after the test)."""

import json
import threading
import time
from contextlib import contextmanager

import pytest
import torch

from ganfactory.datasets.labeled import Schema

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


@contextmanager
def _serving(app):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


@pytest.fixture
def serve():
    """``serve(app)``: a context manager giving the base URL of ``app`` served by uvicorn."""
    return _serving
