"""The operator's vocabulary: condition types and reasons, Event types and reasons, pool problems.

Every ``reason`` the operator writes, on a status condition or on a Kubernetes Event, is one of
these constants; tests compare against the wire strings (CamelCase, as the API conventions ask
of reasons). The members are ``StrEnum`` s, so they serialise as their plain values. A new
reason is added here first, then used; ``docs/operator.md`` (Workflows, Executions) and
``docs/pools.md`` (WorkerPools) say what each means to a user.

Execution conditions also use the engine's phase names as reasons while a run is open
(``Pending``, ``Running``): those come from :mod:`conveyor_engine.phases`, not from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ConditionType(StrEnum):
    """Condition types, after kstatus (sigs.k8s.io/cli-utils): ``Ready`` for success,
    ``Reconciling`` while work is in progress, ``Stalled`` for an error waiting cannot fix."""

    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    #: An Execution whose ``spec.suspend`` holds its tasks (batch/v1 Job's condition name).
    SUSPENDED = "Suspended"


class ConditionReason(StrEnum):
    """Reasons written on status conditions of Workflows, Executions and WorkerPools."""

    # Workflow
    COMPILED = "Compiled"
    INVALID_SPEC = "InvalidSpec"  # also a WorkerPool's
    STORE_UNAVAILABLE = "StoreUnavailable"  # Redis or PostgreSQL unreachable: retried soon
    # Execution, before submission
    SUBMITTING = "Submitting"
    WORKFLOW_NOT_FOUND = "WorkflowNotFound"
    WORKFLOW_NOT_READY = "WorkflowNotReady"
    POOL_NOT_FOUND = "PoolNotFound"  # also after submission: a pool its open tasks need is gone
    POOL_NOT_READY = "PoolNotReady"
    INVALID_INPUTS = "InvalidInputs"
    # Execution, submitted: waiting in its concurrency group's queue (docs/concurrency.md)
    CONCURRENCY_LIMIT = "ConcurrencyLimit"
    # Execution, final
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    TASK_FAILED = "TaskFailed"
    CANCELLED = "Cancelled"
    CONCURRENCY_FORBIDDEN = "ConcurrencyForbidden"  # refused: its group is full (Forbid)
    CONCURRENCY_REPLACED = "ConcurrencyReplaced"  # cancelled by a newer run (Replace)
    # Execution, lifecycle (spec.suspend)
    SUSPENDED = "Suspended"
    RESUMED = "Resumed"
    # WorkerPool
    ACTIVE = "Active"
    REDIS_UNAVAILABLE = "RedisUnavailable"
    REDIS_SECRET_MISSING = "RedisSecretMissing"
    NAMESPACE_NOT_FOUND = "NamespaceNotFound"
    DEPLOYMENT_FAILED = "DeploymentFailed"


class EventType(StrEnum):
    """The two types of a core/v1 Event."""

    NORMAL = "Normal"
    WARNING = "Warning"


class EventReason(StrEnum):
    """Reasons of the Events the operator posts (what ``kubectl describe`` lists)."""

    STARTED = "Started"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    SUSPENDED = "Suspended"  # spec.suspend: true took effect
    RESUMED = "Resumed"  # ... and false again
    RETRIED = "Retried"  # spec.retry raised: the run runs its failed step again
    CONCURRENCY_FORBIDDEN = "ConcurrencyForbidden"  # a Warning: refused, its group is full
    CONCURRENCY_REPLACED = "ConcurrencyReplaced"  # cancelled by a newer run of its group
    SCALED_UP = "ScaledUp"
    SCALED_DOWN = "ScaledDown"
    CRD_MISMATCH = "CrdMismatch"  # an installed CRD stopped matching the operator's
    CRD_MATCHES = "CrdMatches"  # ... and matches again: statuses are rewritten


#: Pool problems that pass by themselves and stop nothing: the pool keeps its size and its
#: workers, Executions still start on it, and its status says ``Ready=False`` without
#: ``Stalled``. Redis being briefly unreachable is such a problem; the scaler keeps looking.
PASSING_POOL_PROBLEMS = frozenset({ConditionReason.REDIS_UNAVAILABLE})


@dataclass(frozen=True, slots=True)
class PoolProblem:
    """Why a WorkerPool is not Ready: a condition ``reason`` and a message for users.

    :attr:`blocks_work` says whether the problem stops the pool from running work (an invalid
    spec, a missing Redis Secret or namespace, a Deployment that cannot be applied): then the
    scaler leaves the pool alone, its status says ``Stalled``, and Executions needing it wait
    with ``PoolNotReady``. A passing problem (:data:`PASSING_POOL_PROBLEMS`) blocks nothing.
    """

    reason: ConditionReason
    message: str

    @property
    def blocks_work(self) -> bool:
        """True unless the problem is one of :data:`PASSING_POOL_PROBLEMS`."""
        return self.reason not in PASSING_POOL_PROBLEMS
