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

from .loopback import QuietHandler, serve

Reply = tuple[int, Mapping[str, str]]


class _Scripted(QuietHandler):
    script: Mapping[str, Sequence[Reply]]
    arrivals: dict[str, list[float]]
    lock: threading.Lock

    def do_GET(self) -> None:
        with self.lock:
            seen = self.arrivals.setdefault(self.path, [])
            seen.append(time.monotonic())
            replies = self.script.get(self.path) or [(404, {})]
            status, headers = replies[min(len(seen), len(replies)) - 1]
        if status < 300:
            self.reply(status, b'{"ok": true}', headers=headers)
        else:
            self.reply(status, b"scripted failure", "text/plain", headers)


@contextlib.contextmanager
def scripted_server(
    script: Mapping[str, Sequence[Reply]],
) -> Iterator[tuple[str, dict[str, list[float]]]]:
    """Serve ``script`` on a free loopback port; yield ``(base url, arrivals by path)``.
    A path not in the script gets 404."""
    arrivals: dict[str, list[float]] = {}
    with serve(_Scripted, script=script, arrivals=arrivals) as url:
        yield url, arrivals
