"""A loopback HTTP server that counts requests per path: the side effect a test checks."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Counting(BaseHTTPRequestHandler):
    """GET /slow/<seconds>/...: counts requests per path, sleeps, answers JSON."""

    hits: dict[str, int]
    lock: threading.Lock

    def do_GET(self) -> None:
        with self.lock:
            self.hits[self.path] = self.hits.get(self.path, 0) + 1
        parts = self.path.strip("/").split("/")
        if parts[0] == "slow" and len(parts) > 1:
            time.sleep(float(parts[1]))
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def counting_server() -> Iterator[tuple[str, dict[str, int]]]:
    """Serve on a free loopback port; yield ``(base url, hits by path)``."""
    hits: dict[str, int] = {}
    handler = type("H", (_Counting,), {"hits": hits, "lock": threading.Lock()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
