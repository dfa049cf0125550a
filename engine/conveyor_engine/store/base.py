"""What every part of the store shares: the pool, transactions with retry, and one SQL shape.

Each concern of the store (:mod:`.executions`, :mod:`.claims`, :mod:`.outcomes`,
:mod:`.timers`) is a mixin on :class:`StoreBase`; :class:`~.store.Store` combines them, the
way redis-py builds its client from command mixins. Callers only ever see ``Store``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from ..phases import TaskPhase
from .records import ReadyTask, TaskRef

#: Deadlocks between two batch commits touching the same dependents are resolved by
#: PostgreSQL aborting one of them; the batch is then simply committed again.
_RETRYABLE = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)
_MAX_TX_RETRIES = 10

T = TypeVar("T")


def sid(value: Any) -> str:
    """An id read from PostgreSQL (a ``uuid.UUID``) as the ``str`` the engine passes around."""
    return str(value)


def phase_literal(phase: TaskPhase) -> str:
    """``phase`` as a quoted SQL literal, for a predicate a partial index is defined on.

    The task indexes ``tasks_waiting``, ``tasks_ready`` and ``tasks_running_*`` hold only
    rows of one phase (``WHERE phase = 'Waiting'``). PostgreSQL uses such an index only when
    it can prove the query's condition implies the index's, which a ``$n`` parameter never
    does in a generic plan (PostgreSQL manual, "Partial Indexes"), and asyncpg prepares every
    statement. So these predicates name the phase in the SQL text, taken from the enum;
    every other phase in the store's SQL is a parameter.
    """
    return f"'{TaskPhase(phase).value}'"


def pick_and_update_sql(*, phase: TaskPhase, column: str, inclusive: bool, set_sql: str,
                        where: str = "TRUE") -> str:
    """The shape of the dispatcher's batch queries: pick, lock and change tasks of a pool.

    Picks at most ``$4`` tasks of pool ``$1`` in ``phase`` whose ``column`` is before the
    cutoff ``$3`` (or equal to it when ``inclusive``), oldest first, skipping rows another
    transaction holds (``FOR UPDATE SKIP LOCKED``, so several dispatchers never wait on
    each other) and meeting the extra condition ``where`` (SQL on ``tasks``); applies
    ``set_sql`` (which may use ``$2``, the current time, and ``$5``, the new phase) and
    returns ``execution_id, name, attempt, priority`` of each.
    """
    compare = "<=" if inclusive else "<"
    return f"""UPDATE tasks t SET phase = $5, {set_sql}
               FROM (SELECT execution_id, name FROM tasks
                     WHERE pool = $1 AND phase = {phase_literal(phase)}
                       AND {column} {compare} $3 AND {where}
                     ORDER BY {column} LIMIT $4 FOR UPDATE SKIP LOCKED) d
               WHERE t.execution_id = d.execution_id AND t.name = d.name
               RETURNING t.execution_id, t.name, t.attempt, t.priority"""


def ready_tasks(rows: list[asyncpg.Record], pool: str) -> list[ReadyTask]:
    """Ready tasks of ``pool`` from rows with ``execution_id``, ``name``, ``attempt`` and
    ``priority``."""
    return [ReadyTask(TaskRef(sid(r["execution_id"]), r["name"], r["attempt"]), pool,
                      r["priority"])
            for r in rows]


class StoreBase:
    """The connection pool and the helpers every store mixin uses."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def _in_transaction(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run ``work(conn)`` in a transaction, retrying it on deadlock or serialization error.

        Retries wait a short random time that grows with each try, so two transactions that
        collided do not collide again in lockstep. The last error is raised after
        ``_MAX_TX_RETRIES`` tries.
        """
        for attempt in range(_MAX_TX_RETRIES):
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    return await work(conn)
            except _RETRYABLE:
                if attempt == _MAX_TX_RETRIES - 1:
                    raise
                await asyncio.sleep(random.uniform(0.005, 0.02) * (attempt + 1))
        raise AssertionError("unreachable")

    async def _pick_and_update(
        self, sql: str, pool: str, *, now: Any, cutoff: Any, limit: int, to: TaskPhase,
    ) -> list[ReadyTask]:
        """Run a :func:`pick_and_update_sql` statement; the tasks it moved, as ready tasks."""
        rows = await self._pool.fetch(sql, pool, now, cutoff, limit, to)
        return ready_tasks(rows, pool)
