"""Loading what claimed tasks need to run: execution headers, workflows, upstream outputs.

Each batch of claims costs one pipelined Redis round trip per kind of data, and PostgreSQL
only for what Redis misses (which is then written back).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ..cache import Cache
from ..compiler import CompiledTask, CompiledWorkflow
from ..metrics import CACHE_REQUESTS
from ..phases import TaskPhase
from ..store import Claimed, ExecutionHeader, Store
from ..workflows import WorkflowCatalog


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed attempt with everything needed to run it.

    ``context`` is the expression context: ``{"inputs": ..., "tasks": {name: {"phase",
    "outputs", "error"}}, "execution": {"id", "workflow", "startedAt", "scheduledTime"}}``
    holding only the upstream tasks that this task's templates refer to, and ``"task":
    {"name", "attempt"}`` (:func:`execution_context`). A handler task's ``execution`` also
    holds ``phase``, ``reason`` and ``failedTasks`` (the main tasks' outcome,
    :meth:`~conveyor_engine.store.Store.handler_scope`). ``outputs`` is ``{}`` for a task
    without any (failed, skipped); ``error`` is null unless it failed.
    """

    claimed: Claimed
    header: ExecutionHeader
    workflow: CompiledWorkflow
    task: CompiledTask
    context: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LoadFailure:
    """A claim whose data could not be loaded (unknown task, missing workflow version)."""

    claimed: Claimed
    error: str
    workflow: CompiledWorkflow | None = None


def execution_context(header: ExecutionHeader) -> dict[str, Any]:
    """What ``execution`` holds in expressions, from the run's header (pure): its id, its
    workflow's engine name, ``startedAt`` (when the run was submitted: an aware UTC
    datetime, a CEL timestamp) and ``scheduledTime`` (the Schedule tick that created it,
    a timestamp, or None). Fixed for the run, so every attempt sees the same values."""
    return {"id": header.execution_id, "workflow": header.workflow_name,
            "startedAt": header.created_at, "scheduledTime": header.scheduled_time}


class ContextLoader:
    """Builds :class:`Job` objects for claims, Redis first and PostgreSQL on a miss."""

    def __init__(self, store: Store, cache: Cache, catalog: WorkflowCatalog) -> None:
        self._store = store
        self._cache = cache
        self._catalog = catalog

    async def headers(self, execution_ids: list[str]) -> dict[str, ExecutionHeader]:
        """Execution headers by id, cached ones from Redis and the rest from PostgreSQL."""
        found = await self._cache.headers(execution_ids)
        # A header cached by an earlier release lacks the run's times: read it again.
        found = {eid: h for eid, h in found.items() if h.created_at is not None}
        CACHE_REQUESTS.labels("execution", "redis").inc(len(found))
        missing = [eid for eid in execution_ids if eid not in found]
        if missing:
            CACHE_REQUESTS.labels("execution", "miss").inc(len(missing))
            loaded = await self._store.execution_headers(missing)
            await self._cache.put_headers(list(loaded.values()))
            found.update(loaded)
        return found

    async def load(self, claims: list[Claimed]) -> tuple[list[Job], list[LoadFailure]]:
        """Jobs for the claims that could be loaded, and failures for the others."""
        if not claims:
            return [], []
        eids = sorted({c.ref.execution_id for c in claims})
        headers = await self.headers(eids)
        jobs_in: list[tuple[Claimed, ExecutionHeader, CompiledWorkflow, CompiledTask]] = []
        failures: list[LoadFailure] = []
        wanted: dict[str, set[str]] = defaultdict(set)
        for claim in claims:
            header = headers.get(claim.ref.execution_id)
            if header is None:
                failures.append(LoadFailure(claim, "execution is not recorded"))
                continue
            try:
                workflow = await self._catalog.get(header.workflow_hash, header.workflow_name)
            except LookupError as exc:
                failures.append(LoadFailure(claim, str(exc)))
                continue
            task = workflow.tasks.get(claim.ref.task)
            if task is None:
                failures.append(LoadFailure(
                    claim, f"task {claim.ref.task!r} is not in workflow {workflow.name!r}",
                    workflow))
                continue
            jobs_in.append((claim, header, workflow, task))
            wanted[claim.ref.execution_id].update(task.refs)
        outputs = await self._outputs({eid: sorted(names) for eid, names in wanted.items()})
        jobs = []
        for claim, header, workflow, task in jobs_in:
            known = outputs.get(claim.ref.execution_id, {})
            upstream = {}
            for name in task.refs:
                phase, value, *error = known.get(name, (TaskPhase.PENDING, None))
                upstream[name] = {"phase": phase, "outputs": value or {},
                                  "error": error[0] if error else None}
            execution = execution_context(header)
            if task.handler:
                execution.update(await self._store.handler_scope(header.execution_id))
            context = {
                "inputs": header.inputs,
                "tasks": upstream,
                "execution": execution,
                "task": {"name": task.name, "attempt": claim.ref.attempt},
            }
            jobs.append(Job(claim, header, workflow, task, context))
        return jobs, failures

    async def _outputs(
        self, wanted: dict[str, list[str]]
    ) -> dict[str, dict[str, tuple[Any, ...]]]:
        found = await self._cache.outputs(wanted)
        for eid, names in wanted.items():
            hits = found.setdefault(eid, {})
            CACHE_REQUESTS.labels("outputs", "redis").inc(len(hits))
            missing = [n for n in names if n not in hits]
            if not missing:
                continue
            CACHE_REQUESTS.labels("outputs", "miss").inc(len(missing))
            loaded = await self._store.task_outputs(eid, missing)
            hits.update(loaded)
        return found
