"""What passes between a running attempt and the worker while it runs: heartbeats and a
cancellation flag.

Both sides may be on different threads (a plain function runs in a worker thread through
:func:`asyncio.to_thread`; the watchdog and the cancellation come from the event loop), so
every method here is thread-safe: the flag is a :class:`threading.Event` and a heartbeat is
one tuple assignment under a lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

#: Called with each heartbeat's details (the test harness records them); runs on the
#: thread that heartbeats, so it must be thread-safe itself.
HeartbeatListener = Callable[[Any], None]


class Signals:
    """Heartbeats and cancellation of one attempt.

    ``clock`` returns seconds (monotonic; :func:`time.monotonic` by default); the time of
    creation counts as the first heartbeat, so an attempt that never heartbeats is idle
    from its start.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 on_heartbeat: HeartbeatListener | None = None) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last = clock()
        self._details: Any = None
        self._count = 0
        self._cancelled = threading.Event()
        self._reason = ""
        self._on_heartbeat = on_heartbeat

    def heartbeat(self, details: Any = None) -> None:
        """Record that the attempt is alive, with optional ``details`` (its progress)."""
        with self._lock:
            self._last, self._details, self._count = self._clock(), details, self._count + 1
        if self._on_heartbeat is not None:
            self._on_heartbeat(details)

    @property
    def heartbeats(self) -> int:
        """How many heartbeats were recorded."""
        return self._count

    @property
    def last_details(self) -> Any:
        """The details of the last heartbeat (None before the first)."""
        return self._details

    def idle_seconds(self) -> float:
        """Seconds since the last heartbeat (or since the attempt started)."""
        with self._lock:
            return self._clock() - self._last

    def cancel(self, reason: str) -> None:
        """Set the cancellation flag with its ``reason`` (the first reason is kept)."""
        with self._lock:
            if not self._cancelled.is_set():
                self._reason = reason
                self._cancelled.set()

    @property
    def cancelled(self) -> threading.Event:
        """The flag a plain function polls (``ctx.cancelled.is_set()``) or waits on
        (``ctx.cancelled.wait(seconds)``, an interruptible sleep)."""
        return self._cancelled

    @property
    def reason(self) -> str:
        """Why the attempt was cancelled ("" while it is not)."""
        return self._reason
