"""A loopback HTTP server that counts requests per path: the side effect a test checks."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from .loopback import QuietHandler, serve


class _Counting(QuietHandler):
    """GET /slow/<seconds>/...: counts requests per path, sleeps, answers JSON."""

    hits: dict[str, int]
    lock: threading.Lock

    def do_GET(self) -> None:
        with self.lock:
            self.hits[self.path] = self.hits.get(self.path, 0) + 1
        parts = self.path.strip("/").split("/")
        if parts[0] == "slow" and len(parts) > 1:
            time.sleep(float(parts[1]))
        self.reply(200, b'{"ok": true}')


@contextlib.contextmanager
def counting_server() -> Iterator[tuple[str, dict[str, int]]]:
    """Serve on a free loopback port; yield ``(base url, hits by path)``."""
    hits: dict[str, int] = {}
    with serve(_Counting, hits=hits) as url:
        yield url, hits
