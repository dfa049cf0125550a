"""Executions: workflow versions, creating executions, reading their state."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg

from ..concurrency import (
    FORBIDDEN,
    LIMITED,
    REPLACED,
    Concurrency,
    admit,
    replaced_message,
    waiting_message,
)
from ..phases import EXECUTION_OPEN, TASK_OPEN, ExecutionPhase, TaskPhase, sql_list
from .admission import cancel_open, lock_group, open_runs, promote, queue_position
from .base import StoreBase, sid
from .decisions import initial_task
from .records import (
    AttemptState,
    Created,
    ExecutionHeader,
    ExecutionState,
    ReadyTask,
    TaskRef,
    TaskState,
)

_SAVE_WORKFLOW = """INSERT INTO workflow_versions (content_hash, name, spec)
                    VALUES ($1, $2, $3::text::jsonb)
                    ON CONFLICT (content_hash) DO NOTHING"""

# Handler rows and the deadline of a new run: a run admitted now (not queued in a
# concurrency group, $5 false) gets its deadline now; a queued one when it is admitted.
_HANDLERS_AND_DEADLINE = """
    UPDATE executions SET handlers_total = $2, deadline_seconds = $3,
        deadline_at = CASE WHEN $3::int IS NOT NULL AND NOT $5::boolean
                           THEN $4::timestamptz + make_interval(secs => $3::int) END
    WHERE id = $1"""

_TASK_OPEN = sql_list(TASK_OPEN)
_EXECUTION_OPEN = sql_list(EXECUTION_OPEN)


class ExecutionQueries(StoreBase):
    """Workflow versions and executions as a whole (see :class:`~.store.Store`)."""

    async def save_workflow(self, content_hash: str, name: str, spec_json: str) -> None:
        """Record a workflow version registered now (``registered_at``: the version a
        child run of ``name`` resolves to is the one registered last).

        ``spec_json`` is the canonical JSON text (see ``CompiledWorkflow.to_json``).
        """
        await self._pool.execute(
            """INSERT INTO workflow_versions (content_hash, name, spec)
               VALUES ($1, $2, $3::text::jsonb)
               ON CONFLICT (content_hash) DO UPDATE SET registered_at = now()""",
            content_hash, name, spec_json)

    async def load_workflow(self, content_hash: str) -> tuple[str, dict[str, Any]] | None:
        """Return ``(name, spec)`` of a stored workflow version, or None."""
        row = await self._pool.fetchrow(
            "SELECT name, spec FROM workflow_versions WHERE content_hash = $1", content_hash
        )
        return (row["name"], row["spec"]) if row else None

    # -- submission ----------------------------------------------------------------------

    async def create_execution(
        self,
        *,
        workflow_name: str,
        workflow_hash: str,
        spec_json: str,
        pool: str,
        inputs: dict[str, Any],
        tasks: list[tuple[str, str, int, str]],
        idempotency_key: str | None,
        now: datetime,
        suspended: bool = False,
        concurrency: Concurrency | None = None,
        priority: int = 0,
        stages: Mapping[str, str] | None = None,
        deadline_seconds: int | None = None,
        parent: tuple[str, str, int] | None = None,
        depth: int = 0,
        scheduled_time: datetime | None = None,
    ) -> Created:
        """Create an execution and its task rows in one transaction.

        ``spec_json`` is the workflow's canonical JSON (stored once per content hash).
        ``tasks`` are ``(name, type, number of dependencies, pool)``; tasks without
        dependencies start ``Ready`` (attempt 1); ``pool`` is the execution's default pool.
        When ``idempotency_key`` names an existing execution nothing is written and that
        execution's id is returned with ``created=False`` (Stripe-style idempotency keys).
        A ``suspended`` execution starts no task until it is resumed
        (:meth:`LifecycleQueries.set_suspended`). ``priority`` is stored with it and its
        tasks (their dispatch band).

        With ``concurrency`` the run joins that group under its advisory lock
        (:mod:`conveyor_engine.concurrency`): it queues (its roots held ``Pending``) and
        is admitted at once if it fits; or fails at once (``Forbid``, no task runs: each
        is ``Cancelled``); or first cancels the oldest open runs (``Replace``).

        ``stages`` names the handler tasks' stages (``onFailure``, ``finally``; the others
        are ``main``); their ``tasks`` entries count the gate in their dependencies.
        ``deadline_seconds`` (``activeDeadlineSeconds``) sets the run's deadline that long
        after it is admitted (:mod:`conveyor_engine.handlers`).
        ``parent`` is ``(execution id, task, attempt)`` of the ``workflow`` task that
        starts this run as its child, ``depth`` its depth (0: top level);
        ``scheduled_time`` the Schedule tick that created it (``execution.scheduledTime``).
        """
        stages = stages or {}
        execution_id = str(uuid.uuid4())

        async def work(conn: asyncpg.Connection) -> Created:
            await conn.execute(_SAVE_WORKFLOW, workflow_hash, workflow_name, spec_json)
            group = concurrency.group if concurrency is not None else None
            if concurrency is not None:
                await lock_group(conn, concurrency.group)
                decision = admit(concurrency, await open_runs(conn, concurrency.group))
            created = await conn.fetchval(
                """INSERT INTO executions (id, idempotency_key, workflow_name, workflow_hash,
                       pool, inputs, phase, tasks_total, tasks_open, created_at, updated_at,
                       suspended, priority, concurrency_key, concurrency_limit,
                       concurrency_seq, queued, reason, parent_execution_id, parent_task,
                       parent_attempt, depth, scheduled_time)
                   VALUES ($1, $2, $3, $4, $5, $6, $9, $7, $7, $8, $8, $10, $11, $12, $13,
                           CASE WHEN $12::text IS NOT NULL
                                THEN nextval('executions_concurrency_seq') END,
                           $12::text IS NOT NULL, $14, $15, $16, $17, $18, $19)
                   ON CONFLICT (idempotency_key) DO NOTHING RETURNING id""",
                execution_id, idempotency_key, workflow_name, workflow_hash, pool, inputs,
                len(tasks), now, ExecutionPhase.PENDING, suspended, priority, group,
                concurrency.limit if concurrency is not None else None,
                LIMITED if concurrency is not None else None,
                *(parent if parent is not None else (None, None, None)), depth,
                scheduled_time,
            )
            if created is None:
                existing = await conn.fetchval(
                    "SELECT id FROM executions WHERE idempotency_key = $1", idempotency_key
                )
                return Created(sid(existing), False)
            if stages or deadline_seconds is not None:
                await conn.execute(_HANDLERS_AND_DEADLINE, created, len(stages),
                                   deadline_seconds, now, concurrency is not None)
            if concurrency is None:
                rows = [(name, type_, deps, task_pool, *initial_task(deps, now))
                        for name, type_, deps, task_pool in tasks]
                await _insert_tasks(conn, created, rows, priority, stages=stages)
                return Created(execution_id, True, [
                    ReadyTask(TaskRef(execution_id, name, attempt), task_pool, priority)
                    for name, _, _, task_pool, phase, attempt, _ in rows
                    if phase == TaskPhase.READY])
            if decision.forbidden is not None:
                await _insert_tasks(conn, created, [
                    (name, type_, deps, task_pool, TaskPhase.CANCELLED, 0, None)
                    for name, type_, deps, task_pool in tasks], priority,
                    message=f"not started: {decision.forbidden}", now=now, stages=stages)
                await conn.execute(
                    """UPDATE executions SET phase = $2, message = $3, reason = $4,
                           queued = false, tasks_open = 0, finished_at = $5
                       WHERE id = $1""",
                    execution_id, ExecutionPhase.FAILED, decision.forbidden, FORBIDDEN, now)
                return Created(execution_id, True, forbidden=decision.forbidden)
            cancelled = {}
            for victim in decision.cancel:
                names = await cancel_open(conn, victim, message=replaced_message(concurrency.group),
                                          now=now, reason=REPLACED)
                if names is not None:
                    cancelled[victim] = names
            # Queued first: every task waits Pending (attempt 0) until admitted.
            await _insert_tasks(conn, created, [
                (name, type_, deps, task_pool, TaskPhase.PENDING, 0, None)
                for name, type_, deps, task_pool in tasks], priority, stages=stages)
            promoted = await promote(conn, [concurrency.group], now,
                                     locked=[concurrency.group])
            return Created(execution_id, True, promoted.ready,
                           queued=execution_id not in promoted.admitted, cancelled=cancelled)

        return await self._in_transaction(work)

    async def queued_message(self, execution_id: str) -> str | None:
        """Why a queued run waits (:func:`~conveyor_engine.concurrency.waiting_message`),
        or None when it is not queued."""
        async with self._pool.acquire() as conn:
            return await _queued_message(conn, execution_id)

    async def waiting_counts(self) -> dict[tuple[str, str], int]:
        """Open executions that wait, by ``(reason, pool)``: ``ConcurrencyLimit`` (queued
        in their concurrency group) and ``Suspended``. A queued and suspended run counts
        as ``ConcurrencyLimit`` (it waits for its group first)."""
        rows = await self._pool.fetch(
            f"""SELECT CASE WHEN queued THEN $1 ELSE $2 END AS reason, pool, count(*) AS n
                FROM executions
                WHERE phase IN ({", ".join(f"'{p}'" for p in _EXECUTION_OPEN)})
                  AND (queued OR suspended)
                GROUP BY 1, 2""", LIMITED, "Suspended")
        return {(r["reason"], r["pool"]): r["n"] for r in rows}

    async def find_execution_by_key(self, idempotency_key: str) -> str | None:
        """The id of the execution submitted with ``idempotency_key``, or None."""
        found = await self._pool.fetchval(
            "SELECT id FROM executions WHERE idempotency_key = $1", idempotency_key
        )
        return sid(found) if found else None

    # -- reading ---------------------------------------------------------------------------

    async def execution_headers(self, execution_ids: list[str]) -> dict[str, ExecutionHeader]:
        """Headers of the given executions by id (missing ids are absent from the result)."""
        rows = await self._pool.fetch(
            """SELECT id, workflow_name, workflow_hash, pool, inputs, phase, created_at,
                      scheduled_time
               FROM executions WHERE id = ANY($1::uuid[])""",
            execution_ids,
        )
        return {
            sid(r["id"]): ExecutionHeader(
                sid(r["id"]), r["workflow_name"], r["workflow_hash"], r["pool"], r["inputs"],
                r["phase"], r["created_at"], r["scheduled_time"],
            )
            for r in rows
        }

    async def task_outputs(
        self, execution_id: str, names: list[str]
    ) -> dict[str, tuple[str, dict[str, Any] | None, str | None]]:
        """``{task name: (phase, outputs, error)}`` for the named tasks of one execution
        (the Redis cache holds ``(phase, outputs)`` of tasks that succeeded or were
        skipped only, so a failed task's error is always read here)."""
        rows = await self._pool.fetch(
            """SELECT name, phase, outputs, error FROM tasks
               WHERE execution_id = $1 AND name = ANY($2::text[])""",
            execution_id, names,
        )
        return {r["name"]: (r["phase"], r["outputs"], r["error"]) for r in rows}

    async def get_execution(self, execution_id: str) -> ExecutionState | None:
        """The execution with all its tasks (ordered by name), or None when unknown."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM executions WHERE id = $1", execution_id)
            if row is None:
                return None
            waiting = (await _queued_message(conn, execution_id)
                       if row["queued"] and row["phase"] in EXECUTION_OPEN else None)
            tasks = await conn.fetch(
                """SELECT name, type, phase, attempt, outputs, error, message, started_at,
                          finished_at, due_at, reason, stage
                   FROM tasks WHERE execution_id = $1 ORDER BY name""",
                execution_id,
            )
        return ExecutionState(
            execution_id=sid(row["id"]),
            idempotency_key=row["idempotency_key"],
            workflow_name=row["workflow_name"],
            workflow_hash=row["workflow_hash"],
            pool=row["pool"],
            inputs=row["inputs"],
            phase=row["phase"],
            message=waiting or row["message"],
            tasks_total=row["tasks_total"],
            tasks_open=row["tasks_open"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            updated_at=row["updated_at"],
            tasks=tuple(TaskState(**dict(t)) for t in tasks),
            suspended=row["suspended"],
            retries=row["retries"],
            priority=row["priority"],
            concurrency_group=row["concurrency_key"],
            queued=row["queued"] and row["phase"] in EXECUTION_OPEN,
            reason=row["reason"],
            deadline_at=row["deadline_at"],
            outputs=row["outputs"],
            parent=(None if row["parent_execution_id"] is None else
                    (sid(row["parent_execution_id"]), row["parent_task"],
                     row["parent_attempt"])),
            depth=row["depth"],
            scheduled_time=row["scheduled_time"],
        )

    async def get_attempts(self, execution_id: str) -> list[AttemptState]:
        """Every recorded attempt of an execution, by task then attempt number."""
        rows = await self._pool.fetch(
            """SELECT task_name AS task, attempt, outcome, outputs, error, worker, started_at,
                      finished_at, reason
               FROM attempts WHERE execution_id = $1 ORDER BY task_name, attempt""",
            execution_id,
        )
        return [AttemptState(**dict(r)) for r in rows]

    async def executions_updated_since(self, since: datetime, limit: int = 1000) -> list[str]:
        """Ids of executions changed after ``since`` (for resyncing missed pub/sub events)."""
        rows = await self._pool.fetch(
            """SELECT id FROM executions WHERE updated_at > $1 ORDER BY updated_at LIMIT $2""",
            since, limit,
        )
        return [sid(r["id"]) for r in rows]


async def _insert_tasks(conn: asyncpg.Connection, execution_id: Any, rows: list[tuple],
                        priority: int, *, message: str | None = None,
                        now: datetime | None = None,
                        stages: Mapping[str, str] | None = None) -> None:
    """Copy task rows ``(name, type, deps, pool, phase, attempt, due_at)`` in; ``message``
    and ``finished_at = now`` on each when given (tasks that will never run); ``stages``
    the handler tasks' stages (others are ``main``)."""
    stages = stages or {}
    columns = ["execution_id", "name", "type", "pool", "phase", "deps_open", "attempt",
               "due_at", "priority", "stage"]
    extra: tuple = ()
    if message is not None:
        columns += ["message", "finished_at"]
        extra = (message, now)
    await conn.copy_records_to_table(
        "tasks", columns=columns,
        records=[(execution_id, name, type_, task_pool, phase, deps, attempt, due_at,
                  priority, stages.get(name, "main"), *extra)
                 for name, type_, deps, task_pool, phase, attempt, due_at in rows],
    )


async def _queued_message(conn: asyncpg.Connection, execution_id: str) -> str | None:
    row = await conn.fetchrow(
        """SELECT concurrency_key, concurrency_seq, concurrency_limit FROM executions
           WHERE id = $1 AND queued""", execution_id)
    if row is None or row["concurrency_key"] is None:
        return None
    admitted, ahead, suspended = await queue_position(conn, row["concurrency_key"],
                                                      row["concurrency_seq"])
    return waiting_message(row["concurrency_key"], admitted=admitted, ahead=ahead,
                           limit=row["concurrency_limit"] or 1, suspended=suspended)
