"""The ``workflow`` task type: run another Workflow as a child execution.

Params ``{workflow, namespace?, inputs}``. The first run of an attempt starts the child
(its own execution and history, linked to this task and attempt; idempotent, so a re-run
finds the same child) and suspends on a durable timer (:class:`~.base.Suspended`): no
worker slot is held while the child runs. The child's finish makes that timer due at once
(a trigger in the transaction that finishes it, migration 0009), so the parent re-runs
within a dispatch interval; the timer's own period (``recheck_seconds``) is the safety net.
A re-run reads the child: Succeeded gives the child's declared outputs as this task's
outputs; Failed fails this attempt (retryable: the next attempt starts a new child);
Cancelled fails it for good. Like Temporal's child workflows, with parent close policy
``TERMINATE``: cancelling the parent cancels the child (:meth:`Engine.cancel`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ..compiler.subworkflows import DEPTH_EXCEEDED
from ..model import NAME_PATTERN
from ..phases import ExecutionPhase
from .base import (
    ChildRefused,
    ChildRun,
    Failed,
    Outcome,
    Succeeded,
    Suspended,
    TaskContext,
    TaskType,
)

#: Longest message of a failed child kept on the parent task (the nested causes are quoted
#: level by level; the store bounds error text anyway).
MAX_CHILD_MESSAGE = 2000

#: DNS-1123 label: a Kubernetes namespace name.
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class WorkflowParams(BaseModel):
    """Parameters of a ``workflow`` task: the child Workflow's ``workflow`` name, its
    ``namespace`` (default: the parent's), and its ``inputs`` (checked against the child's
    declared inputs when it starts)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    workflow: str = Field(pattern=NAME_PATTERN)
    namespace: str | None = Field(None, pattern=NAMESPACE_PATTERN)
    inputs: dict[str, Any] = Field(default_factory=dict)


def outcome_of(child: ChildRun) -> Outcome | None:
    """What a recorded child means for the parent task: its outputs, a failure, or None
    while it is still open. Pure."""
    about = f"child execution {child.execution_id} of workflow {child.workflow}"
    if child.phase == ExecutionPhase.SUCCEEDED:
        return Succeeded(dict(child.outputs or {}))
    if child.phase == ExecutionPhase.FAILED:
        message = f"{about} failed: {child.message or 'no message'}"
        if child.cause and child.cause not in message:
            message += f"; task {child.cause}"
        # Retrying cannot help a chain that nests too deep: it nests as deep again, and with
        # retries at every level the number of runs would multiply. The words travel up in
        # each level's message, so every parent of the chain sees them.
        return Failed(message[:MAX_CHILD_MESSAGE], kind="ChildFailed",
                      retryable=DEPTH_EXCEEDED not in message)
    if child.phase == ExecutionPhase.CANCELLED:
        return Failed(f"{about} was cancelled: {child.message or 'no message'}",
                      retryable=False, kind="ChildCancelled")
    return None


class WorkflowTask(TaskType):
    """Run ``params.workflow`` as a child execution; outputs are the child's outputs."""

    name: ClassVar[str] = "workflow"
    Params: ClassVar[type[BaseModel]] = WorkflowParams
    honours_timeout: ClassVar[bool] = False

    async def run(self, params: BaseModel, ctx: TaskContext) -> Outcome:
        assert isinstance(params, WorkflowParams)
        runs = ctx.children
        if runs is None:
            return Failed("the workflow task type runs only on a worker (no engine to start "
                          "the child)", retryable=False)
        child = await runs.find(ctx.execution_id, ctx.task_name, ctx.attempt)
        if child is None:
            try:
                child = await runs.start(ctx.execution_id, ctx.task_name, ctx.attempt,
                                         workflow=params.workflow, namespace=params.namespace,
                                         inputs=params.inputs)
            except ChildRefused as exc:
                return Failed(str(exc), retryable=exc.retryable, kind="ChildRefused")
        done = outcome_of(child)
        if done is not None:
            return done
        return Suspended(
            until=datetime.now(UTC) + timedelta(seconds=runs.recheck_seconds),
            message=f"child execution {child.execution_id} of workflow {child.workflow} is "
                    f"{child.phase}")
