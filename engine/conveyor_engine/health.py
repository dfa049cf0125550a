"""The worker's HTTP endpoint: ``/metrics`` (Prometheus), ``/readyz`` and ``/healthz``.

Runs in a daemon thread (``wsgiref``) so a busy event loop cannot make the probes time out
falsely. ``/readyz`` answers 200 while the worker claims work and 503 once it is stopping
or while Redis or PostgreSQL is unreachable (:mod:`conveyor_engine.dependencies`), so a
Service or a readiness gate stops counting it during its grace period or an outage.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes arrive every few seconds; logging each one is noise."""


def start_health_server(port: int, ready: Callable[[], bool], host: str = "0.0.0.0") -> WSGIServer:
    """Serve ``/metrics``, ``/readyz`` (``ready()`` -> 200 or 503) and ``/healthz`` on ``port``.

    Returns the server (``shutdown()`` stops it); raises ``OSError`` if the port is taken.
    """
    metrics = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path == "/readyz":
            ok = ready()
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "text/plain")])
            return [b"ready\n" if ok else b"not ready\n"]
        return metrics(environ, start_response)

    server = make_server(host, port, app, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
