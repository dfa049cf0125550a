"""Pure decisions about how a task and an execution move on. No I/O; tested as tables.

The phases and how they follow each other are described in :mod:`conveyor_engine.phases`.
The decisions a batch commit makes across tasks (which close, fail or are skipped, how the
counters move, how an execution finishes) are in :mod:`conveyor_engine.store.decisions`.

A ``Skipped`` task (its ``when`` was false) satisfies its dependents like a success; a task
that fails for good skips every task downstream of it, with a message naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .phases import TASK_FINAL, AttemptOutcome, ExecutionPhase, TaskPhase
from .retries import retry_on_matches
from .tasktypes.base import Failed, Outcome, Succeeded, Suspended

#: Longest error text kept per attempt; full detail rarely helps past this and rows stay small.
MAX_ERROR_CHARS = 4000

#: The reason of a lost attempt, and of a task that failed because its last attempt was lost
#: (CamelCase, as Kubernetes reasons are).
WORKER_LOST = "WorkerLost"


@dataclass(frozen=True, slots=True)
class SkippedByCondition:
    """Outcome produced by the worker when a task's ``when`` evaluated to false."""

    expression: str


@dataclass(frozen=True, slots=True)
class LostAttempt:
    """Outcome recorded for an attempt whose worker stopped renewing the claim's lease
    (killed, partitioned, frozen) once another worker or the dispatcher took it over.

    ``error`` says who lost it and how it was found. A lost attempt counts against the
    task's ``retry.limit`` like a retryable failure (as Argo Workflows counts a deleted pod
    as a failed attempt); ``retryable=False`` fails the task at once (a dead letter).
    """

    error: str
    retryable: bool = True
    #: ``WorkerLost``, or ``LockLost`` when the attempt's lock was taken from it before its
    #: outcome was committed (:mod:`conveyor_engine.locks`).
    reason: str = WORKER_LOST


@dataclass(frozen=True, slots=True)
class Deferred:
    """Outcome produced by the worker when a task cannot start yet: a lock is held by
    others or a rate-limit token is not due (:mod:`conveyor_engine.locks`,
    :mod:`conveyor_engine.ratelimits`). The attempt is not over and holds no worker slot:
    the task waits in ``Waiting`` with a durable timer of ``timer_kind`` (``lock`` or
    ``rate``) until ``until``, with ``reason`` and ``message`` saying why; ``waiting_for``
    names the lock, so its release wakes the task sooner."""

    until: datetime
    timer_kind: str
    reason: str
    message: str
    waiting_for: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """What one attempt's outcome does to its task row.

    ``attempt_outcome`` is the value recorded in ``attempts.outcome`` (None when the attempt
    is not over, i.e. suspended on a timer). ``due_at``/``timer_kind`` are set for
    ``Waiting``. ``reason`` is a CamelCase reason (``WorkerLost``) recorded on the task and
    the attempt, or None.
    """

    phase: TaskPhase
    attempt_outcome: AttemptOutcome | None
    outputs: dict[str, Any] | None = None
    error: str | None = None
    message: str | None = None
    due_at: datetime | None = None
    timer_kind: str | None = None
    reason: str | None = None
    #: The lock a ``Waiting`` task waits for (timer kind ``lock``), else None.
    waiting_for: str | None = None

    @property
    def final(self) -> bool:
        """True when the task will not run again."""
        return self.phase in TASK_FINAL


