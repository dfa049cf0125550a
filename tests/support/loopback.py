"""What the loopback test servers share: serving a handler class on a free 127.0.0.1 port
in a thread, and writing one complete reply (the servers differ only in what they record
and answer)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and can send one whole reply."""

    def reply(self, status: int, body: bytes, content_type: str = "application/json",
              headers: Mapping[str, str] | None = None) -> None:
        """Send ``status``, the headers (Content-Type, then ``headers``, then
        Content-Length) and ``body``."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(handler: type[BaseHTTPRequestHandler], **state: Any) -> Iterator[str]:
    """Serve a subclass of ``handler`` with ``state`` as class attributes (what the test
    shares with it, plus a ``lock``) on a free loopback port; yield its base URL."""
    bound = type("H", (handler,), {"lock": threading.Lock(), **state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), bound)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
