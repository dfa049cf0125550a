"""Locks and semaphores in PostgreSQL: acquire, renew, release, sweep and wake waiters.

Who gets a lock is decided by :func:`conveyor_engine.locks.grant` (pure); this module reads
the holders and carries the decision out. Acquirers of one lock name serialise on its
sequence row (``SELECT ... FOR UPDATE``), which also hands out the fencing tokens. A
holder row names the claim it was taken under; it is dead once its lease ran out or its
task no longer runs under that claim, so nothing that stops a task (commit, cancel,
takeover, deletion) can leave a lock held for longer than a lease.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from ..locks import TIMER_KIND, Grant, Holder, grant, lock_order
from ..phases import TaskPhase
from .base import StoreBase, phase_literal, sid
from .records import TaskRef

_RUNNING = phase_literal(TaskPhase.RUNNING)

_SEQUENCE = "INSERT INTO lock_sequences (name) VALUES ($1) ON CONFLICT DO NOTHING"
_LOCK_SEQUENCE = "SELECT token FROM lock_sequences WHERE name = $1 FOR UPDATE"
_HOLDERS = f"""
    SELECT h.execution_id, h.task_name, h.token, h.lease_until,
           EXISTS (SELECT 1 FROM tasks t WHERE t.execution_id = h.execution_id
                   AND t.name = h.task_name AND t.phase = {_RUNNING} AND t.claim = h.claim)
           AS alive
    FROM lock_holders h WHERE h.name = $1"""
_EVICT = """DELETE FROM lock_holders
            WHERE name = $1 AND execution_id = ANY($2::uuid[]) AND task_name = ANY($3::text[])
              AND token = ANY($4::bigint[])"""
_NEXT_TOKEN = "UPDATE lock_sequences SET token = token + 1 WHERE name = $1 RETURNING token"
_HOLD = """
    INSERT INTO lock_holders (name, execution_id, task_name, claim, token, worker,
                              lease_until, acquired_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (name, execution_id, task_name) DO UPDATE
    SET claim = EXCLUDED.claim, token = EXCLUDED.token, worker = EXCLUDED.worker,
        lease_until = EXCLUDED.lease_until, acquired_at = EXCLUDED.acquired_at"""
_DROP_OWN = """DELETE FROM lock_holders WHERE execution_id = $1 AND task_name = $2
               AND claim = $3"""
_RENEW = "UPDATE lock_holders SET lease_until = $2 WHERE worker = $1"
# Dead holders: lease ran out, or the task no longer runs under the claim that took it.
_SWEEP = f"""
    DELETE FROM lock_holders h
    WHERE h.lease_until < $1
       OR NOT EXISTS (SELECT 1 FROM tasks t WHERE t.execution_id = h.execution_id
                      AND t.name = h.task_name AND t.phase = {_RUNNING} AND t.claim = h.claim)
    RETURNING h.name"""
_RELEASE = """
    DELETE FROM lock_holders h
    USING unnest($1::uuid[], $2::text[], $3::bigint[]) AS r(eid, name, claim)
    WHERE h.execution_id = r.eid AND h.task_name = r.name AND h.claim = r.claim
    RETURNING h.name"""
# Wake, per released lock, as many waiters as places were freed (longest waiting first):
# their timer falls due now and the dispatcher of their pool puts them back on the stream.
_WAKE = f"""
    UPDATE tasks t SET due_at = $3
    FROM (SELECT w.execution_id, w.name FROM unnest($1::text[], $2::int[]) AS r(lock, n)
          CROSS JOIN LATERAL (
              SELECT execution_id, name FROM tasks
              WHERE waiting_for = r.lock AND phase = '{TaskPhase.WAITING.value}'
                AND timer_kind = '{TIMER_KIND}'
              ORDER BY claimed_at LIMIT r.n FOR UPDATE SKIP LOCKED) w) p
    WHERE t.execution_id = p.execution_id AND t.name = p.name AND t.due_at > $3
    RETURNING t.execution_id"""


@dataclass(frozen=True, slots=True)
class Acquired:
    """The result of :meth:`LockQueries.acquire_locks`: ``tokens`` by lock name when every
    lock was granted; otherwise ``waiting_for`` (the first lock not granted), its
    ``limit`` and the :class:`~conveyor_engine.locks.Grant` that refused it."""

    tokens: dict[str, int] = field(default_factory=dict)
    waiting_for: str | None = None
    limit: int = 0
    refusal: Grant | None = None

    @property
    def granted(self) -> bool:
        """True when every lock was granted."""
        return self.waiting_for is None


class LockQueries(StoreBase):
    """Locks and semaphores (see :class:`~.store.Store`)."""

    async def acquire_locks(
        self, ref: TaskRef, *, claim: int, worker: str, locks: Sequence[tuple[str, int]],
        now: datetime, lease: timedelta,
    ) -> Acquired:
        """Take every lock of ``locks`` (``(name, limit)``) for attempt ``ref`` running
        under ``claim`` on ``worker``, all or none, in one transaction.

        Locks are taken in name order (:func:`~conveyor_engine.locks.lock_order`); each
        name's sequence row is locked, its holders read, the dead ones evicted and the lock
        granted by :func:`~conveyor_engine.locks.grant`, with the next token and a lease
        until ``now + lease``. When one is refused, the ones taken so far are given back
        (evictions stay) and the refusal says which lock and who holds it.
        """
        limits = dict(locks)

        async def work(conn: asyncpg.Connection) -> Acquired:
            tokens: dict[str, int] = {}
            for name in lock_order(limits):
                await conn.execute(_SEQUENCE, name)
                await conn.execute(_LOCK_SEQUENCE, name)
                holders = [Holder(sid(r["execution_id"]), r["task_name"], r["token"],
                                  r["lease_until"], r["alive"])
                           for r in await conn.fetch(_HOLDERS, name)]
                decision = grant(holders, limit=limits[name], now=now)
                if decision.evict:
                    await conn.execute(_EVICT, name,
                                       [h.execution_id for h in decision.evict],
                                       [h.task for h in decision.evict],
                                       [h.token for h in decision.evict])
                if not decision.granted:
                    await conn.execute(_DROP_OWN, ref.execution_id, ref.task, claim)
                    return Acquired(waiting_for=name, limit=limits[name], refusal=decision)
                token = await conn.fetchval(_NEXT_TOKEN, name)
                await conn.execute(_HOLD, name, ref.execution_id, ref.task, claim, token,
                                   worker, now + lease, now)
                tokens[name] = token
            return Acquired(tokens=tokens)

        return await self._in_transaction(work)

    async def release_locks(self, ref: TaskRef, *, claim: int, now: datetime) -> None:
        """Give back the locks ``ref`` holds under ``claim`` (a task that took its locks
        but then could not run: no rate-limit token) and wake their waiters."""

        async def work(conn: asyncpg.Connection) -> None:
            await release_held(conn, [(ref.execution_id, ref.task, claim)], now)

        await self._in_transaction(work)

    async def renew_lock_leases(self, worker: str, *, until: datetime) -> int:
        """Extend the lease of every lock ``worker``'s tasks hold; return how many."""
        result = await self._pool.execute(_RENEW, worker, until)
        return int(result.split()[-1])

    async def sweep_locks(self, *, now: datetime) -> int:
        """Delete dead holders (lease ran out, or the task no longer runs under the claim
        that took the lock: finished, cancelled, taken over, execution gone) and wake
        the waiters of the locks freed; return how many holders were deleted."""

        async def work(conn: asyncpg.Connection) -> int:
            freed = Counter(r["name"] for r in await conn.fetch(_SWEEP, now))
            await wake_waiters(conn, freed, now)
            return sum(freed.values())

        return await self._in_transaction(work)


async def release_held(conn: asyncpg.Connection,
                       held: Sequence[tuple[str, str, int]], now: datetime) -> None:
    """Delete the holders of ``held`` (``(execution id, task, claim)``) and wake the
    waiters of the locks they held, inside the caller's transaction."""
    if not held:
        return
    rows = await conn.fetch(_RELEASE, [h[0] for h in held], [h[1] for h in held],
                            [h[2] for h in held])
    await wake_waiters(conn, Counter(r["name"] for r in rows), now)


async def wake_waiters(conn: asyncpg.Connection, freed: Counter[str], now: datetime) -> None:
    """Make the timers of the longest-waiting tasks of each freed lock due at ``now`` (as
    many per lock as places were freed)."""
    if not freed:
        return
    names = sorted(freed)
    await conn.fetch(_WAKE, names, [freed[n] for n in names], now)
