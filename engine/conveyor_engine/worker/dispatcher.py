"""The dispatcher: fires due durable timers, enforces runs' deadlines
(``activeDeadlineSeconds``: :meth:`Dispatcher._expire_deadlines`), re-dispatches ready tasks
that were lost, and records as lost the attempts of running tasks whose worker stopped
renewing their lease.

One worker per pool runs it at a time, under a Redis lock (redis-py's ``Lock``: a key with
a random token and a TTL, released or extended only by its holder). If that worker dies,
the lock expires and another worker takes over.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import orjson
from redis.asyncio import Redis

from .. import dependencies
from ..cache import Cache
from ..cancellation import Canceller
from ..events import Event, add_message, add_publish
from ..keys import Keys
from ..metrics import LOST_ATTEMPTS, TASKS_WAITING
from ..phases import TaskPhase
from ..queue import Queue
from ..retention import RetentionPolicy, next_look, retention_cutoff
from ..store import HeldClaim, ReadyTask, Store
from ..workflows import WorkflowCatalog
from .committer import add_commit_effects
from .contact import Contact
from .outcome import lost_record
from .reclaim import workflow_of

log = logging.getLogger(__name__)

#: Timers fired or tasks re-armed per query; more are picked up on the next pass at once.
_BATCH = 500
#: How often the waiting tasks of the pool are counted for ``conveyor_tasks_waiting``.
_WAITING_COUNT_SECONDS = 5.0
#: How often dead lock holders are swept. A commit releases its own locks at once; the
#: sweep is for holders whose task ended without one (cancelled, taken over, deleted), so
#: once a second is prompt enough and keeps a pass without locks to its own queries.
_SWEEP_SECONDS = 1.0
#: The ``reason`` label of each timer kind (bounded: four values).
WAIT_REASONS = {"lock": "LockHeld", "rate": "RateLimited", "retry": "RetryBackoff",
                "resume": "Timer"}


class Dispatcher:
    """Timer and recovery loop of one pool.

    ``interval`` (seconds) bounds how late a timer fires; ``grace`` is how long a ``Ready``
    task may stay unclaimed before it counts as lost; a ``Running`` task whose lease has
    been expired for another ``lease`` seconds counts as abandoned: its attempt is committed
    as lost (fenced by its claim, the lease re-checked inside the UPDATE), and only once
    ``contact`` says this worker has reached both stores for a whole lease, so a worker that
    is alive and renewing after an outage keeps its tasks. While entries are still queued in
    the stream, an old ready task is most likely just behind them, so lost work is only
    looked for when the stream has no undelivered entries, or at least every ``10 * grace``.
    ``catalog`` gives the retry policy of a lost attempt's task.
    """

    def __init__(
        self, *, store: Store, redis: Redis, keys: Keys, queue: Queue, pool: str,
        interval: float, grace: float, lease: float = 30.0,
        catalog: WorkflowCatalog | None = None, cache: Cache | None = None,
        contact: Contact | None = None, retention: RetentionPolicy | None = None,
    ) -> None:
        self._store, self._redis, self._keys, self._queue = store, redis, keys, queue
        self._cache = cache or Cache(redis, keys)
        self._catalog = catalog or WorkflowCatalog(store, self._cache)
        self._contact = contact or Contact(clock=lambda: float("inf"))
        self._pool = pool
        self._interval = interval
        self._grace = timedelta(seconds=grace)
        self._lease = timedelta(seconds=lease)
        self._last_full_check = datetime.min.replace(tzinfo=UTC)
        self._retention = retention or RetentionPolicy()
        self._next_retention = datetime.min.replace(tzinfo=UTC)
        #: Executions deleted per retention batch, newest last (for logs and tests).
        self.retention_batches: list[int] = []
        self._next_waiting_count = datetime.min.replace(tzinfo=UTC)
        self._next_sweep = datetime.min.replace(tzinfo=UTC)
        ttl = max(5.0, interval * 20)
        self._lock = redis.lock(keys.dispatcher_lock(pool), timeout=ttl)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Loop until cancelled or ``stop`` is set; errors are logged and the loop goes on."""
        stop = stop or asyncio.Event()
        try:
            while not stop.is_set():
                sleep = self._interval
                try:
                    if await self._hold_lock():
                        sleep = await self.pass_once()
                except Exception as exc:
                    dependencies.report(log, exc, "dispatcher pass failed")
                await asyncio.sleep(sleep)
        finally:
            try:
                if await self._lock.owned():
                    await self._lock.release()
            except Exception:  # shutting down; the TTL frees the lock anyway
                pass

    async def _hold_lock(self) -> bool:
        if await self._lock.owned():
            await self._lock.reacquire()
            return True
        return await self._lock.acquire(blocking=False)

    async def pass_once(self) -> float:
        """Fire due timers and recover lost tasks once; return seconds until the next pass."""
        now = datetime.now(UTC)
        fired = await self._store.fire_due_timers(self._pool, now=now, limit=_BATCH)
        fired += await self._expire_deadlines(now)
        lost: list[ReadyTask] = []
        backlog = await self._queue.backlog(self._pool)
        if backlog.queued == 0 or now - self._last_full_check > self._grace * 10:
            self._last_full_check = now
            lost = await self._store.rearm_lost(
                self._pool, now=now, older_than=self._grace, limit=_BATCH)
            # Running tasks whose PostgreSQL lease ran out a whole lease ago: their worker
            # died and Redis no longer holds their entries (else takeover would have won).
            # This path waits for twice the steady contact the stream takeover needs, so
            # after a start or an outage the reclaimer (every half lease) goes first: it
            # knows delivery counts and dead-letters poison entries; this path only
            # recovers what Redis lost.
            if self._contact.takeover_allowed(2 * self._lease.total_seconds()):
                await self._record_abandoned(now)
            if lost:
                log.warning("re-dispatching %d ready task(s) not claimed for %s",
                            len(lost), self._grace)
        ready = fired + lost
        if ready:
            async with self._redis.pipeline(transaction=False) as pipe:
                self._queue.add_dispatch(pipe, ready)
                add_publish(pipe, self._keys, [
                    Event(r.ref.execution_id, TaskPhase.READY, r.ref.task, r.ref.attempt)
                    for r in ready])
                await pipe.execute()
        await self._sweep_locks(now)
        await self._retain(now)  # after the dispatch: timers never wait for a deletion
        if len(fired) == _BATCH:
            return 0.0
        upcoming = await self._store.next_timer(self._pool)
        if upcoming is None:
            return self._interval
        return max(0.0, min(self._interval, (upcoming - datetime.now(UTC)).total_seconds()))

    async def _expire_deadlines(self, now: datetime) -> list[ReadyTask]:
        """End the main tasks of this pool's runs whose deadline passed (durable in
        PostgreSQL, so it holds while the operator is down): their running attempts are
        interrupted through the control channel (the cancel path; only the tasks named),
        the child runs of cancelled ``workflow`` tasks cancelled with their own children,
        finished runs announced; returns the handler tasks to dispatch with the timers."""
        expired = await self._store.expire_deadlines(self._pool, now=now, limit=_BATCH)
        if not expired:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            events = []
            for run in expired:
                log.info("execution %s passed its deadline: %d task(s) cancelled",
                         run.execution_id, len(run.cancelled))
                if run.running:
                    add_message(pipe, self._keys.control(), orjson.dumps({
                        "cancel": run.execution_id, "tasks": run.running,
                        "reason": "the run's activeDeadlineSeconds passed"}))
                events += [Event(run.execution_id, TaskPhase.CANCELLED, name)
                           for name in run.cancelled]
                if run.finished is not None:
                    events.append(Event(run.execution_id, run.finished))
                    self._cache.add_finished(pipe, run.execution_id)
            add_publish(pipe, self._keys, events)
            await pipe.execute()
        # The child runs of the cancelled workflow tasks, and theirs, are cancelled too
        # (as Engine.cancel does), after the parent's tasks ended: their wake-up finds
        # the parent task final and changes nothing.
        canceller = Canceller(self._store, self._redis, self._keys, self._cache, self._queue)
        for run in expired:
            await canceller.cancel_children_of(
                run.execution_id, run.cancelled,
                f"parent execution {run.execution_id} passed its activeDeadlineSeconds")
        return [task for run in expired for task in run.ready + run.admitted]

    async def _sweep_locks(self, now: datetime) -> None:
        """Free dead lock holders (lease ran out, or their task no longer runs under the
        claim that took the lock: finished, cancelled, taken over, execution deleted) and
        wake their waiters, so no worker death or operator restart leaves a lock held
        (:mod:`conveyor_engine.locks`); every few seconds, count this pool's waiting tasks
        by reason for ``conveyor_tasks_waiting``."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + timedelta(seconds=_SWEEP_SECONDS)
        freed = await self._store.sweep_locks(now=now)
        if freed:
            log.info("freed %d lock holder(s) whose lease ran out or whose task ended", freed)
        if now >= self._next_waiting_count:
            self._next_waiting_count = now + timedelta(seconds=_WAITING_COUNT_SECONDS)
            counts = await self._store.waiting_by_kind(self._pool)
            for kind, reason in WAIT_REASONS.items():
                TASKS_WAITING.labels(self._pool, reason).set(counts.get(kind, 0))

    async def _retain(self, now: datetime) -> None:
        """Delete one batch of this pool's expired executions when a look is due
        (:mod:`conveyor_engine.retention`); a full batch makes the next pass look again."""
        cutoff = retention_cutoff(now, self._retention.days)
        if cutoff is None or now < self._next_retention:
            return
        deleted = await self._store.delete_expired(cutoff=cutoff, pool=self._pool,
                                                   limit=self._retention.batch)
        self._next_retention = next_look(now, self._retention, deleted)
        if deleted:
            self.retention_batches.append(deleted)
            log.info("retention: deleted %d execution(s) of pool %s finished before %s",
                     deleted, self._pool, cutoff.isoformat())

    async def _record_abandoned(self, now: datetime) -> None:
        """Commit as lost the attempts of running tasks whose lease ran out a whole lease
        ago; publish what that changed (retries wait on their timers; failures skip)."""
        lease_before = now - self._lease
        held = await self._store.abandoned_claims(self._pool, lease_before=lease_before,
                                                  limit=_BATCH)
        if not held:
            return
        records = [lost_record(h, error=_abandoned_reason(h, self._lease), now=now,
                               lease_before=lease_before,
                               workflow=await workflow_of(self._catalog, h))
                   for h in held]
        result = await self._store.commit_outcomes(records, now=now)
        if not result.applied:
            return
        LOST_ATTEMPTS.inc(len(result.applied))
        log.warning("recorded %d attempt(s) as lost: their worker stopped renewing the lease "
                    "and no stream entry was left to take over", len(result.applied))
        async with self._redis.pipeline(transaction=False) as pipe:
            add_commit_effects(pipe, result, cache=self._cache, queue=self._queue,
                               keys=self._keys)
            await pipe.execute()


def _abandoned_reason(held: HeldClaim, lease: timedelta) -> str:
    """The error recorded on an attempt found abandoned in PostgreSQL."""
    until = held.lease_until.isoformat() if held.lease_until else "never"
    return (f"worker {held.worker} stopped renewing the lease of its claim (it ran out at "
            f"{until}, more than {lease.total_seconds():g}s ago)")
