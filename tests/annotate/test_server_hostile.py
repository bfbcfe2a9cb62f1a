"""The annotator's server against what an outside check tried (issue 14): odd ids, symbolic links out of the
project, malformed keypoints and deep JSON, foreign Host and Origin headers, a corrupted item, ports, and reads
during concurrent saves. Every case over real HTTP on loopback; each ends as a 4xx with a message (or, for the
CLI, one line and a non-zero exit) and reads or changes nothing outside the project."""

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest

from ganfactory.annotate.server import ServerConfig, create_app
from ganfactory.annotate.store import open_project


def _b64(label: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(label, np.uint8).tobytes()).decode()


@pytest.fixture
def project(tmp_path, schema):
    return open_project(tmp_path / "project", schema, "tiny32")


@pytest.fixture
def client(project, G, serve):
    with serve(create_app(project, G, ServerConfig(active=None))) as url, httpx.Client(base_url=url) as c:
        c.url = url
        yield c


@pytest.mark.parametrize("item_id", ["%2E", "%2E%2E", "nosuch", "%00"])
def test_odd_item_ids_are_404(client, item_id):
    client.post("/api/items/new")
    r = client.get(f"/api/items/{item_id}/annotation")
    assert r.status_code == 404 and "error" in r.json()
    assert client.put(f"/api/items/{item_id}/annotation", json={"status": "skipped"}).status_code == 404


def test_symbolic_links_out_of_the_project_are_not_followed(client, project, tmp_path):
    client.post("/api/items/new", json={"seed": 3})
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.png"
    secret.write_bytes(b"not yours")
    # an item folder that is a link to a folder outside, holding an item of a large seed
    import shutil

    shutil.copytree(project.root / "items" / "seed000003", outside / "seed999999")
    record = json.loads((outside / "seed999999" / "item.json").read_text())
    record.update(id="seed999999", latent={**record["latent"], "seed": 999999})
    (outside / "seed999999" / "item.json").write_text(json.dumps(record))
    os.symlink(outside / "seed999999", project.root / "items" / "seed999999")
    listing = client.get("/api/items").json()
    assert [i["id"] for i in listing["items"]] == ["seed000003"]
    assert [b["id"] for b in listing["broken"]] == ["seed999999"] and "symbolic link" in listing["broken"][0]["error"]
    assert client.get("/api/items/seed999999/annotation").status_code == 404
    assert client.post("/api/items/new").json()["seed"] == 4              # the outside seed does not count
    # files of a real item linked to outside files: neither served nor copied in by a save
    folder = project.root / "items" / "seed000003"
    os.symlink(secret, folder / "label.png")
    assert client.get("/api/items/seed000003/annotation").status_code == 404
    assert client.get("/api/items/seed000003/image.png").status_code == 404
    r = client.put("/api/items/seed000003/annotation", json={"status": "skipped"})
    assert r.status_code == 404 and secret.read_bytes() == b"not yours"
    os.unlink(folder / "label.png")
    (folder / "item.json").rename(outside / "item.json")
    os.symlink(outside / "item.json", folder / "item.json")
    assert client.get("/api/items/seed000003/annotation").status_code == 404
    before = (outside / "item.json").read_bytes()
    assert client.put("/api/items/seed000003/annotation", json={"status": "skipped"}).status_code == 404
    assert (outside / "item.json").read_bytes() == before


@pytest.mark.parametrize("keypoints", [[["4", 5, 1], [None, None, 0]], [[[4], 5, 1], [None, None, 0]],
                                       [[4, {"x": 1}, 1], [None, None, 0]], [[float("inf"), 5, 1], [None, None, 0]]])
