"""A loopback HTTP server answering each path from a script: the server a retry test needs.

``scripted_server({"/flaky": [(503, {"Retry-After": "2"}), (200, {})]})`` answers the first
GET of ``/flaky`` with 503 and that header, every later one with the last entry (200). Each
request's arrival time (``time.monotonic()``) is recorded per path, so a test can check how
long the client waited between attempts.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Reply = tuple[int, Mapping[str, str]]


class _Scripted(BaseHTTPRequestHandler):
    script: Mapping[str, Sequence[Reply]]
    arrivals: dict[str, list[float]]
    lock: threading.Lock

    def do_GET(self) -> None:
        with self.lock:
            seen = self.arrivals.setdefault(self.path, [])
            seen.append(time.monotonic())
            replies = self.script.get(self.path) or [(404, {})]
            status, headers = replies[min(len(seen), len(replies)) - 1]
        body = b'{"ok": true}' if status < 300 else b"scripted failure"
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status < 300 else "text/plain")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def scripted_server(
    script: Mapping[str, Sequence[Reply]],
) -> Iterator[tuple[str, dict[str, list[float]]]]:
    """Serve ``script`` on a free loopback port; yield ``(base url, arrivals by path)``.
    A path not in the script gets 404."""
    arrivals: dict[str, list[float]] = {}
    handler = type("H", (_Scripted,), {"script": script, "arrivals": arrivals,
                                       "lock": threading.Lock()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", arrivals
    finally:
        server.shutdown()
        server.server_close()
