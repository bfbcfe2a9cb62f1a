"""The app factory of every page: a FastAPI app that serves its page's fixed files and checks who is asking.

Safety (the README's promise, in one place):

- **Host check** (DNS rebinding): a request whose ``Host`` names another host than the ones the server answers
  for (the loopback names, and the address it was bound to) is refused with 421 before any route runs. A page
  opened at ``http://evil.example:PORT/`` that resolves to 127.0.0.1 therefore cannot read the API.
- **Origin check** (cross-site requests): a request that can change state (POST, PUT, PATCH, DELETE) carrying an
  ``Origin`` of another host, or ``Sec-Fetch-Site: cross-site``, is refused with 403. A browser sends such
  "simple" requests (``Content-Type: text/plain``) without a preflight; tools without a browser send no Origin.
- **Files**: the page's files are a fixed list read from the package at start-up (``PageFiles``); no request path
  ever reaches the file system through them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

__all__ = ["FAVICON", "LOOPBACK_HOSTS", "PageFiles", "create_web_app", "error_response", "host_of"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
"""Host names every server answers for."""

WILDCARD_HOSTS = ("0.0.0.0", "::", "")
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

FAVICON = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
           b'fill="#4e79a7"/><path d="M4 11l3-6 2 4 1-2 2 4z" fill="#fff"/></svg>')
"""The pages' icon (so that a browser's request for /favicon.ico is not a 404 in the console)."""


@dataclass(frozen=True)
class PageFiles:
    """A page's static files: names (with their media types) in a package folder, read once at start-up."""

    package: str
    """The package holding the folder, e.g. ``ganfactory.annotate``."""
    folder: str
    """The folder inside it, e.g. ``static``."""
    media_types: dict[str, str]
    """File name -> media type; ``index.html`` is served at ``/``, every file at ``/static/<name>``."""

    def read(self) -> dict[str, bytes]:
        return {name: resources.files(self.package).joinpath(self.folder, name).read_bytes()
                for name in self.media_types}


def error_response(status: int, message: str) -> JSONResponse:
    """The JSON error every page's API answers with: ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status)


def host_of(value: str | None) -> str | None:
    """The host name of a ``Host`` header or of an origin URL's authority (port and brackets dropped, lower case);
    None when there is none."""
    if not value:
        return None
    value = value.strip().lower()
    if "://" in value:
        value = value.split("://", 1)[1]
    value = value.split("/", 1)[0]
    if value.startswith("["):                       # [::1]:8765
        end = value.find("]")
        return value[1:end] if end > 0 else None
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value or None


def create_web_app(title: str, files: PageFiles, bound_host: str = "127.0.0.1",
                   lifespan: Callable | None = None) -> FastAPI:
    """A FastAPI app serving ``files`` (``/``, ``/static/<name>``, ``/favicon.ico``) with the Host and Origin checks
    of the module docstring; the page module adds its API routes to it. ``bound_host``: the address the server
    listens on (it is answered for besides the loopback names; a wildcard address adds nothing)."""
    page = files.read()
    allowed = set(LOOPBACK_HOSTS)
    if bound_host not in WILDCARD_HOSTS:
        allowed.add(host_of(bound_host) or bound_host)
    app = FastAPI(title=title, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def check_host_and_origin(request: Request, call_next):
        host = host_of(request.headers.get("host"))
        if host not in allowed:
            return error_response(421, f"this server answers for {', '.join(sorted(allowed))}, not {host!r}")
        if request.method in UNSAFE_METHODS:
            origin = request.headers.get("origin")
            if origin is not None and host_of(origin) not in allowed:
                return error_response(403, f"cross-site request from {origin!r} refused")
            if request.headers.get("sec-fetch-site") == "cross-site":
                return error_response(403, "cross-site request refused")
        return await call_next(request)

    @app.get("/")
    def index() -> Response:
        return Response(page["index.html"], media_type="text/html", headers={"Cache-Control": "no-cache"})

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in page:
            return error_response(404, "no such file")
        return Response(page[name], media_type=files.media_types[name], headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(FAVICON, media_type="image/svg+xml")

    return app
