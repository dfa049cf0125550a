"""An execution's lifecycle after submission: cancel, suspend and resume, retry from the
failed step. What a retry runs again is decided by :func:`.decisions.retry_plan`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from ..phases import (
    EXECUTION_OPEN,
    EXECUTION_RETRYABLE,
    TASK_OPEN,
    ExecutionPhase,
    TaskPhase,
    sql_list,
)
from .admission import Promoted, cancel_open, lock_group, promote, requeue
from .base import StoreBase, ready_tasks, sid
from .decisions import retry_plan
from .records import ReadyTask, TaskRef

_TASK_OPEN = sql_list(TASK_OPEN)
_EXECUTION_OPEN = sql_list(EXECUTION_OPEN)
_EXECUTION_RETRYABLE = sql_list(EXECUTION_RETRYABLE)

# Task rows are locked first, in name order, then the execution row: the order batch
# commits lock them in, so a lifecycle change during a storm of commits cannot deadlock.
_LOCK_TASKS = "SELECT name, phase FROM tasks WHERE execution_id = $1 ORDER BY name FOR UPDATE"

# A retried task starts its new round clean; its attempts so far stay in `attempts`, and
# attempt_base remembers them so its retry policy counts only the new round's attempts.
_RESET_TASKS = """
    UPDATE tasks t
    SET phase = r.phase, deps_open = r.deps_open, attempt_base = t.attempt,
        attempt = CASE WHEN r.phase = $5::text THEN t.attempt + 1 ELSE t.attempt END,
        due_at = CASE WHEN r.phase = $5::text THEN $6::timestamptz END,
        outputs = NULL, error = NULL, message = NULL, reason = NULL, worker = NULL,
        timer_kind = NULL, resume_from = NULL, lease_until = NULL, started_at = NULL,
        finished_at = NULL
    FROM unnest($2::text[], $3::text[], $4::int[]) AS r(name, phase, deps_open)
    WHERE t.execution_id = $1 AND t.name = r.name
    RETURNING t.execution_id, t.name, t.phase, t.attempt, t.pool, t.priority"""

# A retried run's main tasks start a new round: no outcome yet, a fresh deadline.
_REOPEN = """
    UPDATE executions SET phase = $2, message = NULL, finished_at = NULL, tasks_open = $3,
        tasks_failed = 0, retries = retries + 1, suspended = $4, updated_at = $5,
        tasks_continued = 0, handlers_failed = 0, outcome = NULL, outcome_message = NULL,
        reason = NULL,
        deadline_at = CASE WHEN deadline_seconds IS NOT NULL
                           THEN $5::timestamptz + make_interval(secs => deadline_seconds) END
    WHERE id = $1 RETURNING retries"""


@dataclass(frozen=True, slots=True)
class Retried:
    """A retry from the failed step that was applied: the execution's retry number
    (1 for its first retry), the tasks that run again, and those ``Ready`` now."""

    retries: int
    tasks: tuple[str, ...]
    ready: tuple[ReadyTask, ...]


class LifecycleQueries(StoreBase):
    """Cancel, suspend/resume and retry (see :class:`~.store.Store`)."""

    async def cancel_execution(
        self, execution_id: str, *, reason: str, now: datetime
    ) -> list[str] | None:
        """Cancel an execution that has not finished: it and every open task become ``Cancelled``.

        Returns the names of the tasks cancelled (possibly empty), or None when the
        execution is unknown or already final (cancel is idempotent). History stays.
        When it belongs to a concurrency group, the next queued runs of the group are
        admitted in the same transaction; :meth:`cancel_and_admit` returns them too.
        """
        cancelled, _ = await self.cancel_and_admit(execution_id, reason=reason, now=now)
        return cancelled

    async def cancel_and_admit(
        self, execution_id: str, *, reason: str, now: datetime
    ) -> tuple[list[str] | None, Promoted]:
        """:meth:`cancel_execution`, and what its group's queue admitted (to dispatch)."""

        async def work(conn: asyncpg.Connection) -> tuple[list[str] | None, Promoted]:
            group = await conn.fetchval(
                "SELECT concurrency_key FROM executions WHERE id = $1", execution_id)
            if group is not None:  # the group's lock first, as a submission takes it
                await lock_group(conn, group)
            cancelled = await cancel_open(conn, execution_id, message=reason, now=now)
            if cancelled is None or group is None:
                return cancelled, Promoted()
            return cancelled, await promote(conn, [group], now, locked=[group])

        return await self._in_transaction(work)

    async def set_suspended(
        self, execution_id: str, suspended: bool, *, now: datetime
    ) -> list[ReadyTask] | None:
        """Suspend (``suspended=True``) or resume an execution.

        While suspended no task of it is claimed (:meth:`ClaimQueries.claim`) or
        re-dispatched as lost; tasks already running finish, and tasks they release stay
        ``Ready``; its ``activeDeadlineSeconds`` clock is stopped and starts again from zero
        on resume (batch/v1 Job's rule). Returns None when nothing changed (unknown, or
        already in that state: applying the same spec twice is one action); otherwise the
        tasks to dispatch now: on resume every ``Ready`` task of an open execution (due
        now), on suspend none.
        """

        async def work(conn: asyncpg.Connection) -> list[ReadyTask] | None:
            # The deadline follows batch/v1 Job's: its clock stops while the run is
            # suspended and starts again, from zero, when it is resumed (the dispatcher's
            # sweep passes suspended runs by), unless the main tasks already ended.
            phase = await conn.fetchval(
                """UPDATE executions SET suspended = $2, updated_at = $3,
                       deadline_at = CASE
                           WHEN deadline_seconds IS NULL OR outcome IS NOT NULL OR queued
                               THEN deadline_at
                           WHEN $2 THEN NULL
                           ELSE $3::timestamptz + make_interval(secs => deadline_seconds) END
                   WHERE id = $1 AND suspended <> $2 RETURNING phase""",
                execution_id, suspended, now,
            )
            if phase is None:
                return None
            if suspended or phase not in EXECUTION_OPEN:
                return []
            rows = await conn.fetch(
                """UPDATE tasks SET due_at = $2 WHERE execution_id = $1 AND phase = $3
                   RETURNING execution_id, name, attempt, pool, priority""",
                execution_id, now, TaskPhase.READY,
            )
            return [ReadyTask(TaskRef(sid(r["execution_id"]), r["name"], r["attempt"]),
                              r["pool"], r["priority"]) for r in rows]

        return await self._in_transaction(work)

    async def retry_execution(
        self, execution_id: str, *, depends_on: Mapping[str, Sequence[str]], now: datetime,
        suspended: bool = False, handlers: frozenset[str] = frozenset(),
    ) -> Retried | None:
        """Retry a ``Failed`` or ``Cancelled`` execution from its failed step, in place.

        Tasks that succeeded keep their outputs; every other task runs again
        (:func:`.decisions.retry_plan`, given each task's direct dependencies
        ``depends_on``), at the next attempt number, so every earlier attempt keeps its
        row. The execution is ``Running`` again with the same id (``suspended`` as given).
        Returns None when the execution is unknown, not ``Failed``/``Cancelled``, or has
        nothing to run again; the caller dispatches :attr:`Retried.ready`.
        """

        async def work(conn: asyncpg.Connection) -> Retried | None:
            phases = {r["name"]: r["phase"] for r in await conn.fetch(_LOCK_TASKS, execution_id)}
            phase = await conn.fetchval(
                "SELECT phase FROM executions WHERE id = $1 FOR UPDATE", execution_id)
            if phase not in EXECUTION_RETRYABLE:
                return None
            plan = retry_plan(phases, depends_on, handlers)
            if not plan:
                return None
            rows = await conn.fetch(
                _RESET_TASKS, execution_id, [r.name for r in plan], [r.phase for r in plan],
                [r.deps_open for r in plan], TaskPhase.READY, now)
            retries = await conn.fetchval(_REOPEN, execution_id, ExecutionPhase.RUNNING,
                                          len(plan), suspended, now)
            group = await conn.fetchval(
                "SELECT concurrency_key FROM executions WHERE id = $1", execution_id)
            if group is not None:
                # A retried run of a concurrency group queues again behind the runs
                # already waiting, and is admitted when it fits.
                promoted = await requeue(conn, execution_id, group, now)
                return Retried(retries, tuple(r.name for r in plan), tuple(promoted.ready))
            ready = [r for r in rows if r["phase"] == TaskPhase.READY]
            return Retried(retries, tuple(r.name for r in plan),
                           tuple(t for r in ready for t in ready_tasks([r], r["pool"])))

        return await self._in_transaction(work)
