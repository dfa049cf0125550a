"""The test side of the operator's controllable clock (``CONVEYOR_CLOCK_FILE``, see
``conveyor_operator.clock``): write the file that sets the time Schedules see, and read
that time back the way the operator does. Tests only."""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path


class FakeClock:
    """A clock file: ``set(moment, speed)`` makes the operator's clock show ``moment`` now and
    run ``speed`` times as fast as real time (0 freezes it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._epoch = time.time()
        self._anchor = self._epoch
        self._speed = 1.0

    def set(self, moment: datetime, speed: float = 1.0) -> None:
        """Jump to ``moment`` (aware) and run at ``speed`` from now on (atomic rewrite)."""
        self._epoch, self._anchor, self._speed = moment.timestamp(), time.time(), speed
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"epoch": self._epoch, "anchor": self._anchor,
                                         "speed": speed}))
        os.replace(temporary, self.path)

    def now(self) -> datetime:
        """What the operator's clock shows now."""
        return datetime.fromtimestamp(
            self._epoch + (time.time() - self._anchor) * self._speed, UTC)

    async def until(self, moment: datetime, *, timeout: float = 300) -> None:
        """Wait (real time) until the clock shows ``moment``; it must be running."""
        assert self._speed > 0, "the clock is frozen"
        deadline = time.monotonic() + timeout
        while self.now() < moment:
            assert time.monotonic() < deadline, f"the clock did not reach {moment}"
            left = (moment - self.now()).total_seconds() / self._speed
            await asyncio.sleep(min(max(left, 0.01), 0.2))
