"""The view-code annotation page: per view code, a grid of samples and one click among 12 azimuth bins.

GANverse3D's "one minute of annotation": a person sees several cars drawn with one view code and says from
where the camera looks (12 azimuth bins of 30 degrees; bin 0 is the car's front, 3 its left side) and roughly
how high (an elevation guess of 0, 10, 20 or 30 degrees). Every answer is saved at once to
``PROJECT/cameras.json`` (the cameras file ``multiview build`` reads); undo restores the previous answer.

Built on the shared web layer (ganfactory.web): its app factory gives the Host and Origin checks, the page's
fixed files and the favicon; a project lock keeps one server per project. Binds to 127.0.0.1 by default.

API::

    GET  /                          the page;   GET /static/<name>  its script and style sheet
    GET  /api/project               view codes, grid size, bins, elevation choices, the answers so far
    GET  /api/views/<v>/grid.png    the samples of view code v side by side (PNG)
    PUT  /api/views/<v>             {"azimuth_bin": 0..11, "elevation_deg": e}: save (returns all answers)
    DELETE /api/views/<v>           forget view code v's answer (undo of a first answer)
"""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import numpy as np
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from PIL import Image

from ganfactory.errors import GanfactoryError
from ganfactory.inverse.multiview import (
    AZIMUTH_BINS,
    MultiviewSettings,
    ViewCodeCamera,
    read_cameras,
    view_code_images,
    write_cameras,
)
from ganfactory.web import PageFiles, create_web_app, error_response

__all__ = ["ELEVATION_CHOICES", "PAGE", "create_page_app", "serve"]

PAGE = PageFiles("ganfactory", "assets/pages/multiview", {"index.html": "text/html", "app.js": "text/javascript",
                                                          "style.css": "text/css"})
"""The page's files (under assets/, which the package data already ships)."""
ELEVATION_CHOICES = (0, 10, 20, 30)
"""Elevation guesses offered (degrees): the renders span 0 to 30."""


class _Annotation:
    """The answers and the grid images (made on first request, kept in memory)."""

    def __init__(self, G, settings: MultiviewSettings, project: Path, grid: int):
        self.G, self.settings, self.project, self.grid = G, settings, project, grid
        self.path = project / "cameras.json"
        self.lock = threading.Lock()
        self.render_lock = threading.Lock()
        self.cameras: dict[int, ViewCodeCamera] = read_cameras(self.path, settings) if self.path.is_file() else {}
        self.pngs: dict[int, bytes] = {}

    def grid_png(self, v: int) -> bytes:
        with self.render_lock:                       # one render at a time; torch uses one thread
            if v not in self.pngs:
                img = view_code_images(self.G, self.settings, v, range(self.grid))
                pixels = (img * 127.5 + 128).clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy()
                row = np.concatenate(list(pixels), axis=1)
                buffer = io.BytesIO()
                Image.fromarray(row, "RGB").save(buffer, format="PNG")
                self.pngs[v] = buffer.getvalue()
            return self.pngs[v]

    def answers(self) -> dict:
        return {str(v): {"azimuth_bin": c.azimuth_bin, "elevation_deg": c.elevation_deg}
                for v, c in sorted(self.cameras.items())}

    def save(self, v: int, camera: ViewCodeCamera | None) -> dict:
        with self.lock:
            if camera is None:
                self.cameras.pop(v, None)
            else:
                self.cameras[v] = camera
            write_cameras(self.path, self.settings, list(self.cameras.values()))
            return self.answers()


def create_page_app(G, settings: MultiviewSettings, project: str | Path, grid: int = 8,
                    bound_host: str = "127.0.0.1"):
    """The FastAPI app annotating ``settings.view_codes`` view codes of ``G`` into ``project/cameras.json``."""
    project = Path(project)
    project.mkdir(parents=True, exist_ok=True)
    state = _Annotation(G, settings, project, grid)
    app = create_web_app("ganfactory view codes", PAGE, bound_host)
    error = error_response

    @app.get("/api/project")
    def project_info() -> dict:
        return {"view_codes": settings.view_codes, "grid": grid, "image_size": int(G.img_resolution),
                "azimuth_bins": AZIMUTH_BINS, "elevation_choices": list(ELEVATION_CHOICES),
                "generator": settings.generator, "cutoff": settings.cutoff, "answers": state.answers()}

    def view_code(v: int) -> int | None:
        return v if 0 <= v < settings.view_codes else None

    @app.get("/api/views/{v}/grid.png")
    def grid_png(v: int) -> Response:
        if view_code(v) is None:
            return error(404, "no such view code")
        return Response(state.grid_png(v), media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.put("/api/views/{v}")
    async def put_view(v: int, request: Request) -> Response:
        if view_code(v) is None:
            return error(404, "no such view code")
        body = await request.body()
        if len(body) > 4096:
            return error(413, "request too large")
        try:
            data = json.loads(body)
            b, e = int(data["azimuth_bin"]), float(data["elevation_deg"])
        except (ValueError, KeyError, TypeError):
            return error(400, "send {\"azimuth_bin\": 0..11, \"elevation_deg\": number}")
        if not 0 <= b < AZIMUTH_BINS or not -90 <= e <= 90:
            return error(400, f"azimuth_bin must be in 0..{AZIMUTH_BINS - 1} and elevation_deg in -90..90")
        return JSONResponse({"answers": state.save(v, ViewCodeCamera(v, b, e, "person"))})

    @app.delete("/api/views/{v}")
    def delete_view(v: int) -> Response:
        if view_code(v) is None:
            return error(404, "no such view code")
        return JSONResponse({"answers": state.save(v, None)})

    return app


def serve(settings: MultiviewSettings, project: str | Path, grid: int = 8, host: str = "127.0.0.1",
          port: int = 8766) -> None:
    """Serve the page until interrupted, holding the project's lock (the port is bound first, so a port in use
    fails before anything is made)."""
    import torch

    from ganfactory.gan import load_generator
    from ganfactory.web import bind, project_lock
    from ganfactory.web import serve as run

    torch.set_num_threads(1)
    sock = bind(host, port)
    project = Path(project)
    project.mkdir(parents=True, exist_ok=True)
    G = load_generator(settings.generator)
    if not 0 <= settings.cutoff <= G.num_ws:
        raise GanfactoryError(f"--cutoff must be in [0, {G.num_ws}] for this generator")
    with project_lock(project, server="view-code annotator", name=".multiview.lock"):
        app = create_page_app(G, settings, project, grid, host)
        print(f"annotating {settings.view_codes} view codes at http://{host}:{sock.getsockname()[1]}/ (answers in "
              f"{project / 'cameras.json'}); Ctrl-C to stop")
        run(app, sock)
