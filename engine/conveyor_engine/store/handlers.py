"""Handler tasks and deadlines in PostgreSQL: the SQL that carries out
:mod:`conveyor_engine.handlers` (when the main tasks end, ``onFailure``/``finally`` rows are
released or skipped; when a run's deadline passes, its open main tasks are cancelled).

:func:`end_main` runs inside a batch commit's transaction; :meth:`DeadlineQueries.expire_deadlines`
is the dispatcher's sweep, one short transaction per run whose deadline passed, locking
its task rows (in name order) before its execution row, as batch commits do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

import asyncpg

from ..handlers import (
    DEADLINE_EXCEEDED,
    HANDLER_STAGES,
    MAIN,
    deadline_message,
    deadline_task_message,
    skipped_handler_message,
)
from ..phases import EXECUTION_OPEN, TASK_OPEN, ExecutionPhase, TaskPhase, sql_list
from .admission import promote
from .base import StoreBase, sid
from .records import ReadyTask, TaskRef

_TASK_OPEN = sql_list(TASK_OPEN)
_EXECUTION_OPEN = sql_list(EXECUTION_OPEN)

# The gate of the handler rows of the stages that run: a row whose count reaches zero
# becomes Ready at its next attempt, due now (as _COUNT_DOWN in outcomes.py does).
_RELEASE = """
    UPDATE tasks SET deps_open = deps_open - 1,
        phase = CASE WHEN deps_open - 1 <= 0 THEN $4 ELSE phase END,
        attempt = CASE WHEN deps_open - 1 <= 0 THEN attempt + 1 ELSE attempt END,
        due_at = CASE WHEN deps_open - 1 <= 0 THEN $3 ELSE due_at END
    WHERE execution_id = $1 AND stage = ANY($2::text[]) AND phase = $5
    RETURNING name, phase, attempt, pool, priority"""

_SKIP_STAGE = """
    UPDATE tasks SET phase = $4, message = $5, finished_at = $3
    WHERE execution_id = $1 AND stage = $2 AND phase = $6
    RETURNING name"""

_DUE = """
    SELECT id FROM executions
    WHERE pool = $1 AND deadline_at IS NOT NULL AND deadline_at <= $2 AND outcome IS NULL
      AND phase IN ('Pending', 'Running') AND NOT suspended
    ORDER BY deadline_at LIMIT $3"""


@dataclass(slots=True)
class Ended:
    """What ending the main tasks of one run changed: handler rows made ``Ready``, handler
    rows skipped (their stage does not run)."""

    ready: list[ReadyTask] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Expired:
    """A run whose deadline passed: the main tasks cancelled (``running``: those that were
    running, to interrupt), handler rows made ``Ready``, and its final phase when it
    finished now (no handlers)."""

    execution_id: str
    cancelled: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    ready: list[ReadyTask] = field(default_factory=list)
    finished: str | None = None
    admitted: list[ReadyTask] = field(default_factory=list)


async def end_main(conn: asyncpg.Connection, execution_id: str, *, run: tuple[str, ...],
                   skip: tuple[str, ...], now: datetime) -> Ended:
    """Count the gate of the ``run`` stages' handler rows down and skip the ``skip``
    stages' rows, in the caller's transaction."""
    ended = Ended()
    for stage in skip:
        rows = await conn.fetch(_SKIP_STAGE, execution_id, stage, now, TaskPhase.SKIPPED,
                                skipped_handler_message(stage), TaskPhase.PENDING)
        ended.skipped += [r["name"] for r in rows]
    if run:
        rows = await conn.fetch(_RELEASE, execution_id, list(run), now, TaskPhase.READY,
                                TaskPhase.PENDING)
        ended.ready = [ReadyTask(TaskRef(execution_id, r["name"], r["attempt"]), r["pool"],
                                 r["priority"])
                       for r in rows if r["phase"] == TaskPhase.READY]
    return ended


class DeadlineQueries(StoreBase):
    """Deadlines and what handler tasks read (see :class:`~.store.Store`)."""

    async def expire_deadlines(self, pool: str, *, now: datetime, limit: int
                               ) -> list[Expired]:
        """End the main tasks of ``pool``'s runs whose deadline passed by ``now``: every
        open main task is ``Cancelled``, the run's outcome is ``Failed`` with reason
        ``DeadlineExceeded``, and its handlers (``onFailure`` and ``finally``) are released;
        without handlers the run finishes ``Failed`` now. At most ``limit`` runs."""
        due = await self._pool.fetch(_DUE, pool, now, limit)
        expired = []
        for eid in [sid(row["id"]) for row in due]:
            done = await self._in_transaction(partial(_expire, execution_id=eid, now=now))
            if done is not None:
                expired.append(done)
        return expired

    async def handler_scope(self, execution_id: str) -> dict[str, object]:
        """``execution.phase``, ``execution.reason`` and ``execution.failedTasks`` as
        handler tasks see them: the main tasks' outcome, the run's reason, and the names
        of the main tasks that failed (with or without ``continueOn``), in name order."""
        row = await self._pool.fetchrow(
            """SELECT e.outcome, e.reason,
                      ARRAY(SELECT name FROM tasks t WHERE t.execution_id = e.id
                            AND t.stage = $2 AND t.phase = $3 ORDER BY name) AS failed
               FROM executions e WHERE e.id = $1""", execution_id, MAIN, TaskPhase.FAILED)
        if row is None:
            return {"phase": None, "reason": None, "failedTasks": []}
        return {"phase": row["outcome"], "reason": row["reason"],
                "failedTasks": list(row["failed"])}


async def _expire(conn: asyncpg.Connection, *, execution_id: str, now: datetime
                  ) -> Expired | None:
    tasks = await conn.fetch(
        """SELECT name, phase, stage FROM tasks WHERE execution_id = $1
             AND phase = ANY($2::text[]) ORDER BY name FOR UPDATE""",
        execution_id, _TASK_OPEN)
    run = await conn.fetchrow(
        """SELECT deadline_seconds, handlers_total, concurrency_key FROM executions
           WHERE id = $1 AND outcome IS NULL AND phase = ANY($2::text[])
             AND deadline_at <= $3 FOR UPDATE""", execution_id, _EXECUTION_OPEN, now)
    if run is None:
        return None
    seconds = run["deadline_seconds"]
    main = [t for t in tasks if t["stage"] == MAIN]
    expired = Expired(execution_id, [t["name"] for t in main],
                      [t["name"] for t in main if t["phase"] == TaskPhase.RUNNING])
    await conn.execute(
        """UPDATE tasks SET phase = $3, message = $4, finished_at = $5, due_at = NULL,
               timer_kind = NULL, lease_until = NULL
           WHERE execution_id = $1 AND name = ANY($2::text[])""",
        execution_id, expired.cancelled, TaskPhase.CANCELLED, deadline_task_message(seconds),
        now)
    message = deadline_message(seconds, len(main))
    if not run["handlers_total"]:
        await conn.execute(
            """UPDATE executions SET phase = $2, message = $3, reason = $4, outcome = $2,
                   outcome_message = $3, tasks_open = tasks_open - $5, finished_at = $6,
                   updated_at = $6
               WHERE id = $1""",
            execution_id, ExecutionPhase.FAILED, message, DEADLINE_EXCEEDED, len(main), now)
        expired.finished = ExecutionPhase.FAILED
        if run["concurrency_key"] is not None:
            promoted = await promote(conn, [run["concurrency_key"]], now)
            expired.admitted = promoted.ready
        return expired
    await conn.execute(
        """UPDATE executions SET outcome = $2, outcome_message = $3, reason = $4,
               tasks_open = tasks_open - $5, updated_at = $6
           WHERE id = $1""",
        execution_id, ExecutionPhase.FAILED, message, DEADLINE_EXCEEDED, len(main), now)
    ended = await end_main(conn, execution_id, run=HANDLER_STAGES, skip=(), now=now)
    expired.ready = ended.ready
    return expired
