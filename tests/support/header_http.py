"""A loopback HTTP server that records each request's headers and answers from a script.

``header_server({"/r": [(302, {"Location": "http://169.254.169.254/"})]}, host="127.0.0.2")``
answers the first GET of ``/r`` with that redirect (later ones with the last entry); any
path not in the script gets 200 ``{"ok": true}``. Every request is recorded as a
:class:`Request` (path, headers with lower-case names, ``time.monotonic()`` arrival), the
view a receiving service has of what the http task sent.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: A status and its header fields; a value may be a callable, called when the reply is sent
#: (a ``Retry-After`` date relative to the moment of the answer).
Reply = tuple[int, Mapping[str, str | Callable[[], str]]]


@dataclass(frozen=True)
class Request:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    arrived: float


class _Handler(BaseHTTPRequestHandler):
    script: Mapping[str, Sequence[Reply]]
    seen: list[Request]
    lock: threading.Lock

    def _answer(self) -> None:
        with self.lock:
            self.seen.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()},
                                     time.monotonic()))
            count = sum(1 for r in self.seen if r.path == self.path)
            replies = self.script.get(self.path) or [(200, {})]
            status, headers = replies[min(count, len(replies)) - 1]
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b'{"ok": true}' if status < 300 else b"scripted"
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status < 300 else "text/plain")
        for name, value in headers.items():
            self.send_header(name, value() if callable(value) else value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True


@contextlib.contextmanager
def header_server(script: Mapping[str, Sequence[Reply]] | None = None, *,
                  host: str = "127.0.0.1") -> Iterator[tuple[str, list[Request]]]:
    """Serve ``script`` on a free port of ``host`` (a loopback address; ``::1`` for IPv6);
    yield ``(base url, requests seen)``."""
    server_cls = _Server
    if ":" in host:
        server_cls = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
    seen: list[Request] = []
    handler = type("H", (_Handler,), {"script": script or {}, "seen": seen,
                                      "lock": threading.Lock()})
    server = server_cls((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    where = f"[{host}]" if ":" in host else host
    try:
        yield f"http://{where}:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
