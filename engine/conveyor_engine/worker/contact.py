"""Whether this worker has been in steady contact with its stores long enough to take over
other workers' claims.

A claim is taken over when its lease ran out, but a lease also runs out while its worker is
alive and cut off from Redis or PostgreSQL, and after the outage every worker races: the
owner to renew, the others to take over. A takeover is therefore allowed only once this
worker has reached both stores without a failure for a whole lease: by then any owner that
is alive and can reach them has renewed (workers renew every third of a lease, and retry
within half a second after a failure), so what is still expired belongs to a worker that
is gone. Fencing (the claim number checked by every commit) covers what slips through.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def takeover_allowed(*, down: bool, steady_seconds: float, lease_seconds: float) -> bool:
    """True when expired claims may be taken over: no store is down and both have answered
    without a failure for at least ``lease_seconds`` (``steady_seconds`` so far)."""
    return not down and steady_seconds >= lease_seconds


class Contact:
    """Which stores (``"redis"``, ``"postgresql"``) failed last time, and since when all have
    answered. Start counts as a recovery: a new worker waits a lease before taking over.

    ``clock`` returns monotonic seconds (``time.monotonic``).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._down: set[str] = set()
        self._since = clock()

    def ok(self, store: str) -> bool:
        """``store`` answered; True when this ends an outage of it."""
        if store not in self._down:
            return False
        self._down.discard(store)
        self._since = self._clock()
        return True

    def failed(self, store: str) -> bool:
        """``store`` failed; True when it was up until now."""
        if store in self._down:
            return False
        self._down.add(store)
        return True

    @property
    def down(self) -> frozenset[str]:
        """The stores whose last call failed."""
        return frozenset(self._down)

    def takeover_allowed(self, lease_seconds: float) -> bool:
        """:func:`takeover_allowed` now."""
        return takeover_allowed(down=bool(self._down), steady_seconds=self._clock() - self._since,
                                lease_seconds=lease_seconds)
