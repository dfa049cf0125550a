"""Concurrency groups in PostgreSQL: the SQL that carries out :mod:`conveyor_engine.concurrency`.

Every function here runs inside a caller's transaction (submission, a batch commit, a
cancel, a retry) and first takes the group's transaction-level advisory lock
(``pg_advisory_xact_lock`` on a 64-bit hash of the group name), so that two submissions,
or a submission and a finish, of one group are serialised; the lock ends with the
transaction. State lives only in the ``executions`` rows (``queued``,
``concurrency_key``, ``concurrency_seq``), so operator and worker restarts lose nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from ..concurrency import LIMITED, OpenRun, promotions
from ..phases import EXECUTION_OPEN, TASK_OPEN, ExecutionPhase, TaskPhase, sql_list
from .base import phase_literal, sid
from .records import ReadyTask, TaskRef

_TASK_OPEN = sql_list(TASK_OPEN)
_EXECUTION_OPEN = sql_list(EXECUTION_OPEN)
# The phases are literals so the partial index executions_concurrency_open serves the read.
_OPEN_LITERALS = ", ".join(f"'{phase}'" for phase in _EXECUTION_OPEN)

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"

_OPEN_RUNS = f"""
    SELECT id, queued, concurrency_seq, concurrency_limit FROM executions
    WHERE concurrency_key = $1 AND phase IN ({_OPEN_LITERALS})
    ORDER BY concurrency_seq"""

# An admitted run's deadline (activeDeadlineSeconds) counts from its admission.
_ADMIT = """
    UPDATE executions SET queued = false, reason = NULL, updated_at = $2,
        deadline_at = CASE WHEN deadline_seconds IS NOT NULL
                           THEN $2::timestamptz + make_interval(secs => deadline_seconds) END
    WHERE id = ANY($1::uuid[])"""

# A queued run's tasks without dependencies wait Pending at attempt 0; admitted, they
# become Ready at attempt 1, due now (as a new run's would have).
_RELEASE_ROOTS = f"""
    UPDATE tasks SET phase = {phase_literal(TaskPhase.READY)}, attempt = attempt + 1,
        due_at = $2
    WHERE execution_id = ANY($1::uuid[]) AND phase = {phase_literal(TaskPhase.PENDING)}
      AND deps_open <= 0
    RETURNING execution_id, name, attempt, pool, priority"""

# Queued runs whose place in the queue moved: touched so a follower's resync sees them.
_TOUCH = """
    UPDATE executions SET updated_at = $2 WHERE id = ANY($1::uuid[])"""

#: Queued runs of a group whose status is refreshed when the queue moves (the rest are
#: refreshed by the operator's periodic resync).
TOUCHED_PER_MOVE = 50


@dataclass(slots=True)
class Promoted:
    """What admitting queued runs changed: ``admitted`` execution ids, their ``ready``
    tasks (to dispatch after the commit) and ``moved``: runs still queued whose place
    changed (to announce)."""

    admitted: list[str] = field(default_factory=list)
    ready: list[ReadyTask] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)


async def lock_group(conn: asyncpg.Connection, group: str) -> None:
    """Take ``group``'s advisory lock until the end of the transaction."""
    await conn.execute(_LOCK, group)


async def open_runs(conn: asyncpg.Connection, group: str) -> list[OpenRun]:
    """The open runs of ``group`` in arrival order (call under its lock)."""
    rows = await conn.fetch(_OPEN_RUNS, group)
    return [OpenRun(sid(r["id"]), r["queued"], r["concurrency_seq"] or 0,
                    r["concurrency_limit"] or 1) for r in rows]


