"""Sub-workflows and workflow outputs: the SQL of child executions (linked to a parent
task's attempt), the version a workflow name resolves to, and a run's stored outputs.

The wake-up of a parent task when its child finishes is not here: it is a trigger in the
transaction that finishes the child (migration ``0009_subworkflows.sql``), so every path
that finishes an execution (the last task's commit, a cancel, a refusal at submit) wakes
it without the caller knowing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..phases import EXECUTION_OPEN, ExecutionPhase
from .base import StoreBase, sid

# The chain of workflow names from the root run down to $1, and $1's depth.
_LINEAGE = """
    WITH RECURSIVE up(id, parent, workflow_name, depth, n) AS (
        SELECT id, parent_execution_id, workflow_name, depth, 0 FROM executions WHERE id = $1
        UNION ALL
        SELECT e.id, e.parent_execution_id, e.workflow_name, e.depth, up.n + 1
        FROM executions e JOIN up ON e.id = up.parent WHERE up.n < 1000
    )
    SELECT workflow_name, depth FROM up ORDER BY n DESC"""

# Every open descendant of $1, nearest first.
_OPEN_DESCENDANTS = """
    WITH RECURSIVE down(id, n) AS (
        SELECT id, 1 FROM executions WHERE parent_execution_id = $1
        UNION ALL
        SELECT e.id, down.n + 1 FROM executions e JOIN down ON e.parent_execution_id = down.id
        WHERE down.n < 1000
    )
    SELECT e.id FROM down JOIN executions e ON e.id = down.id
    WHERE e.phase = ANY($2::text[]) ORDER BY down.n"""


class ChildQueries(StoreBase):
    """Child executions, name resolution and outputs (see :class:`~.store.Store`)."""

    async def latest_workflow(self, name: str) -> str | None:
        """The content hash of the version of ``name`` registered last, or None."""
        return await self._pool.fetchval(
            """SELECT content_hash FROM workflow_versions WHERE name = $1
               ORDER BY registered_at DESC LIMIT 1""", name)

    async def registered_workflows(self) -> dict[str, str]:
        """``{name: content hash}`` of the version of every workflow registered last."""
        rows = await self._pool.fetch(
            """SELECT DISTINCT ON (name) name, content_hash FROM workflow_versions
               ORDER BY name, registered_at DESC""")
        return {r["name"]: r["content_hash"] for r in rows}

    async def lineage(self, execution_id: str) -> tuple[list[str], int]:
        """The workflow names from the root run down to ``execution_id`` (itself last),
        and its depth (0: a top-level run)."""
        rows = await self._pool.fetch(_LINEAGE, execution_id)
        if not rows:
            return [], 0
        return [r["workflow_name"] for r in rows], rows[-1]["depth"]

    async def child_of(self, execution_id: str, task: str, attempt: int
                       ) -> dict[str, Any] | None:
        """The child started by attempt ``attempt`` of ``task`` of ``execution_id``:
        ``{id, workflow_name, workflow_hash, phase, message, outputs, cause}``, or None;
        ``cause`` is ``"<task>: <its error>"`` of the child's first failed task (None when
        none failed), so the parent can say why, not only "1 of 1 task(s) failed"."""
        row = await self._pool.fetchrow(
            """SELECT e.id, e.workflow_name, e.workflow_hash, e.phase, e.message, e.outputs,
                      (SELECT t.name || ': ' || coalesce(t.message, '') FROM tasks t
                        WHERE t.execution_id = e.id AND t.phase = 'Failed'
                        ORDER BY t.finished_at NULLS LAST, t.name LIMIT 1) AS cause
               FROM executions e WHERE e.parent_execution_id = $1 AND e.parent_task = $2
                 AND e.parent_attempt = $3""", execution_id, task, attempt)
        if row is None:
            return None
        return {**dict(row), "id": sid(row["id"])}

    async def children_by_task(self, execution_id: str) -> dict[str, tuple[str, str]]:
        """``{task: (child id, child phase)}``: the latest attempt's child of each
        ``workflow`` task of ``execution_id`` that started one."""
        rows = await self._pool.fetch(
            """SELECT DISTINCT ON (parent_task) parent_task, id, phase FROM executions
               WHERE parent_execution_id = $1 ORDER BY parent_task, parent_attempt DESC""",
            execution_id)
        return {r["parent_task"]: (sid(r["id"]), r["phase"]) for r in rows}

    async def open_descendants(self, execution_id: str) -> list[str]:
        """Ids of the open child executions of ``execution_id``, theirs, and so on."""
        rows = await self._pool.fetch(_OPEN_DESCENDANTS, execution_id, list(EXECUTION_OPEN))
        return [sid(r["id"]) for r in rows]

    async def finished_tasks(self, execution_id: str) -> dict[str, tuple[str, Any]]:
        """``{task: (phase, outputs)}`` of every task of one execution."""
        rows = await self._pool.fetch(
            "SELECT name, phase, outputs FROM tasks WHERE execution_id = $1", execution_id)
        return {r["name"]: (r["phase"], r["outputs"]) for r in rows}

    async def save_outputs(self, execution_id: str, outputs: dict[str, Any],
                           *, now: datetime) -> dict[str, Any]:
        """Store a Succeeded run's outputs once; return what is stored (the first writer
        wins: outputs are deterministic, so every writer computes the same)."""
        stored = await self._pool.fetchval(
            """UPDATE executions SET outputs = $2, updated_at = $3
               WHERE id = $1 AND outputs IS NULL AND phase = $4 RETURNING outputs""",
            execution_id, outputs, now, ExecutionPhase.SUCCEEDED)
        if stored is not None:
            return stored
        return await self._pool.fetchval("SELECT outputs FROM executions WHERE id = $1",
                                         execution_id) or {}

    async def fail_outputs(self, execution_id: str, message: str, reason: str,
                           *, now: datetime) -> None:
        """A Succeeded run whose outputs cannot be evaluated ends ``Failed`` (``reason``,
        ``message`` naming the output); its outputs are stored empty."""
        await self._pool.execute(
            """UPDATE executions SET phase = $2, message = $3, reason = $4, outputs = '{}',
                   updated_at = $5
               WHERE id = $1 AND outputs IS NULL AND phase = $6""",
            execution_id, ExecutionPhase.FAILED, message, reason, now,
            ExecutionPhase.SUCCEEDED)

