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
    ``Reconciling`` while work is in progress, ``Stalled`` for an error waiting cannot fix.

    ``Degraded`` (WorkerPools only) says the pool runs below what it should: some of its
    workers are not ready, or the operator cannot reach its Redis. It is an extra condition
    (as OpenShift's ClusterOperators have one); kstatus ignores it, so ``Ready`` alone
    still decides health checks.
    """

    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    #: An Execution whose ``spec.suspend`` holds its tasks (batch/v1 Job's condition name).
    SUSPENDED = "Suspended"
    DEGRADED = "Degraded"


class ConditionReason(StrEnum):
    """Reasons written on status conditions of Workflows, Executions, WorkerPools and
    Schedules."""

    # Workflow
    COMPILED = "Compiled"
    INVALID_SPEC = "InvalidSpec"  # also a WorkerPool's
    STORE_UNAVAILABLE = "StoreUnavailable"  # Redis or PostgreSQL unreachable: retried soon
    #: A task's type is served by no running worker of its pool yet: the Workflow waits
    #: (compiled again when the pool's catalogue changes; issue 11 item 2)
    TASK_TYPE_UNAVAILABLE = "TaskTypeUnavailable"
    #: A ``workflow`` task names a Workflow not applied (yet): the Workflow waits (compiled
    #: again when a Workflow is created or changed; issue 12)
    CHILD_WORKFLOW_NOT_FOUND = "ChildWorkflowNotFound"
    # Execution, before submission
    SUBMITTING = "Submitting"
    WORKFLOW_NOT_FOUND = "WorkflowNotFound"
    WORKFLOW_NOT_READY = "WorkflowNotReady"
    POOL_NOT_FOUND = "PoolNotFound"  # also after submission: a pool its open tasks need is gone
    POOL_NOT_READY = "PoolNotReady"
    INVALID_INPUTS = "InvalidInputs"
    # Execution, submitted: waiting in its concurrency group's queue (docs/concurrency.md)
    CONCURRENCY_LIMIT = "ConcurrencyLimit"
    # Execution, open: a task of it waits for a lock or a rate-limit token (the engine's
    # task reasons, surfaced on the Execution so `kubectl get -o wide` shows them)
    LOCK_HELD = "LockHeld"
    RATE_LIMITED = "RateLimited"
    #: A task of it waits Ready on a pool none of whose workers has been ready for a while
    NO_WORKERS = "NoWorkers"
    # Execution, final
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    TASK_FAILED = "TaskFailed"
    CANCELLED = "Cancelled"
    CONCURRENCY_FORBIDDEN = "ConcurrencyForbidden"  # refused: its group is full (Forbid)
    CONCURRENCY_REPLACED = "ConcurrencyReplaced"  # cancelled by a newer run (Replace)
    #: Its activeDeadlineSeconds passed (batch/v1 Job's reason); its finally tasks ran
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    #: Its main tasks succeeded and an onFailure/finally task failed
    HANDLER_FAILED = "HandlerFailed"
    #: Its tasks succeeded and a declared output could not be evaluated (the engine's
    #: reason ``OutputsFailed``; the message names the output)
    OUTPUTS_FAILED = "OutputsFailed"
    # Execution, lifecycle (spec.suspend); a suspended Schedule too
    SUSPENDED = "Suspended"
    RESUMED = "Resumed"
    # WorkerPool
    ACTIVE = "Active"
    REDIS_UNAVAILABLE = "RedisUnavailable"
    REDIS_SECRET_MISSING = "RedisSecretMissing"
    NAMESPACE_NOT_FOUND = "NamespaceNotFound"
    DEPLOYMENT_FAILED = "DeploymentFailed"
    # WorkerPool, the Degraded condition (RedisUnavailable serves it too)
    ALL_WORKERS_READY = "AllWorkersReady"  # False: every worker the Deployment runs is ready
    WORKERS_NOT_READY_YET = "WorkersNotReadyYet"  # False: some not ready, not for long yet
    WORKERS_NOT_READY = "WorkersNotReady"  # True: some not ready for the degraded delay
    # WorkerPool, Degraded=True at once: a pod's container waits for a reason only a fix
    # can clear (the kubelet's own reasons, from its containerStatuses; status/pods.py)
    CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"  # it keeps exiting: exit code and output
    CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"  # a Secret is missing
    CREATE_CONTAINER_ERROR = "CreateContainerError"
    ERR_IMAGE_PULL = "ErrImagePull"
    IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
    INVALID_IMAGE_NAME = "InvalidImageName"
    # Schedule (WorkflowNotFound and InvalidSpec above are a Schedule's too)
    SCHEDULED = "Scheduled"
    INVALID_SCHEDULE = "InvalidSchedule"
    INVALID_TIME_ZONE = "InvalidTimeZone"


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
    DEADLINE_EXCEEDED = "DeadlineExceeded"  # failed: its activeDeadlineSeconds passed
    HANDLER_FAILED = "HandlerFailed"  # failed: its main tasks succeeded, a handler did not
    SCALED_UP = "ScaledUp"
    SCALED_DOWN = "ScaledDown"
    CRD_MISMATCH = "CrdMismatch"  # an installed CRD stopped matching the operator's
    CRD_MATCHES = "CrdMatches"  # ... and matches again: statuses are rewritten
    #: A finished Execution's Namespace has a bad ``conveyor.dev/ttl-seconds-after-finished``
    INVALID_TTL_ANNOTATION = "InvalidTTLAnnotation"
    # Schedule: one Event per tick decided (docs/schedules.md#events)
    RUN_CREATED = "RunCreated"
    MISSED_RUN_CREATED = "MissedRunCreated"  # a missed tick run late (RunOnce, CatchUp)
    MISSED_RUN_SKIPPED = "MissedRunSkipped"  # missedRunPolicy Skip / RunOnce left it out
    CATCH_UP_LIMIT = "CatchUpLimit"  # CatchUp: older than the latest maxCatchUp missed ticks
    MISSED_DEADLINE = "MissedDeadline"  # older than startingDeadlineSeconds
    TOO_MANY_MISSED_RUNS = "TooManyMissedRuns"  # more than 100 due at once (as CronJob)
    PREVIOUS_RUN_ACTIVE = "PreviousRunActive"  # concurrencyPolicy Forbid
    RUN_REPLACED = "RunReplaced"  # concurrencyPolicy Replace cancelled an open run
    WORKFLOW_NOT_FOUND = "WorkflowNotFound"  # a tick found no Workflow to run
    INVALID_INPUTS = "InvalidInputs"  # a tick's inputs could not be rendered


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