def test_keypoints_of_the_wrong_type_are_400(client, project, keypoints):
    client.post("/api/items/new")
    before = (project.root / "items" / "seed000000" / "item.json").read_bytes()
    body = json.dumps({"keypoints": keypoints}).replace("Infinity", "1e999")
    r = client.put("/api/items/seed000000/annotation", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "keypoint" in r.json()["error"]
    assert (project.root / "items" / "seed000000" / "item.json").read_bytes() == before


def test_deeply_nested_json_under_the_body_limit_is_400(client):
    client.post("/api/items/new")
    r = client.put("/api/items/seed000000/annotation", content="[" * 20000,
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "nested" in r.json()["error"]
    r = client.post("/api/items/new", content="[" * 4000, headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_foreign_host_and_cross_site_requests_are_refused(client, project):
    r = client.get("/api/items", headers={"Host": "evil.example"})
    assert r.status_code == 421 and "evil.example" in r.json()["error"]
    assert client.get("/", headers={"Host": "evil.example:8765"}).status_code == 421
    r = client.post("/api/items/new", content="{}",
                    headers={"Content-Type": "text/plain", "Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-site" in r.json()["error"]
    r = client.post("/api/items/new", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert project.ids == []
    # the page's own requests (same origin, loopback names) pass
    port = client.url.rsplit(":", 1)[1]
    assert client.post("/api/items/new", headers={"Origin": f"http://127.0.0.1:{port}"}).status_code == 200
    assert client.get("/api/items", headers={"Host": f"localhost:{port}"}).status_code == 200
    assert client.get("/api/items", headers={"Host": f"[::1]:{port}"}).status_code == 200


def test_a_corrupted_item_is_skipped_and_named(client, project):
    client.post("/api/items/new")
    client.post("/api/items/new")
    (project.root / "items" / "seed000000" / "item.json").write_text('{"id": "seed000000", "sta')
    listing = client.get("/api/items")
    assert listing.status_code == 200
    assert [i["id"] for i in listing.json()["items"]] == ["seed000001"]
    assert listing.json()["broken"][0]["id"] == "seed000000"
    assert "item.json" in listing.json()["broken"][0]["error"]
    assert client.post("/api/items/new").json()["id"] == "seed000002"
    r = client.get("/api/items/seed000000/annotation")
    assert r.status_code == 404 and "cannot be read" in r.json()["error"]


def test_reads_during_concurrent_saves_see_one_whole_save(client, project):
    client.post("/api/items/new")
    saves = []
    for v in (1, 2):
        label = np.full((32, 32), v, np.uint8)
        saves.append({"label": _b64(label), "keypoints": [[v, v, 1], [None, None, 0]]})
    stop = threading.Event()
    mixed = []

    def writer(body):
        with httpx.Client(base_url=client.url) as c:
            while not stop.is_set():
                c.put("/api/items/seed000000/annotation", json=body)

    threads = [threading.Thread(target=writer, args=(b,)) for b in saves]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 4
        reads = 0
        while time.monotonic() < deadline:
            got = client.get("/api/items/seed000000/annotation").json()
            if got["label"] is None:
                continue
            value = int(np.frombuffer(base64.b64decode(got["label"]), np.uint8)[0])
            reads += 1
            if got["keypoints"][0][0] != value:
                mixed.append((value, got["keypoints"]))
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert reads > 5 and not mixed, mixed[:3]


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "ganfactory.cli", "annotate", "serve", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_a_port_in_use_fails_before_the_project_is_made(tmp_path, schema_file):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = _cli("--generator", "tiny32", "--project", tmp_path / "p", "--schema", schema_file, "--port", port,
                    "--no-active")
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and len(err.strip().splitlines()) == 1 and "cannot listen" in err, err
    assert not (tmp_path / "p").exists()


def test_port_zero_prints_the_port_it_got(tmp_path, schema_file):
    import signal

    proc = _cli("--generator", "tiny32", "--project", tmp_path / "p", "--schema", schema_file, "--port", 0,
                "--no-active")
    try:
        line = proc.stdout.readline()
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        assert port > 0
        deadline = time.monotonic() + 60
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/api/items", timeout=2).status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
