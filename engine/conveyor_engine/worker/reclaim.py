"""Reclaiming: taking over stream entries whose worker died, and dead-lettering the ones
delivered too often.

A worker renews the stream lease of every entry it holds (:class:`~.inflight.InFlight`);
an entry idle for a whole lease belongs to a worker that stopped. Such entries are claimed
again here (``XCLAIM`` re-checks the idle time), then, by what PostgreSQL says of the task:

* still ``Running`` at that attempt under another worker's claim: the attempt is lost. It
  is committed as ``Lost`` (reason ``WorkerLost``), fenced by that claim's token and only
  if the task's PostgreSQL lease ran out too (re-checked inside the UPDATE), so a worker
  that is alive and renewing keeps its task. The lost attempt counts against the task's
  retry policy: a retry is a new attempt after the backoff, and with no retries left the
  task fails with reason ``WorkerLost``;
* otherwise (still ``Ready``: its reader died before claiming it) it is started like a
  fresh delivery.

Takeovers wait until this worker has been in steady contact with both stores for a whole
lease (:mod:`.contact`). An entry delivered ``max_deliveries`` times without an outcome is a
poison message: it is copied to the dead-letter stream and its attempt fails for good, so
one bad task cannot crash-loop a pool (the same rule as a RabbitMQ delivery limit or an SQS
redrive policy).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from .. import dependencies
from ..compiler import CompiledWorkflow
from ..metrics import DEAD_LETTERS
from ..queue import Delivery, Queue
from ..store import HeldClaim, Store
from ..workflows import WorkflowCatalog
from .committer import Committer, Finished
from .contact import Contact
from .context import ContextLoader, LoadFailure
from .inflight import InFlight
from .outcome import lost_record

log = logging.getLogger(__name__)

#: Claims and starts deliveries taken over whose task is still ``Ready``.
Start = Callable[[list[Delivery]], Awaitable[None]]
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


def lost_reason(worker: str, by: str) -> str:
    """The error recorded on an attempt whose stream entry ``by`` took over from ``worker``."""
    return f"worker {worker} stopped renewing the lease of its claim; taken over by {by}"


async def workflow_of(catalog: WorkflowCatalog, held: HeldClaim) -> CompiledWorkflow | None:
    """The compiled workflow of a held claim's execution, or None if no store has it (the
    lost attempt is then recorded without retries: there is no policy to follow)."""
    try:
        return await catalog.get(held.workflow_hash, held.workflow_name)
    except LookupError:
        return None


def dead_letter_reason(deliveries: int, max_deliveries: int) -> str:
    """The error recorded on an attempt given up after ``deliveries`` deliveries."""
    return (f"delivered {deliveries} times without an outcome (limit "
            f"{max_deliveries}); moved to the dead-letter stream")


class Reclaimer:
    """The reclaim loop of one worker (``consumer``) on one ``pool``.

    ``slots`` is the worker's concurrency; ``lease_seconds`` both the stream lease (an entry
    idle that long is expired) and the PostgreSQL lease given to dead-lettered claims.
    ``contact`` gates takeovers (see :mod:`.contact`); ``catalog`` gives the retry policy
    of a lost attempt's task.
    """

    def __init__(
        self, *, store: Store, queue: Queue, loader: ContextLoader, committer: Committer,
        inflight: InFlight, pool: str, consumer: str, slots: int, lease_seconds: float,
        max_deliveries: int, start: Start, fail: Fail, catalog: WorkflowCatalog,
        contact: Contact | None = None, hand_back: Start | None = None,
    ) -> None:
        self._store, self._queue, self._loader = store, queue, loader
        self._committer, self._inflight = committer, inflight
        self._pool, self._consumer, self._slots = pool, consumer, slots
        self._lease_seconds, self._max_deliveries = lease_seconds, max_deliveries
        self._start, self._fail = start, fail
        self._catalog = catalog
        self._contact = contact or Contact(clock=lambda: float("inf"))
        self._hand_back = hand_back or _no_hand_back

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
            if not self._contact.takeover_allowed(self._lease_seconds):
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
        times = {m: n for m, _, n in expired}
        held = {h.ref: h for h in await self._store.held_claims([d.ref for d in deliveries])}
        lost = [d for d in deliveries if d.ref in held]
        alive, dead = split_dead([d for d in deliveries if d.ref not in held], times,
                                 self._max_deliveries)
        if alive:
            log.warning("taking over %d task(s) whose reader stopped before claiming them",
                        len(alive))
            await self._start(alive)
        for delivery in dead:
            await self._dead_letter(delivery, times[delivery.message_id])
        for delivery in lost:
            await self._take_over_lost(delivery, held[delivery.ref],
                                       times.get(delivery.message_id, 0))
        return len(deliveries)

    async def _take_over_lost(self, delivery: Delivery, held: HeldClaim, deliveries: int
                              ) -> None:
        """Commit ``held``'s attempt as lost (fenced, lease re-checked); its retry, if the
        policy allows one, is a new attempt after the backoff."""
        if held.worker == self._consumer:
            if any(e.delivery.ref == held.ref for e in self._inflight.entries()):
                return  # our own entry, idle through an outage: our renewal takes it back
            # Our claim, but nothing here runs it: the claim committed while its reply was
            # lost in a PostgreSQL outage. Our own lease renewal would keep it forever, so
            # give it back (Ready again, same attempt: it never started) and re-dispatch it.
            log.warning("handing back %s: claimed by this worker during an outage but never "
                        "started", held.ref)
            await self._hand_back([delivery])
            return
        dead = deliveries >= self._max_deliveries
        reason = (dead_letter_reason(deliveries, self._max_deliveries) if dead
                  else lost_reason(held.worker, self._consumer))
        now = datetime.now(UTC)
        record = lost_record(held, error=reason, now=now, lease_before=now,
                             workflow=await workflow_of(self._catalog, held), retryable=not dead)
        log.info("taking over %s unless its worker renews the PostgreSQL lease: %s",
                 held.ref, reason)
        self._inflight.hold_unrun(delivery.message_id)
        self._committer.submit(Finished(self._pool, delivery.message_id, record, takeover=True,
                                        dead_letter=reason if dead else None))

    async def _dead_letter(self, delivery: Delivery, deliveries: int) -> None:
        """Move one entry to the dead-letter stream and fail its attempt for good (when its
        task was still ``Ready``: claimed here only to record the failure)."""
        reason = dead_letter_reason(deliveries, self._max_deliveries)
        DEAD_LETTERS.inc()
        claims = await self._store.claim(
            [delivery.ref], worker=self._consumer, now=datetime.now(UTC),
            lease=timedelta(seconds=self._lease_seconds))
        await self._queue.dead_letter(self._pool, delivery.message_id, delivery.ref, reason)
        if claims:
            jobs, failures = await self._loader.load(claims)
            workflow = jobs[0].workflow if jobs else (failures[0].workflow if failures else None)
            self._inflight.hold_unrun(delivery.message_id)
            self._fail(delivery.message_id, LoadFailure(claims[0], reason, workflow))


async def _no_hand_back(deliveries: list[Delivery]) -> None:
    """Default of :class:`Reclaimer`'s ``hand_back``: leave the entries pending."""
