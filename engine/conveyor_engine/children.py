"""Child executions of ``workflow`` tasks, and a run's declared outputs: the I/O around the
pure decisions of :mod:`conveyor_engine.compiler.subworkflows` and
:mod:`conveyor_engine.compiler.outputs`.

:class:`ChildRunner` is what a worker gives the ``workflow`` task type
(:class:`~conveyor_engine.tasktypes.base.ChildRuns`): it resolves the child's name to the
version registered last, bounds the nesting depth, and submits the child through
:meth:`Engine.submit` (idempotent per parent attempt) linked to the parent task.
:func:`settle_outputs` evaluates a Succeeded run's outputs once and stores them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .compiler import (
    OUTPUTS_FAILED,
    CompiledWorkflow,
    InvalidInputs,
    OutputsFailed,
    WorkflowInvalid,
    child_name,
)
from .compiler.subworkflows import depth_problem
from .phases import ExecutionPhase
from .store import Store
from .tasktypes.base import ChildRefused, ChildRun
from .worker.context import execution_context

if TYPE_CHECKING:
    from .api import Engine


async def settle_outputs(store: Store, workflow: CompiledWorkflow, execution_id: str,
                         ) -> tuple[dict[str, Any], str | None]:
    """Evaluate and store the outputs of a run that Succeeded: ``(outputs, None)``; or,
    when one cannot be evaluated, end the run ``Failed`` (reason ``OutputsFailed``) and
    return ``({}, message)``. Deterministic (inputs, final task outputs and the run's
    fixed times), so two readers settling at once store the same value (the first wins)."""
    now = datetime.now(UTC)
    header = (await store.execution_headers([execution_id]))[execution_id]
    tasks = await store.finished_tasks(execution_id)
    context = {
        "inputs": header.inputs,
        "tasks": {name: {"phase": phase, "outputs": outputs or {}}
                  for name, (phase, outputs) in tasks.items()},
        "execution": execution_context(header),
    }
    try:
        values = workflow.evaluate_outputs(context)
    except OutputsFailed as exc:
        await store.fail_outputs(execution_id, str(exc), OUTPUTS_FAILED, now=now)
        return {}, str(exc)
    return await store.save_outputs(execution_id, values, now=now), None


class ChildRunner:
    """Starts and reads child runs for a worker's ``workflow`` tasks.

    ``max_depth``: ``CONVEYOR_MAX_WORKFLOW_DEPTH``; ``recheck_seconds``:
    ``CONVEYOR_CHILD_RECHECK_SECONDS`` (the waiting parent's safety-net period).
    """

    def __init__(self, engine: Engine, *, max_depth: int = 10,
                 recheck_seconds: float = 30.0) -> None:
        self._engine = engine
        self._store = engine.store
        self.max_depth = max_depth
        self.recheck_seconds = recheck_seconds

    async def find(self, execution_id: str, task: str, attempt: int) -> ChildRun | None:
        """The child of this attempt as recorded (outputs settled once it Succeeded)."""
        row = await self._store.child_of(execution_id, task, attempt)
        if row is None:
            return None
        phase, message, outputs = row["phase"], row["message"], row["outputs"]
        if phase == ExecutionPhase.SUCCEEDED and outputs is None:
            workflow = await self._engine.catalog.get(row["workflow_hash"],
                                                      row["workflow_name"])
            outputs, failed = await settle_outputs(self._store, workflow, row["id"])
            if failed is not None:
                phase, message = ExecutionPhase.FAILED, failed
        return ChildRun(row["id"], row["workflow_name"], phase, message, outputs,
                        cause=row["cause"])

    async def start(self, execution_id: str, task: str, attempt: int, *, workflow: str,
                    namespace: str | None, inputs: dict[str, Any]) -> ChildRun:
        """Submit the child of this attempt (idempotent: a re-run finds the same one).

        Raises :class:`ChildRefused`: not retryable past the depth limit, for inputs the
        child refuses, or a child version that no longer compiles; retryable when no
        workflow of that name is registered (it may be applied later)."""
        names, depth = await self._store.lineage(execution_id)
        if not names:
            raise ChildRefused(f"parent execution {execution_id} is not recorded",
                               retryable=False)
        target = child_name(names[-1], workflow, namespace)
        problem = depth_problem([*names, target], depth + 1, self.max_depth)
        if problem is not None:
            raise ChildRefused(problem, retryable=False)
        content_hash = await self._store.latest_workflow(target)
        if content_hash is None:
            raise ChildRefused(f'params.workflow: no workflow "{target}" is registered',
                               retryable=True)
        try:
            compiled = await self._engine.catalog.get(content_hash, target)
            await self._engine.submit(
                compiled, inputs, idempotency_key=f"child/{execution_id}/{task}/{attempt}",
                parent=(execution_id, task, attempt), depth=depth + 1)
        except InvalidInputs as exc:
            raise ChildRefused(f'params.inputs: workflow "{target}" refuses them: {exc}',
                               retryable=False) from None
        except WorkflowInvalid as exc:
            raise ChildRefused(f'params.workflow: "{target}" cannot run: {exc}',
                               retryable=False) from None
        found = await self.find(execution_id, task, attempt)
        assert found is not None  # just submitted (or found by its idempotency key)
        return found

    async def cancel(self, execution_id: str, reason: str) -> None:
        """Cancel a child run and its own children."""
        await self._engine.cancel(execution_id, reason)
