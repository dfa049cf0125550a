"""Reclaiming: taking over stream entries whose worker died, and dead-lettering the ones
delivered too often.

A worker renews the stream lease of every entry it holds (:class:`~.inflight.InFlight`);
an entry idle for a whole lease belongs to a worker that stopped. Such entries are claimed
again here (``XCLAIM`` re-checks the idle time, so a live worker never loses its entry) and
started like fresh deliveries, claimed in PostgreSQL only from the dead consumer. An entry
delivered ``max_deliveries`` times without an outcome is a poison message: it is copied to
the dead-letter stream and its attempt fails for good, so one bad task cannot crash-loop a
pool (the same rule as a RabbitMQ delivery limit or an SQS redrive policy).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from .. import dependencies
from ..metrics import DEAD_LETTERS
from ..queue import Delivery, Queue
from ..store import Store
from .committer import Committer, Finished
from .context import ContextLoader, LoadFailure
from .inflight import InFlight

log = logging.getLogger(__name__)

#: Starts deliveries taken over: ``(deliveries, {entry id: consumer it was taken from})``.
Start = Callable[[list[Delivery], dict[str, str]], Awaitable[None]]
#: Records a claimed attempt that cannot run as failed: ``(entry id, why)``.
Fail = Callable[[str, LoadFailure], None]


def split_dead(
    deliveries: list[Delivery], times: dict[str, int], max_deliveries: int
) -> tuple[list[Delivery], list[Delivery]]:
    """``(alive, dead)``: dead are the deliveries delivered ``max_deliveries`` times or more
    (``times`` by entry id; an entry missing from it counts as never delivered)."""
    dead = [d for d in deliveries if times.get(d.message_id, 0) >= max_deliveries]
    alive = [d for d in deliveries if d not in dead]
    return alive, dead


def dead_letter_reason(deliveries: int, max_deliveries: int) -> str:
    """The error recorded on an attempt given up after ``deliveries`` deliveries."""
    return (f"delivered {deliveries} times without an outcome (limit "
            f"{max_deliveries}); moved to the dead-letter stream")


class Reclaimer:
    """The reclaim loop of one worker (``consumer``) on one ``pool``.

    ``slots`` is the worker's concurrency; ``lease_seconds`` both the stream lease (an entry
    idle that long is expired) and the PostgreSQL lease given to dead-lettered claims.
    """

    def __init__(
        self, *, store: Store, queue: Queue, loader: ContextLoader, committer: Committer,
        inflight: InFlight, pool: str, consumer: str, slots: int, lease_seconds: float,
        max_deliveries: int, start: Start, fail: Fail,
    ) -> None:
        self._store, self._queue, self._loader = store, queue, loader
        self._committer, self._inflight = committer, inflight
        self._pool, self._consumer, self._slots = pool, consumer, slots
        self._lease_seconds, self._max_deliveries = lease_seconds, max_deliveries
        self._start, self._fail = start, fail

    async def run(self, stopping: asyncio.Event) -> None:
        """Every half lease, reclaim expired entries while slots are free, until ``stopping``.

        Errors are logged and the loop goes on.
        """
        lease_ms = int(self._lease_seconds * 1000)
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._lease_seconds / 2)
            if stopping.is_set():
                return
            if self._inflight.free(self._slots) <= 0:
                continue
            try:
                await self.reclaim_once(lease_ms)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                dependencies.report(log, exc, "reclaiming expired work failed")

    async def reclaim_once(self, lease_ms: int) -> int:
        """Take over entries whose lease expired; return how many were taken over."""
        free = self._inflight.free(self._slots)
        expired = await self._queue.expired(self._pool, min_idle_ms=lease_ms, count=max(free, 1))
        if not expired:
            return 0
        deliveries, malformed = await self._queue.take_over(
            self._pool, self._consumer, [m for m, _, _ in expired], min_idle_ms=lease_ms)
        for message_id in malformed:
            self._inflight.hold_unrun(message_id)
            self._committer.submit(Finished(self._pool, message_id, None))
        owners = {m: consumer for m, consumer, _ in expired}
        times = {m: n for m, _, n in expired}
        alive, dead = split_dead(deliveries, times, self._max_deliveries)
        if alive:
            log.warning("taking over %d task(s) whose worker stopped renewing", len(alive))
            await self._start(alive, owners)
        for delivery in dead:
            await self._dead_letter(delivery, times[delivery.message_id],
                                    owners[delivery.message_id])
        return len(deliveries)

    async def _dead_letter(self, delivery: Delivery, deliveries: int, owner: str) -> None:
        """Move one entry to the dead-letter stream and fail its attempt for good."""
        reason = dead_letter_reason(deliveries, self._max_deliveries)
        DEAD_LETTERS.inc()
        claims = await self._store.claim(
            [delivery.ref], worker=self._consumer, now=datetime.now(UTC),
            lease=timedelta(seconds=self._lease_seconds), owners=[owner])
        await self._queue.dead_letter(self._pool, delivery.message_id, delivery.ref, reason)
        if claims:
            jobs, failures = await self._loader.load(claims)
            workflow = jobs[0].workflow if jobs else (failures[0].workflow if failures else None)
            self._inflight.hold_unrun(delivery.message_id)
            self._fail(delivery.message_id, LoadFailure(claims[0], reason, workflow))
