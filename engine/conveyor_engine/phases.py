"""The phases of tasks, attempts and executions: one vocabulary for the engine, operator and SQL.

Names follow the usual workflow-engine vocabulary (Argo Workflows' node phases, Tekton's
conditions) and the Kubernetes convention that ``status.phase`` is a CamelCase word:

* task: ``Pending`` (dependencies open) -> ``Ready`` (dispatched) -> ``Running`` ->
  ``Succeeded`` | ``Failed`` | ``Skipped``; ``Waiting`` holds a durable timer (a retry's
  backoff or a ``wait``); ``Cancelled`` when the execution is cancelled.
* execution: ``Pending`` -> ``Running`` -> ``Succeeded`` | ``Failed`` | ``Cancelled``.
* attempt outcome (one row per attempt): ``Succeeded`` | ``Failed`` | ``Skipped`` | ``Lost``
  (its worker stopped renewing the claim's lease and the claim was taken over).

The members are :class:`enum.StrEnum`, so they compare equal to the plain strings stored in
PostgreSQL and Redis and in the resources' status, and pass to asyncpg as ``text`` parameters.
The migrations' ``CHECK`` constraints list the same words; a unit test keeps them in step.
"""

from __future__ import annotations

from enum import StrEnum


class TaskPhase(StrEnum):
    """Where one task of an execution stands (``tasks.phase``)."""

    PENDING = "Pending"
    READY = "Ready"
    RUNNING = "Running"
    WAITING = "Waiting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    CANCELLED = "Cancelled"


class ExecutionPhase(StrEnum):
    """Where an execution stands (``executions.phase`` and the Execution's ``status.phase``)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class AttemptOutcome(StrEnum):
    """How one attempt ended (``attempts.outcome``)."""

    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    #: The claim was taken over after its worker stopped renewing the lease (reason
    #: ``WorkerLost``); counts against the task's ``retry.limit`` like a failure.
    LOST = "Lost"


#: Task phases that never change again.
TASK_FINAL: frozenset[TaskPhase] = frozenset(
    {TaskPhase.SUCCEEDED, TaskPhase.FAILED, TaskPhase.SKIPPED, TaskPhase.CANCELLED})
#: Task phases still to be decided: the complement of :data:`TASK_FINAL`.
TASK_OPEN: frozenset[TaskPhase] = frozenset(TaskPhase) - TASK_FINAL
#: Dependency phases that let dependents run (a skipped task counts as done).
SATISFIES_DEPENDENTS: frozenset[TaskPhase] = frozenset({TaskPhase.SUCCEEDED, TaskPhase.SKIPPED})

#: Execution phases that never change again.
EXECUTION_FINAL: frozenset[ExecutionPhase] = frozenset(
    {ExecutionPhase.SUCCEEDED, ExecutionPhase.FAILED, ExecutionPhase.CANCELLED})
#: Execution phases of a run still going: the complement of :data:`EXECUTION_FINAL`.
EXECUTION_OPEN: frozenset[ExecutionPhase] = frozenset(ExecutionPhase) - EXECUTION_FINAL
#: Execution phases a retry from the failed step applies to (a run that succeeded has
#: nothing to run again; an open one is still running).
EXECUTION_RETRYABLE: frozenset[ExecutionPhase] = frozenset(
    {ExecutionPhase.FAILED, ExecutionPhase.CANCELLED})


def sql_list(phases: frozenset[StrEnum] | frozenset[TaskPhase] | frozenset[ExecutionPhase]
             ) -> list[str]:
    """``phases`` as a sorted ``list[str]``, for a ``= ANY($n::text[])`` SQL parameter.

    Sorted so the parameter (and any logged query) is the same on every call.
    """
    return sorted(str(phase) for phase in phases)
