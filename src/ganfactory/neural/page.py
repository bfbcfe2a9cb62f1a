"""The neural renderer's page (``ganfactory neural-render serve``): turn a car with sliders, swap its shape, paint
or background, see the predicted mesh beside the GAN's image.

Built on the shared web layer (``ganfactory.web``: Host and Origin checks, the page's fixed files, loopback
binding). The server keeps the inputs it has read in memory (a seed, or an uploaded image, each read once by the
inverse network) under a source name (``seed:N``, ``upload:K``); a render names a source for each property.
Nothing is written to disk.

API::

    GET  /                        the page;  GET /static/<name>  its script and style sheet
    GET  /api/info                model, generator, image size, slider ranges
    GET  /api/source?seed=N       read seed N: {"source", "azimuth_deg", "elevation_deg", "input": PNG data URL}
    POST /api/upload              body: an image file (PNG, JPEG, ...; at most 8 MB): the same for the upload
    GET  /api/render?source=S&azimuth=A&elevation=E[&shape=S2][&texture=S3][&background=S4]
                                  {"gan": PNG data URL, "mesh": PNG data URL (DIB-R, the shape and texture asked)}
"""

from __future__ import annotations

import base64
import io
import threading

import numpy as np
import torch
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from PIL import Image, UnidentifiedImageError

from ganfactory.gan.sampling import to_uint8
from ganfactory.neural.codes import PROPERTIES, PropertyCodes
from ganfactory.neural.renderer import NeuralRenderer
from ganfactory.web import PageFiles, create_web_app, error_response

__all__ = ["MAX_UPLOAD", "PAGE", "create_page_app", "serve"]

PAGE = PageFiles("ganfactory", "assets/pages/neural", {"index.html": "text/html", "app.js": "text/javascript",
                                                       "style.css": "text/css"})
MAX_UPLOAD = 8 << 20
"""Largest accepted upload, in bytes."""
MAX_SOURCES = 256
"""Inputs kept in memory; the oldest are forgotten first."""
ELEVATION_RANGE = (-10, 45)
"""The elevation slider's range (the inverse network's)."""


def _png_url(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class _Sources:
    """Source name -> (codes [1], input image uint8): read once, kept (bounded)."""

    def __init__(self, nr: NeuralRenderer):
        self.nr = nr
        self.items: dict[str, tuple[PropertyCodes, np.ndarray]] = {}
        self.lock = threading.Lock()            # one model call at a time (torch uses one thread)
        self.uploads = 0

    def _keep(self, name: str, codes: PropertyCodes, image: np.ndarray) -> None:
        self.items[name] = (codes, image)
        while len(self.items) > MAX_SOURCES:
            self.items.pop(next(iter(self.items)))

    def seed(self, seed: int) -> str:
        name = f"seed:{seed}"
        with self.lock:
            if name not in self.items:
                codes, images = self.nr.codes_from_seeds([seed])
                self._keep(name, codes, to_uint8(images)[0])
        return name

    def upload(self, data: bytes) -> str:
        size = self.nr.net.config.image_size
        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("RGB")
        w, h = im.size
        side = min(w, h)
        im = im.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
        im = im.resize((size, size), Image.Resampling.LANCZOS)
        image = torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
        with self.lock:
            self.uploads += 1
            name = f"upload:{self.uploads}"
            self._keep(name, self.nr.codes_from_images(image), to_uint8(image)[0])
        return name

    def describe(self, name: str) -> dict:
        codes, image = self.items[name]
        return {"source": name, "azimuth_deg": round(float(torch.rad2deg(codes.azimuth[0])) % 360, 1),
                "elevation_deg": round(float(torch.rad2deg(codes.elevation[0])), 1), "input": _png_url(image)}

    def render(self, source: str, azimuth: float, elevation: float, takes: dict[str, str]) -> dict:
        codes = self.items[source][0].with_camera(azimuth, elevation)
        codes = codes.replace(**{p: getattr(self.items[s][0], p) for p, s in takes.items()})
        with self.lock:
            gan = to_uint8(self.nr.render(codes))[0]
            mesh = to_uint8(self.nr.render_mesh(codes))[0]
        return {"gan": _png_url(gan), "mesh": _png_url(mesh)}


def create_page_app(nr: NeuralRenderer, model: str = "", bound_host: str = "127.0.0.1"):
    """The FastAPI app of the page over the neural renderer ``nr``."""
    sources = _Sources(nr)
    app = create_web_app("ganfactory neural renderer", PAGE, bound_host)
    error = error_response

    @app.get("/api/info")
    def info() -> dict:
        return {"model": model, "image_size": int(nr.net.config.image_size), "properties": list(PROPERTIES),
                "azimuth_range": [0, 359], "elevation_range": list(ELEVATION_RANGE),
                "truncation_psi": nr.truncation_psi}

    @app.get("/api/source")
    def source(seed: str = "") -> Response:
        try:
            s = int(seed)
        except ValueError:
            return error(400, "seed must be an integer in [0, 2^32)")
        if not 0 <= s < 2 ** 32:
            return error(400, "seed must be an integer in [0, 2^32)")
        return JSONResponse(sources.describe(sources.seed(s)))

    @app.post("/api/upload")
    async def upload(request: Request) -> Response:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_UPLOAD:
            return error(413, f"images of at most {MAX_UPLOAD >> 20} MB")
        body = await request.body()
        if len(body) > MAX_UPLOAD:
            return error(413, f"images of at most {MAX_UPLOAD >> 20} MB")
        try:
            name = sources.upload(body)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            return error(400, "not an image Pillow can read")
        return JSONResponse(sources.describe(name))

    @app.get("/api/render")
    def render(source: str, azimuth: float = 0.0, elevation: float = 10.0, shape: str = "", texture: str = "",
               background: str = "") -> Response:
        takes = {p: s for p, s in zip(PROPERTIES, (shape, texture, background), strict=True) if s}
        unknown = [s for s in (source, *takes.values()) if s not in sources.items]
        if unknown:
            return error(404, f"unknown source {unknown[0]!r}: read it first (/api/source or /api/upload)")
        if not (np.isfinite(azimuth) and ELEVATION_RANGE[0] <= elevation <= ELEVATION_RANGE[1]):
            return error(400, f"azimuth must be finite and elevation in {ELEVATION_RANGE}")
        return JSONResponse(sources.render(source, azimuth, elevation, takes))

    return app


def serve(model: str = "cars64", host: str = "127.0.0.1", port: int = 8767, device: str = "cpu",
          threads: int = 1) -> None:
    """Serve the page until interrupted (the port is bound before the models load, so a taken port fails fast)."""
    from ganfactory.neural.renderer import load_neural_renderer
    from ganfactory.web import bind
    from ganfactory.web import serve as run

    torch.set_num_threads(threads)
    sock = bind(host, port)
    nr = load_neural_renderer(model, device)
    app = create_page_app(nr, str(model), host)
    print(f"neural renderer at http://{host}:{sock.getsockname()[1]}/ ; Ctrl-C to stop")
    run(app, sock)
