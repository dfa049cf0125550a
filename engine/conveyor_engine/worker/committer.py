"""Batched outcome commits: many attempts per PostgreSQL transaction, one Redis pipeline after.

An entry is acknowledged only after its outcome is committed (the invariant "nothing is
acknowledged before it is committed"). When Redis fails after a commit, only the Redis part
is retried: the commit is never repeated, and anything lost by a crash in between is
recovered by the dispatcher (ready tasks) and by lease expiry (unacknowledged entries).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from .. import dependencies
from ..cache import Cache
from ..events import Event, add_publish
from ..keys import Keys
from ..metrics import COMMIT_BATCH, DEAD_LETTERS, LOCK_LOST, LOST_ATTEMPTS, OUTCOMES_REFUSED
from ..phases import SATISFIES_DEPENDENTS, ExecutionPhase, TaskPhase
from ..queue import Queue
from ..store import CommitResult, OutcomeRecord, Store
from .outcome import failed_for_good

log = logging.getLogger(__name__)

#: Errors that committing the same data again cannot fix (bad text for jsonb, an integer
#: the encoder refuses): the batch is split and the offending record failed.
_PERMANENT = (asyncpg.DataError, orjson.JSONEncodeError, TypeError, ValueError)


@dataclass(frozen=True, slots=True)
class Finished:
    """A stream entry done with: its outcome to commit (None: nothing to record, just ack).

    ``takeover``: the record takes over a lost claim; if the commit refuses it (the claim's
    worker renewed after all), the entry is not acknowledged: it still belongs to that
    worker. ``dead_letter``: once the record is committed, the entry is also copied to the
    pool's dead-letter stream with this reason.
    """

    pool: str
    message_id: str
    record: OutcomeRecord | None
    takeover: bool = False
    dead_letter: str | None = None


class Committer:
    """Collects :class:`Finished` items and commits them in batches of up to ``batch_size``.

    ``on_acked(message ids)`` is called after the entries are acknowledged, so the worker
    can stop renewing their leases.
    """

    def __init__(
        self, *, store: Store, redis: Redis, keys: Keys, queue: Queue, cache: Cache,
        batch_size: int, on_acked: Callable[[list[str]], None],
    ) -> None:
        self._store, self._redis, self._keys = store, redis, keys
        self._queue, self._cache = queue, cache
        self._batch_size = batch_size
        self._on_acked = on_acked
        self._items: asyncio.Queue[Finished] = asyncio.Queue()
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, item: Finished) -> None:
        """Hand over one finished entry (never blocks)."""
        self._idle.clear()
        self._items.put_nowait(item)

    async def drain(self) -> None:
        """Wait until everything submitted so far is committed and acknowledged."""
        await self._idle.wait()

    async def run(self) -> None:
        """Commit batches until cancelled. Failures are logged and retried with backoff."""
        while True:
            batch = [await self._items.get()]
            while len(batch) < self._batch_size and not self._items.empty():
                batch.append(self._items.get_nowait())
            await self._commit_with_retry(batch)
            if self._items.empty():
                self._idle.set()

    async def _commit_with_retry(self, batch: list[Finished]) -> None:
        records = [item.record for item in batch if item.record is not None]
        delay = 0.1
        while True:
            try:
                result = await self._store.commit_outcomes(records, now=datetime.now(UTC))
                break
            except _PERMANENT:
                # One record the database cannot take must not hold back the others.
                result = await self._commit_one_by_one(records)
                break
            except Exception as exc:
                dependencies.report(log, exc, "committing %d outcomes failed; retrying in %.1fs",
                                    len(records), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        COMMIT_BATCH.observe(len(records))
        _log_refused(result.refused)
        _log_lock_lost(result.lock_refused)
        delay = 0.1
        while True:
            try:
                await self._after_commit(batch, result)
                break
            except Exception as exc:
                dependencies.report(log, exc, "publishing a committed batch to Redis failed; "
                                    "retrying")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self._on_acked([item.message_id for item in batch])

    async def _commit_one_by_one(self, records: list[OutcomeRecord]) -> CommitResult:
        """Commit each record alone; one that still fails becomes a non-retryable failure."""
        merged = CommitResult()
        for record in records:
            try:
                part = await self._store.commit_outcomes([record], now=datetime.now(UTC))
            except _PERMANENT as exc:
                log.error("the outcome of %s cannot be stored: %s", record.ref, exc)
                failed = failed_for_good(record, f"outcome cannot be stored: {exc}"[:1000])
                part = await self._store.commit_outcomes([failed], now=datetime.now(UTC))
            merged.applied += part.applied
            merged.ready += part.ready
            merged.skipped += part.skipped
            merged.finished.update(part.finished)
            merged.refused += part.refused
            merged.lock_refused += part.lock_refused
        return merged

    async def _after_commit(self, batch: list[Finished], result: CommitResult) -> None:
        applied = {id(record) for record in result.applied}
        by_pool: dict[str, list[str]] = defaultdict(list)
        for item in batch:
            if item.takeover and id(item.record) not in applied:
                continue  # its worker renewed: the entry is still that worker's
            by_pool[item.pool].append(item.message_id)
        _count_takeovers(batch, applied)
        async with self._redis.pipeline(transaction=False) as pipe:
            add_commit_effects(pipe, result, cache=self._cache, queue=self._queue,
                               keys=self._keys)
            for item in batch:
                if item.dead_letter and item.record is not None and id(item.record) in applied:
                    self._queue.add_dead_letter(pipe, item.pool, item.message_id,
                                                item.record.ref, item.dead_letter)
            for pool, ids in by_pool.items():
                self._queue.add_ack(pipe, pool, ids)
            await pipe.execute()


def add_commit_effects(pipe: Pipeline, result: CommitResult, *, cache: Cache, queue: Queue,
                       keys: Keys) -> None:
    """Queue in ``pipe`` what a commit causes in Redis: outputs of tasks that satisfy their
    dependents (and skipped ones) cached, newly ready tasks dispatched, events published, and
    the cache entries of executions that became final set to expire soon."""
    outputs: dict[str, dict[str, tuple[str, object]]] = defaultdict(dict)
    events: list[Event] = []
    for record in result.applied:
        ref, transition = record.ref, record.transition
        events.append(Event(ref.execution_id, transition.phase, ref.task, ref.attempt))
        if transition.phase in SATISFIES_DEPENDENTS:
            outputs[ref.execution_id][ref.task] = (transition.phase, transition.outputs)
    for eid, name in result.skipped:
        events.append(Event(eid, TaskPhase.SKIPPED, name))
        outputs[eid][name] = (TaskPhase.SKIPPED, None)
    for ready in result.ready:
        events.append(Event(ready.ref.execution_id, TaskPhase.READY, ready.ref.task, 1))
    for eid, phase in result.finished.items():
        events.append(Event(eid, phase))
    # Runs of a concurrency group admitted by this commit, and those whose place moved.
    events += [Event(eid, ExecutionPhase.PENDING) for eid in result.admitted + result.moved]
    # Outputs first: a dependent dispatched below may be claimed at once and must find its
    # upstream outputs in the cache.
    for eid, values in outputs.items():
        cache.add_outputs(pipe, eid, values)
    for eid in result.finished:  # after its outputs' writes, which set the long TTL
        cache.add_finished(pipe, eid)
    queue.add_dispatch(pipe, result.ready)
    add_publish(pipe, keys, events)


def _count_takeovers(batch: list[Finished], applied: set[int]) -> None:
    """Log and count the takeovers of lost claims that this commit applied."""
    for item in batch:
        if item.takeover and item.record is not None and id(item.record) in applied:
            LOST_ATTEMPTS.inc()
            if item.dead_letter:
                DEAD_LETTERS.inc()
            log.warning("took over %s: its attempt %d is recorded as lost (%s)",
                        item.record.ref, item.record.ref.attempt, item.record.transition.phase)


def _log_lock_lost(refused: list[OutcomeRecord]) -> None:
    """Say which outcomes the lock fence refused (recorded Lost, reason LockLost)."""
    if not refused:
        return
    LOCK_LOST.inc(len(refused))
    for record in refused:
        log.warning("refused the outcome (%s) of %s: a lock of theirs was taken by a newer "
                    "holder after its lease ran out; the attempt is recorded as lost",
                    record.transition.phase, record.ref)


def _log_refused(refused: list[OutcomeRecord]) -> None:
    """Say which outcomes the fence refused (their attempts were recorded as lost)."""
    if not refused:
        return
    OUTCOMES_REFUSED.inc(len(refused))
    for record in refused:
        log.warning("refused the outcome (%s) of %s from claim %s: the task was taken over "
                    "since (its attempt is recorded as lost)", record.transition.phase,
                    record.ref, record.claim)
