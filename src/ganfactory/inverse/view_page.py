"""The mesh viewer page (``ganfactory view``): a GLB, or every GLB of a reconstruction directory, in three.js.

What it shows: the mesh under orbit controls (three.js' ``OrbitControls``, ``GLTFLoader``), the input image beside
the canvas, a list to pick a mesh from when there are several, the GLB's nodes (with visibility toggles) and its
animations, and a reset button that goes back to the input view. A reconstruction's ``<stem>.camera.json`` gives
that input view (the predicted camera, so the mesh sits on the input image); without one the view frames the mesh
from the front-left. The GLB's nodes and animations are listed so that meshes with one node per movable part and
their animations (issue 19) need no other page.

Files: ``ganfactory/assets/pages/view`` (the page) and three.js from ``js/node_modules`` (``ganfactory.web.vendor``,
pinned by ``js/package-lock.json``), all read at start-up; the meshes and images are a fixed list made at start-up
and looked up by index, so no request path reaches the file system. Built on ``ganfactory.web`` (Host and Origin
checks, loopback binding). The page only reads; nothing is written.

API::

    GET /                            the page;   GET /static/<name>  its script and style sheet
    GET /vendor/three/<path>         three.js files (the fixed list of ``web.vendor.THREE``)
    GET /api/meshes                  [{name, glb, image, camera, view}], the title
    GET /api/meshes/<i>/mesh.glb     mesh i;   GET /api/meshes/<i>/image.png  its input image (404 when none)
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi.responses import JSONResponse, Response
from PIL import Image, UnidentifiedImageError

from ganfactory.errors import GanfactoryError
from ganfactory.web import PageFiles, create_web_app, error_response
from ganfactory.web.vendor import JS_ROOT, THREE

__all__ = ["PAGE", "ViewItem", "create_view_app", "find_items", "input_view", "serve"]

PAGE = PageFiles("ganfactory", "assets/pages/view", {"index.html": "text/html", "app.js": "text/javascript",
                                                     "style.css": "text/css"})
GLB_MAGIC = b"glTF"
MEDIA = {".js": "text/javascript"}


@dataclass(frozen=True)
class ViewItem:
    """One mesh the page offers: its GLB, its input image and its camera JSON (either may be None)."""

    name: str
    glb: Path
    image: Path | None = None
    camera: Path | None = None
    crop_left_half: bool = False
    """The image is a reconstruction's ``render.png`` (input | render): show its left half, the input."""


def _check_glb(path: Path) -> None:
    """A one-line error unless ``path`` is a binary glTF file."""
    if not path.exists():
        raise GanfactoryError(f"{path}: no such file or directory")
    if path.suffix.lower() != ".glb":
        raise GanfactoryError(f"{path}: not a GLB file (give a .glb file or a directory of them)")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as e:
        raise GanfactoryError(f"{path}: cannot read ({e.strerror})") from None
    if magic != GLB_MAGIC:
        raise GanfactoryError(f"{path}: not a GLB file (a binary glTF starts with 'glTF')")


def _check_image(path: Path) -> None:
    try:
        with Image.open(path) as im:
            im.verify()
    except FileNotFoundError:
        raise GanfactoryError(f"{path}: no such image") from None
    except (UnidentifiedImageError, OSError) as e:
        raise GanfactoryError(f"{path}: not an image Pillow can read ({e})") from None


def _inputs_of(folder: Path) -> dict[str, Path]:
    """Stem -> input image path from a reconstruction directory's ``reconstruct.json`` (those that still exist)."""
    try:
        records = json.loads((folder / "reconstruct.json").read_text())["images"]
        found = {Path(r["glb"]).stem: Path(r["image"]) for r in records}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {stem: path for stem, path in found.items() if path.is_file()}


def find_items(path: str | Path, image: str | Path | None = None) -> list[ViewItem]:
    """The meshes to show: ``path`` a GLB (with ``image`` as its input) or a directory whose GLBs are shown with
    their inputs (reconstruct.json's images, else the left half of ``<stem>.render.png``) and cameras."""
    path = Path(path)
    if image is not None:
        _check_image(Path(image))
    if path.is_dir():
        if image is not None:
            raise GanfactoryError("--image goes with one GLB file; a directory's inputs are found beside its meshes")
        glbs = sorted(p for p in path.glob("*.glb") if not p.name.startswith("."))
        if not glbs:
            raise GanfactoryError(f"{path}: no .glb files in this directory")
        inputs = _inputs_of(path)
        items = []
        for glb in glbs:
            _check_glb(glb)
            render = glb.with_name(f"{glb.stem}.render.png")
            source = inputs.get(glb.stem) or (render if render.is_file() else None)
            camera = glb.with_name(f"{glb.stem}.camera.json")
            items.append(ViewItem(glb.stem, glb, source, camera if camera.is_file() else None,
                                  crop_left_half=source == render))
        return items
    _check_glb(path)
    camera = path.with_name(f"{path.stem}.camera.json")
    if image is None:
        render = path.with_name(f"{path.stem}.render.png")
        return [ViewItem(path.stem, path, render if render.is_file() else None, camera if camera.is_file() else None,
                         crop_left_half=render.is_file())]
    return [ViewItem(path.stem, path, Path(image), camera if camera.is_file() else None)]


