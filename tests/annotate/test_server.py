"""The annotator's server on a real uvicorn: it serves and writes only the project, refuses traversal and oversized
or malformed uploads without touching the item, and concurrent saves always leave one whole save."""

import base64
import json
import os
import threading

import httpx
import numpy as np
import pytest
from PIL import Image

from ganfactory.annotate.server import ServerConfig, create_app
from ganfactory.annotate.store import open_project
from ganfactory.errors import GanfactoryError
from ganfactory.web import project_lock


def _b64(label: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(label, np.uint8).tobytes()).decode()


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def project(tmp_path, schema):
    return open_project(tmp_path / "project", schema, "tiny32")


def test_new_sample_save_and_read_back(project, G, serve):
    with serve(create_app(project, G, ServerConfig(active=None))) as url, httpx.Client(base_url=url) as c:
        assert c.get("/").status_code == 200 and "annotator" in c.get("/").text
        assert c.get("/static/app.js").headers["content-type"].startswith("text/javascript")
        first = c.post("/api/items/new").json()
        assert first == {"id": "seed000000", "seed": 0, "prefilled": False, "created": True}
        assert c.post("/api/items/new", json={"seed": 7}).json()["id"] == "seed000007"
        assert c.post("/api/items/new").json()["seed"] == 8                    # the next seed after the largest
        png = c.get("/api/items/seed000007/image.png")
        assert png.content == (project.root / "items/seed000007/image.png").read_bytes()
        label = np.zeros((32, 32), np.uint8)
        label[3:9, 5:20] = 2
        label[30, 31] = 3
        r = c.put("/api/items/seed000007/annotation",
                  json={"label": _b64(label), "keypoints": [[4, 5, 1], [None, None, 0]], "status": "annotated"})
        assert r.status_code == 200, r.text
        saved = Image.open(project.root / "items/seed000007/label.png")
        assert saved.mode == "L" and np.array_equal(np.asarray(saved), label)
        got = c.get("/api/items/seed000007/annotation").json()
        assert np.array_equal(np.frombuffer(base64.b64decode(got["label"]), np.uint8).reshape(32, 32), label)
        assert got["keypoints"] == [[4, 5, 1], [None, None, 0]] and got["status"] == "annotated"
        items = c.get("/api/items").json()["items"]
        assert [(i["id"], i["status"]) for i in items] == [("seed000000", "pending"), ("seed000007", "annotated"),
                                                          ("seed000008", "pending")]
    assert project.annotated_ids() == ["seed000007"]


def test_traversal_and_symlinks_are_refused(project, G, serve, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "item.json").write_text(json.dumps({"id": "evil", "status": "pending", "latent": None}))
    Image.new("RGB", (32, 32)).save(outside / "image.png")
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside, project.root / "items" / "evil")
    before = _files(outside)
    with serve(create_app(project, G, ServerConfig(active=None))) as url, httpx.Client(base_url=url) as c:
        c.post("/api/items/new")
        for path in ["/api/items/..%2Fschema.json/annotation", "/api/items/%2E%2E/image.png",
                     "/api/items/seed000000%2F..%2F..%2Fschema.json/annotation", "/api/items/evil/image.png",
                     "/api/items/evil/annotation", "/static/..%2Fserver.py", "/static/%2e%2e%2fstore.py",
                     "/static/server.py", "/api/items/..%5C..%5Cschema.json/image.png", "/../schema.json"]:
            r = c.get(path)
            assert r.status_code == 404, (path, r.status_code)
            assert b"secret" not in r.content and b"ganfactory.annotations" not in r.content
        r = c.put("/api/items/evil/annotation", json={"label": _b64(np.ones((32, 32))), "status": "annotated"})
        assert r.status_code == 404
        r = c.put("/api/items/..%2F..%2Foutside/annotation", json={"status": "annotated"})
        assert r.status_code == 404
    assert _files(outside) == before


def test_oversized_and_malformed_uploads_are_refused(project, G, serve):
    with serve(create_app(project, G, ServerConfig(active=None))) as url, httpx.Client(base_url=url) as c:
        c.post("/api/items/new")
        good = np.zeros((32, 32), np.uint8)
        good[1, 1] = 1
        assert c.put("/api/items/seed000000/annotation", json={"label": _b64(good), "status": "annotated"}).is_success
        folder = project.root / "items/seed000000"
        before = _files(folder)
        huge = b'{"label": "' + b"A" * 200_000 + b'"}'
        bad = [
            (dict(content=huge, headers={"content-type": "application/json"}), 413),
            (dict(content=iter([huge[:100_000], huge[100_000:]])), 413),       # chunked: no Content-Length
            (dict(content=b"{not json"), 400),
            (dict(content=b"\xff\xfe"), 400),
            (dict(json=[1, 2]), 400),
            (dict(json={"label": "not base64!!"}), 400),
            (dict(json={"label": _b64(np.zeros((31, 32)))}), 400),
            (dict(json={"label": _b64(np.full((32, 32), 9))}), 400),            # class 9 is not in the schema
            (dict(json={"label": 12}), 400),
            (dict(json={"keypoints": [[1, 2, 1]]}), 400),                        # the schema names two
            (dict(json={"keypoints": [[1, 2, 1], [40, 2, 1]]}), 400),            # outside the image
            (dict(json={"keypoints": "front"}), 400),
            (dict(json={"status": "done"}), 400),
            (dict(json={"label": _b64(good), "extra": 1}), 400),
        ]
        for kwargs, status in bad:
            r = c.put("/api/items/seed000000/annotation", **kwargs)
            assert r.status_code == status, (kwargs.get("json"), r.status_code, r.text)
            assert set(r.json()) == {"error"} and "\n" not in r.json()["error"]
        for body in ({"seed": -1}, {"seed": "3"}, {"seed": True}):
            assert c.post("/api/items/new", json=body).status_code == 400
        assert c.post("/api/items/new", content=b"x" * 100_000).status_code == 413
    assert _files(folder) == before
    assert [p.name for p in project.root.rglob(".tmp-*")] == []


