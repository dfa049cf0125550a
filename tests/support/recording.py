"""A loopback HTTP server that records every request: when, which path, which lock token.

``GET /slow/<seconds>/<tag>`` sleeps, then answers JSON. Each request is recorded as a
:class:`Seen` (arrival and end times from ``time.monotonic()``, the path and the
``Conveyor-Lock-Token`` header), the view a fenced resource or a rate-limited API has.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from .loopback import QuietHandler, serve


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it."""

    start: float
    end: float
    path: str
    token: str | None


class Recorded(list):
    """The requests seen so far (:class:`Seen`, appended when each ends), and ``arrived``:
    the path of each request as soon as it arrives, before any sleep."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[str] = []


class _Recording(QuietHandler):
    seen: Recorded
    lock: threading.Lock

    def do_GET(self) -> None:
        start = time.monotonic()
        with self.lock:
            self.seen.arrived.append(self.path)
        parts = self.path.strip("/").split("/")
        if parts[0] == "slow" and len(parts) > 1:
            time.sleep(float(parts[1]))
        with self.lock:
            self.seen.append(Seen(start, time.monotonic(), self.path,
                                  self.headers.get("Conveyor-Lock-Token")))
        self.reply(200, b'{"ok": true}')


@contextlib.contextmanager
def recording_server() -> Iterator[tuple[str, list[Seen]]]:
    """Serve on a free loopback port; yield ``(base url, requests seen so far)``."""
    seen = Recorded()
    with serve(_Recording, seen=seen) as url:
        yield url, seen
