"""The time Schedules see: the real clock, or, for tests only, a controllable one.

Schedules are about wall-clock time (a tick at 02:00 in New York on the night the clocks
change, an operator down for five and a half minutes), so their tests must move time. The
operator reads its time from a :class:`Clock`; in production it is :class:`Clock` itself (the
system's UTC time). When ``CONVEYOR_CLOCK_FILE`` names a file (only tests set it), the
clock is a :class:`FileClock` that reads that JSON file::

    {"epoch": 1741499700.0, "anchor": 1767000000.0, "speed": 4.0}

meaning: at real time ``anchor`` (unix seconds) the clock shows ``epoch`` and from then on
runs ``speed`` times as fast as real time. The file is read again whenever it changes, so a
test can jump the clock (an outage of five minutes) or restart the operator into the middle
of a DST night, and runs the real operator process through minutes of schedule time in
seconds. Everything else (kopf, leases, TTLs, the engine) keeps real time.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import UTC, datetime, timedelta


class Clock:
    """Real time. ``now()`` is aware UTC; :meth:`sleep` waits on the event loop."""

    #: Longest single sleep: a system clock that jumps is noticed within this long.
    MAX_NAP = 60.0

    def now(self) -> datetime:
        """The current time, aware, in UTC."""
        return datetime.now(UTC)

    def real_seconds(self, span: timedelta) -> float:
        """How long ``span`` of this clock's time lasts in real seconds."""
        return max(0.0, span.total_seconds())

    async def sleep_until(self, moment: datetime, wake: asyncio.Event | None = None) -> bool:
        """Sleep until this clock shows ``moment`` or ``wake`` is set (then True is
        returned, and the caller clears it); False when the time came."""
        while True:
            left = self.real_seconds(moment - self.now())
            if left <= 0:
                return False
            nap = min(left, self.MAX_NAP)
            if wake is None:
                await asyncio.sleep(nap)
                continue
            try:
                await asyncio.wait_for(wake.wait(), nap)
                return True
            except TimeoutError:
                continue


class FileClock(Clock):
    """A clock set by a JSON file (see the module's docstring); for tests only."""

    #: Longest real sleep, so that a rewritten file is noticed soon.
    MAX_NAP = 0.2

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._epoch = time.time()
        self._anchor = time.time()
        self._speed = 1.0
        self._load()

    def _load(self) -> None:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return
        stamp = (info.st_mtime_ns, info.st_size)
        if stamp == self._stamp:
            return
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return  # being rewritten: keep the last setting
        self._epoch = float(data["epoch"])
        self._anchor = float(data["anchor"])
        self._speed = float(data.get("speed", 1.0))
        self._stamp = stamp

    def now(self) -> datetime:
        """The file's time now (re-read when the file changed)."""
        self._load()
        seconds = self._epoch + (time.time() - self._anchor) * self._speed
        return datetime.fromtimestamp(seconds, UTC)

    def real_seconds(self, span: timedelta) -> float:
        """``span`` divided by the speed (a frozen clock: a short nap until it moves)."""
        seconds = span.total_seconds()
        if seconds <= 0:
            return 0.0
        return seconds / self._speed if self._speed > 0 else self.MAX_NAP


def clock_from(path: str | None) -> Clock:
    """The operator's clock: :class:`FileClock` on ``path`` when given, else real time."""
    return FileClock(path) if path else Clock()