def transition_for(
    *,
    retry_limit: int,
    backoff_seconds: float,
    attempt: int,
    outcome: Outcome | SkippedByCondition | LostAttempt | Deferred,
    now: datetime,
    retry_on: Sequence[str] | None = None,
) -> Transition:
    """Decide the task's next state from one attempt's ``outcome``.

    ``attempt`` is 1-based; a retryable failure is retried while ``attempt <= retry_limit``
    (so ``limit: 2`` allows three attempts in all), after ``backoff_seconds`` (the caller
    computes it from the retry policy for this retry number). Non-retryable failures end the
    task at once. A :class:`LostAttempt` is recorded as ``Lost`` with reason ``WorkerLost``
    and retried under the same rule; with no retries left the task fails with that reason.

    ``retry_on`` is the policy's ``retryOn`` (None: absent): a retryable failure or lost
    attempt it does not match (:func:`~conveyor_engine.retries.retry_on_matches`; a lost
    attempt is ``WorkerLost``) fails the task at once, "not in retryOn".
    """
    if isinstance(outcome, Succeeded):
        return Transition(TaskPhase.SUCCEEDED, AttemptOutcome.SUCCEEDED, outputs=outcome.outputs)
    if isinstance(outcome, SkippedByCondition):
        return Transition(
            TaskPhase.SKIPPED, AttemptOutcome.SKIPPED,
            message=f"when condition was false: {outcome.expression}",
        )
    if isinstance(outcome, Suspended):
        until = max(outcome.until, now)
        return Transition(
            TaskPhase.WAITING, None,
            message=(outcome.message or f"waiting until {until.isoformat()}")[:1000],
            due_at=until, timer_kind="resume",
        )
    if isinstance(outcome, Deferred):
        return Transition(
            TaskPhase.WAITING, None, message=outcome.message[:1000],
            due_at=max(outcome.until, now), timer_kind=outcome.timer_kind,
            reason=outcome.reason, waiting_for=outcome.waiting_for,
        )
    if isinstance(outcome, Failed):
        error = outcome.error[:MAX_ERROR_CHARS]
        listed = retry_on_matches(retry_on, kind=outcome.kind, status_code=outcome.status_code,
                                  kinds=outcome.kinds)
        if outcome.retryable and listed and attempt <= retry_limit:
            due = now + timedelta(seconds=backoff_seconds)
            return Transition(
                TaskPhase.WAITING, AttemptOutcome.FAILED, error=error, due_at=due,
                timer_kind="retry",
                message=(
                    f"attempt {attempt} failed, retry {attempt} of {retry_limit} "
                    f"in {round(backoff_seconds, 3):g}s: {error[:200]}"
                ),
            )
        why = (" (not retryable)" if not outcome.retryable
               else " (not in retryOn)" if not listed else "")
        return Transition(
            TaskPhase.FAILED, AttemptOutcome.FAILED, error=error,
            message=f"failed after {attempt} attempt(s){why}: {error[:200]}",
        )
    if isinstance(outcome, LostAttempt):
        if not retry_on_matches(retry_on, kind=outcome.reason, status_code=None):
            retry_limit = 0  # not in retryOn: the lost attempt fails the task at once
        return _lost(retry_limit, backoff_seconds, attempt, outcome, now)
    raise TypeError(f"unknown outcome {outcome!r}")


def _lost(retry_limit: int, backoff_seconds: float, attempt: int, outcome: LostAttempt,
          now: datetime) -> Transition:
    reason = outcome.reason
    error = f"{reason}: {outcome.error}"[:MAX_ERROR_CHARS]
    if outcome.retryable and attempt <= retry_limit:
        return Transition(
            TaskPhase.WAITING, AttemptOutcome.LOST, error=error, reason=reason,
            due_at=now + timedelta(seconds=backoff_seconds), timer_kind="retry",
            message=(f"attempt {attempt} lost, retry {attempt} of {retry_limit} "
                     f"in {round(backoff_seconds, 3):g}s: {error[:200]}"),
        )
    return Transition(
        TaskPhase.FAILED, AttemptOutcome.LOST, error=error, reason=reason,
        message=f"failed after {attempt} attempt(s), the last lost: {error[:200]}",
    )


def execution_phase(*, tasks_open: int, tasks_failed: int, started: bool) -> ExecutionPhase:
    """Phase of an execution that is not cancelled, from its task counters.

    All tasks final -> ``Failed`` if any failed, else ``Succeeded``; otherwise ``Running``
    once a task has started, else ``Pending``.
    """
    if tasks_open <= 0:
        return ExecutionPhase.FAILED if tasks_failed else ExecutionPhase.SUCCEEDED
    return ExecutionPhase.RUNNING if started else ExecutionPhase.PENDING


def upstream_failure_message(failed_task: str) -> str:
    """Message on a task skipped because ``failed_task`` (upstream of it) failed."""
    return f"skipped: upstream task {failed_task!r} failed"