def test_concurrent_saves_leave_one_whole_save(project, G, serve):
    """Sixteen writers save different (label, keypoints) pairs at once while readers read: every read is a whole
    save of one writer, and the final item is exactly one writer's pair."""
    n = 16
    labels = [np.full((32, 32), 1 + k % 3, np.uint8) for k in range(n)]
    for k, lab in enumerate(labels):
        lab[k, :] = 0                                # each writer's label is unique
    kps = [[[k, k, 1], [31 - k, 2, 1]] for k in range(n)]
    with serve(create_app(project, G, ServerConfig(active=None))) as url:
        httpx.post(url + "/api/items/new")
        start = threading.Barrier(n + 2)
        errors, reads = [], []

        def write(k):
            with httpx.Client(base_url=url) as c:
                start.wait()
                for _ in range(3):
                    r = c.put("/api/items/seed000000/annotation",
                              json={"label": _b64(labels[k]), "keypoints": kps[k], "status": "annotated"})
                    if r.status_code != 200:
                        errors.append(r.text)

        def read():
            with httpx.Client(base_url=url) as c:
                start.wait()
                for _ in range(20):
                    got = c.get("/api/items/seed000000/annotation").json()
                    if got["label"] is not None:
                        reads.append(np.frombuffer(base64.b64decode(got["label"]), np.uint8).reshape(32, 32))

        threads = [threading.Thread(target=write, args=(k,)) for k in range(n)]
        threads += [threading.Thread(target=read) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors, errors[:3]
    assert all(any(np.array_equal(r, lab) for lab in labels) for r in reads)
    item = project.item("seed000000", G)
    winner = [k for k, lab in enumerate(labels) if np.array_equal(item.label, lab)]
    assert len(winner) == 1 and item.keypoints == kps[winner[0]]
    assert [p.name for p in project.root.rglob(".tmp-*")] == []


def test_one_server_per_project_and_schema_checks(project, schema, tmp_path):
    with project_lock(project.root):
        with pytest.raises(GanfactoryError, match="another annotator is serving"):
            with project_lock(project.root):
                pass
    with project_lock(project.root):                 # released: a new server may start
        pass
    other = schema.from_names(["background", "cat"])
    with pytest.raises(GanfactoryError, match="different schema"):
        open_project(project.root, other)
    assert open_project(project.root).schema == schema
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("x")
    with pytest.raises(GanfactoryError, match="neither an AnnotationSet"):
        open_project(tmp_path / "junk")


def test_cli_serve_binds_localhost_and_stops_on_ctrl_c(tmp_path, schema_file):
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "ganfactory.cli", "annotate", "serve", "--ckpt", "tiny32",
                             "--project", str(tmp_path / "p"), "--schema", str(schema_file), "--port", str(port),
                             "--no-active"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/project", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.2)
        assert r.json()["schema"]["keypoints"] == ["front", "back"] and not r.json()["active"]
        # a second annotator on the same project is refused, with one line
        second = subprocess.run([sys.executable, "-m", "ganfactory.cli", "annotate", "serve", "--ckpt", "tiny32",
                                 "--project", str(tmp_path / "p"), "--port", "0", "--no-active"],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "another annotator is serving" in second.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert (tmp_path / "p" / "schema.json").is_file()



def test_a_real_item_shows_its_photograph_also_after_inversion(project, G, serve):
    from ganfactory.gan.latent import Latent, synthesize_latents
    from ganfactory.gan.sampling import to_uint8

    photo = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    project.add("photo", None, photo, np.zeros((32, 32), np.uint8))
    with serve(create_app(project, G, ServerConfig(active=None))) as url, httpx.Client(base_url=url) as c:
        got = c.get("/api/items/photo/annotation").json()
        assert got["origin"] == "real" and got["image"] == "image.png" and got["seed"] is None
        assert c.get("/api/items/photo/real.png").status_code == 404
        latent = Latent.from_seed(G, 4)
        project.set_latent("photo", latent, to_uint8(synthesize_latents(G, [latent]))[0])
        got = c.get("/api/items/photo/annotation").json()
        assert got["image"] == "real.png"
        shown = np.asarray(Image.open(__import__("io").BytesIO(c.get("/api/items/photo/real.png").content)))
        assert np.array_equal(shown, photo)
        assert c.get("/api/items/photo/label.png").status_code == 404      # only the two images are served
        assert c.get("/api/items/photo/item.json").status_code == 404


def test_body_limit_follows_the_items_image_size(project, G, serve):
    """A large real photograph saves its full label; the same bytes for a 32 px sample are refused."""
    big = np.random.default_rng(2).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    project.add("big", None, big)
    label = np.zeros((256, 256), np.uint8)
    label[100:200, 50:60] = 2
    with serve(create_app(project, G, ServerConfig(active=None))) as url, httpx.Client(base_url=url) as c:
        c.post("/api/items/new")
        body = {"label": _b64(label), "status": "annotated"}
        assert len(json.dumps(body)) > 4 * 32 * 32 // 3 + 65536
        r = c.put("/api/items/big/annotation", json=body)
        assert r.status_code == 200, r.text
        assert c.put("/api/items/seed000000/annotation", json=body).status_code == 413
    assert np.array_equal(project.item("big").label, label)