def input_view(camera: dict) -> dict:
    """The three.js view of a camera JSON (``ganfactory.inverse.reconstruct``: OpenCV R, t in the files' frame):
    eye position, the point it looks at on the optical axis at the camera's distance, and the vertical fov.

    Why position and target, not R: three.js orbit controls keep ``camera.up`` = +y and look at a target; the
    predicted cameras have no roll (``orbit_rotation`` keeps the frame's up in the image), so ``lookAt(target)``
    rebuilds R exactly."""
    flip = np.diag([1.0, -1.0, -1.0])                     # CV_FROM_VIEW (its own inverse)
    R = flip @ np.asarray(camera["R"], dtype=np.float64)
    t = flip @ np.asarray(camera["t"], dtype=np.float64)
    eye = -R.T @ t
    forward = -R[2]
    distance = float(camera.get("distance", -t[2]))
    return {"position": eye.tolist(), "target": (eye + distance * forward).tolist(), "fov": float(camera["fov_deg"])}


def _png(path: Path, left_half: bool) -> bytes:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if left_half:
            im = im.crop((0, 0, im.width // 2, im.height))
        buffer = io.BytesIO()
        im.save(buffer, format="PNG")
    return buffer.getvalue()


def create_view_app(items: list[ViewItem], bound_host: str = "127.0.0.1", js_root: Path = JS_ROOT,
                    title: str | None = None):
    """The FastAPI app showing ``items`` (``find_items``); three.js is read from ``js_root`` now (a missing or
    mismatched install is a one-line GanfactoryError)."""
    three = THREE.read(js_root)
    version = THREE.version(js_root)
    app = create_web_app("ganfactory view", PAGE, bound_host)
    cameras = []
    for item in items:
        camera = None
        if item.camera is not None:
            try:
                camera = json.loads(item.camera.read_text())
                camera = {**camera, "view": input_view(camera)}
            except (OSError, ValueError, KeyError, TypeError):
                camera = None                               # an unreadable camera: the default view
            if camera is not None and not str(camera.get("frame", "")).startswith("world frame"):
                camera = None   # written before reconstructions were y up: its R is not the y-up view's
        cameras.append(camera)
    title = title or (items[0].glb.parent.name if len(items) > 1 else items[0].glb.name)

    @app.get("/api/meshes")
    def meshes() -> JSONResponse:
        return JSONResponse({"title": title, "three": version, "meshes": [
            {"name": item.name, "glb": f"/api/meshes/{i}/mesh.glb",
             "image": f"/api/meshes/{i}/image.png" if item.image is not None else None,
             "camera": {k: cameras[i][k] for k in ("azimuth_deg", "elevation_deg", "distance", "fov_deg")
                        if k in cameras[i]} if cameras[i] else None,
             "view": cameras[i]["view"] if cameras[i] else None}
            for i, item in enumerate(items)]})

    def item_at(i: int) -> ViewItem | None:
        return items[i] if 0 <= i < len(items) else None

    @app.get("/api/meshes/{i}/mesh.glb")
    def mesh(i: int) -> Response:
        item = item_at(i)
        if item is None:
            return error_response(404, "no such mesh")
        try:
            data = item.glb.read_bytes()
        except OSError:
            return error_response(404, f"{item.glb.name} is gone")
        return Response(data, media_type="model/gltf-binary", headers={"Cache-Control": "no-cache"})

    @app.get("/api/meshes/{i}/image.png")
    def image(i: int) -> Response:
        item = item_at(i)
        if item is None or item.image is None:
            return error_response(404, "no input image")
        try:
            data = _png(item.image, item.crop_left_half)
        except (OSError, UnidentifiedImageError):
            return error_response(404, f"{item.image.name} cannot be read")
        return Response(data, media_type="image/png", headers={"Cache-Control": "no-cache"})

    @app.get("/vendor/three/{name:path}")
    def vendor(name: str) -> Response:
        if name not in three:
            return error_response(404, "no such file")
        return Response(three[name], media_type=MEDIA.get(Path(name).suffix, "text/plain"),
                        headers={"Cache-Control": "max-age=3600"})

    return app


def serve(path: str | Path, image: str | Path | None = None, host: str = "127.0.0.1", port: int = 8767) -> None:
    """Serve the page until interrupted (the port is bound first, so a port in use fails before anything else)."""
    from ganfactory.web import bind
    from ganfactory.web import serve as run
    from ganfactory.web.serve import base_url

    items = find_items(path, image)
    app = create_view_app(items, host)
    sock = bind(host, port)
    what = f"{len(items)} meshes in {path}" if len(items) > 1 else str(items[0].glb)
    print(f"viewing {what} at {base_url(sock)}/ ; Ctrl-C to stop", flush=True)
    run(app, sock)
