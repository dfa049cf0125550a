"""The worker's advertisement of its task types and the names of its mounted Secrets for its
pool (:mod:`conveyor_engine.catalogue`).

Published once before the worker takes work, refreshed every third of its lifetime while the
worker runs (so one missed refresh never drops it), withdrawn on a clean shutdown. A failed
publication is logged through :mod:`conveyor_engine.dependencies` and retried on the next
refresh: advertising never stops a worker from serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from .. import dependencies
from ..catalogue import Catalogues, catalogue_json
from ..tasktypes.registry import Registry

log = logging.getLogger(__name__)


class Advertiser:
    """Keeps one worker's catalogue entry alive. ``ttl_seconds``: how long an entry lives
    without a refresh (the worker's lease: a worker silent that long is taken for dead);
    ``secrets()``: the names of the Secrets mounted now (read at each publication, since
    mounted Secrets are re-read while the worker runs)."""

    def __init__(self, catalogues: Catalogues, registry: Registry, *, pool: str, worker: str,
                 ttl_seconds: float,
                 secrets: Callable[[], Iterable[str]] = lambda: ()) -> None:
        self._catalogues = catalogues
        self._described = registry.describe()
        self._secrets = secrets
        self._pool, self._worker = pool, worker
        self._ttl = ttl_seconds

    async def publish(self) -> bool:
        """Advertise now; False (logged) when Redis refused."""
        try:
            payload = catalogue_json(self._described, self._secrets())
            await asyncio.wait_for(self._catalogues.publish(
                self._pool, self._worker, payload, ttl_seconds=self._ttl), self._ttl / 2)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            dependencies.report(log, exc, "advertising task types failed; retrying")
            return False
        return True

    async def run(self, closing: asyncio.Event) -> None:
        """Refresh every third of the entry's lifetime until ``closing`` is set."""
        while not closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing.wait(), self._ttl / 3)
            if not closing.is_set():
                await self.publish()

    async def withdraw(self) -> None:
        """Remove the entry (clean shutdown); a failure leaves it to expire."""
        try:
            await asyncio.wait_for(self._catalogues.withdraw(self._pool, self._worker), 2.0)
        except Exception as exc:  # expiry removes it anyway
            log.warning("withdrawing task types failed (%s: %s); the entry expires",
                        type(exc).__name__, exc)
