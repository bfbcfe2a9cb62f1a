"""Serving a page: bind first (so a port in use fails before anything is created), then run uvicorn on that
socket in the foreground (the CLI) or in a thread (tests and notebooks).

Binding defaults to 127.0.0.1, this machine only. Port 0 asks the system for a free port; ``bind`` returns the
socket, whose ``getsockname()`` says which port it got.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

from ganfactory.errors import GanfactoryError

__all__ = ["base_url", "bind", "serve", "serving"]


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on ``host``:``port``; a clear error when the port is taken or the address unknown."""
    if not 0 <= port < 65536:
        raise GanfactoryError(f"port {port}: use 0..65535")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise GanfactoryError(f"cannot bind to {host!r}: {e.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise GanfactoryError(f"cannot listen on {host}:{port}: {e.strerror}; pass another --port "
                              "(0 picks a free one)") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def base_url(sock: socket.socket) -> str:
    """``http://HOST:PORT`` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(app):
    import uvicorn

    return uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))


def serve(app, sock: socket.socket) -> None:
    """Run ``app`` on ``sock`` until Ctrl-C (the CLI's way)."""
    _server(app).run(sockets=[sock])


@contextmanager
def serving(app, host: str = "127.0.0.1", port: int = 0, timeout: float = 20.0):
    """Run ``app`` in a background thread while the block runs; yields its base URL."""
    sock = bind(host, port)
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield base_url(sock)
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