async def promote(conn: asyncpg.Connection, groups: Iterable[str], now: datetime,
                  *, locked: Iterable[str] = ()) -> Promoted:
    """Admit the queued runs of ``groups`` that fit (:func:`~conveyor_engine.concurrency.
    promotions`), making their root tasks ``Ready``. Groups are locked in sorted order
    (``locked``: groups this transaction already holds)."""
    result = Promoted()
    held = set(locked)
    for group in sorted(set(groups)):
        if group not in held:
            await lock_group(conn, group)
        runs = await open_runs(conn, group)
        chosen = promotions(runs)
        if chosen:
            await conn.execute(_ADMIT, chosen, now)
            rows = await conn.fetch(_RELEASE_ROOTS, chosen, now)
            result.admitted += chosen
            result.ready += [ReadyTask(TaskRef(sid(r["execution_id"]), r["name"], r["attempt"]),
                                       r["pool"], r["priority"]) for r in rows]
            waiting = [r.execution_id for r in runs
                       if r.queued and r.execution_id not in chosen][:TOUCHED_PER_MOVE]
            if waiting:
                await conn.execute(_TOUCH, waiting, now)
                result.moved += waiting
    return result


async def cancel_open(conn: asyncpg.Connection, execution_id: str, *, message: str,
                      now: datetime, reason: str | None = None) -> list[str] | None:
    """Cancel an open execution in the caller's transaction: it and every open task become
    ``Cancelled`` with ``message`` (the execution's ``reason`` set to ``reason``).

    Returns the names of the tasks cancelled, or None when it is unknown or already final.
    Locks its open task rows (in name order) before its row, as batch commits do.
    """
    await conn.execute(
        """SELECT 1 FROM tasks WHERE execution_id = $1 AND phase = ANY($2::text[])
           ORDER BY name FOR UPDATE""",
        execution_id, _TASK_OPEN,
    )
    updated = await conn.fetchval(
        """UPDATE executions SET phase = $4, message = $2, tasks_open = 0, queued = false,
               reason = $6, finished_at = $3, updated_at = $3
           WHERE id = $1 AND phase = ANY($5::text[]) RETURNING id""",
        execution_id, message, now, ExecutionPhase.CANCELLED, _EXECUTION_OPEN, reason,
    )
    if updated is None:
        return None
    rows = await conn.fetch(
        """UPDATE tasks SET phase = $4, message = $2, finished_at = $3,
               due_at = NULL, timer_kind = NULL
           WHERE execution_id = $1 AND phase = ANY($5::text[])
           RETURNING name""",
        execution_id, message, now, TaskPhase.CANCELLED, _TASK_OPEN,
    )
    return [r["name"] for r in rows]


async def requeue(conn: asyncpg.Connection, execution_id: str, group: str, now: datetime
                  ) -> Promoted:
    """Put a re-opened run (a retry from the failed step) of ``group`` at the back of its
    group's queue, its ``Ready`` tasks held ``Pending`` again, then admit what fits (it
    too, when its group has room and nobody waits before it)."""
    await lock_group(conn, group)
    await conn.execute(
        """UPDATE executions SET queued = true, reason = $3,
               concurrency_seq = nextval('executions_concurrency_seq')
           WHERE id = $1 AND concurrency_key = $2""",
        execution_id, group, LIMITED)
    await conn.execute(
        f"""UPDATE tasks SET phase = {phase_literal(TaskPhase.PENDING)},
               attempt = attempt - 1, due_at = NULL
           WHERE execution_id = $1 AND phase = {phase_literal(TaskPhase.READY)}""",
        execution_id)
    return await promote(conn, [group], now, locked=[group])


async def queue_position(conn: asyncpg.Connection, group: str, seq: int
                         ) -> tuple[int, int, int]:
    """``(admitted, ahead, suspended)`` for a queued run of ``group`` at ``seq``: open
    admitted runs of the group, runs queued before it, and how many of the admitted are
    suspended (they hold their place until resumed or cancelled)."""
    row = await conn.fetchrow(
        f"""SELECT count(*) FILTER (WHERE NOT queued) AS admitted,
                  count(*) FILTER (WHERE queued AND concurrency_seq < $2) AS ahead,
                  count(*) FILTER (WHERE NOT queued AND suspended) AS suspended
           FROM executions WHERE concurrency_key = $1 AND phase IN ({_OPEN_LITERALS})""",
        group, seq)
    return row["admitted"], row["ahead"], row["suspended"]
