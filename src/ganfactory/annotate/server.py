"""The browser annotator: a FastAPI app over one AnnotationSet (the project directory) and one generator.

Why this shape: DatasetGAN's authors released no annotation tool. Labels are edited at image resolution in the
page (one label pixel per image pixel) and travel as raw uint8 class ids, base64 in JSON, so that what the
person painted is exactly what lands in ``label.png``: no colour quantisation, no canvas colour management.

Safety: the app is made by ``ganfactory.web.create_web_app`` (Host and Origin checks; the page's own files, a
fixed list read from the package at start-up) and served on 127.0.0.1 by default (``ganfactory.web.bind``). It
touches the project only through items looked up by id among the store's listing and resolved inside the
project directory. Request bodies have a size limit, read incrementally; saves of one item are serialised
by a per-item lock and every file is written atomically, so concurrent saves leave one whole save.

API (JSON unless noted)::

    GET  /                                  the page
    GET  /static/<name>                     its scripts and style sheet
    GET  /api/project                       schema, generator, image size, active learning on or off
    GET  /api/items                         [{id, status, origin, seed, has_label}]
    GET  /api/items/<id>/image.png          the item's image (PNG); real.png: a real item's photograph once inverted
    GET  /api/items/<id>/annotation         {id, status, origin, width, height, image (the file to show),
                                             label (base64 H*W uint8 | null), keypoints, prefilled}
    PUT  /api/items/<id>/annotation         {label (base64) | null, keypoints | null, status}
    POST /api/items/new                     {seed?}: add the next seed (or that seed), pre-filled when a model exists
    GET  /api/active                        the background interpreter's state and the most uncertain seeds
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from PIL import Image
from starlette.concurrency import run_in_threadpool

from ganfactory.annotate.active import ActiveConfig, ActiveLearner
from ganfactory.annotate.store import AnnotationError, AnnotationSet
from ganfactory.errors import GanfactoryError
from ganfactory.gan.latent import Latent, seed_item_id, synthesize_latents
from ganfactory.web import PageFiles, create_web_app, error_response

__all__ = ["PAGE", "ServerConfig", "create_app"]

PAGE = PageFiles("ganfactory.annotate", "static", {
    "index.html": "text/html", "app.js": "text/javascript", "editor.js": "text/javascript", "style.css": "text/css"})
"""The page: every file the server may send that is not part of the project."""

@dataclass(frozen=True)
class ServerConfig:
    """How the annotator serves a project."""

    truncation_psi: float = 1.0
    """Truncation of new samples' latents."""
    noise_mode: str = "const"
    """Noise mode of new samples ('const' or 'none'; 'random' noise is stored with each latent)."""
    max_body_bytes: int | None = None
    """Largest body of a save; None = what a full label of that item's image needs (base64) plus 64 KiB (real
    images may be larger than the generator's)."""
    active: ActiveConfig | None = field(default_factory=ActiveConfig)
    """Background interpreter settings; None switches active learning off."""


ITEM_FILES = ("item.json", "image.png", "label.png", "real.png", "latent.npz")
"""The files of an item the server reads; none of them may be a symbolic link."""


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _seed_of(record: dict) -> int | None:
    latent = record.get("latent")
    return latent["seed"] if latent and latent.get("kind") == "seed" else None


