"""Executions: workflow versions, creating executions, reading their state."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from ..phases import EXECUTION_OPEN, TASK_OPEN, ExecutionPhase, TaskPhase, sql_list
from .base import StoreBase, sid
from .decisions import initial_task
from .records import (
    AttemptState,
    ExecutionHeader,
    ExecutionState,
    ReadyTask,
    TaskRef,
    TaskState,
)

_SAVE_WORKFLOW = """INSERT INTO workflow_versions (content_hash, name, spec)
                    VALUES ($1, $2, $3::text::jsonb)
                    ON CONFLICT (content_hash) DO NOTHING"""

_TASK_OPEN = sql_list(TASK_OPEN)
_EXECUTION_OPEN = sql_list(EXECUTION_OPEN)


class ExecutionQueries(StoreBase):
    """Workflow versions and executions as a whole (see :class:`~.store.Store`)."""

    async def save_workflow(self, content_hash: str, name: str, spec_json: str) -> None:
        """Record a workflow version (no-op when the content hash is already stored).

        ``spec_json`` is the canonical JSON text (see ``CompiledWorkflow.to_json``).
        """
        await self._pool.execute(_SAVE_WORKFLOW, content_hash, name, spec_json)

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
    ) -> tuple[str, bool, list[ReadyTask]]:
        """Create an execution and its task rows in one transaction.

        ``spec_json`` is the workflow's canonical JSON (stored once per content hash).
        ``tasks`` are ``(name, type, number of dependencies, pool)``; tasks without
        dependencies start ``Ready`` (attempt 1); ``pool`` is the execution's default pool.
        Returns ``(execution id, created, ready tasks)``. When ``idempotency_key`` names an
        existing execution nothing is written and that execution's id is returned with
        ``created=False`` (Stripe-style idempotency keys). A ``suspended`` execution starts
        no task until it is resumed (:meth:`LifecycleQueries.set_suspended`).
        """
        execution_id = str(uuid.uuid4())

        async def work(conn: asyncpg.Connection) -> tuple[str, bool, list[ReadyTask]]:
            await conn.execute(_SAVE_WORKFLOW, workflow_hash, workflow_name, spec_json)
            created = await conn.fetchval(
                """INSERT INTO executions (id, idempotency_key, workflow_name, workflow_hash,
                       pool, inputs, phase, tasks_total, tasks_open, created_at, updated_at,
                       suspended)
                   VALUES ($1, $2, $3, $4, $5, $6, $9, $7, $7, $8, $8, $10)
                   ON CONFLICT (idempotency_key) DO NOTHING RETURNING id""",
                execution_id, idempotency_key, workflow_name, workflow_hash, pool, inputs,
                len(tasks), now, ExecutionPhase.PENDING, suspended,
            )
            if created is None:
                existing = await conn.fetchval(
                    "SELECT id FROM executions WHERE idempotency_key = $1", idempotency_key
                )
                return sid(existing), False, []
            rows = [(name, type_, deps, task_pool, *initial_task(deps, now))
                    for name, type_, deps, task_pool in tasks]
            await conn.copy_records_to_table(
                "tasks",
                columns=["execution_id", "name", "type", "pool", "phase", "deps_open",
                         "attempt", "due_at"],
                records=[(created, name, type_, task_pool, phase, deps, attempt, due_at)
                         for name, type_, deps, task_pool, phase, attempt, due_at in rows],
            )
            ready = [
                ReadyTask(TaskRef(execution_id, name, attempt), task_pool)
                for name, _, _, task_pool, phase, attempt, _ in rows
                if phase == TaskPhase.READY
            ]
            return execution_id, True, ready

        return await self._in_transaction(work)

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
            """SELECT id, workflow_name, workflow_hash, pool, inputs, phase
               FROM executions WHERE id = ANY($1::uuid[])""",
            execution_ids,
        )
        return {
            sid(r["id"]): ExecutionHeader(
                sid(r["id"]), r["workflow_name"], r["workflow_hash"], r["pool"], r["inputs"],
                r["phase"],
            )
            for r in rows
        }

    async def task_outputs(
        self, execution_id: str, names: list[str]
    ) -> dict[str, tuple[str, dict[str, Any] | None]]:
        """``{task name: (phase, outputs)}`` for the named tasks of one execution."""
        rows = await self._pool.fetch(
            """SELECT name, phase, outputs FROM tasks
               WHERE execution_id = $1 AND name = ANY($2::text[])""",
            execution_id, names,
        )
        return {r["name"]: (r["phase"], r["outputs"]) for r in rows}

    async def get_execution(self, execution_id: str) -> ExecutionState | None:
        """The execution with all its tasks (ordered by name), or None when unknown."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM executions WHERE id = $1", execution_id)
            if row is None:
                return None
            tasks = await conn.fetch(
                """SELECT name, type, phase, attempt, outputs, error, message, started_at,
                          finished_at, due_at, reason
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
            message=row["message"],
            tasks_total=row["tasks_total"],
            tasks_open=row["tasks_open"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            updated_at=row["updated_at"],
            tasks=tuple(TaskState(**dict(t)) for t in tasks),
            suspended=row["suspended"],
            retries=row["retries"],
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
