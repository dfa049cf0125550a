"""Claims and leases: a worker takes task attempts, keeps them, or gives them back."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from ..phases import ExecutionPhase, TaskPhase
from .base import StoreBase, phase_literal, sid
from .records import Claimed, HeldClaim, TaskRef

# Only a Ready task at that attempt, of an execution not suspended, is claimed; each claim
# takes the next claim number (the fencing token the outcome commit checks, see
# outcomes._MOVE_TASKS).
_CLAIM = """
    WITH claimed AS (
        UPDATE tasks t
        SET phase = $6, worker = $4, started_at = COALESCE(t.started_at, $5), claimed_at = $5,
            claim = t.claim + 1, message = NULL, reason = NULL, lease_until = $7
        FROM unnest($1::uuid[], $2::text[], $3::int[]) AS c(eid, name, attempt)
        WHERE t.execution_id = c.eid AND t.name = c.name AND t.attempt = c.attempt
          AND t.phase = $8
          AND NOT EXISTS (SELECT 1 FROM executions s WHERE s.id = t.execution_id AND s.suspended)
        RETURNING t.execution_id, t.name, t.attempt, t.resume_from, t.claim, t.attempt_base),
    started AS (
        UPDATE executions e SET phase = $9, started_at = $5, updated_at = $5
        WHERE e.id IN (SELECT execution_id FROM claimed) AND e.phase = $10
        RETURNING e.id)
    SELECT c.*, c.execution_id IN (SELECT id FROM started) AS started FROM claimed c"""

_HELD_COLUMNS = """t.execution_id, t.name, t.attempt, t.worker, t.claim, t.claimed_at,
                   t.lease_until, e.workflow_hash, e.workflow_name, t.attempt_base"""

# The claims held on the given attempts (read only: the takeover itself is an outcome
# commit, fenced by the claim and re-checking the lease).
_HELD = f"""
    SELECT {_HELD_COLUMNS}
    FROM unnest($1::uuid[], $2::text[], $3::int[]) AS c(eid, name, attempt)
    JOIN tasks t ON t.execution_id = c.eid AND t.name = c.name AND t.attempt = c.attempt
    JOIN executions e ON e.id = t.execution_id
    WHERE t.phase = $4"""

# Served by the partial index tasks_running_lease: the phase is a literal (see base.py).
_ABANDONED = f"""
    SELECT {_HELD_COLUMNS}
    FROM tasks t JOIN executions e ON e.id = t.execution_id
    WHERE t.pool = $1 AND t.phase = {phase_literal(TaskPhase.RUNNING)} AND t.lease_until < $2
    ORDER BY t.lease_until LIMIT $3"""

# Served by the partial index tasks_running_worker: the phase is a literal (see base.py).
_RENEW = (f"UPDATE tasks SET lease_until = $2 "
          f"WHERE worker = $1 AND phase = {phase_literal(TaskPhase.RUNNING)}")

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
    ) -> list[Claimed]:
        """Move the given task attempts to ``Running`` for ``worker``; return those accepted.

        A claim is accepted only while the task is ``Ready`` at that attempt and its
        execution is not suspended: duplicates, cancelled tasks, finished attempts, attempts
        another worker runs and tasks of a suspended execution are refused, which is how a
        message delivered twice runs once (a suspended execution's Ready tasks stay Ready
        and are dispatched again when it resumes). Each accepted claim takes the
        task's next claim number (its fencing token, :attr:`Claimed.claim`) and carries a
        lease in PostgreSQL until ``now + lease``. Executions still ``Pending`` become
        ``Running``. A task ``Running`` for a worker that stopped renewing is not claimed
        here: it is taken over by committing its attempt as lost (:meth:`held_claims`).
        """
        if not refs:
            return []
        rows = await self._pool.fetch(
            _CLAIM,
            [r.execution_id for r in refs], [r.task for r in refs], [r.attempt for r in refs],
            worker, now, TaskPhase.RUNNING, now + lease, TaskPhase.READY,
            ExecutionPhase.RUNNING, ExecutionPhase.PENDING,
        )
        return [
            Claimed(TaskRef(sid(r["execution_id"]), r["name"], r["attempt"]), r["resume_from"],
                    r["started"], r["claim"], r["attempt_base"])
            for r in rows
        ]

    async def held_claims(self, refs: list[TaskRef]) -> list[HeldClaim]:
        """The claims held on ``refs`` (tasks ``Running`` at that attempt, by any worker),
        with their workers, fencing tokens and leases; refs not running are absent.

        Read only: a takeover then commits the attempt as lost, fenced by the token and
        re-checking the lease, so reading a live worker's claim here takes nothing from it.
        """
        if not refs:
            return []
        rows = await self._pool.fetch(
            _HELD,
            [r.execution_id for r in refs], [r.task for r in refs], [r.attempt for r in refs],
            TaskPhase.RUNNING,
        )
        return [_held(r) for r in rows]

    async def renew_leases(self, worker: str, *, until: datetime) -> int:
        """Extend the PostgreSQL lease of every task ``worker`` runs; return how many."""
        result = await self._pool.execute(_RENEW, worker, until)
        return int(result.split()[-1])

    async def abandoned_claims(
        self, pool: str, *, lease_before: datetime, limit: int
    ) -> list[HeldClaim]:
        """``Running`` tasks of ``pool`` whose PostgreSQL lease ran out before
        ``lease_before``, oldest lease first, at most ``limit``.

        Read only. The stream's lease takeover normally recovers such work first; this is
        for when Redis lost its pending entries. The caller commits each as a lost attempt,
        fenced by its token and re-checking the lease inside the UPDATE, so a worker that
        renewed in the meantime keeps its task.
        """
        rows = await self._pool.fetch(_ABANDONED, pool, lease_before, limit)
        return [_held(r) for r in rows]

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


def _held(row: asyncpg.Record) -> HeldClaim:
    return HeldClaim(TaskRef(sid(row["execution_id"]), row["name"], row["attempt"]),
                     row["worker"], row["claim"], row["claimed_at"], row["lease_until"],
                     row["workflow_hash"], row["workflow_name"], row["attempt_base"])