class _Project:
    """The server's state: the store, the generator, per-item locks, the active learner."""

    def __init__(self, store: AnnotationSet, G, config: ServerConfig):
        self.store = store
        self.G = G
        self.config = config
        self.root = store.root.resolve()
        self.lock = threading.Lock()
        self.item_locks: dict[str, threading.Lock] = {}
        self.learner = None
        if config.active is not None:
            self.learner = ActiveLearner(G, store, config.active, self.next_seed, self.used_seeds)

    def listing(self) -> tuple[list[dict], list[dict]]:
        """(records of the items served, ``[{"id", "error"}]`` of the items skipped: symbolic links, which the
        annotator never follows out of the project, and item.json files that cannot be read)."""
        records, broken = [], []
        for item_id in self.store.ids:
            try:
                records.append(self.record(item_id))
            except LookupError as e:
                broken.append({"id": item_id, "error": str(e.args[0])})
        return records, broken

    def records(self) -> list[dict]:
        return self.listing()[0]

    def record(self, item_id: str) -> dict:
        """The item's item.json; LookupError (with the reason) for an item the server does not serve."""
        folder = self.store.root / "items" / item_id
        if folder.is_symlink() or any((folder / name).is_symlink() for name in ITEM_FILES):
            raise LookupError(f"item {item_id!r} is a symbolic link; the annotator serves only files inside the "
                              "project")
        try:
            return self.store.record(item_id)
        except (OSError, AnnotationError) as e:
            raise LookupError(f"item {item_id!r}: its item.json cannot be read ({e})") from None

    def used_seeds(self) -> set[int]:
        return {s for s in (_seed_of(r) for r in self.records()) if s is not None}

    def next_seed(self) -> int:
        used = self.used_seeds()
        return max(used) + 1 if used else 0

    def item_lock(self, item_id: str) -> threading.Lock:
        with self.lock:
            return self.item_locks.setdefault(item_id, threading.Lock())

    def folder(self, item_id: str) -> Path:
        """The item's folder, only for ids the store lists and only inside the project (no symlinks out)."""
        if item_id not in self.store.ids:
            raise LookupError(item_id)
        self.record(item_id)
        folder = (self.store.root / "items" / item_id).resolve()
        if not folder.is_relative_to(self.root):
            raise LookupError(item_id)
        return folder

    def file(self, item_id: str, name: str) -> Path:
        path = (self.folder(item_id) / name).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            raise LookupError(item_id)
        return path

    def body_limit(self, item_id: str) -> int:
        """Largest body of a save of ``item_id``."""
        if self.config.max_body_bytes is not None:
            return self.config.max_body_bytes
        with Image.open(self.file(item_id, "image.png")) as img:
            w, h = img.size
        return 4 * (h * w + 2) // 3 + 65536

    def annotation(self, item_id: str) -> dict:
        """The item as the page shows it; read under the item's lock, so that it is one save's label and
        keypoints, never a mix of two."""
        folder = self.folder(item_id)
        with self.item_lock(item_id):
            return self._annotation(item_id, folder)

    def _annotation(self, item_id: str, folder: Path) -> dict:
        record = self.record(item_id)
        with Image.open(folder / "image.png") as img:
            w, h = img.size
        label = None
        if (folder / "label.png").is_file():
            with Image.open(folder / "label.png") as img:
                label = base64.b64encode(np.asarray(img, dtype=np.uint8).tobytes()).decode()
        # labels of a real item belong to its photograph, also once an inversion has replaced image.png
        shown = "real.png" if (folder / "real.png").is_file() else "image.png"
        return {"id": item_id, "status": record["status"], "origin": record.get("origin", "generated"),
                "seed": _seed_of(record), "width": w, "height": h, "image": shown, "label": label,
                "keypoints": record.get("keypoints"),
                "prefilled": record["status"] == "pending" and label is not None}

    def save(self, item_id: str, body: dict) -> dict:
        """Validate and store one save; raises ValueError with the reason for bad input."""
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object {label, keypoints, status}")
        unknown = set(body) - {"label", "keypoints", "status"}
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}; send label, keypoints and status")
        status = body.get("status", "annotated")
        folder = self.folder(item_id)
        with Image.open(folder / "image.png") as img:
            w, h = img.size
        label = None
        if body.get("label") is not None:
            if not isinstance(body["label"], str):
                raise ValueError("label must be a base64 string of H*W uint8 class ids")
            try:
                raw = base64.b64decode(body["label"], validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("label is not valid base64") from None
            if len(raw) != h * w:
                raise ValueError(f"label has {len(raw)} bytes, the image needs {h * w} ({w}x{h})")
            label = np.frombuffer(raw, np.uint8).reshape(h, w)
        keypoints = body.get("keypoints")
        if keypoints is not None and (not isinstance(keypoints, list) or
                                      not all(isinstance(p, list) for p in keypoints)):
            raise ValueError("keypoints must be a list of [x, y, visible]")
        if keypoints is not None:
            for k, p in enumerate(keypoints):
                if len(p) == 3 and not all(c is None or _is_number(c) for c in p[:2]):
                    raise ValueError(f"keypoint {k}: x and y must be numbers (or null when unavailable), got "
                                     f"{json.dumps(p)[:80]}")
                if len(p) == 3 and p[0] is not None and p[1] is not None and not (
                        0 <= p[0] <= w - 1 and 0 <= p[1] <= h - 1):
                    raise ValueError(f"keypoint {p} lies outside the {w}x{h} image")
        with self.item_lock(item_id):
            try:
                self.store.set_annotation(item_id, label, keypoints, status)
            except AnnotationError as e:
                raise ValueError(str(e)) from None
        if self.learner is not None:
            self.learner.notify()
        return {"id": item_id, "status": status}

    def new_sample(self, seed: int | None) -> dict:
        """Add a seed's sample (the next unused seed by default), pre-filled by the interpreter when there is one."""
        from ganfactory.gan.sampling import to_uint8

        with self.lock:
            seed = self.next_seed() if seed is None else seed
            item_id = seed_item_id(seed)
            if item_id in self.store.ids:
                return {"id": item_id, "seed": seed, "prefilled": False, "created": False}
            latent = Latent.from_seed(self.G, seed, self.config.truncation_psi, self.config.noise_mode)
            image = to_uint8(synthesize_latents(self.G, [latent]))[0]
            guess = self.learner.predict(latent) if self.learner is not None else None
            label, keypoints = guess if guess is not None else (None, None)
            if label is not None and label.shape != image.shape[:2]:
                label, keypoints = None, None
            if keypoints is not None and len(keypoints) != len(self.store.schema.keypoints):
                keypoints = None
            self.store.add(item_id, latent, image, label, keypoints, status="pending")
            return {"id": item_id, "seed": seed, "prefilled": label is not None, "created": True}


def create_app(store: AnnotationSet, G, config: ServerConfig = ServerConfig(), start_learner: bool = True,
               host: str = "127.0.0.1"):
    """The FastAPI app serving ``store`` with generator ``G``, to be served on ``host``. The active learner's
    thread starts with the app (``start_learner``) and stops at shutdown."""
    if config.noise_mode not in ("const", "none"):
        raise GanfactoryError(f"noise mode {config.noise_mode!r}: the annotator draws new samples with 'const' or "
                              "'none' noise (random noise would have to be stored per sample)")
    project = _Project(store, G, config)

    @asynccontextmanager
    async def lifespan(app):
        if project.learner is not None and start_learner:
            project.learner.start()
        yield
        if project.learner is not None:
            project.learner.stop()

    app = create_web_app("ganfactory annotator", PAGE, host, lifespan)
    app.state.project = project
    error = error_response
    not_found = "no such item in this project"

    @app.get("/api/project")
    def project_info() -> dict:
        return {"schema": store.schema.to_json(), "generator": store.generator,
                "image_size": [int(G.img_resolution)] * 2, "root": store.root.name,
                "active": project.learner is not None}

    @app.get("/api/items")
    def items() -> dict:
        """Every item served, and ``broken``: the items skipped, each with the reason."""
        out = []
        records, broken = project.listing()
        for r in records:
            has_label = (store.root / "items" / r["id"] / "label.png").is_file()
            out.append({"id": r["id"], "status": r["status"], "origin": r.get("origin", "generated"),
                        "seed": _seed_of(r), "has_label": has_label})
        return {"items": out, "broken": broken}

    def send_png(item_id: str, name: str) -> Response:
        try:
            return Response(project.file(item_id, name).read_bytes(), media_type="image/png",
                            headers={"Cache-Control": "no-cache"})
        except LookupError:
            return error(404, not_found)

    @app.get("/api/items/{item_id}/image.png")
    def image(item_id: str) -> Response:
        return send_png(item_id, "image.png")

    @app.get("/api/items/{item_id}/real.png")
    def real(item_id: str) -> Response:
        return send_png(item_id, "real.png")

    @app.get("/api/items/{item_id}/annotation")
    def get_annotation(item_id: str) -> Response:
        try:
            return JSONResponse(project.annotation(item_id))
        except LookupError as e:
            return error(404, not_found if e.args[0] == item_id else e.args[0])

    async def read_json(request: Request, limit: int):
        """The body as JSON, refusing (413) past ``limit`` bytes while reading, whatever Content-Length says."""
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise _Refused(413, f"request body over {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _Refused(413, f"request body over {limit} bytes")
            chunks.append(chunk)
        if not size:
            return None
        try:
            return json.loads(b"".join(chunks))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise _Refused(400, f"body is not JSON: {e}") from None
        except RecursionError:
            raise _Refused(400, "body is nested too deeply to be a save") from None

    @app.put("/api/items/{item_id}/annotation")
    async def put_annotation(item_id: str, request: Request) -> Response:
        try:
            body = await read_json(request, project.body_limit(item_id))
            return JSONResponse(await run_in_threadpool(project.save, item_id, body))
        except LookupError:
            return error(404, not_found)
        except _Refused as e:
            return error(e.status, e.message)
        except ValueError as e:
            return error(400, str(e))

    @app.post("/api/items/new")
    async def new_item(request: Request) -> Response:
        try:
            body = await read_json(request, 4096) or {}
            seed = body.get("seed") if isinstance(body, dict) else None
            if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32):
                raise _Refused(400, "seed must be an integer in [0, 2**32)")
            return JSONResponse(await run_in_threadpool(project.new_sample, seed))
        except _Refused as e:
            return error(e.status, e.message)

    @app.get("/api/active")
    def active() -> dict:
        if project.learner is None:
            return {"state": "off", "suggestions": []}
        return project.learner.status()

    return app


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message
