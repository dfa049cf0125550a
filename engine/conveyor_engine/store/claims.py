"""Claims and leases: a worker takes task attempts, keeps them, or gives them back."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..phases import ExecutionPhase, TaskPhase
from .base import StoreBase, phase_literal, pick_and_update_sql, sid
from .records import Claimed, ReadyTask, TaskRef

_CLAIM = """
    WITH claimed AS (
        UPDATE tasks t
        SET phase = $8, worker = $4, started_at = COALESCE(t.started_at, $5),
            message = NULL, lease_until = $7
        FROM unnest($1::uuid[], $2::text[], $3::int[], $6::text[]) AS c(eid, name, attempt, owner)
        WHERE t.execution_id = c.eid AND t.name = c.name AND t.attempt = c.attempt
          AND (t.phase = $9 OR (t.phase = $8 AND t.worker = c.owner))
        RETURNING t.execution_id, t.name, t.attempt, t.resume_from),
    started AS (
        UPDATE executions e SET phase = $10, started_at = $5, updated_at = $5
        WHERE e.id IN (SELECT execution_id FROM claimed) AND e.phase = $11
        RETURNING e.id)
    SELECT c.*, c.execution_id IN (SELECT id FROM started) AS started FROM claimed c"""

# Served by the partial index tasks_running_worker: the phase is a literal (see base.py).
_RENEW = (f"UPDATE tasks SET lease_until = $2 "
          f"WHERE worker = $1 AND phase = {phase_literal(TaskPhase.RUNNING)}")

_REARM_ABANDONED = pick_and_update_sql(
    phase=TaskPhase.RUNNING, column="lease_until", inclusive=False,
    set_sql="worker = NULL, due_at = $2, lease_until = NULL, "
            "message = 'its worker stopped renewing the lease'")

_HAND_BACK = """
    UPDATE tasks t SET phase = $6, worker = NULL, due_at = $5,
        lease_until = NULL, message = 'handed back by a stopping worker'
    FROM unnest($1::uuid[], $2::text[], $3::int[]) AS c(eid, name, attempt)
    WHERE t.execution_id = c.eid AND t.name = c.name AND t.attempt = c.attempt
      AND t.phase = $7 AND t.worker = $4
    RETURNING t.execution_id, t.name, t.attempt"""


class ClaimQueries(StoreBase):
    """Claiming, lease renewal, recovery of abandoned claims and hand-back."""

    async def claim(
        self, refs: list[TaskRef], *, worker: str, now: datetime, lease: timedelta,
        owners: list[str | None] | None = None,
    ) -> list[Claimed]:
        """Move the given task attempts to ``Running`` for ``worker``; return those accepted.

        A claim is accepted while the task is ``Ready`` at that attempt, or ``Running`` at
        that attempt for the worker named in ``owners`` (the consumer whose lease expired:
        taking over work from a dead worker, never from another one). Duplicates, cancelled
        tasks and finished attempts are refused, which is how a message delivered twice
        runs once. The claim carries a lease in PostgreSQL until ``now + lease``.
        Executions still ``Pending`` become ``Running``.
        """
        if not refs:
            return []
        owners = owners if owners is not None else [None] * len(refs)
        rows = await self._pool.fetch(
            _CLAIM,
            [r.execution_id for r in refs], [r.task for r in refs], [r.attempt for r in refs],
            worker, now, owners, now + lease, TaskPhase.RUNNING, TaskPhase.READY,
            ExecutionPhase.RUNNING, ExecutionPhase.PENDING,
        )
        return [
            Claimed(TaskRef(sid(r["execution_id"]), r["name"], r["attempt"]), r["resume_from"],
                    r["started"])
            for r in rows
        ]

    async def renew_leases(self, worker: str, *, until: datetime) -> int:
        """Extend the PostgreSQL lease of every task ``worker`` runs; return how many."""
        result = await self._pool.execute(_RENEW, worker, until)
        return int(result.split()[-1])

    async def rearm_abandoned(
        self, pool: str, *, now: datetime, expired_for: timedelta, limit: int
    ) -> list[ReadyTask]:
        """``Running`` tasks whose lease ran out ``expired_for`` ago: back to ``Ready``.

        The Redis stream's own lease takeover normally recovers such work first; this is
        for when Redis lost its pending entries. The old entry, if it ever resurfaces, is
        refused at claim time because the task no longer belongs to its worker.
        """
        return await self._pick_and_update(
            _REARM_ABANDONED, pool, now=now, cutoff=now - expired_for, limit=limit,
            to=TaskPhase.READY)

    async def hand_back(self, refs: list[TaskRef], *, worker: str, now: datetime) -> list[TaskRef]:
        """Return running attempts of ``worker`` to ``Ready`` (graceful shutdown).

        Returns the refs that were handed back; the caller re-dispatches them.
        """
        if not refs:
            return []
        rows = await self._pool.fetch(
            _HAND_BACK,
            [r.execution_id for r in refs], [r.task for r in refs], [r.attempt for r in refs],
            worker, now, TaskPhase.READY, TaskPhase.RUNNING,
        )
        return [TaskRef(sid(r["execution_id"]), r["name"], r["attempt"]) for r in rows]
